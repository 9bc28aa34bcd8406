//! Multi-object tracking for one camera, ByteTrack style: from per-frame [`Object`]s to tracks
//! with stable ids.
//!
//! Pure: no I/O and no clock. The caller passes the time of each analysed frame (`t_s`, seconds
//! on a monotonic clock); frames may be irregularly spaced, so every duration here (motion,
//! `max_age`) is in seconds, never in frames.
//!
//! ## One update
//! 1. Confirmed tracks unmatched for longer than `max_age` end (reported in
//!    [`TrackerUpdate::ended`]); they can no longer be matched.
//! 2. Every live track predicts its box at `t_s` with a constant-velocity model of its centre and
//!    size ([`Track::predicted_bbox`]).
//! 3. Stage 1: detections with `score >= high_score` against all live tracks.
//!    Stage 2: the confirmed tracks still unmatched against the low-score detections
//!    (`score < high_score`): a partly occluded object keeps its track, but a low score alone
//!    never starts or grows a tentative track.
//!    Both stages match greedily: every pair of the same kind (same `class`; for `other` also
//!    the same `label`) with IoU >= `match_iou` (and > 0), highest IoU first (ties: older
//!    track, then earlier detection); a track and a detection are used at most once.
//! 4. Matched tracks take the detection's box, score and label and update their velocity.
//!    A tentative track reaching `min_hits` matches is confirmed: it gets its id now and is
//!    reported in [`TrackerUpdate::started`].
//! 5. A tentative track unmatched in this update is dropped silently, so its `min_hits` matches
//!    are in consecutive updates; a confirmed one unmatched stays live (predicted) until step 1
//!    ends it.
//! 6. Each unmatched high-score detection starts a tentative track.
//!
//! ## Invariants
//! - Ids are given at confirmation: confirmed ids are 1, 2, 3, … in order of confirmation,
//!   without gaps, never reused within one [`Tracker`] (also not after [`Tracker::finish`]).
//!   Tentative tracks have id 0.
//! - Time never goes backwards: a `t_s` smaller than the previous one (or not finite) counts as
//!   the previous one, so no time passes.
//! - No input panics: a detection with a non-finite score or box, or an empty box, is ignored
//!   (its `track_ids` entry is `None`).

use std::collections::HashSet;

use crate::config::TrackingConfig;
use crate::detect::Object;
use crate::geometry::Rect;

/// Time constant of the velocity smoothing: an observation `dt` seconds after the previous one
/// weighs `1 - exp(-dt / τ)`, so the estimate behaves the same at any analysed rate.
const VELOCITY_TIME_CONSTANT_S: f64 = 0.3;
/// Observations closer in time than this update the position but not the velocity.
const MIN_VELOCITY_DT_S: f64 = 1e-3;
/// Speed limit of a box centre, in image widths/heights per second (bounds noise and nonsense).
const MAX_CENTER_SPEED: f32 = 5.0;
/// Limit of the rate of change of a box's width and height, in image sizes per second.
const MAX_SIZE_RATE: f32 = 5.0;
/// A predicted width or height stays within `[last / F, last * F]`.
const MAX_PREDICTED_SIZE_FACTOR: f32 = 2.0;

/// Predictions look at most this far ahead (a track unmatched for longer stops moving).
const MAX_PREDICTION_S: f64 = 10.0;

/// A track has moved once its anchor is this share of its box's larger side away from where it
/// last rested…
const MOVE_FRACTION: f32 = 0.25;
/// … and at least this far (normalised units): box jitter of a parked car or a person standing
/// still stays below.
const MIN_MOVE: f32 = 0.005;

/// The class `other` is matched on the model's label too.
const OTHER_CLASS: &str = "other";

/// A tracked object. Tentative until `confirmed`; only confirmed tracks are reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    /// 1, 2, 3, … given at confirmation; 0 while tentative.
    pub id: u64,
    /// `person`, `vehicle` or `other`; fixed for the track's life.
    pub class: &'static str,
    /// The model's label of the last matched detection (for `other`, fixed as well).
    pub label: String,
    /// Score of the last matched detection.
    pub score: f32,
    /// Box of the last matched detection: normalised corners (xyxy).
    pub bbox: Rect,
    /// Time of the first detection (while still tentative), seconds.
    pub first_seen_s: f64,
    /// Time of the last matched detection, seconds.
    pub last_seen_s: f64,
    /// Matched detections, the first one included.
    pub hits: u32,
    pub confirmed: bool,
    /// Smoothed velocity of the box centre, `[x, y]` in normalised units per second.
    pub center_velocity: [f32; 2],
    /// Smoothed rate of change of the box size, `[width, height]` per second.
    pub size_velocity: [f32; 2],
    /// When the track ended (the update or `finish` time); `None` while live.
    pub ended_s: Option<f64>,
    /// Where the anchor was when the track last counted as moving (or started): a track moves
    /// when its anchor leaves this point by more than its tolerance ([`Track::moved_from`]).
    pub rest_anchor: (f32, f32),
}

impl Track {
    /// Bottom centre of [`Track::bbox`]: where the object stands, for zones and lines.
    pub fn anchor(&self) -> (f32, f32) {
        ((self.bbox.x1 + self.bbox.x2) * 0.5, self.bbox.y2)
    }

    /// Whether the anchor is far enough from `rest` to count as a move: more than a quarter of
    /// the box's larger side, and at least 0.005 of the picture.
    pub fn moved_from(&self, rest: (f32, f32)) -> bool {
        let (x, y) = self.anchor();
        let size = self.bbox.width().max(self.bbox.height());
        let tolerance = (size * MOVE_FRACTION).max(MIN_MOVE);
        (x - rest.0).hypot(y - rest.1) > tolerance
    }

    /// `last_seen_s - first_seen_s` (never negative).
    pub fn dwell_s(&self) -> f64 {
        (self.last_seen_s - self.first_seen_s).max(0.0)
    }

    /// The box expected at `t_s` by the constant-velocity model: the last matched box moved by
    /// its centre velocity and resized by its size velocity over `t_s - last_seen_s` (0 when
    /// `t_s` is earlier or not a number; at most 10 s). The size stays within a factor 2 of
    /// the last box.
    pub fn predicted_bbox(&self, t_s: f64) -> Rect {
        let dt = (t_s - self.last_seen_s).clamp(0.0, MAX_PREDICTION_S);
        if dt.is_nan() || dt <= 0.0 {
            return self.bbox;
        }
        let dt = dt as f32;
        let (center_x, center_y, width, height) = center_size(&self.bbox);
        let predict_size = |size: f32, rate: f32| {
            (size + rate * dt).clamp(
                size / MAX_PREDICTED_SIZE_FACTOR,
                size * MAX_PREDICTED_SIZE_FACTOR,
            )
        };
        Rect::from_center(
            center_x + self.center_velocity[0] * dt,
            center_y + self.center_velocity[1] * dt,
            predict_size(width, self.size_velocity[0]),
            predict_size(height, self.size_velocity[1]),
        )
    }

