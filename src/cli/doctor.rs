//! `watchpost doctor [--config FILE]`: checks that this device can run the agent as configured,
//! one line per check: `PASS`, `WARN` (works, but look) or `FAIL` (will not work), what was
//! checked, and on WARN/FAIL a hint. Exit 0 when nothing failed, 1 otherwise.
//!
//! Safe beside a running agent: the broker check connects under its own client id and publishes
//! nothing, the outbox check writes and removes one small file, the model runs once on one
//! thread.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use clap::Args;

use crate::config::{self, Config, ConfigError, MqttConfig, OutboxConfig};
use crate::detect::{
    BUNDLED_INT8, ClassFilter, CpuFeatures, DetectorOptions, LoadedModel, Runtime,
};
use crate::imaging::Frame;
use crate::ingest::{self, IngestError, template::ChoiceError};
use crate::local::client::{self, FetchError};
use crate::local::{STATUS_SCHEMA, StatusReport};
use crate::publish::{BrokerFailure, BrokerFailureKind};

use super::args::ConfigFile;
use super::report::{bytes, duration};

const MIB: u64 = 1024 * 1024;

/// How long the broker check waits for CONNACK.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `timedatectl` may take.
const TIMEDATECTL_TIMEOUT: Duration = Duration::from_secs(5);
/// No build of this program is older than this (2025-01-01): a clock before it is wrong even
/// when the executable's own date cannot be read.
const BUILT_AFTER_UNIX_S: u64 = 1_735_689_600;

#[derive(Debug, Args)]
#[command(
    about = "Check that this device can run the agent: configuration, GStreamer, model, broker, disk, clock",
    after_help = "One line per check: PASS, WARN (works, but have a look) or FAIL (the agent will \
                  not work as configured), what was checked, and a hint on what to do. Exits 0 \
                  when nothing failed, 1 otherwise.\n\n\
                  Safe beside a running agent: the broker check connects as CLIENT_ID-doctor and \
                  publishes nothing; the outbox check writes and removes one small file.\n\n\
                  Example:\n  watchpost doctor\n  watchpost doctor --config /etc/watchpost/watchpost.toml"
)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    config: ConfigFile,
}

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One check's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Check {
    pub verdict: Verdict,
    /// What was checked: `config`, `camera gate-east`, `broker mqtt://…`.
    pub what: String,
    pub detail: String,
    /// What to do about a WARN or FAIL.
    pub hint: Option<String>,
}

impl Check {
    fn pass(what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Pass,
            what: what.into(),
            detail: detail.into(),
            hint: None,
        }
    }

    fn warn(what: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Warn,
            what: what.into(),
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    fn fail(what: impl Into<String>, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            verdict: Verdict::Fail,
            ..Check::warn(what, detail, hint)
        }
    }

    /// `FAIL  broker mqtt://10.0.0.5:1883: connection refused; hint: …`, on one line.
    pub(crate) fn line(&self) -> String {
        let mut line = format!(
            "{}  {}: {}",
            self.verdict.as_str(),
            self.what,
            super::one_line(&self.detail)
        );
        if let Some(hint) = &self.hint {
            line.push_str("; hint: ");
            line.push_str(&super::one_line(hint));
        }
        line
    }
}

/// Prints checks as they finish and counts them.
#[derive(Default)]
struct Doctor {
    counts: [usize; 3],
}

impl Doctor {
    fn report(&mut self, check: Check) {
        self.counts[check.verdict as usize] += 1;
        self.print(&check.line());
    }

    fn print(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn failed(&self) -> usize {
        self.counts[Verdict::Fail as usize]
    }
}

pub(crate) fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut doctor = Doctor::default();
    let config = config_check(&mut doctor, args.config.path());
    if let Some(config) = &config {
        gstreamer_checks(&mut doctor, config);
        model_checks(&mut doctor, config);
        broker_checks(&mut doctor, &config.mqtt)?;
        doctor.report(outbox_check(&config.outbox));
        doctor.report(local_check(client::Endpoint::of(&config.local)));
    }
    doctor.report(clock_check(SystemTime::now(), built_after()));
    doctor.report(ntp_check(run_timedatectl()));
    let [passed, warned, failed] = doctor.counts;
    let mut summary = format!(
        "{} checks: {passed} passed, {warned} warning{}, {failed} failed",
        passed + warned + failed,
        if warned == 1 { "" } else { "s" }
    );
    if config.is_none() {
        summary.push_str(" (the other checks need a valid configuration)");
    }
    doctor.print(&summary);
    Ok(if doctor.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILURE)
    })
}

