//! From analysed frames to events: per camera, the tracker, the zone and line watches, the
//! persistent event sequence, and snapshots.
//!
//! ```text
//!  objects of one frame ─▶ track::Tracker ─▶ track ids (confirmed tracks only)
//!                              │ started / ended ─▶ track_start / track_end
//!                              ▼ anchor = bottom centre of each tracked box
//!                 track::zones::ZoneWatch ─▶ zone_enter / zone_exit / loitering
//!                 track::lines::LineWatch ─▶ line_cross (+ direction)
//!                              ▼
//!                 snapshot (imaging) ─▶ outbox (numbers them: seq, event_id; keeps them on disk)
//! ```
//!
//! Runs on the inference thread that analysed the frame (never on an async worker); the frame
//! board hands a camera to one thread at a time, so each camera's frames arrive here in order.
//! Time-based parameters use `t_s`, seconds on the agent's monotonic clock; `at` is the capture
//! time of the frame that decided the event.

use std::time::SystemTime;

use crate::config::{
    CameraConfig, EventKind, EventsConfig, LineConfig, SnapshotMode, TrackingConfig, ZoneConfig,
};
use crate::detect::{CoarseClass, Object};
use crate::geometry::Point;
use crate::imaging::{self, Frame, ImageError, Overlay, YuvFrame};
use crate::track::lines::LineWatch;
use crate::track::tracker::{Track, Tracker};
use crate::track::zones::{ZoneEventKind, ZoneWatch};

mod view;
pub use view::{
    LineView, ModelInputView, PendingView, View, ViewError, ViewObject, ViewPicture, ZoneView,
};

/// A picture that goes with an event.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub jpeg: Vec<u8>,
}

/// One event, decided; the outbox gives it its `seq` and `event_id` when it writes it.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventKind,
    /// Capture time of the frame that decided it.
    pub at: SystemTime,
    pub track_id: u64,
    pub class: &'static str,
    pub label: String,
    pub score: f32,
    /// Normalised `[x, y, w, h]`.
    pub bbox: [f32; 4],
    pub zone: Option<String>,
    pub line: Option<String>,
    pub direction: Option<String>,
    pub dwell_s: Option<f64>,
    pub snapshot: Option<Snapshot>,
}

/// What one frame produced.
#[derive(Debug, Default)]
pub struct FrameEvents {
    /// Per object of the frame (same order): its confirmed track's id.
    pub track_ids: Vec<Option<u64>>,
    pub events: Vec<Event>,
    /// A track moved or was confirmed: the camera is not still (see [`crate::framepath::gate`]).
    pub tracks_moved: bool,
}

/// An event before its picture.
struct Pending {
    kind: EventKind,
    track_id: u64,
    class: &'static str,
    label: String,
    score: f32,
    bbox: [f32; 4],
    zone: Option<usize>,
    line: Option<usize>,
    direction: Option<String>,
    dwell_s: Option<f64>,
}

/// One camera's event state.
pub struct CameraEvents {
    camera_name: String,
    tracker: Tracker,
    zones: Vec<(ZoneConfig, ZoneWatch)>,
    lines: Vec<(LineConfig, LineWatch)>,
    /// Crossings of each line, each way, since this camera's processing started (the page's
    /// counters).
    crossings: Vec<[u64; 2]>,
    snapshots: SnapshotMode,
    snapshot_kinds: Vec<EventKind>,
    snapshot_max_width: u32,
    snapshot_quality: u8,
}

impl std::fmt::Debug for CameraEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraEvents")
            .field("camera", &self.camera_name)
            .finish_non_exhaustive()
    }
}

fn anchor(bbox: [f32; 4]) -> Point {
    Point {
        x: bbox[0] + bbox[2] / 2.0,
        y: bbox[1] + bbox[3],
    }
}

