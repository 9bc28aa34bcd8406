//! Which model runs: a bundled model by name, a manifest path, or — by default — the int8
//! model where the CPU has integer dot-product instructions and the fp32 model elsewhere.
//!
//! ONNX Runtime's quantized convolutions are fast where the CPU multiplies and adds 8-bit
//! integers in one instruction (x86 AVX-512 VNNI or AVX-VNNI, Armv8.2 `sdot`). Without them
//! (a Raspberry Pi 4's Cortex-A72, older x86) the int8 model may not pay, so `auto` keeps fp32.

use std::path::{Path, PathBuf};

use super::DetectError;

/// The bundled fp32 model (the reference the int8 model is checked against).
pub const BUNDLED_FP32: &str = "nanodet-m-416";
/// The bundled int8 model, quantized from the fp32 one by `models/quantize.sh`.
pub const BUNDLED_INT8: &str = "nanodet-m-416-int8";
/// Every bundled model, by name (its manifest is `<name>.toml` in the models folder).
pub const BUNDLED_MODELS: [&str; 2] = [BUNDLED_FP32, BUNDLED_INT8];

/// What `[detection] model` (or `--model`) asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ModelChoice {
    /// Nothing said: int8 where the CPU has dot-product instructions, else fp32.
    #[default]
    Auto,
    /// A bundled model by name (one of [`BUNDLED_MODELS`]).
    Bundled(&'static str),
    /// A manifest file of one's own model.
    Manifest(PathBuf),
}

impl ModelChoice {
    /// Reads a value as written by a user: a bundled model's name, `auto`, or a manifest
    /// path (anything with a `/` or ending in `.toml`). Relative paths are joined to `base`.
    ///
    /// # Errors
    /// A bare word that names no bundled model; the message lists the names.
    pub fn parse(value: &str, base: &Path) -> Result<ModelChoice, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("must not be empty".to_owned());
        }
        if value == "auto" {
            return Ok(ModelChoice::Auto);
        }
        if let Some(name) = BUNDLED_MODELS.iter().find(|name| **name == value) {
            return Ok(ModelChoice::Bundled(name));
        }
        if value.contains('/') || value.ends_with(".toml") {
            return Ok(ModelChoice::Manifest(base.join(value)));
        }
        Err(format!(
            "`{value}` is neither a bundled model ({}, or auto) nor a manifest path (a .toml file)",
            BUNDLED_MODELS.join(", ")
        ))
    }

    /// The value as it is written in a configuration file.
    pub fn to_config_value(&self) -> Option<String> {
        match self {
            ModelChoice::Auto => None,
            ModelChoice::Bundled(name) => Some((*name).to_owned()),
            ModelChoice::Manifest(path) => Some(path.display().to_string()),
        }
    }
}

/// The CPU features that decide the default model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuFeatures {
    /// The architecture (`x86_64`, `aarch64`, ...).
    pub arch: &'static str,
    /// The SIMD features found that matter to ONNX Runtime's kernels, in a fixed order.
    pub found: Vec<&'static str>,
    /// The integer dot-product instruction set found, if any.
    pub dot_product: Option<&'static str>,
}

impl CpuFeatures {
    /// The features of the CPU this process runs on.
    pub fn detect() -> CpuFeatures {
        let (found, dot_product) = simd_features();
        CpuFeatures {
            arch: std::env::consts::ARCH,
            found,
            dot_product,
        }
    }

    /// One line for people: `x86_64: avx2 fma avx512f avx512vnni`.
    pub fn describe(&self) -> String {
        if self.found.is_empty() {
            format!("{}: no SIMD features of note", self.arch)
        } else {
            format!("{}: {}", self.arch, self.found.join(" "))
        }
    }
}