fn config_check(doctor: &mut Doctor, path: &Path) -> Option<Config> {
    match config::load(path) {
        Ok(config) => {
            let n = config.cameras.len();
            doctor.report(Check::pass(
                "config",
                format!(
                    "{}: valid ({n} camera{})",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                ),
            ));
            Some(config)
        }
        Err(ConfigError::Read { source, .. }) => {
            doctor.report(Check::fail(
                "config",
                format!("{}: cannot read: {source}", path.display()),
                "give the agent's configuration with --config FILE",
            ));
            None
        }
        Err(e) => {
            let problems = e.problems();
            doctor.report(Check::fail(
                "config",
                format!(
                    "{}: {} problem{} (listed below)",
                    path.display(),
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                ),
                "fix each one; `watchpost config validate FILE` checks again",
            ));
            for problem in problems {
                doctor.print(&format!("      {}", problem.display_in(path)));
            }
            None
        }
    }
}

/// GStreamer, and every element of each camera's pipeline template.
fn gstreamer_checks(doctor: &mut Doctor, config: &Config) {
    if let Err(e) = ingest::init_gstreamer() {
        doctor.report(Check::fail(
            "gstreamer",
            e.to_string(),
            "install GStreamer 1.22 and its plug-ins (deploy/setup.sh does)",
        ));
        return;
    }
    for (i, camera) in config.cameras.iter().enumerate() {
        let what = format!("camera {}", camera.name);
        let check = match ingest::choose_decoder(camera) {
            Ok(choice) => Check::pass(
                what,
                format!(
                    "decoder `{}` ({}); GStreamer elements present: {}",
                    choice.template.name,
                    choice.reason,
                    choice.template.requires.join(", ")
                ),
            ),
            Err(IngestError::Decoder { cause, .. }) => {
                let hint = match &cause {
                    ChoiceError::MissingElements { missing, .. } => format!(
                        "install the plug-ins that provide them (`gst-inspect-1.0 {}` says \
                         whether it is there), or set cameras[{i}].decoder = \"auto\"",
                        missing[0]
                    ),
                    ChoiceError::Unknown { .. } => format!(
                        "set cameras[{i}].decoder to \"auto\" or one of the known templates"
                    ),
                };
                Check::fail(what, cause.to_string(), hint)
            }
            Err(e) => Check::fail(
                what,
                e.to_string(),
                "reinstall watchpost: its pipeline templates are damaged",
            ),
        };
        doctor.report(check);
    }
}

