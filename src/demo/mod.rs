//! `watchpost demo`: everything on one box — an in-process RTSP server playing the bundled clip,
//! an embedded MQTT broker, and the agent against both, with a per-second view of what the
//! central system receives.

mod broker;
pub mod clip_server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use broker::{BrokerError, EmbeddedBroker};

use crate::detect::CoarseClass;
use crate::publish::Topics;
use crate::publish::payload::ReceivedDetections;

use crate::config::Config;

/// The bundled clip's file name.
pub const DEMO_CLIP: &str = "sample-clip.mp4";

/// Where the demo clip is looked for: `$WATCHPOST_DEMO_CLIP`, next to the executable
/// (`../share/watchpost/demo/`), `/usr/share/watchpost/demo/`, then the source tree.
pub fn find_demo_clip() -> anyhow::Result<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("WATCHPOST_DEMO_CLIP").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    candidates.extend(
        crate::install::data_dirs("demo", "tests/data")
            .into_iter()
            .map(|dir| dir.join(DEMO_CLIP)),
    );
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "demo clip not found (looked in {}); set WATCHPOST_DEMO_CLIP",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// What `watchpost demo` can be asked for.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub cameras: usize,
    pub detect_fps: f32,
    /// 0 = any free port.
    pub rtsp_port: u16,
    /// Taken if free, else any free port.
    pub mqtt_port: u16,
    pub clip: Option<PathBuf>,
    pub inference_threads: usize,
}

/// The configuration the demo agent runs with: a configuration file's text, read by the same
/// loader as `watchpost run`'s, so every setting the demo does not name has the agent's default.
/// No local endpoint: the demo shows its own live view, and must not take the port of an
/// agent installed on the same machine.
///
/// # Errors
/// An option the loader refuses (its message names the key, e.g. `cameras[0].detect_fps`).
pub fn demo_config(
    camera_urls: &[String],
    mqtt: &EmbeddedBroker,
    options: &DemoOptions,
    state_dir: &Path,
) -> anyhow::Result<Config> {
    let quoted = |text: &str| toml_edit::Value::from(text).to_string();
    let mut text = format!(
        "[device]\nsite = \"demo\"\nid = \"watchpost-demo\"\nstate_dir = {}\n\
         [mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nclient_id = \"watchpost-demo\"\n\
         [detection]\ninference_threads = {}\n\
         [local]\nlisten = \"\"\n",
        quoted(&state_dir.to_string_lossy()),
        mqtt.port(),
        options.inference_threads.max(1),
    );
    for (i, url) in camera_urls.iter().enumerate() {
        text.push_str(&format!(
            "[[cameras]]\nname = \"demo-cam-{}\"\nurl = {}\ndetect_fps = {}\n",
            i + 1,
            quoted(url),
            options.detect_fps,
        ));
    }
    Ok(crate::config::parse(&text, Path::new("(demo)"))?)
}

/// Runs the demo until `shutdown` is cancelled. Prints one line per camera and second to
/// stdout.
///
/// # Errors
/// The clip, the model or a port could not be had.
pub async fn run(options: DemoOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let clip = match &options.clip {
        Some(path) => path.clone(),
        None => find_demo_clip()?,
    };
    crate::ingest::init_gstreamer()?;
    let server = clip_server::ClipServer::start(&clip, options.rtsp_port)
        .context("starting the demo RTSP server")?;
    let broker = EmbeddedBroker::start(options.mqtt_port)?;
    let urls: Vec<String> = (0..options.cameras.max(1))
        .map(|i| server.url(&format!("cam{i}")))
        .collect();
    let state_dir = std::env::temp_dir().join(format!("watchpost-demo-{}", std::process::id()));
    let config = demo_config(&urls, &broker, &options, &state_dir)?;

    println!(
        "watchpost demo: {} on {} camera(s) at {} fps",
        clip.display(),
        urls.len(),
        options.detect_fps
    );
    for url in &urls {
        println!("  camera  {url}");
    }
    println!(
        "  broker  {}   (watch it: mosquitto_sub -h 127.0.0.1 -p {} -t 'watchpost/#' -v)",
        broker.url(),
        broker.port()
    );
    println!("  Ctrl-C to stop.\n");

    let topics = Topics::new(
        &config.mqtt.topic_prefix,
        &config.device.site,
        &config.device.id,
    );
    let viewer = tokio::spawn(view(broker.port(), topics, shutdown.clone()));
    let result = crate::agent::run(config, None, shutdown).await;
    viewer.abort();
    drop(server);
    let _ = std::fs::remove_dir_all(&state_dir);
    result
}

/// Per camera and second: what arrived on `detections`.
#[derive(Default)]
struct Second {
    messages: u32,
    persons: usize,
    vehicles: usize,
    latencies_ms: Vec<f64>,
}

/// Subscribes to the demo's own topics, as the central system would, and prints a line per
/// camera and second.
async fn view(port: u16, topics: Topics, shutdown: CancellationToken) {
    let mut options = rumqttc::MqttOptions::new("watchpost-demo-viewer", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
    let filter = topics.all_detections();
    let mut seconds: BTreeMap<String, Second> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => print_second(&mut seconds),
            event = eventloop.poll() => match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    let _ = client.subscribe(filter.as_str(), rumqttc::QoS::AtMostOnce).await;
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(publish))) => {
                    if let Some(camera) = topics.camera_of_detections(&publish.topic) {
                        record(&mut seconds, camera, &publish.payload);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            },
        }
    }
}

fn record(seconds: &mut BTreeMap<String, Second>, camera: &str, payload: &[u8]) {
    let second = seconds.entry(camera.to_owned()).or_default();
    let message = match ReceivedDetections::parse(payload) {
        Ok(message) => message,
        Err(reason) => {
            tracing::warn!(camera, %reason, "the demo viewer cannot read a detections message");
            return;
        }
    };
    second.messages += 1;
    second.persons = second.persons.max(message.count(CoarseClass::Person));
    second.vehicles = second.vehicles.max(message.count(CoarseClass::Vehicle));
    second.latencies_ms.push(message.latency_ms);
}

fn print_second(seconds: &mut BTreeMap<String, Second>) {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let clock = now.get(11..19).unwrap_or(&now);
    for (camera, second) in seconds.iter_mut() {
        let mut latencies = std::mem::take(&mut second.latencies_ms);
        latencies.sort_by(f64::total_cmp);
        let latency = match latencies.len() {
            0 => "-".to_owned(),
            n => format!("{:.0} ms (max {:.0})", latencies[n / 2], latencies[n - 1]),
        };
        println!(
            "{clock}  {camera}  {:>2} msg/s  persons {:>2}  vehicles {:>2}  latency {latency}",
            second.messages, second.persons, second.vehicles
        );
        *second = Second::default();
    }
}