fn round_s(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

impl CameraEvents {
    pub fn new(
        camera: &CameraConfig,
        tracking: &TrackingConfig,
        events: &EventsConfig,
    ) -> CameraEvents {
        CameraEvents {
            camera_name: camera.name.to_string(),
            tracker: Tracker::new(tracking),
            zones: camera
                .zones
                .iter()
                .map(|z| (z.clone(), ZoneWatch::new(z, tracking.inertia)))
                .collect(),
            lines: camera
                .lines
                .iter()
                .map(|l| (l.clone(), LineWatch::new(l, tracking.inertia)))
                .collect(),
            crossings: vec![[0; 2]; camera.lines.len()],
            snapshots: if events.metadata_only {
                SnapshotMode::Off
            } else {
                events.snapshots
            },
            snapshot_kinds: events.snapshot_kinds.clone(),
            snapshot_max_width: events.snapshot_max_width,
            snapshot_quality: events.snapshot_quality,
        }
    }

    /// Tracks the objects of one analysed frame and returns their track ids and the events the
    /// frame decided, with snapshots rendered from `frame` where configured. The frame is
    /// converted to a full-size picture once, and only if one of its events has a snapshot.
    ///
    /// `idle_gap`: the camera idled since its previous analysed frame (nothing moved): its
    /// tracks are held over that time ([`Tracker::hold`]), so a parked car or a person standing
    /// still keeps its track while the camera is analysed only now and then.
    pub fn analyse(
        &mut self,
        frame: &YuvFrame,
        objects: &[Object],
        t_s: f64,
        at: SystemTime,
        idle_gap: bool,
    ) -> FrameEvents {
        if idle_gap {
            self.tracker.hold(t_s);
        }
        let update = self.tracker.update(objects, t_s);
        let mut pending = Vec::new();

        for ended in &update.ended {
            for (_, watch) in &mut self.zones {
                watch.forget(ended.id);
            }
            for (_, watch) in &mut self.lines {
                watch.forget(ended.id);
            }
            pending.push(pending_from_track(
                EventKind::TrackEnd,
                ended,
                Some(round_s(ended.dwell_s())),
            ));
        }
        for (object, track_id) in objects.iter().zip(&update.track_ids) {
            let Some(track_id) = *track_id else { continue };
            let from_object = |kind| Pending {
                kind,
                track_id,
                class: object.class,
                label: object.label.clone(),
                score: object.score,
                bbox: object.bbox,
                zone: None,
                line: None,
                direction: None,
                dwell_s: None,
            };
            if update.started.contains(&track_id) {
                pending.push(from_object(EventKind::TrackStart));
            }
            let Some(class) = CoarseClass::parse(object.class) else {
                continue;
            };
            let point = anchor(object.bbox);
            for (index, (_, watch)) in self.zones.iter_mut().enumerate() {
                for zone_event in watch.update(track_id, class, point, t_s) {
                    let (kind, dwell_s) = match zone_event.kind {
                        ZoneEventKind::Enter => (EventKind::ZoneEnter, None),
                        ZoneEventKind::Exit { dwell_s } => {
                            (EventKind::ZoneExit, Some(round_s(dwell_s)))
                        }
                        ZoneEventKind::Loiter { dwell_s } => {
                            (EventKind::Loitering, Some(round_s(dwell_s)))
                        }
                    };
                    pending.push(Pending {
                        zone: Some(index),
                        dwell_s,
                        ..from_object(kind)
                    });
                }
            }
            for (index, (_, watch)) in self.lines.iter_mut().enumerate() {
                if let Some(crossing) = watch.update(track_id, class, point, t_s) {
                    self.crossings[index][crossing.direction_index.min(1)] += 1;
                    pending.push(Pending {
                        line: Some(index),
                        direction: Some(crossing.direction.to_string()),
                        ..from_object(EventKind::LineCross)
                    });
                }
            }
        }

        let mut picture = Picture { frame, bgr: None };
        let events = pending
            .into_iter()
            .map(|p| self.with_picture(p, &mut picture, objects, at))
            .collect();
        FrameEvents {
            track_ids: update.track_ids,
            events,
            tracks_moved: update.moved,
        }
    }

    /// The boxes to pixelate under the camera's privacy mode: every person when redacted.
    fn boxes_to_pixelate(&self, objects: &[Object]) -> Vec<[f32; 4]> {
        if self.snapshots != SnapshotMode::Redacted {
            return Vec::new();
        }
        objects
            .iter()
            .filter(|o| o.class == "person")
            .map(|o| o.bbox)
            .collect()
    }

    /// A picture of `frame` as it is now (the `snapshot` command), under the same privacy mode
    /// and size as event snapshots: people pixelated when `redacted`, none at all when
    /// snapshots are off; the camera's zones and lines and the objects found drawn on it.
    ///
    /// # Errors
    /// [`PictureError::Off`], or the frame could not be rendered.
    pub fn picture_now(
        &self,
        frame: &YuvFrame,
        objects: &[Object],
    ) -> Result<Vec<u8>, PictureError> {
        if self.snapshots == SnapshotMode::Off {
            return Err(PictureError::Off);
        }
        let overlays: Vec<Overlay> = self
            .zones
            .iter()
            .map(|(zone, _)| zone_overlay(zone))
            .chain(self.lines.iter().map(|(line, _)| line_overlay(line)))
            .chain(objects.iter().map(|o| Overlay::Box {
                bbox: o.bbox,
                class: o.class,
                label: o.label.clone(),
            }))
            .collect();
        let mut picture = Picture { frame, bgr: None };
        Ok(imaging::snapshot_jpeg(
            picture.bgr()?,
            &self.boxes_to_pixelate(objects),
            &overlays,
            self.snapshot_max_width,
            self.snapshot_quality,
        )?)
    }

    fn with_picture(
        &mut self,
        p: Pending,
        picture: &mut Picture<'_>,
        objects: &[Object],
        at: SystemTime,
    ) -> Event {
        let zone = p.zone.map(|i| &self.zones[i].0);
        let line = p.line.map(|i| &self.lines[i].0);
        let snapshot = if self.snapshots != SnapshotMode::Off
            && self.snapshot_kinds.contains(&p.kind)
        {
            let redact = self.boxes_to_pixelate(objects);
            let mut overlays: Vec<Overlay> = zone
                .map(zone_overlay)
                .into_iter()
                .chain(line.map(line_overlay))
                .collect();
            overlays.push(Overlay::Box {
                bbox: p.bbox,
                class: p.class,
                label: format!("{} #{}", p.label, p.track_id),
            });
            match picture.bgr().and_then(|frame| {
                imaging::snapshot_jpeg(
                    frame,
                    &redact,
                    &overlays,
                    self.snapshot_max_width,
                    self.snapshot_quality,
                )
            }) {
                Ok(jpeg) => Some(Snapshot { jpeg }),
                Err(e) => {
                    tracing::warn!(camera = %self.camera_name, error = %e, "snapshot not rendered");
                    None
                }
            }
        } else {
            None
        };
        Event {
            kind: p.kind,
            at,
            track_id: p.track_id,
            class: p.class,
            label: p.label,
            score: p.score,
            bbox: p.bbox,
            zone: zone.map(|z| z.name.to_string()),
            line: line.map(|l| l.name.to_string()),
            direction: p.direction,
            dwell_s: p.dwell_s,
            snapshot,
        }
    }
}

/// An analysed frame, and its full-size BGR picture once an event has needed it.
/// A zone drawn on a picture: closed, with its name.
fn zone_overlay(zone: &ZoneConfig) -> Overlay {
    Overlay::Shape {
        points: zone.polygon.points().iter().map(|p| [p.x, p.y]).collect(),
        closed: true,
        label: zone.name.to_string(),
    }
}

/// A line drawn on a picture: open, with its name.
fn line_overlay(line: &LineConfig) -> Overlay {
    Overlay::Shape {
        points: line.polyline.points().iter().map(|p| [p.x, p.y]).collect(),
        closed: false,
        label: line.name.to_string(),
    }
}

/// Why [`CameraEvents::picture_now`] made no picture.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error(
        "pictures are off on this device ([events] snapshots = \"off\" or metadata_only = true)"
    )]
    Off,
    #[error("the picture could not be rendered: {0}")]
    Render(#[from] ImageError),
}

