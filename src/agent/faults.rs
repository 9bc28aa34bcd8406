//! Faults the tests inject into the real binary, so that the stop's rare paths (a wedged
//! inference, a start that fails half-way) are exercised as deployed rather than trusted.
//!
//! `WATCHPOST_FAULTS` holds comma-separated faults; unset (always, outside the tests) means
//! none. Any fault set is logged as a warning at start-up, so a box never runs one unnoticed.
//! - `hang-inference-after=N`: after N frames analysed in all, every inference thread hangs
//!   inside its next inference, as a wedged ONNX Runtime call would.
//! - `refuse-camera-threads`: starting the first camera fails, once the publisher has
//!   connected (or 10 s have passed) and the outbox and the inference threads have started.

/// The environment variable the faults are read from.
pub const FAULTS_VAR: &str = "WATCHPOST_FAULTS";

/// The faults asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Faults {
    pub hang_inference_after: Option<u64>,
    pub refuse_camera_threads: bool,
}

impl Faults {
    /// The faults in [`FAULTS_VAR`]; unknown ones are logged and ignored.
    pub fn from_env() -> Faults {
        let Some(value) = std::env::var_os(FAULTS_VAR) else {
            return Faults::default();
        };
        let (faults, unknown) = Faults::parse(&value.to_string_lossy());
        for item in unknown {
            tracing::warn!("{FAULTS_VAR}: unknown fault `{item}` ignored");
        }
        if faults != Faults::default() {
            tracing::warn!("fault injection active ({FAULTS_VAR}): {faults:?}");
        }
        faults
    }

    /// The faults in `value`, and the items that are not faults.
    fn parse(value: &str) -> (Faults, Vec<String>) {
        let mut faults = Faults::default();
        let mut unknown = Vec::new();
        for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('=') {
                Some(("hang-inference-after", n)) if n.parse::<u64>().is_ok() => {
                    faults.hang_inference_after = n.parse().ok();
                }
                None if item == "refuse-camera-threads" => faults.refuse_camera_threads = true,
                _ => unknown.push(item.to_owned()),
            }
        }
        (faults, unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_faults_and_names_the_rest() {
        let cases: [(&str, Faults, &[&str]); 4] = [
            ("", Faults::default(), &[]),
            (
                "hang-inference-after=3",
                Faults {
                    hang_inference_after: Some(3),
                    refuse_camera_threads: false,
                },
                &[],
            ),
            (
                " refuse-camera-threads , hang-inference-after=0",
                Faults {
                    hang_inference_after: Some(0),
                    refuse_camera_threads: true,
                },
                &[],
            ),
            (
                "hang-inference-after=x,crash",
                Faults::default(),
                &["hang-inference-after=x", "crash"],
            ),
        ];
        for (value, expected, unknown) in cases {
            let (faults, rest) = Faults::parse(value);
            assert_eq!(faults, expected, "{value:?}");
            assert_eq!(rest, unknown, "{value:?}");
        }
    }
}