/// The SIMD features found and the dot-product set among them.
#[cfg(target_arch = "x86_64")]
fn simd_features() -> (Vec<&'static str>, Option<&'static str>) {
    let checks: [(&'static str, bool); 5] = [
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        (
            "avx512vnni",
            std::arch::is_x86_feature_detected!("avx512vnni"),
        ),
        ("avxvnni", std::arch::is_x86_feature_detected!("avxvnni")),
    ];
    let found: Vec<_> = checks
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    let dot_product = ["avx512vnni", "avxvnni"]
        .into_iter()
        .find(|f| found.contains(f));
    (found, dot_product)
}

#[cfg(target_arch = "aarch64")]
fn simd_features() -> (Vec<&'static str>, Option<&'static str>) {
    let checks: [(&'static str, bool); 3] = [
        ("neon", std::arch::is_aarch64_feature_detected!("neon")),
        (
            "dotprod",
            std::arch::is_aarch64_feature_detected!("dotprod"),
        ),
        ("i8mm", std::arch::is_aarch64_feature_detected!("i8mm")),
    ];
    let found: Vec<_> = checks
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    let dot_product = found.contains(&"dotprod").then_some("dotprod");
    (found, dot_product)
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn simd_features() -> (Vec<&'static str>, Option<&'static str>) {
    (Vec::new(), None)
}

/// The model a choice comes to on this machine, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenModel {
    /// The manifest to load.
    pub manifest: PathBuf,
    /// Why this model: `configured`, or what `auto` found.
    pub reason: String,
}

/// The bundled model `auto` picks for a CPU, with the reason in words.
pub fn auto_model(cpu: &CpuFeatures) -> (&'static str, String) {
    match cpu.dot_product {
        Some(feature) => (
            BUNDLED_INT8,
            format!("auto: this CPU has integer dot-product instructions ({feature})"),
        ),
        None => (
            BUNDLED_FP32,
            "auto: this CPU has no integer dot-product instructions, where int8 may not pay"
                .to_owned(),
        ),
    }
}

/// Resolves a choice to a manifest on this machine.
///
/// # Errors
/// A bundled model whose manifest is not installed (the message lists where it was looked
/// for).
pub fn choose_model(choice: &ModelChoice, cpu: &CpuFeatures) -> Result<ChosenModel, DetectError> {
    match choice {
        ModelChoice::Auto => {
            let (name, reason) = auto_model(cpu);
            Ok(ChosenModel {
                manifest: super::find_bundled_manifest(name)?,
                reason,
            })
        }
        ModelChoice::Bundled(name) => Ok(ChosenModel {
            manifest: super::find_bundled_manifest(name)?,
            reason: "configured".to_owned(),
        }),
        ModelChoice::Manifest(path) => Ok(ChosenModel {
            manifest: path.clone(),
            reason: "configured".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_names_or_paths() {
        let base = Path::new("/etc/watchpost");
        let table: [(&str, Result<ModelChoice, &str>); 7] = [
            ("auto", Ok(ModelChoice::Auto)),
            ("nanodet-m-416", Ok(ModelChoice::Bundled(BUNDLED_FP32))),
            (
                " nanodet-m-416-int8 ",
                Ok(ModelChoice::Bundled(BUNDLED_INT8)),
            ),
            (
                "models/mine.toml",
                Ok(ModelChoice::Manifest(PathBuf::from(
                    "/etc/watchpost/models/mine.toml",
                ))),
            ),
            (
                "/opt/m.toml",
                Ok(ModelChoice::Manifest(PathBuf::from("/opt/m.toml"))),
            ),
            ("yolo", Err("`yolo` is neither a bundled model")),
            ("", Err("must not be empty")),
        ];
        for (value, expected) in table {
            let got = ModelChoice::parse(value, base);
            match (expected, got) {
                (Ok(want), Ok(got)) => assert_eq!(got, want, "{value}"),
                (Err(want), Err(got)) => assert!(got.contains(want), "{value}: {got}"),
                (want, got) => panic!("{value}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn auto_takes_int8_only_with_dot_product_instructions() {
        let cpu = |dot_product| CpuFeatures {
            arch: "x86_64",
            found: vec![],
            dot_product,
        };
        assert_eq!(auto_model(&cpu(Some("avx512vnni"))).0, BUNDLED_INT8);
        assert_eq!(auto_model(&cpu(Some("dotprod"))).0, BUNDLED_INT8);
        assert_eq!(auto_model(&cpu(None)).0, BUNDLED_FP32);
        assert!(auto_model(&cpu(None)).1.contains("no integer dot-product"));
    }

    #[test]
    fn the_config_value_round_trips() {
        let base = Path::new("/");
        for choice in [
            ModelChoice::Bundled(BUNDLED_INT8),
            ModelChoice::Manifest(PathBuf::from("/opt/m.toml")),
        ] {
            let value = choice.to_config_value().unwrap();
            assert_eq!(ModelChoice::parse(&value, base).unwrap(), choice);
        }
        assert_eq!(ModelChoice::Auto.to_config_value(), None);
    }
}
