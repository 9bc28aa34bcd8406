//! What a new configuration changes in a running agent, and what to do about it: pure, over two
//! [`Config`]s, tested from a table.
//!
//! Per camera (a camera is its name: a renamed camera is one removed and one added):
//! - its pipeline settings (`url`, credentials, `transport`, `latency_ms`, `decoder`,
//!   `stall_timeout_s`) changed: a new pipeline (its thread stopped and started again);
//! - its pacing (`detect_fps`, `idle_fps`, `motion_gate`) changed: its slot is paced anew;
//! - its zones or lines changed, or `[tracking]` or `[events]` (every camera): its tracks and
//!   watches start afresh;
//! - nothing of its own changed: nothing at all, it does not notice.
//!
//! `[tracking]`, `[events]` and the cameras are live; every other section is applied at the
//! next restart ([`Plan::at_restart`]), compared with what the agent started with.

use std::fmt::Debug;

use crate::config::{CameraConfig, Config, LineConfig, TopicName, ZoneConfig};

/// The cameras a configuration asks to run, in its order: those not `enabled = false`. The one
/// place that decides it (a camera disabled by a reload is removed, enabled again added).
pub fn cameras_to_run(config: &Config) -> Vec<&CameraConfig> {
    config.cameras.iter().filter(|c| c.enabled).collect()
}

/// What changes for one camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CameraChange {
    Add,
    Remove,
    Update(Update),
}

/// A running camera whose settings changed: the parts to renew, and why (`url changed`,
/// `line road added`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// A new pipeline.
    pub pipeline: bool,
    /// New pacing on its slot.
    pub pacing: bool,
    /// New tracking and zone and line state in its lane.
    pub lane: bool,
    pub reasons: Vec<String>,
}

/// One camera's change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraAction {
    pub name: TopicName,
    pub change: CameraChange,
}

impl CameraAction {
    /// The line for people: `camera gate-2 added`, `camera gate-1 restarted (url changed)`.
    pub fn describe(&self) -> String {
        let name = &self.name;
        match &self.change {
            CameraChange::Add => format!("camera {name} added"),
            CameraChange::Remove => format!("camera {name} removed"),
            CameraChange::Update(update) => {
                let what = if update.pipeline {
                    "restarted"
                } else {
                    "updated"
                };
                format!("camera {name} {what} ({})", update.reasons.join(", "))
            }
        }
    }
}

/// What applying a configuration does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Removals first (in the running order), then updates and additions (in the new order).
    pub cameras: Vec<CameraAction>,
    /// Sections that differ from the running ones and wait for a restart: `[mqtt]`, `[device]`.
    pub at_restart: Vec<String>,
}

/// The plan that takes `running` to `new`.
pub fn plan(running: &Config, new: &Config) -> Plan {
    let old_cameras = cameras_to_run(running);
    let new_cameras = cameras_to_run(new);
    let mut cameras: Vec<CameraAction> = old_cameras
        .iter()
        .filter(|old| !new_cameras.iter().any(|c| c.name == old.name))
        .map(|old| CameraAction {
            name: old.name.clone(),
            change: CameraChange::Remove,
        })
        .collect();
    let mut shared_reasons = Vec::new();
    if running.tracking != new.tracking {
        shared_reasons.push("[tracking] changed".to_owned());
    }
    if running.events != new.events {
        shared_reasons.push("[events] changed".to_owned());
    }
    for camera in &new_cameras {
        let change = match old_cameras.iter().find(|c| c.name == camera.name) {
            None => Some(CameraChange::Add),
            Some(old) => {
                let mut update = compare_camera(old, camera);
                if !shared_reasons.is_empty() {
                    update.lane = true;
                    update.reasons.extend(shared_reasons.iter().cloned());
                }
                (!update.reasons.is_empty()).then_some(CameraChange::Update(update))
            }
        };
        if let Some(change) = change {
            cameras.push(CameraAction {
                name: camera.name.clone(),
                change,
            });
        }
    }
    Plan {
        cameras,
        at_restart: sections_at_restart(running, new),
    }
}

/// The configuration that runs once `new` is applied to `running`: `new`'s live parts (the
/// cameras, `[tracking]`, `[events]`), `running`'s for everything applied at restart.
pub fn effective(running: &Config, new: &Config) -> Config {
    Config {
        cameras: new.cameras.clone(),
        tracking: new.tracking.clone(),
        events: new.events.clone(),
        ..running.clone()
    }
}