struct Picture<'a> {
    frame: &'a YuvFrame,
    bgr: Option<Frame>,
}

impl Picture<'_> {
    fn bgr(&mut self) -> Result<&Frame, ImageError> {
        if self.bgr.is_none() {
            self.bgr = Some(self.frame.to_bgr()?);
        }
        Ok(self.bgr.as_ref().expect("set above"))
    }
}

fn pending_from_track(kind: EventKind, track: &Track, dwell_s: Option<f64>) -> Pending {
    Pending {
        kind,
        track_id: track.id,
        class: track.class,
        label: track.label.clone(),
        score: track.score,
        bbox: track
            .bbox
            .to_xywh()
            .map(|v| (v * 10_000.0).round() / 10_000.0),
        zone: None,
        line: None,
        direction: None,
        dwell_s,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{DecoderChoice, RtspTransport, TopicName};
    use crate::geometry::Polyline;

    fn camera_with_line() -> CameraConfig {
        CameraConfig {
            name: TopicName::parse("gate").unwrap(),
            enabled: true,
            url: "rtsp://127.0.0.1/x".into(),
            username: None,
            password: None,
            detect_fps: 5.0,
            idle_fps: 0.5,
            motion_gate: true,
            transport: RtspTransport::Tcp,
            latency: Duration::from_millis(200),
            stall_timeout: Duration::from_secs(5),
            decoder: DecoderChoice::Auto,
            zones: Vec::new(),
            lines: vec![LineConfig {
                name: TopicName::parse("border").unwrap(),
                polyline: Polyline::new(vec![Point::new(0.5, 0.1), Point::new(0.5, 0.95)]).unwrap(),
                direction_names: [
                    TopicName::parse("in").unwrap(),
                    TopicName::parse("out").unwrap(),
                ],
                classes: vec![CoarseClass::Person],
                inertia: None,
            }],
        }
    }

    /// A person whose box's left edge is at `x`, in the middle of the picture's height.
    fn person_at(x: f32) -> Object {
        Object {
            class: "person",
            label: "person".into(),
            score: 0.8,
            bbox: [x, 0.4, 0.06, 0.3],
        }
    }

    /// A person walking from the left of the picture to the right, 5 frames a second.
    fn walk(events: &EventsConfig) -> Vec<Event> {
        let frame = YuvFrame::solid(64, 36, [90, 128, 128]);
        let mut camera = CameraEvents::new(&camera_with_line(), &TrackingConfig::default(), events);
        let mut all = Vec::new();
        for step in 0..20 {
            let person = person_at(0.2 + 0.03 * step as f32);
            let out = camera.analyse(
                &frame,
                &[person],
                f64::from(step) * 0.2,
                SystemTime::now(),
                false,
            );
            all.extend(out.events);
        }
        all
    }

    #[test]
    fn a_walk_across_a_line_gives_one_crossing_with_its_snapshot() {
        let events = walk(&EventsConfig::default());
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::TrackStart, EventKind::LineCross]);
        let crossing = &events[1];
        // Screen-left to screen-right on a line drawn top to bottom: Right to Left side = "out".
        assert_eq!(crossing.direction.as_deref(), Some("out"));
        assert_eq!(crossing.line.as_deref(), Some("border"));
        let jpeg = &crossing
            .snapshot
            .as_ref()
            .expect("line_cross has a snapshot by default")
            .jpeg;
        assert!(imaging::decode_image(jpeg).is_ok());
        assert!(
            events[0].snapshot.is_none(),
            "track_start has none by default"
        );
    }

    #[test]
    fn privacy_modes_decide_the_pictures() {
        let off = EventsConfig {
            snapshots: SnapshotMode::Off,
            ..EventsConfig::default()
        };
        let metadata_only = EventsConfig {
            metadata_only: true,
            snapshots: SnapshotMode::Annotated,
            ..EventsConfig::default()
        };
        let redacted = EventsConfig {
            snapshots: SnapshotMode::Redacted,
            ..EventsConfig::default()
        };
        for (name, config, pictures) in [
            ("off", off, false),
            ("metadata only", metadata_only, false),
            ("redacted", redacted, true),
        ] {
            let events = walk(&config);
            assert_eq!(events.len(), 2, "{name}: the events themselves are kept");
            assert_eq!(events[1].snapshot.is_some(), pictures, "{name}");
        }
    }

    #[test]
    fn a_picture_now_follows_the_privacy_mode() {
        let frame = YuvFrame::solid(64, 36, [90, 128, 128]);
        let person = Object {
            class: "person",
            label: "person".into(),
            score: 0.8,
            bbox: [0.4, 0.4, 0.1, 0.3],
        };
        // (snapshots, metadata_only, a picture)
        let cases = [
            (SnapshotMode::Off, false, false),
            (SnapshotMode::Annotated, true, false),
            (SnapshotMode::Annotated, false, true),
            (SnapshotMode::Redacted, false, true),
        ];
        for (snapshots, metadata_only, picture) in cases {
            let config = EventsConfig {
                snapshots,
                metadata_only,
                ..EventsConfig::default()
            };
            let camera =
                CameraEvents::new(&camera_with_line(), &TrackingConfig::default(), &config);
            let made = camera.picture_now(&frame, std::slice::from_ref(&person));
            match (made, picture) {
                (Ok(jpeg), true) => {
                    let decoded = imaging::decode_image(&jpeg).unwrap();
                    assert_eq!((decoded.width, decoded.height), (64, 36), "{snapshots:?}");
                }
                (Err(PictureError::Off), false) => {}
                (made, _) => panic!("{snapshots:?} metadata_only={metadata_only}: {made:?}"),
            }
        }
    }

    /// A 160x90 frame of fine stripes (2 pixels wide, dark and light): pixelation flattens
    /// them.
    fn striped_frame() -> YuvFrame {
        let (width, height) = (160, 90);
        let luma = (0..width * height)
            .map(|i| if (i % width) / 2 % 2 == 0 { 40 } else { 210 })
            .collect();
        let (cw, ch) = (width / 2, height / 2);
        let planes = imaging::OwnedPlanes {
            planes: vec![luma, vec![128; cw * ch], vec![128; cw * ch]],
            strides: vec![width, cw, cw],
        };
        YuvFrame::new(
            width,
            height,
            imaging::YuvFormat::I420,
            crate::detect::preprocess::YuvColour {
                matrix: crate::detect::preprocess::YuvMatrix::Bt601,
                range: crate::detect::preprocess::YuvRange::Full,
                chroma_h_cosited: false,
                chroma_v_cosited: false,
            },
            std::sync::Arc::new(planes),
        )
        .unwrap()
    }

    /// How much neighbouring pixels differ, on average, in the box `[x, y, w, h]` (pixels) of
    /// the picture: the stripes make it large, pixelation small.
    fn busyness(picture: &imaging::Frame, [x, y, w, h]: [usize; 4]) -> f64 {
        let mut sum = 0.0;
        let mut n = 0.0;
        for row in y..y + h {
            for col in x..x + w - 1 {
                let a = picture.pixel(col, row).unwrap()[1];
                let b = picture.pixel(col + 1, row).unwrap()[1];
                sum += f64::from(a.abs_diff(b));
                n += 1.0;
            }
        }
        sum / n
    }

    fn model_input_spec() -> crate::detect::preprocess::InputSpec {
        crate::detect::preprocess::InputSpec {
            width: 96,
            height: 96,
            layout: crate::detect::preprocess::TensorLayout::Nchw,
            color_order: crate::detect::preprocess::ColorOrder::Bgr,
            mean: [0.0; 3],
            std: [1.0; 3],
            resize: crate::detect::preprocess::ResizeMode::Letterbox,
            pad_value: 114,
        }
    }

    #[test]
    fn a_view_follows_the_privacy_mode_and_the_picture_asked_for() {
        let frame = striped_frame();
        // A person on the left half, a vehicle on the right half.
        let objects = [
            Object {
                class: "person",
                label: "person".into(),
                score: 0.9,
                bbox: [0.1, 0.2, 0.3, 0.6],
            },
            Object {
                class: "vehicle",
                label: "car".into(),
                score: 0.8,
                bbox: [0.6, 0.2, 0.3, 0.6],
            },
        ];
        let frame_picture = ViewPicture::Frame { max_width: 80 };
        let model_input = ViewPicture::ModelInput(model_input_spec());
        // (snapshots, metadata_only, picture asked, privacy, picture size, person flattened)
        let cases = [
            (
                SnapshotMode::Annotated,
                false,
                &frame_picture,
                "full",
                Some((80, 45)),
                false,
            ),
            (
                SnapshotMode::Redacted,
                false,
                &frame_picture,
                "redacted",
                Some((80, 45)),
                true,
            ),
            (SnapshotMode::Off, false, &frame_picture, "off", None, false),
            (
                SnapshotMode::Annotated,
                true,
                &frame_picture,
                "off",
                None,
                false,
            ),
            (
                SnapshotMode::Annotated,
                false,
                &model_input,
                "full",
                Some((96, 96)),
                false,
            ),
            (
                SnapshotMode::Redacted,
                false,
                &model_input,
                "redacted",
                Some((96, 96)),
                true,
            ),
            (SnapshotMode::Off, false, &model_input, "off", None, false),
        ];
        for (snapshots, metadata_only, picture, privacy, size, flattened) in cases {
            let what = format!("{snapshots:?} metadata_only={metadata_only} {picture:?}");
            let config = EventsConfig {
                snapshots,
                metadata_only,
                ..EventsConfig::default()
            };
            let camera =
                CameraEvents::new(&camera_with_line(), &TrackingConfig::default(), &config);
            let view = camera
                .pending_view(
                    &frame,
                    &objects,
                    &[Some(7), None],
                    picture,
                    SystemTime::now(),
                )
                .render()
                .unwrap();
            assert_eq!(view.privacy, privacy, "{what}");
            assert_eq!((view.width, view.height), (160, 90), "{what}");
            assert_eq!(
                view.objects.len(),
                2,
                "{what}: boxes are kept whatever the privacy"
            );
            assert_eq!(view.objects[0].track_id, Some(7), "{what}");
            assert_eq!(view.objects[1].track_id, None, "{what}");
            assert_eq!(view.lines.len(), 1, "{what}");
            let decoded = view
                .jpeg
                .as_ref()
                .map(|j| imaging::decode_image(j).unwrap());
            assert_eq!(
                decoded.as_ref().map(|d| (d.width, d.height)),
                size,
                "{what}"
            );
            // The boxes' insides in the picture's pixels: the frame lies at (left, top),
            // `scale` picture pixels per frame pixel.
            let (left, top, scale) = match &view.model_input {
                None => (0.0, 0.0, 0.5),
                Some(input) => {
                    assert_eq!((input.width, input.height), (96, 96), "{what}");
                    // 160x90 into 96x96: scaled 0.6 to 96x54, bars of 21 above and below.
                    assert!((input.scale_x - 0.6).abs() < 0.01, "{what}: {input:?}");
                    assert_eq!((input.pad_x, input.pad_y), (0.0, 21.0), "{what}");
                    (input.pad_x, input.pad_y, input.scale_x)
                }
            };
            assert_eq!(
                view.model_input.is_some(),
                matches!(picture, ViewPicture::ModelInput(_)),
                "{what}"
            );
            let Some(decoded) = decoded else { continue };
            let inside = |[x, y, w, h]: [f32; 4]| {
                let px = |v: f32, at: f32| (at + v * 160.0 * scale).round() as usize;
                let py = |v: f32, at: f32| (at + v * 90.0 * scale).round() as usize;
                // A margin of 3 pixels keeps the box's edges out.
                [
                    px(x, left) + 3,
                    py(y, top) + 3,
                    px(w, 0.0) - 6,
                    py(h, 0.0) - 6,
                ]
            };
            let person = busyness(&decoded, inside(objects[0].bbox));
            let vehicle = busyness(&decoded, inside(objects[1].bbox));
            assert!(
                vehicle > 20.0,
                "{what}: the car's stripes are kept ({vehicle})"
            );
            if flattened {
                assert!(
                    person < vehicle / 4.0,
                    "{what}: person {person}, car {vehicle}"
                );
            } else {
                assert!(
                    person > vehicle / 2.0,
                    "{what}: person {person}, car {vehicle}"
                );
            }
            if let Some(input) = &view.model_input {
                // The letterbox bars have the model's padding value.
                let bar = decoded.pixel(48, (input.pad_y / 2.0) as usize).unwrap();
                assert!(
                    bar.iter().all(|c| c.abs_diff(114) <= 4),
                    "{what}: bar {bar:?}"
                );
            }
        }
    }

    #[test]
    fn a_view_counts_crossings_each_way_and_zone_occupancy() {
        let mut config = camera_with_line();
        config.zones.push(ZoneConfig {
            name: TopicName::parse("right").unwrap(),
            polygon: crate::geometry::Polygon::new(vec![
                Point::new(0.5, 0.0),
                Point::new(1.0, 0.0),
                Point::new(1.0, 1.0),
                Point::new(0.5, 1.0),
            ])
            .unwrap(),
            classes: vec![CoarseClass::Person],
            loiter: None,
            inertia: None,
        });
        let frame = YuvFrame::solid(64, 36, [90, 128, 128]);
        let mut camera = CameraEvents::new(
            &config,
            &TrackingConfig::default(),
            &EventsConfig::default(),
        );
        let picture = ViewPicture::Frame { max_width: 64 };
        // A person walks right across the line, back left, and right again.
        let path = (0..20)
            .map(|s| 0.2 + 0.03 * s as f32)
            .chain((0..20).map(|s| 0.77 - 0.03 * s as f32))
            .chain((0..20).map(|s| 0.2 + 0.03 * s as f32));
        // After each leg: (crossings [in, out], occupancy of the right half).
        let mut after_legs = Vec::new();
        for (step, x) in path.enumerate() {
            let person = person_at(x);
            let out = camera.analyse(
                &frame,
                std::slice::from_ref(&person),
                step as f64 * 0.2,
                SystemTime::now(),
                false,
            );
            if step % 20 == 19 {
                let view = camera
                    .pending_view(
                        &frame,
                        std::slice::from_ref(&person),
                        &out.track_ids,
                        &picture,
                        SystemTime::now(),
                    )
                    .render()
                    .unwrap();
                after_legs.push((view.lines[0].crossings, view.zones[0].occupancy));
            }
        }
        // Screen-left to screen-right on a line drawn top to bottom is `out` (the second).
        assert_eq!(after_legs, vec![([0, 1], 1), ([1, 1], 0), ([1, 2], 1)]);
    }
}