    fn start(detection: &Detection<'_>, t_s: f64) -> Track {
        Track {
            id: 0,
            class: detection.class,
            label: detection.label.to_owned(),
            score: detection.score,
            bbox: detection.rect,
            first_seen_s: t_s,
            last_seen_s: t_s,
            hits: 1,
            confirmed: false,
            center_velocity: [0.0; 2],
            size_velocity: [0.0; 2],
            ended_s: None,
            rest_anchor: (
                (detection.rect.x1 + detection.rect.x2) * 0.5,
                detection.rect.y2,
            ),
        }
    }

    /// Same kind of object: same class and, for `other`, same label.
    fn accepts(&self, detection: &Detection<'_>) -> bool {
        self.class == detection.class
            && (self.class != OTHER_CLASS || self.label == detection.label)
    }

    /// Takes a matched detection at `t_s` (not earlier than `last_seen_s`); true when the
    /// track moved (see [`Track::moved_from`]).
    fn observe(&mut self, detection: &Detection<'_>, t_s: f64) -> bool {
        let dt = t_s - self.last_seen_s;
        if dt >= MIN_VELOCITY_DT_S {
            let (old_x, old_y, old_width, old_height) = center_size(&self.bbox);
            let (new_x, new_y, new_width, new_height) = center_size(&detection.rect);
            let dt_f32 = dt as f32;
            // The first estimate is taken as measured; later ones are smoothed in time.
            let weight = if self.hits <= 1 {
                1.0
            } else {
                (1.0 - (-dt / VELOCITY_TIME_CONSTANT_S).exp()) as f32
            };
            let smooth = |old: f32, measured: f32, limit: f32| {
                limit_rate(old + weight * (measured - old), limit)
            };
            self.center_velocity = [
                smooth(
                    self.center_velocity[0],
                    (new_x - old_x) / dt_f32,
                    MAX_CENTER_SPEED,
                ),
                smooth(
                    self.center_velocity[1],
                    (new_y - old_y) / dt_f32,
                    MAX_CENTER_SPEED,
                ),
            ];
            self.size_velocity = [
                smooth(
                    self.size_velocity[0],
                    (new_width - old_width) / dt_f32,
                    MAX_SIZE_RATE,
                ),
                smooth(
                    self.size_velocity[1],
                    (new_height - old_height) / dt_f32,
                    MAX_SIZE_RATE,
                ),
            ];
        }
        self.bbox = detection.rect;
        self.score = detection.score;
        if self.label != detection.label {
            detection.label.clone_into(&mut self.label);
        }
        self.last_seen_s = self.last_seen_s.max(t_s);
        self.hits = self.hits.saturating_add(1);
        let moved = self.moved_from(self.rest_anchor);
        if moved {
            self.rest_anchor = self.anchor();
        }
        moved
    }
}

/// What one [`Tracker::update`] changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrackerUpdate {
    /// Per input object (same order): `Some(track id)` when it is matched to a confirmed track
    /// (after this update, so a track confirmed now counts).
    pub track_ids: Vec<Option<u64>>,
    /// Tracks confirmed in this update (just reached `min_hits`), ascending: a `track_start`
    /// each.
    pub started: Vec<u64>,
    /// Confirmed tracks that ended in this update (unmatched for longer than `max_age`), by id,
    /// with `ended_s` set: a `track_end` each. Tentative tracks vanish silently.
    pub ended: Vec<Track>,
    /// A confirmed track moved (see [`Track::moved_from`]) or was confirmed in this update:
    /// something in the picture is not still.
    pub moved: bool,
}

/// The tracker of one camera. See the module docs for the algorithm.
#[derive(Clone, Debug)]
pub struct Tracker {
    min_hits: u32,
    max_age_s: f64,
    high_score: f32,
    match_iou: f32,
    /// Live tracks, oldest first (confirmed or not).
    live: Vec<Track>,
    /// The id the next confirmed track gets.
    next_id: u64,
    /// Time of the last update (after the monotonic clamp).
    last_t_s: Option<f64>,
}

/// A usable input detection.
struct Detection<'a> {
    /// Index in the input slice.
    index: usize,
    rect: Rect,
    score: f32,
    class: &'static str,
    label: &'a str,
    high_score: bool,
}

impl Tracker {
    pub fn new(config: &TrackingConfig) -> Tracker {
        Tracker {
            min_hits: config.min_hits,
            max_age_s: config.max_age.as_secs_f64(),
            high_score: config.high_score,
            match_iou: config.match_iou,
            live: Vec::new(),
            next_id: 1,
            last_t_s: None,
        }
    }

    /// One analysed frame at time `t_s` (seconds on a monotonic clock, increasing; frames may be
    /// irregularly spaced). `objects` are the frame's detections.
    pub fn update(&mut self, objects: &[Object], t_s: f64) -> TrackerUpdate {
        let t_s = self.advance_clock(t_s);

        // 1. End what has been unmatched for too long.
        let mut ended = Vec::new();
        let max_age_s = self.max_age_s;
        self.live.retain_mut(|track| {
            if t_s - track.last_seen_s <= max_age_s {
                return true;
            }
            if track.confirmed {
                let mut ended_track = track.clone();
                ended_track.ended_s = Some(t_s);
                ended.push(ended_track);
            }
            false
        });

        let detections: Vec<Detection<'_>> = objects
            .iter()
            .enumerate()
            .filter_map(|(index, object)| self.usable(index, object))
            .collect();

        // 2. + 3. Predict, then match in two stages.
        let predicted: Vec<Rect> = self
            .live
            .iter()
            .map(|track| track.predicted_bbox(t_s))
            .collect();
        let mut detection_of_track: Vec<Option<usize>> = vec![None; self.live.len()];
        let mut detection_used = vec![false; detections.len()];
        for stage in [MatchStage::HighScore, MatchStage::LowScore] {
            let pairs = self.candidate_pairs(
                stage,
                &predicted,
                &detections,
                &detection_of_track,
                &detection_used,
            );
            for (track_slot, detection_slot) in greedy_assign(pairs) {
                detection_of_track[track_slot] = Some(detection_slot);
                detection_used[detection_slot] = true;
            }
        }

        // 4. + 5. Apply the matches; drop unmatched tentative tracks.
        let mut track_ids = vec![None; objects.len()];
        let mut started = Vec::new();
        let mut moved = false;
        let previous = std::mem::take(&mut self.live);
        for (track, detection_slot) in previous.into_iter().zip(detection_of_track) {
            let mut track = track;
            match detection_slot {
                Some(slot) => {
                    let detection = &detections[slot];
                    moved |= track.observe(detection, t_s) && track.confirmed;
                    self.confirm_if_due(&mut track, &mut started);
                    if track.confirmed {
                        track_ids[detection.index] = Some(track.id);
                    }
                    self.live.push(track);
                }
                None if track.confirmed => self.live.push(track),
                None => {}
            }
        }

        // 6. New tentative tracks from unmatched high-score detections.
        for (detection, used) in detections.iter().zip(detection_used) {
            if used || !detection.high_score {
                continue;
            }
            let mut track = Track::start(detection, t_s);
            self.confirm_if_due(&mut track, &mut started);
            if track.confirmed {
                track_ids[detection.index] = Some(track.id);
            }
            self.live.push(track);
        }

        TrackerUpdate {
            moved: moved || !started.is_empty(),
            track_ids,
            started,
            ended,
        }
    }

