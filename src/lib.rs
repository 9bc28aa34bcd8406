//! # watchpost
//!
//! An edge video analytics agent for border surveillance cameras: it pulls each camera's RTSP
//! stream, detects persons and vehicles with an ONNX model, and publishes what it sees over
//! MQTT to the central system. This page is the map of the code; the README's "How it works"
//! says the same for operators.
//!
//! ## Data flow (today: still pictures)
//!
//! ```text
//!  picture file ──▶ imaging::read_image (OpenCV decode → BGR Frame)
//!                        │
//!                        ▼
//!                  detect::Detector::detect
//!                        │  preprocess_into   resize + normalise into a reused tensor   (pure)
//!                        │  ort Session::run  one session, one thread at a time
//!                        │  decode::*         NanoDet GFL / YOLOv8 / YOLOv5 → candidates (pure)
//!                        │  nms               class-aware, bounded                      (pure)
//!                        ▼
//!                  Vec<Object> {class, label, score, bbox: normalised [x, y, w, h]}
//!                        │
//!          ┌─────────────┴──────────────┐
//!          ▼                            ▼
//!   cli: JSON line / text        imaging::annotate → JPEG
//! ```
//!
//! Live cameras (GStreamer ingest, the bounded-latency frame path) and MQTT publishing attach
//! to the same `Detector` and `Object`: the `Object` shape is the one the MQTT payloads carry.
//!
//! ## Code map (a folder is a concept)
//! - [`detect`]: the model manifest ([`detect::ModelSpec`]), loading ONNX Runtime
//!   ([`detect::Runtime`]), the [`detect::Detector`], and its pure core:
//!   [`detect::preprocess`], [`detect::decode`], [`detect::nms`].
//! - [`geometry`]: boxes and IoU, shared by detection and (later) tracking.
//! - [`imaging`]: the [`imaging::Frame`] type, picture decode/encode, drawing. The only module
//!   that knows OpenCV.
//! - [`cli`]: the `watchpost` command line; thin, calls into the modules above.
//!
//! ## Invariants
//! - Pre-processing, decoding, NMS and geometry are pure functions over slices and ndarray
//!   views: no `ort`, GStreamer or OpenCV types, tested from tables.
//! - A model is checked against its manifest when loaded (input name, type, shape; every output
//!   the decoder reads). A mismatch is refused then, naming it.
//! - ONNX Runtime is loaded from an explicit path ([`detect::Runtime::load`]); a missing or
//!   too old library is an error, never a panic.
//! - Bad input (a picture, a manifest, an argument) is a one-line error naming where it is;
//!   commands over several inputs go on with the others and exit non-zero.
//!
//! ## Errors
//! Modules return typed errors (`thiserror`) that name the file, tensor or key at fault; the
//! command line wraps them with `anyhow` and prints the whole chain on one line.

pub mod agent;
pub mod cli;
pub mod config;
pub mod demo;
pub mod detect;
pub mod framepath;
pub mod geometry;
pub mod health;
pub mod imaging;
pub mod ingest;
pub mod publish;
