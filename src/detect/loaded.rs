//! The one way to get a detector from what a configuration or a command asks for: ONNX
//! Runtime, the model chosen for this CPU, its manifest checked. The agent, `detect`,
//! `camera probe` and `doctor` all load through [`LoadedModel`].

use std::path::Path;

use super::{
    ChosenModel, CpuFeatures, DetectError, Detector, DetectorOptions, ModelChoice, ModelSpec,
    Runtime, choose_model,
};

/// A model ready to make detectors from.
#[derive(Debug)]
pub struct LoadedModel {
    pub runtime: Runtime,
    /// Which manifest, and why.
    pub chosen: ChosenModel,
    pub spec: ModelSpec,
}

impl LoadedModel {
    /// ONNX Runtime from `ort_lib` (or the default search), then the model `choice` picks on a
    /// CPU with `cpu`'s features, its manifest read and checked.
    ///
    /// # Errors
    /// [`DetectError::Runtime`] when ONNX Runtime cannot be used; otherwise the model cannot be
    /// found or its manifest is not valid.
    pub fn load(
        ort_lib: Option<&Path>,
        choice: &ModelChoice,
        cpu: &CpuFeatures,
    ) -> Result<LoadedModel, DetectError> {
        let runtime = Runtime::load(ort_lib)?;
        let chosen = choose_model(choice, cpu)?;
        let spec = ModelSpec::load(&chosen.manifest)?;
        Ok(LoadedModel {
            runtime,
            chosen,
            spec,
        })
    }

    /// A detector (its own ONNX Runtime session) for this model.
    ///
    /// # Errors
    /// The model file cannot be loaded, or does not match its manifest.
    pub fn detector(&self, options: &DetectorOptions) -> Result<Detector, DetectError> {
        Detector::from_spec(&self.runtime, self.spec.clone(), options)
    }
}