    /// The camera was idle until `t_s` (nothing moved in the picture; see
    /// [`crate::framepath`]): every confirmed track is presumed to have stood where it was,
    /// seen until `t_s`, so the idle time does not age it towards `max_age`, and it stops
    /// moving. Call before the update of the frame that ends the idle time.
    pub fn hold(&mut self, t_s: f64) {
        let t_s = self.advance_clock(t_s);
        for track in self.live.iter_mut().filter(|track| track.confirmed) {
            track.last_seen_s = track.last_seen_s.max(t_s);
            track.center_velocity = [0.0; 2];
            track.size_velocity = [0.0; 2];
        }
    }

    /// Live tracks, confirmed or not, oldest first.
    pub fn tracks(&self) -> impl Iterator<Item = &Track> {
        self.live.iter()
    }

    /// Ends every live track (agent shutdown, camera lost) at `t_s`: returns the confirmed ones,
    /// by id, with `ended_s` set; tentative ones vanish. Ids keep counting afterwards.
    pub fn finish(&mut self, t_s: f64) -> Vec<Track> {
        let t_s = self.advance_clock(t_s);
        let mut ended: Vec<Track> = self
            .live
            .drain(..)
            .filter(|track| track.confirmed)
            .map(|mut track| {
                track.ended_s = Some(t_s);
                track
            })
            .collect();
        ended.sort_by_key(|track| track.id);
        ended
    }

    /// The update time after the monotonic clamp (see the module invariants).
    fn advance_clock(&mut self, t_s: f64) -> f64 {
        let t_s = match self.last_t_s {
            Some(previous) if t_s.is_finite() && t_s >= previous => t_s,
            Some(previous) => previous,
            None if t_s.is_finite() => t_s,
            None => 0.0,
        };
        self.last_t_s = Some(t_s);
        t_s
    }

    /// The object as a detection, or `None` when it cannot be tracked (non-finite score or
    /// box, empty box).
    fn usable<'a>(&self, index: usize, object: &'a Object) -> Option<Detection<'a>> {
        let [x, y, width, height] = object.bbox;
        let rect = Rect::from_xywh(x, y, width, height);
        if !object.score.is_finite() || !rect.is_valid() || !rect.area().is_finite() {
            return None;
        }
        Some(Detection {
            index,
            rect,
            score: object.score,
            class: object.class,
            label: &object.label,
            high_score: object.score >= self.high_score,
        })
    }

    /// `(iou, track slot, detection slot)` for every admissible pair of this stage that is
    /// still free.
    fn candidate_pairs(
        &self,
        stage: MatchStage,
        predicted: &[Rect],
        detections: &[Detection<'_>],
        detection_of_track: &[Option<usize>],
        detection_used: &[bool],
    ) -> Vec<(f32, usize, usize)> {
        let mut pairs = Vec::new();
        for (track_slot, track) in self.live.iter().enumerate() {
            let track_free = detection_of_track[track_slot].is_none();
            let track_in_stage = match stage {
                MatchStage::HighScore => true,
                MatchStage::LowScore => track.confirmed,
            };
            if !track_free || !track_in_stage {
                continue;
            }
            for (detection_slot, detection) in detections.iter().enumerate() {
                let detection_in_stage = match stage {
                    MatchStage::HighScore => detection.high_score,
                    MatchStage::LowScore => !detection.high_score,
                };
                if detection_used[detection_slot]
                    || !detection_in_stage
                    || !track.accepts(detection)
                {
                    continue;
                }
                let iou = predicted[track_slot].iou(&detection.rect);
                if iou > 0.0 && iou >= self.match_iou {
                    pairs.push((iou, track_slot, detection_slot));
                }
            }
        }
        pairs
    }

    fn confirm_if_due(&mut self, track: &mut Track, started: &mut Vec<u64>) {
        if track.confirmed || track.hits < self.min_hits {
            return;
        }
        track.confirmed = true;
        track.id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        started.push(track.id);
    }
}

/// The two ByteTrack stages.
#[derive(Clone, Copy, Debug)]
enum MatchStage {
    /// High-score detections against every live track.
    HighScore,
    /// Low-score detections against the confirmed tracks left unmatched.
    LowScore,
}

/// Greedy assignment: pairs best IoU first (ties: lower track slot, then lower detection slot),
/// each track and detection used once. Returns `(track slot, detection slot)`.
fn greedy_assign(mut pairs: Vec<(f32, usize, usize)>) -> Vec<(usize, usize)> {
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut tracks_used = HashSet::new();
    let mut detections_used = HashSet::new();
    let mut assigned = Vec::new();
    for (_, track_slot, detection_slot) in pairs {
        if !tracks_used.contains(&track_slot) && !detections_used.contains(&detection_slot) {
            tracks_used.insert(track_slot);
            detections_used.insert(detection_slot);
            assigned.push((track_slot, detection_slot));
        }
    }
    assigned
}

/// `(centre x, centre y, width, height)` of a box.
fn center_size(rect: &Rect) -> (f32, f32, f32, f32) {
    (
        (rect.x1 + rect.x2) * 0.5,
        (rect.y1 + rect.y2) * 0.5,
        rect.width(),
        rect.height(),
    )
}

