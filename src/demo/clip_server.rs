//! An in-process RTSP server playing a video file in a loop, in real time: the camera of the
//! tests, the bench and `watchpost demo`.
//!
//! ```text
//!  clip.mp4 ──(once, at start)──▶ H.264 access units in memory (Arc, shared by every client)
//!                                        │
//!     each client (shared = false) ──▶ appsrc ─▶ rtph264pay ─▶ rtsp-server (RTP + RTCP SR)
//!                                  timestamps + n × clip length on every loop
//! ```
//!
//! Looping is seamless and costs no decoding: the clip's compressed access units are read once
//! (`filesrc ! qtdemux ! h264parse ! appsink`) and each client's media pipeline replays them from
//! an `appsrc`, shifting the timestamps by one clip length per round, so RTP timestamps keep
//! increasing and the decoder on the other side sees one endless stream. Each client starts at
//! the beginning of the clip. rtsp-server paces the stream on the pipeline clock (real time)
//! and sends RTCP sender reports (about every 5 s) with the server's wall-clock NTP time.
//!
//! For tests and benches, [`ClipServer::with_speed`] plays the clip faster (a 30 fps clip at
//! speed 2 is a 60 fps camera) and [`ClipServer::set_frozen`] freezes every client's picture
//! on its current keyframe (sent again and again with new timestamps: a still scene that costs
//! no encoding) until it is unfrozen, when the clip plays on from the next frame.
//!
//! Mounts: `/clip` and `/cam0` … `/cam63` are there from the start (so N cameras can each use
//! their own mount); [`ClipServer::add_mount`] adds any other. Every mount plays the clip, and
//! every client (even on the same mount) gets its own stream from the beginning.
//! [`ClipServer::add_launch_mount`] serves a stream the clip cannot give (audio only, another
//! codec) from a launch line of its own, with the same authentication.
//!
//! The server's GLib main loop runs on its own thread with a `MainContext` of its own, so
//! several servers coexist in one process. [`ClipServer::stop`] closes the listening socket
//! *and* every connected client (cameras see the outage); [`ClipServer::start_again`] listens
//! again on the same port. Dropping the server stops it.
//!
//! Invariant: the clip must be H.264 in a container `qtdemux` reads (MP4/MOV), at most
//! [`MAX_CLIP_BYTES`] of compressed video (it is held in memory).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::glib;
use gstreamer_rtsp_server::prelude::*;

use crate::config::Secret;

/// The largest clip (sum of its compressed access units) the server holds in memory.
pub const MAX_CLIP_BYTES: usize = 256 * 1024 * 1024;

/// `/cam0` … `/cam{N-1}` are mounted at start.
pub const DEFAULT_CAMERA_MOUNTS: usize = 64;

/// How long starting or stopping the server's thread may take before it is an error.
const THREAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the clip server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClipServerError {
    #[error("GStreamer could not be initialised: {0}")]
    Init(String),
    #[error("{path}: cannot read the clip: {reason}")]
    Clip { path: PathBuf, reason: String },
    #[error("{path}: the clip is larger than {max} bytes of compressed video", max = MAX_CLIP_BYTES)]
    ClipTooLarge { path: PathBuf },
    #[error("cannot listen on 127.0.0.1:{port}: {reason}")]
    Bind { port: u16, reason: String },
    #[error("the server thread did not answer: {0}")]
    Thread(String),
}

/// A clip held in memory: H.264 access units (`stream-format=avc`, `alignment=au`) and their
/// caps (with `codec_data`).
struct Clip {
    caps: gst::Caps,
    buffers: Vec<gst::Buffer>,
    /// Timestamp of the first access unit (subtracted so that each round starts at 0).
    start: gst::ClockTime,
    /// One round: end of the last access unit minus `start`.
    length: gst::ClockTime,
}

/// How every client is fed, shared with the clients' feeding callbacks.
#[derive(Debug)]
struct Playback {
    /// Play the clip this many times faster than recorded (timestamps divided by it).
    speed: f64,
    /// Repeat the current keyframe instead of going on: a still picture, for free.
    frozen: AtomicBool,
}

/// See the module documentation.
pub struct ClipServer {
    clip: Arc<Clip>,
    playback: Arc<Playback>,
    /// The port actually bound (never 0 once started).
    port: u16,
    auth: Option<(String, Secret)>,
    /// Every mount path (`/clip`, `/cam0`, …, and those added), re-mounted by `start_again`.
    mounts: Vec<String>,
    /// Mounts with a launch line of their own (path, launch line), re-mounted by `start_again`.
    launch_mounts: Vec<(String, String)>,
    running: Option<Running>,
}

