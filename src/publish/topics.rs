//! Topic names: pure string building, tested from tables.
//!
//! Every topic lives under `{prefix}/{site}/{device}/`; the prefix (default `watchpost`) may have
//! several levels. Site, device and camera names are [`TopicName`]s, so they can never contain
//! `/`, `+` or `#`.

use crate::config::TopicName;

/// The topics of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// `{prefix}/{site}/{device}`, without a trailing `/`.
    base: String,
}

impl Topics {
    /// Leading and trailing `/` of `prefix` are ignored, so `watchpost/` and `watchpost` are the
    /// same prefix.
    pub fn new(prefix: &str, site: &TopicName, device: &TopicName) -> Topics {
        let prefix = prefix.trim_matches('/');
        let base = if prefix.is_empty() {
            format!("{site}/{device}")
        } else {
            format!("{prefix}/{site}/{device}")
        };
        Topics { base }
    }

    /// `{base}/status`: retained, QoS 1, also the last will.
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// `{base}/health`.
    pub fn health(&self) -> String {
        format!("{}/health", self.base)
    }

    /// `{base}/{camera}/detections`.
    pub fn detections(&self, camera: &TopicName) -> String {
        format!("{}/{camera}/detections", self.base)
    }

    /// `{base}/{camera}/events`: QoS 1, not retained. `camera` is a [`TopicName`]'s text (as
    /// the outbox keeps it).
    pub fn events(&self, camera: &str) -> String {
        format!("{}/{camera}/events", self.base)
    }

    /// `{base}/{camera}/snapshots/{event_id}`: the JPEG of one event.
    pub fn snapshot(&self, camera: &str, event_id: &str) -> String {
        format!("{}/{camera}/snapshots/{event_id}", self.base)
    }

    /// `{base}/+/detections`: every camera's detections, for subscribers (read the camera
    /// back with [`Topics::camera_of_detections`]).
    pub fn all_detections(&self) -> String {
        format!("{}/+/detections", self.base)
    }

    /// `{base}/cmd`: where the device takes signed commands (QoS 1; see [`crate::command`]).
    pub fn command(&self) -> String {
        format!("{}/cmd", self.base)
    }

    /// `{base}/cmd/result`: the answer to each command (QoS 1, not retained).
    pub fn command_result(&self) -> String {
        format!("{}/cmd/result", self.base)
    }

    /// `{base}/audit`: every command received, accepted or not (QoS 1, not retained).
    pub fn audit(&self) -> String {
        format!("{}/audit", self.base)
    }

    /// `{base}/config/state`: the configuration in force, its version (retained, QoS 1).
    pub fn config_state(&self) -> String {
        format!("{}/config/state", self.base)
    }

    /// `{base}/#`: every topic of this device, for subscribers.
    pub fn all(&self) -> String {
        format!("{}/#", self.base)
    }

    /// The camera name of a detections topic of this device, `None` for any other topic.
    pub fn camera_of_detections<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        let camera = rest.strip_suffix("/detections")?;
        (!camera.is_empty() && !camera.contains('/')).then_some(camera)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> TopicName {
        TopicName::parse(s).unwrap()
    }

    #[test]
    fn topics_from_tables() {
        // (prefix, site, device, camera, status, health, detections)
        let cases = [
            (
                "watchpost",
                "north",
                "box-1",
                "gate",
                "watchpost/north/box-1/status",
                "watchpost/north/box-1/health",
                "watchpost/north/box-1/gate/detections",
            ),
            (
                "acme/border",
                "s_2",
                "dev",
                "cam-02",
                "acme/border/s_2/dev/status",
                "acme/border/s_2/dev/health",
                "acme/border/s_2/dev/cam-02/detections",
            ),
            (
                "/watchpost/",
                "a",
                "b",
                "c",
                "watchpost/a/b/status",
                "watchpost/a/b/health",
                "watchpost/a/b/c/detections",
            ),
            (
                "",
                "a",
                "b",
                "c",
                "a/b/status",
                "a/b/health",
                "a/b/c/detections",
            ),
        ];
        for (prefix, site, device, camera, status, health, detections) in cases {
            let topics = Topics::new(prefix, &name(site), &name(device));
            assert_eq!(topics.status(), status, "{prefix:?}");
            assert_eq!(topics.health(), health, "{prefix:?}");
            assert_eq!(topics.detections(&name(camera)), detections, "{prefix:?}");
            assert_eq!(
                topics.all(),
                format!("{}#", status.strip_suffix("status").unwrap())
            );
            let base = status.strip_suffix("status").unwrap();
            assert_eq!(topics.command(), format!("{base}cmd"));
            assert_eq!(topics.command_result(), format!("{base}cmd/result"));
            assert_eq!(topics.audit(), format!("{base}audit"));
            assert_eq!(topics.config_state(), format!("{base}config/state"));
            assert_eq!(
                topics.all_detections(),
                format!("{}+/detections", status.strip_suffix("status").unwrap())
            );
        }
    }

    #[test]
    fn camera_of_detections_from_tables() {
        let topics = Topics::new("watchpost", &name("north"), &name("box-1"));
        let cases = [
            ("watchpost/north/box-1/gate/detections", Some("gate")),
            ("watchpost/north/box-1/cam_2/detections", Some("cam_2")),
            ("watchpost/north/box-1/status", None),
            ("watchpost/north/box-1/health", None),
            ("watchpost/north/box-1//detections", None),
            ("watchpost/north/box-1/a/b/detections", None),
            ("watchpost/north/box-12/gate/detections", None),
            ("watchpost/north/box-1/gate/detections/x", None),
            ("other/north/box-1/gate/detections", None),
        ];
        for (topic, expected) in cases {
            assert_eq!(topics.camera_of_detections(topic), expected, "{topic}");
        }
    }
}