/// ONNX Runtime loads; the model loads and runs once on a blank frame.
fn model_checks(doctor: &mut Doctor, config: &Config) {
    // ONNX Runtime on its own first: a missing library is the operator's to fix, not the
    // model's. (Loaded once per process: `LoadedModel::load` below finds it loaded.)
    match Runtime::load(config.detection.ort_lib.as_deref()) {
        Ok(runtime) => doctor.report(Check::pass(
            "onnx runtime",
            format!("{} loaded", runtime.library_path().display()),
        )),
        Err(e) => {
            doctor.report(Check::fail(
                "onnx runtime",
                e.to_string(),
                "run deploy/setup.sh, or set [detection] ort_lib to a libonnxruntime.so of \
                 version 1.31 or newer",
            ));
            return;
        }
    }
    let cpu = CpuFeatures::detect();
    doctor.report(Check::pass(
        "cpu",
        match cpu.dot_product {
            Some(feature) => format!(
                "{}; integer dot-product instructions ({feature}): the int8 model pays",
                cpu.describe()
            ),
            None => format!(
                "{}; no integer dot-product instructions: the fp32 model by default",
                cpu.describe()
            ),
        },
    ));
    let hint = "check [detection] model and the files beside its manifest (reinstall watchpost \
                for a bundled model)";
    let loaded = LoadedModel::load(
        config.detection.ort_lib.as_deref(),
        &config.detection.model,
        &cpu,
    );
    let model = match loaded {
        Ok(model) => model,
        Err(e) => {
            doctor.report(Check::fail("model", e.to_string(), hint));
            return;
        }
    };
    let options = DetectorOptions {
        intra_threads: 1,
        class_filter: ClassFilter::CoarseClassesOnly,
    };
    let mut detector = match model.detector(&options) {
        Ok(detector) => detector,
        Err(e) => {
            doctor.report(Check::fail("model", e.to_string(), hint));
            return;
        }
    };
    let chosen = model.chosen;
    let manifest = &chosen.manifest;
    let name = detector.spec().name.clone();
    let what = format!("model {name} ({})", chosen.reason);
    let (width, height) = (640, 360);
    let int8_without_dot_product = name == BUNDLED_INT8 && cpu.dot_product.is_none();
    let check = match Frame::from_bgr(width, height, width * 3, vec![0; width * height * 3])
        .map_err(|e| e.to_string())
        .and_then(|frame| detector.detect(frame.as_bgr()).map_err(|e| e.to_string()))
    {
        Ok(detections) if detections.objects.is_empty() && int8_without_dot_product => Check::warn(
            what,
            format!(
                "{}: loaded and ran once on a blank frame, but this CPU has no integer \
                     dot-product instructions",
                manifest.display()
            ),
            "the int8 model may be no faster than fp32 here: compare with `watchpost \
                 detect --model nanodet-m-416`, or remove [detection] model to let the agent \
                 choose",
        ),
        Ok(detections) if detections.objects.is_empty() => Check::pass(
            what,
            format!(
                "{}: loaded and ran once on a blank frame",
                manifest.display()
            ),
        ),
        Ok(detections) => Check::warn(
            what,
            format!(
                "{}: ran, but found {} object(s) on a blank frame",
                manifest.display(),
                detections.objects.len()
            ),
            "the model or the thresholds in its manifest are wrong",
        ),
        Err(e) => Check::fail(
            what,
            format!("{}: loaded, but inference failed: {e}", manifest.display()),
            hint,
        ),
    };
    doctor.report(check);
}

/// A full MQTT CONNECT to every endpoint, as the agent would.
fn broker_checks(doctor: &mut Doctor, mqtt: &MqttConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results: Vec<Result<(), BrokerFailure>> = (0..mqtt.urls.len())
        .map(|i| runtime.block_on(crate::publish::check_broker(mqtt, i, BROKER_TIMEOUT)))
        .collect();
    let any_good = results.iter().any(Result::is_ok);
    let several = mqtt.urls.len() > 1;
    for (url, result) in mqtt.urls.iter().zip(results) {
        let what = format!("broker {url}");
        let check = match result {
            Ok(()) => {
                let login = match &mqtt.username {
                    Some(user) => format!(" as user `{user}`"),
                    None => String::new(),
                };
                Check::pass(what, format!("connected and accepted{login}"))
            }
            // Another endpoint of the cluster works: the agent fails over to it.
            Err(failure) if any_good && several => Check::warn(
                what,
                failure.message,
                format!(
                    "the agent uses the other endpoints meanwhile; {}",
                    broker_hint(failure.kind)
                ),
            ),
            Err(failure) => Check::fail(what, failure.message, broker_hint(failure.kind)),
        };
        doctor.report(check);
    }
    if !mqtt.tls_verify && mqtt.uses_tls() {
        doctor.report(Check::warn(
            "broker tls",
            "mqtt.tls_verify = false: the broker's certificate is not checked, so anyone on the \
             way can pose as the broker",
            "give the broker's CA in mqtt.ca_file and remove tls_verify",
        ));
    }
    Ok(())
}

/// What to do about a broker connection failure, by its kind.
fn broker_hint(kind: BrokerFailureKind) -> &'static str {
    match kind {
        BrokerFailureKind::Auth => {
            "check mqtt.username and the password (password, password_file or \
             $WATCHPOST_MQTT_PASSWORD)"
        }
        BrokerFailureKind::ClientCertificate => {
            "check mqtt.client_cert and mqtt.client_key, and that the broker trusts their CA"
        }
        BrokerFailureKind::Tls => {
            "check mqtt.ca_file, the broker's host name, and this device's clock"
        }
        BrokerFailureKind::TlsFiles => {
            "check the files named by mqtt.ca_file, mqtt.client_cert and mqtt.client_key"
        }
        BrokerFailureKind::Refused => {
            "is the broker running, and are the host and port in mqtt.url right?"
        }
        BrokerFailureKind::Timeout => {
            "no answer: is the host right, and does a firewall let this device through?"
        }
        BrokerFailureKind::Other => {
            "check mqtt.url and the network between this device and the broker"
        }
    }
}