/// One listening server and its main-loop thread.
struct Running {
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    server: rtsp::RTSPServer,
    factory: rtsp::RTSPMediaFactory,
    /// The factories of `launch_mounts`.
    launch_factories: Vec<rtsp::RTSPMediaFactory>,
    source: Option<glib::SourceId>,
    thread: Option<JoinHandle<()>>,
    /// The factory's media-configure handler (feeding new clients), replaced by
    /// [`Running::set_playback`].
    configure: Option<glib::SignalHandlerId>,
}

impl std::fmt::Debug for ClipServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipServer")
            .field("port", &self.port)
            .field("running", &self.running.is_some())
            .field("auth", &self.auth.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl ClipServer {
    /// Reads `clip` into memory and listens on `127.0.0.1:port` (`0` = a free port, see
    /// [`ClipServer::port`]).
    ///
    /// # Errors
    /// The clip cannot be read or demuxed, is not H.264, is too large; or the port is taken.
    pub fn start(clip: &Path, port: u16) -> Result<ClipServer, ClipServerError> {
        gst::init().map_err(|e| ClipServerError::Init(e.to_string()))?;
        let clip = Arc::new(load_clip(clip)?);
        let mounts = std::iter::once("/clip".to_owned())
            .chain((0..DEFAULT_CAMERA_MOUNTS).map(|i| format!("/cam{i}")))
            .collect();
        let mut server = ClipServer {
            clip,
            playback: Arc::new(Playback {
                speed: 1.0,
                frozen: AtomicBool::new(false),
            }),
            port,
            auth: None,
            mounts,
            launch_mounts: Vec::new(),
            running: None,
        };
        server.start_again()?;
        Ok(server)
    }

    /// Requires HTTP basic authentication with `user` and `password` from now on (for clients
    /// that connect after this call) and after every [`ClipServer::start_again`].
    pub fn with_auth(mut self, user: &str, password: &str) -> ClipServer {
        self.auth = Some((user.to_owned(), Secret::new(password)));
        if let Some(running) = &self.running {
            apply_auth(&running.server, &running.factory, self.auth.as_ref());
            for factory in &running.launch_factories {
                apply_auth(&running.server, factory, self.auth.as_ref());
            }
        }
        self
    }

    /// Plays the clip `speed` times faster than recorded (more frames per second, same
    /// pictures) to clients that connect from now on: a 30 fps clip at speed 2 is a 60 fps
    /// camera. `speed` is clamped to 0.1..=10.
    pub fn with_speed(mut self, speed: f64) -> ClipServer {
        let frozen = self.playback.frozen.load(Ordering::Relaxed);
        self.playback = Arc::new(Playback {
            speed: speed.clamp(0.1, 10.0),
            frozen: AtomicBool::new(frozen),
        });
        if let Some(running) = &mut self.running {
            running.set_playback(&self.clip, &self.playback);
        }
        self
    }

    /// Freezes every client's picture (`true`): from the next keyframe on (at once for a client
    /// that has not started yet), that keyframe is sent again and again with new timestamps, a
    /// still scene that costs no encoding; `false` plays on from the frame after it. A still
    /// camera for tests and benches.
    pub fn set_frozen(&self, frozen: bool) {
        self.playback.frozen.store(frozen, Ordering::Relaxed);
    }

    /// Serves `launch` on `mount` (`name` or `/name`) instead of the clip: a gst-rtsp-server
    /// launch line whose payloaders are named `pay0`, `pay1`, … — for streams the clip cannot
    /// give, such as audio only (`( audiotestsrc ! alawenc ! rtppcmapay name=pay0 )`) or another
    /// codec. Kept across [`ClipServer::start_again`]; a mount already served is left as it is.
    pub fn add_launch_mount(&mut self, mount: &str, launch: &str) {
        let path = format!("/{}", mount.trim_start_matches('/'));
        if self.mounts.contains(&path) || self.launch_mounts.iter().any(|(p, _)| *p == path) {
            return;
        }
        if let Some(running) = &mut self.running {
            running.mount_launch(&path, launch, self.auth.as_ref());
        }
        self.launch_mounts.push((path, launch.to_owned()));
    }

    /// Serves the clip on `mount` too (`name` or `/name`; may contain `/`).
    pub fn add_mount(&mut self, mount: &str) {
        let path = format!("/{}", mount.trim_start_matches('/'));
        if self.mounts.contains(&path) {
            return;
        }
        if let Some(running) = &self.running {
            running.mount(&path);
        }
        self.mounts.push(path);
    }

    /// The TCP port the server listens on (the one picked when started with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server is listening.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// `rtsp://127.0.0.1:PORT/MOUNT` (leading `/` optional). See [`ClipServer::add_mount`] for
    /// mounts other than `clip` and `cam0` … `cam63`.
    pub fn url(&self, mount: &str) -> String {
        format!(
            "rtsp://127.0.0.1:{}/{}",
            self.port,
            mount.trim_start_matches('/')
        )
    }

    /// Stops listening and closes every client connection and session (their media pipelines
    /// stop). Does nothing when already stopped.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
        }
    }

    /// Listens again on the same port, with the same clip and authentication. Does nothing when
    /// already running.
    ///
    /// # Errors
    /// [`ClipServerError::Bind`] when the port is taken meanwhile.
    pub fn start_again(&mut self) -> Result<(), ClipServerError> {
        if self.running.is_some() {
            return Ok(());
        }
        let running = Running::start(
            self.clip.clone(),
            self.playback.clone(),
            self.port,
            self.auth.as_ref(),
            &self.mounts,
            &self.launch_mounts,
        )?;
        self.port = running
            .server
            .bound_port()
            .try_into()
            .map_err(|_| ClipServerError::Bind {
                port: self.port,
                reason: "the server reports no bound port".to_owned(),
            })?;
        self.running = Some(running);
        Ok(())
    }
}

