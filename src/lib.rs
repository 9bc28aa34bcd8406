//! # watchpost
//!
//! An edge video analytics agent for border surveillance cameras: it pulls each camera's RTSP
//! stream, detects persons and vehicles with an ONNX model, and publishes what it sees over
//! MQTT to the central system. This page is the map of the code; the README's "How it works"
//! says the same for operators.
//!
//! ## Data flow
//!
//! ```text
//!  camera ──RTSP──▶ ingest::spawn_camera: one GStreamer pipeline per camera, its own threads
//!                     │ rtspsrc → depay → decode → appsink: the decoder's own YUV (I420/NV12),
//!                     │ mapped, not copied, not converted (imaging::YuvFrame); newest only
//!                     ▼ FrameSink::offer (never blocks); motion looked at ≤ 10×/s on the Y plane
//!               framepath::FrameBoard: one slot per camera (its id; added and retired while
//!                     │ running, never reused); a replaced frame is a counted drop
//!                     │
//!                     ▼ FrameBoard::take: next due camera in fair rotation (detect_fps, or
//!                     │ idle_fps while nothing moves: framepath::gate), max_frame_age; a ticket
//!               framepath workers: N OS threads, each its own detect::Detector (one core each);
//!                     │  up to N frames of one camera at once, so a lone camera uses every core
//!                     │  preprocess (YUV planes → model input in one pass, at the model's size)
//!                     │  → ort Session::run → decode → NMS → Vec<Object>
//!                     ▼ framepath::Lane, per camera, in ticket order: events::CameraEvents:
//!                     │  track::Tracker → zone/line watches → events, snapshots (the frame
//!                     │  converted to a full-size picture only then)
//!                     │            └─ events ─▶ outbox::EventSink (never blocks) ─▶ outbox
//!                     │               thread: seq + event_id, appended to the disk log first
//!                     ▼ try_send on a bounded channel (full: counted drop)      │ records
//!               publish::run_publisher (tokio): detections, status + last will, health,  ◀┘
//!                 events + snapshots (QoS 1, done on PUBACK) → MQTT (driver: reconnect,
//!                 failover between endpoints, which PUBACK is whose)
//! ```
//!
//! `watchpost detect` runs the same `Detector` on still pictures (`imaging::read_image` →
//! `Detector::detect` → JSON lines / `imaging::annotate`); its `Object` shape is the one the
//! MQTT payloads carry. `agent::run` wires the live path from a validated `config::Config` and
//! shuts it down in order (cameras, then inference, then the outbox, then the publisher with
//! `offline`) within one budget (`agent::stop`), abandoning a stage that hangs. While it runs,
//! [`agent::Control`] applies a new configuration (SIGHUP, the local endpoint's
//! `POST /reload`): [`agent::plan`] says per camera what to renew (pipeline, pacing, lane or
//! nothing) and which sections wait for a restart.
//!
//! ## Code map (a folder is a concept)
//! - [`config`]: TOML → validated [`config::Config`]; every problem at once with key and line;
//!   [`config::Secret`] for passwords. The loader (`config/load/`) has a module per section;
//!   it reads the files the configuration names through [`config::Files`] (as it reads the
//!   environment through a function), and [`config::check_value`] runs its checks on one value
//!   alone (`config init`'s answers). [`config::edit`] changes the file keeping its comments;
//!   [`config::change`] is the one way a change is made (edited, checked by the loader,
//!   audited, written atomically), for the command line and remote commands alike;
//!   [`config::version`] numbers the versions of the file.
//! - [`ingest`]: pipeline templates (`pipelines/`, embedded), decoder choice, the one pipeline
//!   builder (also `camera probe`'s), the camera loop with backoff and stall detection, capture
//!   time from RTCP sender reports.
//! - [`framepath`]: the bounded-latency frame path: slots, scheduler, the motion gate, inference
//!   threads, the per-camera lanes that put results back in order.
//! - [`motion`]: the cheap per-camera motion measure on the decoder's Y plane (pure).
//! - [`track`]: the tracker and the zone and line state machines (pure, time in seconds).
//! - [`events`]: per-camera event decisions and their snapshots.
//! - [`outbox`]: the disk-backed event outbox: numbering, durable log, bounds, drop
//!   announcements, delivery in order with at-least-once semantics; a full or read-only disk
//!   is an error in `health` and `status`, not a stop, and a damaged one loses only the
//!   damaged records (counted).
//! - [`detect`]: which model runs ([`detect::ModelChoice`]: `auto` takes the int8 model where
//!   the CPU has integer dot-product instructions, else fp32), the model manifest
//!   ([`detect::ModelSpec`]), loading ONNX Runtime ([`detect::Runtime`]), the
//!   [`detect::Detector`], and its pure core:
//!   [`detect::preprocess`], [`detect::decode`], [`detect::nms`].
//! - [`publish`]: the MQTT contract: topics, payloads, JSON Schemas, the connection.
//! - [`command`]: remote commands, the pure core: the signed command message and its result
//!   (`watchpost.command/1`, `watchpost.command-result/1`), the documented bytes an Ed25519
//!   signature covers, key files, the durable per-key counters, and [`command::Inbox`], which
//!   turns (topic, payload, retain flag, time) into a verified [`command::Command`] or a
//!   [`command::Refusal`]. `keys generate` and `command sign` are its command-line half; the
//!   agent's command task (`agent/commands.rs`) takes what the publisher receives on `cmd`,
//!   acts on it and answers on `cmd/result` and `audit`.
//! - [`health`]: per-camera counters, histograms, process RSS/CPU, and [`health::Cameras`],
//!   the live cameras by id that `status`, `health`, `/status` and `/metrics` list.
//! - [`agent`]: the supervisor (start order, live configuration: [`agent::Control`],
//!   [`agent::plan`] and the camera set, the ordered stop within one time budget, the faults
//!   tests inject through `WATCHPOST_FAULTS`).
//! - [`local`]: the agent's HTTP endpoint, loopback by default, off loopback only behind a
//!   password login (`/status` JSON for `watchpost status`, `/metrics` for Prometheus,
//!   `POST /reload`, and the technician's page: live views of the cameras with the model's
//!   boxes, a zone and line editor, and "Add a camera", probed as `camera probe` does), over
//!   TLS when `[local] tls_cert` is set, and its client.
//! - `tls` (private): PEM certificates and keys and the rustls set-ups made of them (ring
//!   provider), for the broker connection and the local endpoint alike.
//! - [`demo`]: the in-process RTSP clip server (tests, bench, demo) and embedded broker.
//! - [`geometry`]: boxes, IoU, points, polygons and polylines (side and crossing tests).
//! - [`imaging`]: the frame types ([`imaging::YuvFrame`], a decoded video frame as the decoder
//!   gave it; [`imaging::Frame`], a BGR picture), picture decode/encode, drawing. The only
//!   module that knows OpenCV.
//! - [`probe`]: the technician's camera check (`camera probe`, `camera draw`, the page's
//!   "Add a camera"): DNS and TCP pre-checks, the camera's pipeline as ingest builds it, on one
//!   thread, a pure diagnosis of what failed, and the one way its result is told.
//! - [`install`]: where installed files (bundled models, the demo clip) are looked for.
//! - [`cli`]: the `watchpost` command line; thin, calls into the modules above.
//!
//! ## Invariants
//! - Nothing between a camera and the broker queues without bound: appsink keeps one frame, the
//!   board one per camera, each camera's lane at most one result per inference thread, the
//!   results channel a few per camera, the outbox inbox 1024 events
//!   and its log `[outbox] max_size_mb`, the MQTT request queue 256. Every place that drops
//!   says so in a counter, by reason ([`health::DropReason`], `health.outbox.dropped`).
//! - When the model is slower than the cameras, frames are skipped, never delayed.
//! - Work costs what it needs: decoded frames stay in the decoder's format and memory; only
//!   the frames analysed are converted, once, at the model's size; a full-size picture is made
//!   only for a snapshot or a probe's picture. A camera where nothing moves is analysed at
//!   `idle_fps` and costs little more than its decoding.
//! - Inference never runs on an async worker thread; GStreamer callbacks never wait for the
//!   model or the broker; the frame path never waits for the broker or the disk.
//! - Only `publish` knows MQTT and the JSON shapes (and `command` those of commands and their
//!   results, as plain data); payloads carry a versioned `schema` field and are described by
//!   the JSON Schema files the tests validate against.
//! - A configuration value is judged by one piece of code, the loader's: `run`, `config
//!   validate`, every edit command (on the file as it would be written, its new password files
//!   where they are staged) and each `config init` answer ([`config::check_value`]) get the same
//!   checks and messages.
//! - A command is acted on only once its signature, time window, allow-list entry and counter
//!   have been checked and its counter is on disk; anything else gets a refusal that changes
//!   nothing. Every message on `cmd` is audited (MQTT and `audit.log`) and, unless it arrived
//!   retained, answered.
//! - Secrets are [`config::Secret`] values whose `Debug`/`Display` print `***`; credentials are
//!   never part of a pipeline string, a URL in a log, or an error message.
//! - A reload touches only what changed: a camera whose own settings are the same keeps its
//!   pipeline, slot, lane and counters; a camera's id (its slot) is never reused, so a result
//!   in flight always finds its own camera; the outbox numbers events by camera name, so `seq`
//!   stays contiguous across reloads. What cannot change live (`[mqtt]`, `[device]`, …) is
//!   reported, never half-applied; an invalid file changes nothing.
//! - A camera's frames may be analysed by several threads at once, but its lane tracks and
//!   publishes them strictly in the order they were taken; an
//!   event exists (has a `seq`) only once the outbox has written it; it leaves the outbox only
//!   on the broker's PUBACK (at least once, in `seq` order per camera); `metadata_only` sends
//!   no pixels.
//! - Pre-processing (BGR and YUV), decoding, NMS, geometry, tracking, zone and line watches,
//!   motion, the slot scheduler and its gate, and template selection are pure functions over
//!   plain data, tested from tables.
//! - A model is checked against its manifest when loaded; ONNX Runtime is loaded from an
//!   explicit path ([`detect::Runtime::load`]); a missing or too old library is an error, never
//!   a panic.
//! - Memory, descriptors and threads stay flat however often cameras and the broker come and
//!   go: a reconnection tears its whole pipeline down (`tests/ingest_reconnect.rs` checks 50),
//!   and `main` sets glibc's malloc so that the buffers of torn-down pipelines go back to the
//!   system instead of staying in one of many arenas ([`health::keep_memory_flat`];
//!   `benches/soak.rs` measures it over an hour).
//!
//! ## Deliberately absent
//! - **Exactly-once delivery.** Events are delivered at least once (consumers drop duplicates
//!   by `event_id`); detections are a live QoS 0 stream, dropped while the broker is away.
//! - **Recording.** No video is stored; a snapshot is taken only for an event, and
//!   `metadata_only` takes none.
//! - **GPU execution providers.** Inference runs on the CPU through ONNX Runtime's default
//!   provider; hardware helps with decoding only.
//! - **A queue that waits.** Nothing on the frame path blocks for the model, the disk or the
//!   broker; what cannot keep up is dropped and counted.
//! - **Joining a thread that hangs at shutdown.** The stop abandons it after its stage's
//!   deadline; the process exit takes it along.
//!
//! ## Errors
//! Modules return typed errors (`thiserror`) that name the camera, file, tensor or key at fault
//! and, where it matters, whether retrying helps. The command line wraps them with `anyhow` and
//! prints the chain on one line; configuration problems are printed one per line as
//! `FILE:LINE: KEY: MESSAGE` with exit code 2.

pub mod agent;
pub mod cli;
pub mod command;
pub mod config;
pub mod demo;
pub mod detect;
pub mod events;
pub mod framepath;
pub mod geometry;
pub mod health;
pub mod imaging;
pub mod ingest;
pub mod install;
pub mod local;
pub mod motion;
pub mod outbox;
pub mod probe;
pub mod publish;
mod tls;
pub mod track;