/// Whether two values are the same, by their `Debug` text (for sections without `PartialEq`;
/// secrets are compared apart, their `Debug` hides them).
fn same<T: Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

fn sections_at_restart(running: &Config, new: &Config) -> Vec<String> {
    // Every section is named here, so that a new one has to be sorted into live or not.
    let Config {
        device,
        mqtt,
        detection,
        health,
        tracking: _,
        events: _,
        outbox,
        local,
        commands,
        cameras: _,
    } = new;
    let mqtt_password = |m: &crate::config::MqttConfig| {
        m.password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default()
    };
    let changed = [
        ("[device]", !same(&running.device, device)),
        (
            "[mqtt]",
            !same(&running.mqtt, mqtt) || mqtt_password(&running.mqtt) != mqtt_password(mqtt),
        ),
        ("[detection]", !same(&running.detection, detection)),
        ("[health]", !same(&running.health, health)),
        ("[outbox]", running.outbox != *outbox),
        ("[local]", running.local != *local),
        ("[commands]", running.commands != *commands),
    ];
    changed
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(section, _)| format!("{section} applied at next restart"))
        .collect()
}

/// What differs between two settings of one camera.
fn compare_camera(old: &CameraConfig, new: &CameraConfig) -> Update {
    // Every field is named here, so that a new one has to be sorted into one of the parts.
    let CameraConfig {
        name: _,
        enabled: _,
        url,
        username,
        password,
        detect_fps,
        idle_fps,
        motion_gate,
        transport,
        latency,
        stall_timeout,
        decoder,
        zones,
        lines,
    } = new;
    let mut update = Update::default();
    let secret = |p: &Option<crate::config::Secret>| p.as_ref().map(|s| s.expose().to_owned());
    for (field, changed) in [
        ("url", old.url != *url),
        ("username", old.username != *username),
        ("password", secret(&old.password) != secret(password)),
        ("transport", old.transport != *transport),
        ("latency_ms", old.latency != *latency),
        ("stall_timeout_s", old.stall_timeout != *stall_timeout),
        ("decoder", old.decoder != *decoder),
    ] {
        if changed {
            update.pipeline = true;
            update.reasons.push(format!("{field} changed"));
        }
    }
    for (field, changed) in [
        ("detect_fps", old.detect_fps != *detect_fps),
        ("idle_fps", old.idle_fps != *idle_fps),
        ("motion_gate", old.motion_gate != *motion_gate),
    ] {
        if changed {
            update.pacing = true;
            update.reasons.push(format!("{field} changed"));
        }
    }
    let shapes = named_changes("zone", &old.zones, zones, |z: &ZoneConfig| &z.name)
        .into_iter()
        .chain(named_changes(
            "line",
            &old.lines,
            lines,
            |l: &LineConfig| &l.name,
        ));
    for reason in shapes {
        update.lane = true;
        update.reasons.push(reason);
    }
    update
}