impl Drop for ClipServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Running {
    fn start(
        clip: Arc<Clip>,
        playback: Arc<Playback>,
        port: u16,
        auth: Option<&(String, Secret)>,
        mounts: &[String],
        launch_mounts: &[(String, String)],
    ) -> Result<Running, ClipServerError> {
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());

        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch("( appsrc name=clip ! rtph264pay name=pay0 pt=96 config-interval=1 )");
        // Every client gets its own pipeline, so each one starts at the beginning of the clip.
        factory.set_shared(false);
        factory.set_eos_shutdown(false);
        apply_auth(&server, &factory, auth);

        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let source = server
            .attach(Some(&context))
            .map_err(|e| ClipServerError::Bind {
                port,
                reason: e.to_string(),
            })?;

        let (started_tx, started_rx) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name(format!("clip-rtsp-{}", server.bound_port()))
            .spawn({
                let context = context.clone();
                let main_loop = main_loop.clone();
                move || {
                    let run = || {
                        // The loop is running once this idle callback runs.
                        context.invoke(move || {
                            let _ = started_tx.send(());
                        });
                        main_loop.run();
                    };
                    if let Err(e) = context.with_thread_default(run) {
                        tracing::error!("clip server: cannot own its main context: {e}");
                    }
                }
            })
            .map_err(|e| ClipServerError::Thread(e.to_string()))?;