/// The outbox folder can be written, and has room for `max_size_mb`.
fn outbox_check(outbox: &OutboxConfig) -> Check {
    let dir = &outbox.dir;
    let what = format!("outbox {}", dir.display());
    let write_hint = "the agent keeps events here until the broker has them: make the disk \
                      writable for the service, or set [outbox] dir";
    if dir.exists() && !dir.is_dir() {
        return Check::fail(what, "exists but is not a folder", write_hint);
    }
    // The folder, or where the agent will create it.
    let existing = dir
        .ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/"));
    if let Err(e) = probe_write(existing) {
        let detail = if existing == dir.as_path() {
            format!("cannot write: {e}")
        } else {
            format!("cannot be created: {}: {e}", existing.display())
        };
        return Check::fail(what, detail, write_hint);
    }
    if let Some(user) = ServiceUser::when_root()
        && let Some(problem) = user.cannot_write(dir, existing)
    {
        let owner = user.name.as_str();
        let hint = match &problem {
            Unwritable::Enter(_) => format!(
                "let the {owner} user enter every folder on the way (chmod o+x), or set \
                 [outbox] dir"
            ),
            Unwritable::Write(_) | Unwritable::File(_) if existing == dir.as_path() => format!(
                "sudo chown -R {owner}:{owner} {} (a `watchpost run` as root leaves its files \
                 owned by root)",
                dir.display()
            ),
            _ => format!(
                "sudo install -d -o {owner} -g {owner} -m 0750 {}",
                dir.display()
            ),
        };
        return Check::fail(
            what,
            format!("the service's user {owner} cannot write it: {problem}"),
            hint,
        );
    }
    let free = match free_bytes(existing) {
        Ok(free) => free,
        Err(e) => {
            return Check::warn(
                what,
                format!("writable, but its free space cannot be read: {e}"),
                "check the disk (df)",
            );
        }
    };
    let used = outbox_bytes(dir);
    let created = if existing == dir.as_path() {
        String::new()
    } else {
        " (the agent creates it)".to_owned()
    };
    match space_verdict(free, used, outbox.max_bytes) {
        Verdict::Pass => Check::pass(
            what,
            format!(
                "writable{created}; {} free for max_size_mb = {}",
                bytes(free),
                outbox.max_bytes / MIB
            ),
        ),
        _ => Check::warn(
            what,
            format!(
                "writable{created}, but only {} free for max_size_mb = {} ({} in use)",
                bytes(free),
                outbox.max_bytes / MIB,
                bytes(used)
            ),
            "the disk fills up before the outbox reaches its bound, and then events are \
             refused (write_failed): free some space or lower [outbox] max_size_mb",
        ),
    }
}

/// The user the packaged service runs as (`User=watchpost`), when doctor runs as root: root may
/// write anywhere, so "writable" must be asked for that user instead.
struct ServiceUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl ServiceUser {
    /// The package's user; `None` when not root or when there is no such user (not installed
    /// from the package: whoever runs the agent is the one running doctor).
    fn when_root() -> Option<ServiceUser> {
        const NAME: &str = "watchpost";
        if !super::is_root() {
            return None;
        }
        let name = std::ffi::CString::new(NAME).ok()?;
        // SAFETY: an all-zero passwd (integers and null pointers) is a valid value to be
        // overwritten.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        // Far more than one entry's strings take (ERANGE would skip the check, not fail it).
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwnam_r writes the entry into `entry`, its strings into `buffer` (whose
        // length it is given), and sets `found` to `&entry` or null; nothing is kept.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut found,
            )
        };
        (rc == 0 && !found.is_null()).then(|| ServiceUser {
            name: NAME.to_owned(),
            uid: entry.pw_uid,
            gid: entry.pw_gid,
        })
    }

    /// Why this user cannot create or write the outbox `dir`, whose nearest existing folder is
    /// `existing`: a folder on the way it may not enter, `existing` it may not write in, or a
    /// file in it (segments, state) it may not write. By owner, group and mode bits; the
    /// user's supplementary groups are not counted.
    fn cannot_write(&self, dir: &Path, existing: &Path) -> Option<Unwritable> {
        for folder in existing.ancestors().skip(1) {
            let meta = std::fs::metadata(folder).ok()?;
            if !self.may(&meta, 0o1) {
                return Some(Unwritable::Enter(Found::new(folder, &meta)));
            }
        }
        let meta = std::fs::metadata(existing).ok()?;
        if !self.may(&meta, 0o3) {
            return Some(Unwritable::Write(Found::new(existing, &meta)));
        }
        if existing == dir {
            for entry in std::fs::read_dir(dir).ok()?.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_file() && !self.may(&meta, 0o2) {
                    return Some(Unwritable::File(Found::new(&entry.path(), &meta)));
                }
            }
        }
        None
    }

    /// Whether the user has the `wanted` rwx bits (as in `0o3`: write and search) on a file.
    fn may(&self, meta: &std::fs::Metadata, wanted: u32) -> bool {
        use std::os::unix::fs::MetadataExt;
        permitted(
            meta.mode(),
            (meta.uid(), meta.gid()),
            (self.uid, self.gid),
            wanted,
        )
    }
}

