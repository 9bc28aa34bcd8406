//! How commands report: configuration errors, sizes and durations, the same everywhere.

use std::process::ExitCode;

use crate::config::ConfigError;

/// Prints a configuration error on stderr (every problem on its own line as
/// `FILE:LINE: KEY: MESSAGE`; an unreadable file as `FILE: cannot read: CAUSE`) and returns
/// the exit code for a bad configuration (2). Used by `config validate` and `run`.
pub(crate) fn report_config_error(e: &ConfigError) -> ExitCode {
    match e {
        ConfigError::Invalid { .. } => eprintln!("{e}"),
        ConfigError::Read { source, .. } => {
            eprintln!("{e}: {}", super::one_line(&source.to_string()));
        }
    }
    ExitCode::from(super::EXIT_USAGE)
}

/// `512 B`, `4.0 KiB`, `45.2 MiB`, `1.3 GiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `0.4 s`, `45 s`, `3 min 12 s`, `2 h 03 min`, `3 d 4 h`.
pub(crate) fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".to_owned();
    }
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}