        let mut running = Running {
            context,
            main_loop,
            server,
            factory,
            launch_factories: Vec::new(),
            source: Some(source),
            thread: Some(thread),
            configure: None,
        };
        running.set_playback(&clip, &playback);
        for path in mounts {
            running.mount(path);
        }
        for (path, launch) in launch_mounts {
            running.mount_launch(path, launch, auth);
        }
        if started_rx.recv_timeout(THREAD_TIMEOUT).is_err() {
            running.join();
            return Err(ClipServerError::Thread(
                "the main loop did not start".to_owned(),
            ));
        }
        tracing::debug!(port = running.server.bound_port(), "clip server listening");
        Ok(running)
    }

    /// Feeds clients that connect from now on with `clip` as `playback` says.
    fn set_playback(&mut self, clip: &Arc<Clip>, playback: &Arc<Playback>) {
        if let Some(handler) = self.configure.take() {
            self.factory.disconnect(handler);
        }
        let (clip, playback) = (clip.clone(), playback.clone());
        self.configure = Some(
            self.factory
                .connect_media_configure(move |_factory, media| {
                    configure_media(media, clip.clone(), playback.clone());
                }),
        );
    }

    /// Serves the clip (the one factory) on `path`.
    fn mount(&self, path: &str) {
        if let Some(mounts) = self.server.mount_points() {
            mounts.add_factory(path, self.factory.clone());
        }
    }

    /// Serves `launch` on `path` with a factory of its own (every client its own pipeline).
    fn mount_launch(&mut self, path: &str, launch: &str, auth: Option<&(String, Secret)>) {
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(launch);
        factory.set_shared(false);
        apply_auth(&self.server, &factory, auth);
        if let Some(mounts) = self.server.mount_points() {
            mounts.add_factory(path, factory.clone());
        }
        self.launch_factories.push(factory);
    }

    /// Closes the listening socket, every client and every session (in the server's own
    /// context, where the clients live), then ends the main loop and joins its thread.
    fn shutdown(mut self) {
        let server = self.server.clone();
        let context = self.context.clone();
        let source = self.source.take();
        let main_loop = self.main_loop.clone();
        self.context.invoke(move || {
            if let Some(source) = source.and_then(|id| context.find_source_by_id(&id)) {
                source.destroy();
            }
            server.client_filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
            if let Some(pool) = server.session_pool() {
                pool.filter(Some(&mut |_, _| rtsp::RTSPFilterResult::Remove));
            }
            main_loop.quit();
        });
        self.join_thread();
    }

    /// After a failed start: ends the loop (whether or not it is running yet) and joins.
    fn join(&mut self) {
        let main_loop = self.main_loop.clone();
        self.context.invoke(move || main_loop.quit());
        self.join_thread();
    }

    /// Joins the loop's thread (asked to quit), then dispatches what is still pending in the
    /// context. A closure given to `invoke` while the loop thread still owned the context but
    /// had stopped iterating waits there as an idle source, holding the main loop and so the
    /// context itself: dispatched, the cycle is gone and the context (its wake-up eventfd)
    /// is freed with the last reference. Without this a restart leaked a descriptor now
    /// and then (8 in 50 `stop`/`start_again`).
    fn join_thread(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("clip server thread panicked");
            }
            let context = self.context.clone();
            let _ = context.with_thread_default(|| while context.iteration(false) {});
        }
    }
}

/// Basic authentication (or none) on the server, and the matching role on the factory.
fn apply_auth(
    server: &rtsp::RTSPServer,
    factory: &rtsp::RTSPMediaFactory,
    auth: Option<&(String, Secret)>,
) {
    let Some((user, password)) = auth else {
        server.set_auth(None::<&rtsp::RTSPAuth>);
        return;
    };
    const ROLE: &str = "watchpost-test-user";
    let rtsp_auth = rtsp::RTSPAuth::new();
    let token = rtsp::RTSPToken::builder()
        .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE)
        .build();
    let basic = rtsp::RTSPAuth::make_basic(user, password.expose());
    rtsp_auth.add_basic(basic.as_str(), &token);
    server.set_auth(Some(&rtsp_auth));
    factory.add_role_from_structure(
        &gst::Structure::builder(ROLE)
            .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
            .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
            .build(),
    );
}

/// Where one client is in the clip.
struct Feed {
    /// The next access unit, counted from the start over every round.
    next: usize,
    /// The access unit sent last, while it is a keyframe: what a freeze repeats.
    keyframe: Option<usize>,
    /// Time added to the clip's own timestamps: whole rounds, plus every repeated frame.
    offset: gst::ClockTime,
}

/// The next buffer for one client: the clip's next access unit, or, while frozen and once a
/// keyframe has been sent, that keyframe again one frame later. Timestamps always increase.
fn next_buffer(clip: &Clip, playback: &Playback, feed: &mut Feed) -> gst::Buffer {
    let n = clip.buffers.len();
    let index = match feed.keyframe {
        Some(index) if playback.frozen.load(Ordering::Relaxed) => {
            feed.offset += clip.length / n as u64;
            index
        }
        _ => {
            let index = feed.next % n;
            if index == 0 && feed.next > 0 {
                feed.offset += clip.length;
            }
            feed.next += 1;
            index
        }
    };
    let scale = |t: gst::ClockTime| {
        gst::ClockTime::from_nseconds((t.nseconds() as f64 / playback.speed) as u64)
    };
    let mut buffer = clip.buffers[index].clone();
    {
        let buffer = buffer.make_mut();
        let shift = |t: Option<gst::ClockTime>| {
            t.and_then(|t| t.checked_sub(clip.start))
                .map(|t| scale(t + feed.offset))
        };
        buffer.set_pts(shift(buffer.pts()));
        buffer.set_dts(shift(buffer.dts()));
        buffer.set_duration(buffer.duration().map(scale));
    }
    feed.keyframe = (!buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)).then_some(index);
    buffer
}

