//! In-process RTSP server playing a video file (filled in by the ingest work).