/// What keeps the service's user from the outbox.
enum Unwritable {
    /// A folder on the way it may not enter.
    Enter(Found),
    /// The outbox folder, or the folder it is to be created in, which it may not write in.
    Write(Found),
    /// A file in the outbox it may not write.
    File(Found),
}

/// A path with its owner and mode, as found.
struct Found(String);

impl Found {
    fn new(path: &Path, meta: &std::fs::Metadata) -> Found {
        use std::os::unix::fs::MetadataExt;
        Found(format!(
            "{} is {}:{} {:o}",
            path.display(),
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777
        ))
    }
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, Found(found)) = match self {
            Unwritable::Enter(found) => ("cannot enter", found),
            Unwritable::Write(found) => ("cannot write in", found),
            Unwritable::File(found) => ("cannot write a file", found),
        };
        write!(f, "{what}: {found}")
    }
}

/// Whether `user` (uid, primary gid) has the `wanted` rwx bits on a file of `mode` owned by
/// `owner` (uid, gid): the owner's bits, else the group's, else the others' (as the kernel
/// picks them, without supplementary groups).
pub(crate) fn permitted(mode: u32, owner: (u32, u32), user: (u32, u32), wanted: u32) -> bool {
    if user.0 == 0 {
        return true;
    }
    let bits = if owner.0 == user.0 {
        mode >> 6
    } else if owner.1 == user.1 {
        mode >> 3
    } else {
        mode
    } & 0o7;
    bits & wanted == wanted
}

/// Enough room: what is free plus what the outbox already holds reaches its bound.
pub(crate) fn space_verdict(free: u64, used: u64, max_bytes: u64) -> Verdict {
    if free.saturating_add(used) >= max_bytes {
        Verdict::Pass
    } else {
        Verdict::Warn
    }
}

/// Writes, syncs and removes a small file in `dir`.
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(format!(".watchpost-doctor-{}", std::process::id()));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(b"watchpost doctor\n")?;
            file.sync_all()
        });
    let _ = std::fs::remove_file(&path);
    result
}

/// Bytes available to unprivileged users on the file system holding `path`.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a zeroed statvfs is a valid value to be overwritten; the path is NUL-terminated.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// Bytes of the files directly in `dir` (the outbox's segments and state).
fn outbox_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// The local endpoint's port: the running agent answers there, or it is free for it.
fn local_check(endpoint: Option<client::Endpoint>) -> Check {
    let Some(endpoint) = endpoint else {
        return Check::warn(
            "local endpoint",
            "off ([local] listen = \"\")",
            "`watchpost status` and /metrics need it: set [local] listen = \"127.0.0.1:9750\"",
        );
    };
    let addr = endpoint.addr;
    let what = format!("local endpoint {addr}");
    let taken_hint = "the agent would run without its local endpoint: stop the other program \
                      or set [local] listen to another port";
    match client::get(endpoint, "/status", Duration::from_secs(2)) {
        Ok(body) => match serde_json::from_str::<StatusReport>(&body) {
            Ok(report) if report.schema == STATUS_SCHEMA => Check::pass(
                what,
                format!(
                    "the running agent answers (up {}, {} camera{})",
                    duration(report.uptime_s),
                    report.cameras.len(),
                    if report.cameras.len() == 1 { "" } else { "s" }
                ),
            ),
            _ => Check::warn(
                what,
                "something answers there, but not a watchpost agent of this version",
                taken_hint,
            ),
        },
        Err(e @ (FetchError::Certificate { .. } | FetchError::Tls { .. })) => Check::warn(
            what,
            e.to_string(),
            "the agent and this command use [local] tls_cert: check the file, and restart the \
             agent after changing it",
        ),
        Err(FetchError::NotAnswering { .. }) => match std::net::TcpListener::bind(addr) {
            Ok(_) => Check::pass(what, "free for the agent (no agent is running)"),
            Err(e) => Check::warn(what, format!("cannot be had: {e}"), taken_hint),
        },
        Err(e) => Check::warn(
            what,
            format!("taken by a program that is not a watchpost agent: {e}"),
            taken_hint,
        ),
    }
}