/// `zone dock added`, `zone dock changed`, `zone dock removed`, in the new order then the
/// removed ones.
fn named_changes<T: PartialEq>(
    kind: &str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &TopicName,
) -> Vec<String> {
    let mut reasons = Vec::new();
    for item in new {
        match old.iter().find(|o| name(o) == name(item)) {
            None => reasons.push(format!("{kind} {} added", name(item))),
            Some(o) if o != item => reasons.push(format!("{kind} {} changed", name(item))),
            Some(_) => {}
        }
    }
    for item in old {
        if !new.iter().any(|n| name(n) == name(item)) {
            reasons.push(format!("{kind} {} removed", name(item)));
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const BASE: &str = r#"
[device]
site = "north"
id = "post-1"
state_dir = "/tmp/watchpost-plan-test"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[[cameras]]
name = "gate-1"
url = "rtsp://10.0.0.1/stream"

[[cameras.lines]]
name = "road"
points = [[0.1, 0.5], [0.9, 0.5]]

[[cameras]]
name = "gate-2"
url = "rtsp://10.0.0.2/stream"
"#;

    fn config(text: &str) -> Config {
        let mut config =
            crate::config::parse(text, Path::new("watchpost.toml")).unwrap_or_else(|e| {
                panic!("{e}\n{text}");
            });
        // Whatever this process's environment says (`WATCHPOST_MQTT_PASSWORD`).
        config.mqtt.password = None;
        config
    }

    fn lines(plan: &Plan) -> Vec<String> {
        plan.cameras
            .iter()
            .map(CameraAction::describe)
            .chain(plan.at_restart.iter().cloned())
            .collect()
    }

    #[test]
    fn a_new_configuration_changes_only_what_differs() {
        /// (what, the new file as edits of BASE, the lines expected)
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [&'a str]);
        let cases: [Case; 10] = [
            ("nothing", vec![], &[]),
            (
                "a camera added",
                vec![(
                    "",
                    "\n[[cameras]]\nname = \"gate-3\"\nurl = \"rtsp://10.0.0.3/s\"\n",
                )],
                &["camera gate-3 added"],
            ),
            (
                "a camera removed",
                vec![(
                    "name = \"gate-2\"\nurl = \"rtsp://10.0.0.2/stream\"\n",
                    "name = \"gate-3\"\nurl = \"rtsp://10.0.0.2/stream\"\n",
                )],
                &["camera gate-2 removed", "camera gate-3 added"],
            ),
            (
                "a camera disabled",
                vec![(
                    "name = \"gate-2\"\n",
                    "name = \"gate-2\"\nenabled = false\n",
                )],
                &["camera gate-2 removed"],
            ),
            (
                "a line moved",
                vec![("[[0.1, 0.5], [0.9, 0.5]]", "[[0.1, 0.6], [0.9, 0.6]]")],
                &["camera gate-1 updated (line road changed)"],
            ),
            (
                "a new url",
                vec![("10.0.0.2/stream", "10.0.0.2/other")],
                &["camera gate-2 restarted (url changed)"],
            ),
            (
                "credentials and pace",
                vec![(
                    "url = \"rtsp://10.0.0.2/stream\"\n",
                    "url = \"rtsp://10.0.0.2/stream\"\nusername = \"viewer\"\ndetect_fps = 2\n",
                )],
                &["camera gate-2 restarted (username changed, detect_fps changed)"],
            ),
            (
                "tracking, for every camera",
                vec![("[mqtt]", "[tracking]\nmin_hits = 5\n\n[mqtt]")],
                &[
                    "camera gate-1 updated ([tracking] changed)",
                    "camera gate-2 updated ([tracking] changed)",
                ],
            ),
            (
                "the broker, at restart",
                vec![("127.0.0.1:1883", "127.0.0.1:1884")],
                &["[mqtt] applied at next restart"],
            ),
            (
                "device and detection, at restart",
                vec![
                    ("id = \"post-1\"", "id = \"post-2\""),
                    ("[mqtt]", "[detection]\ninference_threads = 1\n\n[mqtt]"),
                ],
                // The device id is also the default MQTT client id.
                &[
                    "[device] applied at next restart",
                    "[mqtt] applied at next restart",
                    "[detection] applied at next restart",
                ],
            ),
        ];
        let running = config(BASE);
        for (what, edits, expected) in cases {
            let mut text = BASE.to_owned();
            for (from, to) in edits {
                if from.is_empty() {
                    text.push_str(to);
                } else {
                    assert!(text.contains(from), "{what}: {from}");
                    text = text.replacen(from, to, 1);
                }
            }
            let plan = plan(&running, &config(&text));
            assert_eq!(lines(&plan), expected, "{what}");
        }
    }

    #[test]
    fn the_effective_configuration_keeps_what_waits_for_a_restart() {
        let running = config(BASE);
        let new = config(
            &BASE
                .replace("127.0.0.1:1883", "127.0.0.1:1884")
                .replace("gate-2", "gate-9"),
        );
        let effective = effective(&running, &new);
        assert_eq!(effective.mqtt.urls[0].port, 1883, "the broker of the start");
        let names: Vec<String> = effective
            .cameras
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        assert_eq!(names, ["gate-1", "gate-9"]);
        // Applying the same file again changes no camera, and the broker is still pending.
        let again = plan(&effective, &new);
        assert!(again.cameras.is_empty(), "{again:?}");
        assert_eq!(again.at_restart, ["[mqtt] applied at next restart"]);
    }
}