/// `value` within `±limit`; 0 when not a number.
fn limit_rate(value: f32, limit: f32) -> f32 {
    if value.is_nan() {
        0.0
    } else {
        value.clamp(-limit, limit)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const PERSON_WIDTH: f32 = 0.1;
    const PERSON_HEIGHT: f32 = 0.3;

    fn object(class: &'static str, label: &str, score: f32, bbox: [f32; 4]) -> Object {
        Object {
            class,
            label: label.to_owned(),
            score,
            bbox,
        }
    }

    /// A person box of the standard size with its centre at `(center_x, center_y)`.
    fn person_at(center_x: f32, center_y: f32, score: f32) -> Object {
        object(
            "person",
            "person",
            score,
            [
                center_x - PERSON_WIDTH / 2.0,
                center_y - PERSON_HEIGHT / 2.0,
                PERSON_WIDTH,
                PERSON_HEIGHT,
            ],
        )
    }

    fn config(min_hits: u32, max_age_s: f64) -> TrackingConfig {
        TrackingConfig {
            min_hits,
            max_age: Duration::from_secs_f64(max_age_s),
            ..TrackingConfig::default()
        }
    }

    /// One analysed frame: time and detections.
    type Step = (f64, Vec<Object>);

    /// Frames `0..n_frames` at `fps`, time `k / fps`, detections from `at(frame, time)`.
    fn frames(fps: f64, n_frames: usize, at: impl Fn(usize, f64) -> Vec<Object>) -> Vec<Step> {
        (0..n_frames)
            .map(|frame| {
                let t_s = frame as f64 / fps;
                (t_s, at(frame, t_s))
            })
            .collect()
    }

    /// What one update reported, in a comparable form.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        ids: Vec<Option<u64>>,
        started: Vec<u64>,
        ended: Vec<u64>,
    }

    fn outcome(ids: &[Option<u64>], started: &[u64], ended: &[u64]) -> Outcome {
        Outcome {
            ids: ids.to_vec(),
            started: started.to_vec(),
            ended: ended.to_vec(),
        }
    }

    fn run(tracker: &mut Tracker, steps: &[Step]) -> Vec<TrackerUpdate> {
        steps
            .iter()
            .map(|(t_s, objects)| tracker.update(objects, *t_s))
            .collect()
    }

    fn outcomes(updates: &[TrackerUpdate]) -> Vec<Outcome> {
        updates
            .iter()
            .map(|update| Outcome {
                ids: update.track_ids.clone(),
                started: update.started.clone(),
                ended: update.ended.iter().map(|track| track.id).collect(),
            })
            .collect()
    }

    struct ScenarioCase {
        name: &'static str,
        config: TrackingConfig,
        steps: Vec<Step>,
        expected: Vec<Outcome>,
    }

    fn check_scenarios(cases: Vec<ScenarioCase>) {
        for case in cases {
            assert_eq!(
                case.steps.len(),
                case.expected.len(),
                "case `{}`: table",
                case.name
            );
            let mut tracker = Tracker::new(&case.config);
            let got = outcomes(&run(&mut tracker, &case.steps));
            for (frame, (got, expected)) in got.iter().zip(&case.expected).enumerate() {
                assert_eq!(got, expected, "case `{}`: frame {frame}", case.name);
            }
        }
    }

    const NONE: &[Option<u64>] = &[None];
    const ONE: &[Option<u64>] = &[Some(1)];

    #[test]
    fn association_and_two_stages_from_table() {
        let high = 0.9;
        let low = 0.3;
        let cases = vec![
            ScenarioCase {
                name: "static box: tentative twice, confirmed at the third hit",
                config: config(3, 1.5),
                steps: frames(5.0, 4, |_, _| vec![person_at(0.5, 0.5, high)]),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(ONE, &[], &[]),
                ],
            },
            ScenarioCase {
                name: "moving box (0.1/s at 5 fps) keeps its track",
                config: config(3, 1.5),
                steps: frames(5.0, 6, |_, t| {
                    vec![person_at(0.2 + 0.1 * t as f32, 0.5, high)]
                }),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(ONE, &[], &[]),
                    outcome(ONE, &[], &[]),
                    outcome(ONE, &[], &[]),
                ],
            },
            ScenarioCase {
                name: "two static boxes: ids in input order",
                config: config(2, 1.5),
                steps: frames(5.0, 3, |_, _| {
                    vec![person_at(0.2, 0.5, high), person_at(0.7, 0.5, high)]
                }),
                expected: vec![
                    outcome(&[None, None], &[], &[]),
                    outcome(&[Some(1), Some(2)], &[1, 2], &[]),
                    outcome(&[Some(1), Some(2)], &[], &[]),
                ],
            },
            ScenarioCase {
                name: "a box that jumps (IoU 0 with the prediction) starts a new track",
                config: config(2, 0.5),
                steps: frames(5.0, 6, |frame, _| {
                    let x = if frame < 3 { 0.2 } else { 0.7 };
                    vec![person_at(x, 0.5, high)]
                }),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(ONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(&[Some(2)], &[2], &[]),
                    // Track 1, last seen at 0.4 s, is unmatched for 0.6 s > max_age.
                    outcome(&[Some(2)], &[], &[1]),
                ],
            },
            ScenarioCase {
                name: "a low-score detection keeps a confirmed track alive",
                config: config(2, 0.5),
                steps: frames(5.0, 8, |frame, _| {
                    let score = if (2..6).contains(&frame) { low } else { high };
                    vec![person_at(0.5, 0.5, score)]
                }),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(ONE, &[], &[]),
                    outcome(ONE, &[], &[]),
                    // Without stage 2 the track would end here (see the next case).
                    outcome(ONE, &[], &[]),
                    outcome(ONE, &[], &[]),
                    outcome(ONE, &[], &[]),
                    outcome(ONE, &[], &[]),
                ],
            },
            ScenarioCase {
                name: "without the low-score detections the same track ends",
                config: config(2, 0.5),
                steps: frames(5.0, 8, |frame, _| {
                    if (2..6).contains(&frame) {
                        vec![]
                    } else {
                        vec![person_at(0.5, 0.5, high)]
                    }
                }),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(&[], &[], &[]),
                    outcome(&[], &[], &[]),
                    // Last seen at 0.2 s: unmatched for 0.6 s > max_age at 0.8 s.
                    outcome(&[], &[], &[1]),
                    outcome(&[], &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(&[Some(2)], &[2], &[]),
                ],
            },
            ScenarioCase {
                name: "low-score detections alone start nothing",
                config: config(1, 1.5),
                steps: frames(5.0, 3, |_, _| vec![person_at(0.5, 0.5, low)]),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                ],
            },
            ScenarioCase {
                name: "a score equal to high_score is high",
                config: config(1, 1.5),
                steps: vec![(0.0, vec![person_at(0.5, 0.5, 0.5)])],
                expected: vec![outcome(ONE, &[1], &[])],
            },
            ScenarioCase {
                name: "a low-score detection does not grow a tentative track: it is dropped",
                config: config(3, 1.5),
                steps: frames(5.0, 5, |frame, _| {
                    let score = if frame == 1 { low } else { high };
                    vec![person_at(0.5, 0.5, score)]
                }),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                ],
            },
            ScenarioCase {
                name: "a tentative track missed once is dropped silently",
                config: config(3, 1.5),
                steps: frames(5.0, 6, |frame, _| {
                    if frame == 2 {
                        vec![]
                    } else {
                        vec![person_at(0.5, 0.5, high)]
                    }
                }),
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(&[], &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                ],
            },
            ScenarioCase {
                name: "below match_iou (0.3) is no match: IoU 0.25 starts a second track",
                config: config(1, 0.1),
                // Shift 0.06 of a 0.1 wide box: IoU = 0.04 / 0.16 = 0.25.
                steps: vec![
                    (0.0, vec![person_at(0.5, 0.5, high)]),
                    (0.0, vec![person_at(0.56, 0.5, high)]),
                ],
                expected: vec![outcome(ONE, &[1], &[]), outcome(&[Some(2)], &[2], &[])],
            },
            ScenarioCase {
                name: "greedy: the better overlap wins, the other detection starts a track",
                config: config(1, 1.5),
                steps: vec![
                    (0.0, vec![person_at(0.5, 0.5, high)]),
                    (
                        0.0,
                        vec![person_at(0.53, 0.5, high), person_at(0.51, 0.5, high)],
                    ),
                ],
                expected: vec![
                    outcome(ONE, &[1], &[]),
                    outcome(&[Some(2), Some(1)], &[2], &[]),
                ],
            },
            ScenarioCase {
                name: "min_hits 1 confirms at the first detection",
                config: config(1, 1.5),
                steps: frames(5.0, 2, |_, _| vec![person_at(0.5, 0.5, high)]),
                expected: vec![outcome(ONE, &[1], &[]), outcome(ONE, &[], &[])],
            },
            ScenarioCase {
                name: "min_hits 0 behaves as 1",
                config: config(0, 1.5),
                steps: frames(5.0, 2, |_, _| vec![person_at(0.5, 0.5, high)]),
                expected: vec![outcome(ONE, &[1], &[]), outcome(ONE, &[], &[])],
            },
        ];
        check_scenarios(cases);
    }

    #[test]
    fn class_awareness_from_table() {
        let box_at = [0.4, 0.4, 0.1, 0.2];
        let cases = vec![
            ScenarioCase {
                name: "a vehicle on a person's box does not continue the person track",
                config: config(2, 1.5),
                steps: vec![
                    (0.0, vec![object("person", "person", 0.9, box_at)]),
                    (0.2, vec![object("person", "person", 0.9, box_at)]),
                    (0.4, vec![object("vehicle", "car", 0.9, box_at)]),
                    (0.6, vec![object("vehicle", "car", 0.9, box_at)]),
                ],
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(&[Some(2)], &[2], &[]),
                ],
            },
            ScenarioCase {
                name: "a person and a vehicle on the same box get a track each",
                config: config(2, 1.5),
                steps: frames(5.0, 2, |_, _| {
                    vec![
                        object("vehicle", "car", 0.9, box_at),
                        object("person", "person", 0.9, box_at),
                    ]
                }),
                expected: vec![
                    outcome(&[None, None], &[], &[]),
                    outcome(&[Some(1), Some(2)], &[1, 2], &[]),
                ],
            },
            ScenarioCase {
                name: "vehicle labels may change within the class (car, then truck)",
                config: config(2, 1.5),
                steps: vec![
                    (0.0, vec![object("vehicle", "car", 0.9, box_at)]),
                    (0.2, vec![object("vehicle", "truck", 0.9, box_at)]),
                    (0.4, vec![object("vehicle", "car", 0.9, box_at)]),
                ],
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(ONE, &[], &[]),
                ],
            },
            ScenarioCase {
                name: "`other` matches on the label: a dog does not continue a horse",
                config: config(2, 1.5),
                steps: vec![
                    (0.0, vec![object("other", "horse", 0.9, box_at)]),
                    (0.2, vec![object("other", "horse", 0.9, box_at)]),
                    (0.4, vec![object("other", "dog", 0.9, box_at)]),
                    (0.6, vec![object("other", "horse", 0.9, box_at)]),
                ],
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[], &[]),
                ],
            },
            ScenarioCase {
                name: "a low-score vehicle does not keep a person alive",
                config: config(2, 0.3),
                steps: vec![
                    (0.0, vec![object("person", "person", 0.9, box_at)]),
                    (0.2, vec![object("person", "person", 0.9, box_at)]),
                    (0.4, vec![object("vehicle", "car", 0.3, box_at)]),
                    (0.6, vec![object("vehicle", "car", 0.3, box_at)]),
                ],
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[1]),
                ],
            },
        ];
        check_scenarios(cases);

        let mut tracker = Tracker::new(&config(2, 1.5));
        tracker.update(&[object("vehicle", "car", 0.9, box_at)], 0.0);
        tracker.update(&[object("vehicle", "truck", 0.8, box_at)], 0.2);
        let track = tracker.tracks().next().expect("one track");
        assert_eq!(
            (track.class, track.label.as_str(), track.score),
            ("vehicle", "truck", 0.8),
            "label and score follow the last matched detection"
        );
    }

    struct OcclusionCase {
        name: &'static str,
        fps: f64,
        /// Centre speed along x, normalised units per second.
        speed: f32,
        /// Detections missing for `t` in `(hidden_from_s, hidden_until_s)`.
        hidden_from_s: f64,
        hidden_until_s: f64,
        max_age_s: f64,
        /// Expected id of the detection after the gap.
        id_after: Option<u64>,
        /// Tracks ended during the whole run.
        ended: Vec<u64>,
    }

    #[test]
    fn identity_through_occlusion_from_table() {
        let cases = vec![
            OcclusionCase {
                name: "1 s gap at 5 fps, max_age 1.5 s: same id where the model predicts",
                fps: 5.0,
                speed: 0.2,
                hidden_from_s: 1.0,
                hidden_until_s: 2.0,
                max_age_s: 1.5,
                id_after: Some(1),
                ended: vec![],
            },
            OcclusionCase {
                name: "1 s gap at 15 fps",
                fps: 15.0,
                speed: 0.2,
                hidden_from_s: 1.0,
                hidden_until_s: 2.0,
                max_age_s: 1.5,
                id_after: Some(1),
                ended: vec![],
            },
            OcclusionCase {
                name: "1 s gap moving left at 10 fps",
                fps: 10.0,
                speed: -0.2,
                hidden_from_s: 1.0,
                hidden_until_s: 2.0,
                max_age_s: 1.5,
                id_after: Some(1),
                ended: vec![],
            },
            OcclusionCase {
                name: "gap longer than max_age: the track ends, a new one starts",
                fps: 5.0,
                speed: 0.2,
                hidden_from_s: 1.0,
                hidden_until_s: 2.0,
                max_age_s: 0.5,
                id_after: None,
                ended: vec![1],
            },
        ];
        for case in cases {
            let start_x = if case.speed > 0.0 { 0.2 } else { 0.8 };
            let center_x = |t: f64| start_x + case.speed * t as f32;
            let hidden = |t: f64| t > case.hidden_from_s + 1e-9 && t < case.hidden_until_s - 1e-9;
            let n_frames = (3.0 * case.fps).round() as usize;
            let steps = frames(case.fps, n_frames, |_, t| {
                if hidden(t) {
                    vec![]
                } else {
                    vec![person_at(center_x(t), 0.5, 0.9)]
                }
            });
            // The test is only meaningful if the box did move out of its last position.
            let last_box = Rect::from_center(
                center_x(case.hidden_from_s),
                0.5,
                PERSON_WIDTH,
                PERSON_HEIGHT,
            );
            let reappeared = Rect::from_center(
                center_x(case.hidden_until_s),
                0.5,
                PERSON_WIDTH,
                PERSON_HEIGHT,
            );
            assert!(
                last_box.iou(&reappeared) < TrackingConfig::default().match_iou,
                "case `{}`: the last box alone would match",
                case.name
            );

            let mut tracker = Tracker::new(&config(3, case.max_age_s));
            let updates = run(&mut tracker, &steps);
            let reappearance = steps
                .iter()
                .position(|(t, objects)| *t > case.hidden_from_s && !objects.is_empty())
                .expect("a reappearance");
            assert_eq!(
                updates[reappearance].track_ids,
                vec![case.id_after],
                "case `{}`: id at t = {}",
                case.name,
                steps[reappearance].0
            );
            let ended: Vec<u64> = updates
                .iter()
                .flat_map(|update| update.ended.iter().map(|track| track.id))
                .collect();
            assert_eq!(ended, case.ended, "case `{}`: ended", case.name);
            if case.id_after.is_some() {
                let seen_ids: HashSet<Option<u64>> = updates[2..]
                    .iter()
                    .filter_map(|update| update.track_ids.first().copied())
                    .collect();
                assert_eq!(
                    seen_ids,
                    HashSet::from([Some(1)]),
                    "case `{}`: one id from confirmation on",
                    case.name
                );
            }
        }
    }

    struct CrossingCase {
        name: &'static str,
        fps: f64,
        /// Per-frame x jitter of both detections (repeating pattern), normalised units.
        jitter: &'static [f32],
        /// The right-hand person is not detected while the centres are closer than this.
        rear_hidden_within: f32,
    }

    #[test]
    fn identity_kept_when_two_people_cross_from_table() {
        let cases = vec![
            CrossingCase {
                name: "both detected throughout, 5 fps",
                fps: 5.0,
                jitter: &[0.0],
                rear_hidden_within: 0.0,
            },
            CrossingCase {
                name: "both detected throughout, 15 fps",
                fps: 15.0,
                jitter: &[0.0],
                rear_hidden_within: 0.0,
            },
            CrossingCase {
                name: "both detected with jitter, 10 fps",
                fps: 10.0,
                jitter: &[0.0, 0.003, -0.002, 0.002, -0.003],
                rear_hidden_within: 0.0,
            },
            CrossingCase {
                name: "the rear person hidden while they overlap, 5 fps",
                fps: 5.0,
                jitter: &[0.0],
                rear_hidden_within: 0.05,
            },
            CrossingCase {
                name: "the rear person hidden while they overlap, 15 fps, jitter",
                fps: 15.0,
                jitter: &[0.0, 0.002, -0.002],
                rear_hidden_within: 0.05,
            },
        ];
        let speed = 0.2;
        // Walking towards each other, crossing at t = 1.75 s.
        let left_x = |t: f64| 0.15 + speed * t as f32;
        let right_x = |t: f64| 0.85 - speed * t as f32;
        let (left_y, right_y) = (0.5, 0.52);
        for case in cases {
            let n_frames = (3.5 * case.fps).round() as usize;
            let steps = frames(case.fps, n_frames, |frame, t| {
                let jitter = case.jitter[frame % case.jitter.len()];
                let mut objects = vec![person_at(left_x(t) + jitter, left_y, 0.9)];
                if (right_x(t) - left_x(t)).abs() >= case.rear_hidden_within {
                    objects.push(person_at(right_x(t) - jitter, right_y, 0.9));
                }
                objects
            });
            // Some frames have both boxes overlapping, and when both are always detected a
            // last-box tracker would swap the ids at the crossing.
            let overlapping = steps
                .iter()
                .filter(|(_, objects)| {
                    objects.len() == 2
                        && detection_rect(&objects[0]).iou(&detection_rect(&objects[1])) > 0.0
                })
                .count();
            assert!(overlapping >= 1, "case `{}`: no overlap", case.name);
            let hidden = steps
                .iter()
                .filter(|(_, objects)| objects.len() < 2)
                .count();
            assert_eq!(
                hidden > 0,
                case.rear_hidden_within > 0.0,
                "case `{}`: hidden frames",
                case.name
            );
            if case.rear_hidden_within == 0.0 {
                let would_swap = steps.windows(2).any(|pair| {
                    let (previous, current) = (&pair[0].1, &pair[1].1);
                    let last_left = detection_rect(&previous[0]);
                    last_left.iou(&detection_rect(&current[1]))
                        > last_left.iou(&detection_rect(&current[0]))
                });
                assert!(
                    would_swap,
                    "case `{}`: a naive tracker would cope",
                    case.name
                );
            }

            let mut tracker = Tracker::new(&config(3, 1.5));
            let updates = run(&mut tracker, &steps);
            for (frame, update) in updates.iter().enumerate().skip(2) {
                let expected: Vec<Option<u64>> =
                    [Some(1), Some(2)][..steps[frame].1.len()].to_vec();
                assert_eq!(
                    update.track_ids, expected,
                    "case `{}`: frame {frame} (t = {:.3})",
                    case.name, steps[frame].0
                );
                assert!(update.ended.is_empty(), "case `{}`: ended", case.name);
            }
            let last = steps.last().expect("frames");
            assert!(
                last.1[0].bbox[0] > 0.5 && last.1[1].bbox[0] < 0.5,
                "case `{}`: they did cross",
                case.name
            );
        }
    }

    fn detection_rect(object: &Object) -> Rect {
        let [x, y, width, height] = object.bbox;
        Rect::from_xywh(x, y, width, height)
    }

    struct MaxAgeCase {
        name: &'static str,
        /// Frame times; the person is detected at every time `<= seen_until_s`.
        times: Vec<f64>,
        seen_until_s: f64,
        /// Time of the update that reports the end.
        ended_at_s: f64,
    }

    fn times_at_fps(fps: f64, until_s: f64) -> Vec<f64> {
        let n_frames = (until_s * fps).round() as usize + 1;
        (0..n_frames).map(|frame| frame as f64 / fps).collect()
    }

    #[test]
    fn max_age_is_in_seconds_from_table() {
        let cases = vec![
            MaxAgeCase {
                name: "5 fps: the first frame more than 1.5 s after the last sighting",
                times: times_at_fps(5.0, 4.0),
                seen_until_s: 2.0,
                ended_at_s: 3.6,
            },
            MaxAgeCase {
                name: "10 fps: exactly 1.5 s unmatched is still alive",
                times: times_at_fps(10.0, 4.0),
                seen_until_s: 2.0,
                ended_at_s: 3.6,
            },
            MaxAgeCase {
                name: "15 fps",
                times: times_at_fps(15.0, 4.0),
                seen_until_s: 2.0,
                ended_at_s: 53.0 / 15.0,
            },
            MaxAgeCase {
                name: "irregular frames",
                times: vec![0.0, 0.3, 0.35, 1.0, 2.0, 2.9, 3.5, 3.51, 5.0],
                seen_until_s: 2.0,
                ended_at_s: 3.51,
            },
            MaxAgeCase {
                name: "a long pause in analysis ends the track at the next frame",
                times: vec![0.0, 0.2, 0.4, 10.0, 10.2],
                seen_until_s: 0.4,
                ended_at_s: 10.0,
            },
        ];
        let mut end_times = Vec::new();
        for case in cases {
            let steps: Vec<Step> = case
                .times
                .iter()
                .map(|&t| {
                    let objects = if t <= case.seen_until_s {
                        vec![person_at(0.4, 0.4, 0.9)]
                    } else {
                        vec![]
                    };
                    (t, objects)
                })
                .collect();
            let mut tracker = Tracker::new(&config(3, 1.5));
            let updates = run(&mut tracker, &steps);
            let endings: Vec<(f64, &Track)> = steps
                .iter()
                .zip(&updates)
                .flat_map(|((t, _), update)| update.ended.iter().map(move |track| (*t, track)))
                .collect();
            assert_eq!(endings.len(), 1, "case `{}`: one ending", case.name);
            let (ended_at_s, track) = endings[0];
            let hits = steps
                .iter()
                .filter(|(_, objects)| !objects.is_empty())
                .count() as u32;
            assert_eq!(ended_at_s, case.ended_at_s, "case `{}`: when", case.name);
            assert_eq!(
                (
                    track.id,
                    track.first_seen_s,
                    track.last_seen_s,
                    track.dwell_s(),
                    track.hits,
                    track.ended_s
                ),
                (
                    1,
                    0.0,
                    case.seen_until_s,
                    case.seen_until_s,
                    hits,
                    Some(case.ended_at_s)
                ),
                "case `{}`: the ended track",
                case.name
            );
            assert_eq!(tracker.tracks().count(), 0, "case `{}`: live", case.name);
            end_times.push(ended_at_s);
        }
        // 5, 10 and 15 fps end within one 5 fps frame of each other.
        for end in &end_times[..3] {
            assert!((end - end_times[0]).abs() <= 0.2 + 1e-9, "{end_times:?}");
        }
    }

    #[test]
    fn ids_are_never_reused() {
        let high = 0.9;
        // A (0.2) for frames 0..5; a one-frame flicker at 0.8 in frame 1 (a tentative track
        // that vanishes); B (0.5) from frame 3; A comes back at frame 12 after it ended.
        let steps = frames(5.0, 16, |frame, _| {
            let mut objects = Vec::new();
            if !(5..12).contains(&frame) {
                objects.push(person_at(0.2, 0.5, high));
            }
            if frame == 1 {
                objects.push(person_at(0.8, 0.5, high));
            }
            if frame >= 3 {
                objects.push(person_at(0.5, 0.5, high));
            }
            objects
        });
        let mut tracker = Tracker::new(&config(2, 1.0));
        let updates = run(&mut tracker, &steps);
        let started: Vec<(usize, u64)> = updates
            .iter()
            .enumerate()
            .flat_map(|(frame, update)| update.started.iter().map(move |id| (frame, *id)))
            .collect();
        let ended: Vec<(usize, u64)> = updates
            .iter()
            .enumerate()
            .flat_map(|(frame, update)| update.ended.iter().map(move |track| (frame, track.id)))
            .collect();
        // Confirmed ids are consecutive: the flicker never got one.
        assert_eq!(started, vec![(1, 1), (4, 2), (13, 3)]);
        // A last seen at 0.8 s ends at the first frame more than 1 s later (2.0 s, frame 10).
        assert_eq!(ended, vec![(10, 1)]);
        assert_eq!(updates[15].track_ids, vec![Some(3), Some(2)]);

        let finished = tracker.finish(3.2);
        assert_eq!(
            finished.iter().map(|track| track.id).collect::<Vec<_>>(),
            vec![2, 3]
        );
        // After finish, ids keep counting.
        tracker.update(&[person_at(0.5, 0.5, high)], 3.4);
        let update = tracker.update(&[person_at(0.5, 0.5, high)], 3.6);
        assert_eq!(update.started, vec![4]);
    }

    #[test]
    fn finish_ends_confirmed_tracks_only() {
        let mut tracker = Tracker::new(&config(2, 1.5));
        let high = 0.9;
        tracker.update(&[person_at(0.2, 0.5, high), person_at(0.5, 0.5, high)], 0.0);
        // The second person is lost (confirmed, unmatched but within max_age); a third one is
        // tentative.
        tracker.update(&[person_at(0.2, 0.5, high), person_at(0.5, 0.5, high)], 0.2);
        tracker.update(&[person_at(0.2, 0.5, high), person_at(0.8, 0.5, high)], 0.4);
        let live: Vec<(u64, bool)> = tracker
            .tracks()
            .map(|track| (track.id, track.confirmed))
            .collect();
        assert_eq!(live, vec![(1, true), (2, true), (0, false)]);

        let finished = tracker.finish(0.5);
        let summary: Vec<(u64, f64, f64, Option<f64>)> = finished
            .iter()
            .map(|track| {
                (
                    track.id,
                    track.first_seen_s,
                    track.last_seen_s,
                    track.ended_s,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![(1, 0.0, 0.4, Some(0.5)), (2, 0.0, 0.2, Some(0.5))]
        );
        assert_eq!(tracker.tracks().count(), 0);
        assert!(
            tracker.finish(0.6).is_empty(),
            "a second finish ends nothing"
        );
    }

    #[test]
    fn motion_model_is_time_based_from_table() {
        struct MotionCase {
            name: &'static str,
            times: Vec<f64>,
        }
        let cases = vec![
            MotionCase {
                name: "5 fps",
                times: (0..6).map(|frame| frame as f64 / 5.0).collect(),
            },
            MotionCase {
                name: "15 fps",
                times: (0..16).map(|frame| frame as f64 / 15.0).collect(),
            },
            MotionCase {
                name: "irregular",
                times: vec![0.0, 0.05, 0.3, 0.45, 0.9, 1.0],
            },
        ];
        // Centre moves at (0.1, -0.05) per second; the box grows 0.02 wide per second.
        let box_at = |t: f64| {
            let t = t as f32;
            let width = 0.1 + 0.02 * t;
            Rect::from_center(0.3 + 0.1 * t, 0.6 - 0.05 * t, width, 0.3)
        };
        for case in cases {
            let mut tracker = Tracker::new(&config(1, 1.5));
            for &t in &case.times {
                let rect = box_at(t);
                let bbox = rect.to_xywh();
                tracker.update(&[object("person", "person", 0.9, bbox)], t);
            }
            let track = tracker.tracks().next().expect("a track");
            let close = |a: f32, b: f32| (a - b).abs() < 1e-4;
            assert!(
                close(track.center_velocity[0], 0.1) && close(track.center_velocity[1], -0.05),
                "case `{}`: velocity {:?}",
                case.name,
                track.center_velocity
            );
            assert!(
                close(track.size_velocity[0], 0.02) && close(track.size_velocity[1], 0.0),
                "case `{}`: size velocity {:?}",
                case.name,
                track.size_velocity
            );
            let predicted = track.predicted_bbox(2.0);
            let expected = box_at(2.0);
            assert!(
                predicted.iou(&expected) > 0.999,
                "case `{}`: predicted {predicted:?}, expected {expected:?}",
                case.name
            );
            assert_eq!(
                track.predicted_bbox(0.0),
                track.bbox,
                "case `{}`: no prediction backwards",
                case.name
            );
            let (anchor_x, anchor_y) = track.anchor();
            assert!(
                close(anchor_x, (track.bbox.x1 + track.bbox.x2) / 2.0) && anchor_y == track.bbox.y2,
                "case `{}`: anchor",
                case.name
            );
        }
    }

    #[test]
    fn velocity_smoothing_is_time_based_from_table() {
        struct StepCase {
            name: &'static str,
            times: Vec<f64>,
        }
        let cases = vec![
            StepCase {
                name: "5 fps",
                times: (0..=8).map(|frame| frame as f64 / 5.0).collect(),
            },
            StepCase {
                name: "15 fps",
                times: (0..=24).map(|frame| frame as f64 / 15.0).collect(),
            },
            StepCase {
                name: "irregular",
                times: vec![0.0, 0.1, 0.5, 0.6, 1.0, 1.05, 1.3, 1.35, 1.6],
            },
        ];
        // 0.1/s until 1 s, then 0.3/s: after 0.6 s at the new speed the estimate has moved
        // 1 - exp(-0.6 / 0.3) of the way, whatever the frame spacing.
        let center_x = |t: f64| {
            if t <= 1.0 {
                0.3 + 0.1 * t
            } else {
                0.4 + 0.3 * (t - 1.0)
            }
        };
        let expected = 0.3 - 0.2 * (-0.6 / VELOCITY_TIME_CONSTANT_S).exp();
        for case in cases {
            let mut tracker = Tracker::new(&config(1, 1.5));
            for &t in &case.times {
                tracker.update(&[person_at(center_x(t) as f32, 0.5, 0.9)], t);
            }
            let track = tracker.tracks().next().expect("a track");
            assert!(
                (f64::from(track.center_velocity[0]) - expected).abs() < 1e-3,
                "case `{}`: velocity {} instead of {expected}",
                case.name,
                track.center_velocity[0]
            );
        }
    }

    #[test]
    fn bad_input_is_ignored_without_panic_from_table() {
        let good = || person_at(0.5, 0.5, 0.9);
        let cases = vec![
            ScenarioCase {
                name: "NaN score, NaN box, infinite box, empty and inverted boxes",
                config: config(2, 1.5),
                steps: frames(5.0, 3, |_, _| {
                    vec![
                        object("person", "person", f32::NAN, [0.5, 0.5, 0.1, 0.1]),
                        good(),
                        object("person", "person", 0.9, [f32::NAN, 0.5, 0.1, 0.1]),
                        object("person", "person", 0.9, [0.0, 0.0, f32::INFINITY, 0.1]),
                        object("person", "person", 0.9, [0.4, 0.4, 0.0, 0.2]),
                        object("person", "person", 0.9, [0.4, 0.4, -0.1, 0.2]),
                        object("person", "person", f32::INFINITY, [0.4, 0.4, 0.1, 0.2]),
                        object("person", "person", 0.9, [f32::MAX, 0.0, f32::MAX, 1.0]),
                    ]
                }),
                expected: vec![
                    outcome(&[None; 8], &[], &[]),
                    outcome(
                        &[None, Some(1), None, None, None, None, None, None],
                        &[1],
                        &[],
                    ),
                    outcome(
                        &[None, Some(1), None, None, None, None, None, None],
                        &[],
                        &[],
                    ),
                ],
            },
            ScenarioCase {
                name: "time going backwards counts as no time passing",
                config: config(2, 0.5),
                steps: vec![
                    (10.0, vec![good()]),
                    (10.2, vec![good()]),
                    (3.0, vec![]),
                    (10.6, vec![]),
                    (10.8, vec![]),
                ],
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(&[], &[], &[]),
                    outcome(&[], &[], &[]),
                    outcome(&[], &[], &[1]),
                ],
            },
            ScenarioCase {
                name: "NaN and infinite times count as no time passing",
                config: config(2, 0.5),
                steps: vec![
                    (f64::NAN, vec![good()]),
                    (f64::INFINITY, vec![good()]),
                    (0.4, vec![]),
                    (0.6, vec![]),
                ],
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                    outcome(&[], &[], &[]),
                    outcome(&[], &[], &[1]),
                ],
            },
            ScenarioCase {
                name: "repeated timestamps",
                config: config(3, 1.5),
                steps: vec![
                    (1.0, vec![good()]),
                    (1.0, vec![good()]),
                    (1.0, vec![good()]),
                ],
                expected: vec![
                    outcome(NONE, &[], &[]),
                    outcome(NONE, &[], &[]),
                    outcome(ONE, &[1], &[]),
                ],
            },
            ScenarioCase {
                name: "NaN match_iou and high_score: nothing matches, nothing starts",
                config: TrackingConfig {
                    min_hits: 1,
                    high_score: f32::NAN,
                    match_iou: f32::NAN,
                    ..TrackingConfig::default()
                },
                steps: frames(5.0, 2, |_, _| vec![good()]),
                expected: vec![outcome(NONE, &[], &[]), outcome(NONE, &[], &[])],
            },
        ];
        check_scenarios(cases);

        // A velocity from nearly simultaneous frames stays bounded and finite.
        let mut tracker = Tracker::new(&config(1, 1.5));
        tracker.update(&[person_at(0.5, 0.5, 0.9)], 0.0);
        tracker.update(&[person_at(0.55, 0.5, 0.9)], 0.002);
        let track = tracker.tracks().next().expect("a track");
        assert_eq!(track.center_velocity, [MAX_CENTER_SPEED, 0.0]);
        assert!(track.predicted_bbox(1e300).is_valid());
    }

    #[test]
    fn movement_is_told_from_jitter_from_table() {
        // (name, centre x per frame at 5 fps after 3 frames at 0.5, moved flags expected per
        //  update; the third update confirms the track, which counts as movement)
        let cases: [(&str, &[f32], &[bool]); 3] = [
            (
                "standing, boxes jittering by a tenth of their width",
                &[0.5, 0.51, 0.49, 0.5, 0.51, 0.49, 0.5],
                &[false, false, true, false, false, false, false],
            ),
            (
                // Tolerance: a quarter of the box height (0.3), 0.075: every fourth frame.
                "walking at 0.1 of the picture a second (0.02 per frame)",
                &[0.5, 0.5, 0.5, 0.52, 0.54, 0.56, 0.58, 0.6, 0.62, 0.64, 0.66],
                &[
                    false, false, true, false, false, false, true, false, false, false, true,
                ],
            ),
            (
                "a tentative track moving counts for nothing",
                &[0.5, 0.6],
                &[false, false],
            ),
        ];
        for (name, xs, expected) in cases {
            let mut tracker = Tracker::new(&config(3, 1.5));
            let moved: Vec<bool> = xs
                .iter()
                .enumerate()
                .map(|(k, &x)| {
                    tracker
                        .update(&[person_at(x, 0.5, 0.9)], k as f64 * 0.2)
                        .moved
                })
                .collect();
            assert_eq!(moved, expected, "{name}");
        }
    }

    #[test]
    fn held_tracks_survive_idle_time_longer_than_max_age() {
        // A confirmed person, then nothing analysed for 10 s (max_age 1.5 s), then a frame
        // where the model misses them once.
        for (hold, survives) in [(true, true), (false, false)] {
            let mut tracker = Tracker::new(&config(3, 1.5));
            for k in 0..3 {
                tracker.update(&[person_at(0.5, 0.5, 0.9)], f64::from(k) * 0.2);
            }
            let id = tracker.tracks().next().map(|t| t.id);
            if hold {
                tracker.hold(10.4);
            }
            let update = tracker.update(&[], 10.4);
            assert_eq!(update.ended.is_empty(), survives, "hold {hold}");
            if survives {
                let track = tracker.tracks().next().expect("still live");
                assert_eq!(Some(track.id), id);
                assert_eq!(track.center_velocity, [0.0, 0.0], "held still");
                // Dwell counts the idle time: the person stood there all along.
                assert!((track.dwell_s() - 10.4).abs() < 1e-9, "{}", track.dwell_s());
                // Back to normal ageing after the hold: unmatched for > max_age, it ends.
                assert_eq!(tracker.update(&[], 12.0).ended.len(), 1);
            }
        }
    }
}