/// Feeds one client's `appsrc` with the clip, round after round.
fn configure_media(media: &rtsp::RTSPMedia, clip: Arc<Clip>, playback: Arc<Playback>) {
    let Some(appsrc) = media
        .element()
        .downcast_ref::<gst::Bin>()
        .and_then(|bin| bin.by_name("clip"))
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
    else {
        tracing::error!("clip server: the media has no appsrc named `clip`");
        return;
    };
    appsrc.set_caps(Some(&clip.caps));
    appsrc.set_format(gst::Format::Time);
    appsrc.set_stream_type(gst_app::AppStreamType::Stream);
    appsrc.set_is_live(false);
    appsrc.set_max_buffers(4);
    let mut feed = Feed {
        next: 0,
        keyframe: None,
        offset: gst::ClockTime::ZERO,
    };
    appsrc.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |appsrc, _| {
                let buffer = next_buffer(&clip, &playback, &mut feed);
                // Flushing or shutting down: the media is going away, nothing to report.
                let _ = appsrc.push_buffer(buffer);
            })
            .build(),
    );
}

/// Reads every H.264 access unit of `path` into memory.
fn load_clip(path: &Path) -> Result<Clip, ClipServerError> {
    let fail = |reason: String| ClipServerError::Clip {
        path: path.to_owned(),
        reason,
    };
    if !path.is_file() {
        return Err(fail("no such file".to_owned()));
    }
    let pipeline = gst::parse::launch(
        "filesrc name=file ! qtdemux ! h264parse ! video/x-h264,stream-format=avc,alignment=au \
         ! appsink name=sink sync=false",
    )
    .map_err(|e| fail(e.to_string()))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| fail("not a pipeline".to_owned()))?;
    let result = read_access_units(&pipeline, path);
    let _ = pipeline.set_state(gst::State::Null);
    let (caps, buffers) = result.map_err(fail)?;

    let start = buffers
        .iter()
        .filter_map(|b| b.dts_or_pts())
        .min()
        .ok_or_else(|| fail("no timestamped video frames".to_owned()))?;
    let end = buffers
        .iter()
        .filter_map(|b| Some(b.pts()? + b.duration().unwrap_or(gst::ClockTime::ZERO)))
        .max()
        .unwrap_or(start);
    let length = end.saturating_sub(start);
    if length.is_zero() {
        return Err(fail("the clip has no duration".to_owned()));
    }
    tracing::debug!(
        clip = %path.display(),
        access_units = buffers.len(),
        length_ms = length.mseconds(),
        "clip loaded"
    );
    Ok(Clip {
        caps,
        buffers,
        start,
        length,
    })
}

fn read_access_units(
    pipeline: &gst::Pipeline,
    path: &Path,
) -> Result<(gst::Caps, Vec<gst::Buffer>), String> {
    let file = pipeline.by_name("file").ok_or("no filesrc")?;
    file.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| bus_error(&bus).unwrap_or_else(|| "cannot start demuxing".to_owned()))?;

    let mut caps = None;
    let mut buffers = Vec::new();
    let mut total_bytes = 0usize;
    loop {
        if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
            if caps.is_none() {
                caps = sample.caps_owned();
            }
            if let Some(buffer) = sample.buffer_owned() {
                total_bytes += buffer.size();
                if total_bytes > MAX_CLIP_BYTES {
                    return Err(format!("larger than {MAX_CLIP_BYTES} bytes"));
                }
                buffers.push(buffer);
            }
            continue;
        }
        if sink.is_eos() {
            break;
        }
        if let Some(error) = bus_error(&bus) {
            return Err(error);
        }
    }
    match caps {
        Some(caps) if !buffers.is_empty() => Ok((caps, buffers)),
        _ => Err("no H.264 video track".to_owned()),
    }
}

/// The first error waiting on `bus`, as one line.
fn bus_error(bus: &gst::Bus) -> Option<String> {
    let msg = bus.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(format!(
            "{}: {}",
            err.src().map(|s| s.name().to_string()).unwrap_or_default(),
            err.error()
        )),
        _ => None,
    }
}