/// No build of this program is newer than its executable file.
fn built_after() -> SystemTime {
    let floor = SystemTime::UNIX_EPOCH + Duration::from_secs(BUILT_AFTER_UNIX_S);
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .map_or(floor, |built| built.max(floor))
}

/// The system clock is not before the program was built.
pub(crate) fn clock_check(now: SystemTime, built_after: SystemTime) -> Check {
    let show = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    if now >= built_after {
        Check::pass(
            "clock",
            format!("system time {}, after this program was built", show(now)),
        )
    } else {
        Check::fail(
            "clock",
            format!(
                "system time {} is before this program was built ({})",
                show(now),
                show(built_after)
            ),
            "set the clock (enable NTP: timedatectl set-ntp true): TLS certificates and the \
             times of events depend on it",
        )
    }
}

/// What `timedatectl show -p NTPSynchronized --value` said: its exit status, stdout and stderr.
type TimedatectlOutput = std::io::Result<(bool, String, String)>;

fn run_timedatectl() -> TimedatectlOutput {
    let mut child = Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + TIMEDATECTL_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within 5 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    Ok((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// Whether the clock is NTP-synchronised, from `timedatectl`'s answer.
pub(crate) fn ntp_check(output: TimedatectlOutput) -> Check {
    let unknown_hint = "check that a time service (systemd-timesyncd, chrony) keeps the clock \
                        right";
    let cannot_tell = |why: String| {
        Check::warn(
            "ntp",
            format!("cannot tell whether the clock is synchronised: {why}"),
            unknown_hint,
        )
    };
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cannot_tell("timedatectl is not installed".to_owned())
        }
        Err(e) => cannot_tell(format!("timedatectl: {e}")),
        Ok((false, _, stderr)) => {
            let why = stderr.lines().next().unwrap_or("failed").trim();
            let why = why.trim_end_matches('.').to_owned();
            cannot_tell(format!("timedatectl: {why}"))
        }
        Ok((true, stdout, _)) => match stdout.trim() {
            "yes" => Check::pass("ntp", "the clock is synchronised (timedatectl)"),
            "no" => Check::warn(
                "ntp",
                "the clock is not synchronised",
                "enable NTP (timedatectl set-ntp true) and check that an NTP server is reachable",
            ),
            other => cannot_tell(format!("timedatectl said `{other}`")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_verdict_what_detail_and_hint() {
        let cases = [
            (
                Check::pass("config", "/etc/w.toml: valid (1 camera)"),
                "PASS  config: /etc/w.toml: valid (1 camera)",
            ),
            (
                Check::fail(
                    "broker mqtt://127.0.0.1:1",
                    "connection refused",
                    "is the broker\n running?",
                ),
                "FAIL  broker mqtt://127.0.0.1:1: connection refused; hint: is the broker running?",
            ),
            (
                Check::warn("ntp", "not synchronised", "enable NTP"),
                "WARN  ntp: not synchronised; hint: enable NTP",
            ),
        ];
        for (check, line) in cases {
            assert_eq!(check.line(), line);
        }
    }

    #[test]
    fn space_for_the_outbox() {
        // (free, used by the outbox, bound, verdict)
        let cases = [
            (10 * 1024 * MIB, 0, 256 * MIB, Verdict::Pass),
            (256 * MIB, 0, 256 * MIB, Verdict::Pass),
            (255 * MIB, 0, 256 * MIB, Verdict::Warn),
            (56 * MIB, 200 * MIB, 256 * MIB, Verdict::Pass),
            (0, 0, MIB, Verdict::Warn),
            (u64::MAX, u64::MAX, MIB, Verdict::Pass),
        ];
        for (free, used, max, verdict) in cases {
            assert_eq!(
                space_verdict(free, used, max),
                verdict,
                "{free} {used} {max}"
            );
        }
    }

    #[test]
    fn a_clock_before_the_build_fails() {
        let built = SystemTime::UNIX_EPOCH + Duration::from_secs(BUILT_AFTER_UNIX_S);
        let check = clock_check(built + Duration::from_secs(3600), built);
        assert_eq!(check.verdict, Verdict::Pass);
        assert_eq!(
            check.detail,
            "system time 2025-01-01T01:00:00Z, after this program was built"
        );
        let check = clock_check(SystemTime::UNIX_EPOCH + Duration::from_secs(42), built);
        assert_eq!(check.verdict, Verdict::Fail);
        assert_eq!(
            check.detail,
            "system time 1970-01-01T00:00:42Z is before this program was built \
             (2025-01-01T00:00:00Z)"
        );
        assert!(check.hint.unwrap().contains("NTP"));
        // This machine's clock and this executable.
        assert_eq!(
            clock_check(SystemTime::now(), built_after()).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn ntp_from_timedatectl() {
        let ok = |out: &str| Ok((true, out.to_owned(), String::new()));
        // (timedatectl's answer, verdict, detail)
        let cases: Vec<(TimedatectlOutput, Verdict, &str)> = vec![
            (ok("yes\n"), Verdict::Pass, "the clock is synchronised (timedatectl)"),
            (ok("no\n"), Verdict::Warn, "the clock is not synchronised"),
            (
                ok("maybe\n"),
                Verdict::Warn,
                "cannot tell whether the clock is synchronised: timedatectl said `maybe`",
            ),
            (
                Ok((
                    false,
                    String::new(),
                    "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n".to_owned(),
                )),
                Verdict::Warn,
                "cannot tell whether the clock is synchronised: timedatectl: System has not \
                 been booted with systemd as init system (PID 1). Can't operate",
            ),
            (
                Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
                Verdict::Warn,
                "cannot tell whether the clock is synchronised: timedatectl is not installed",
            ),
        ];
        for (output, verdict, detail) in cases {
            let check = ntp_check(output);
            assert_eq!((check.verdict, check.detail.as_str()), (verdict, detail));
            assert_eq!(check.what, "ntp");
        }
    }

    #[test]
    fn who_may_write() {
        const USER: (u32, u32) = (800, 800);
        // (mode, owner, wanted, permitted)
        let cases = [
            (0o750, (800, 800), 0o3, true),
            (0o550, (800, 800), 0o3, false),
            (0o750, (0, 800), 0o3, false),
            (0o770, (0, 800), 0o3, true),
            (0o755, (0, 0), 0o3, false),
            (0o755, (0, 0), 0o1, true),
            (0o700, (0, 0), 0o1, false),
            (0o777, (0, 0), 0o3, true),
            // The owner's bits count, even when the group's or others' would allow more.
            (0o077, (800, 800), 0o2, false),
            (0o707, (0, 800), 0o2, false),
            (0o640, (800, 0), 0o2, true),
            (0o600, (0, 0), 0o2, false),
        ];
        for (mode, owner, wanted, expected) in cases {
            assert_eq!(
                permitted(mode, owner, USER, wanted),
                expected,
                "{mode:o} {owner:?} wanted {wanted:o}"
            );
        }
        assert!(permitted(0o000, (5, 5), (0, 0), 0o7), "root may");
    }

    #[test]
    fn a_folder_that_cannot_be_created_or_is_a_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let options = |path: std::path::PathBuf| OutboxConfig {
            dir: path,
            ..OutboxConfig::in_state_dir(Path::new("/unused"))
        };
        let check = outbox_check(&options(dir.path().to_owned()));
        assert_eq!(check.verdict, Verdict::Pass, "{}", check.line());
        assert!(check.detail.starts_with("writable; "), "{}", check.line());
        let check = outbox_check(&options(dir.path().join("new/outbox")));
        assert_eq!(check.verdict, Verdict::Pass, "{}", check.line());
        assert!(
            check
                .detail
                .starts_with("writable (the agent creates it); "),
            "{}",
            check.line()
        );
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let check = outbox_check(&options(file));
        assert_eq!(check.verdict, Verdict::Fail, "{}", check.line());
        assert_eq!(check.detail, "exists but is not a folder");
        // Nothing is left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
