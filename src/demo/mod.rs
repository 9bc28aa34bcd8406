//! `watchpost demo`: everything on one box — an in-process RTSP server playing the bundled clip,
//! an embedded MQTT broker, and the agent against both.

pub mod clip_server;
