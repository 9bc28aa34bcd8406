//! `watchpost model-inputs CLIP --out FILE.npy` (hidden, for maintainers): the model input
//! tensors of chosen frames of a video file, made exactly as the agent makes them. The
//! frames are decoded to YUV 4:2:0 by GStreamer (`avdec_h264`, as the `software` template
//! does) and go through the same one-pass pre-processing as a camera's frames. They are the
//! calibration data of `models/quantize.sh`, so that the int8 model's ranges are measured on
//! what it will really be given.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use ndarray::Array4;

use crate::detect::preprocess::Preprocessor;
use crate::detect::{BUNDLED_FP32, ModelSpec, find_bundled_manifest};
use crate::ingest::{frame_from_sample, init_gstreamer};

#[derive(Debug, Args)]
#[command(
    about = "Write the model input tensors of frames of a video file (calibration data; for maintainers)",
    after_help = "Example:\n  watchpost model-inputs tests/data/sample-clip.mp4 --every 12 --skip 160-200 --out calibration.npy"
)]
pub(crate) struct ModelInputsArgs {
    /// An MP4 file with H.264 video.
    #[arg(value_name = "CLIP")]
    clip: PathBuf,

    /// Take every N-th frame (0-based frame index divisible by N after --offset).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    every: u32,

    /// The first frame taken.
    #[arg(long, value_name = "N", default_value_t = 0)]
    offset: u32,

    /// Frame ranges never taken, `A-B` (inclusive), comma-separated: the frames tests check.
    #[arg(long, value_name = "A-B,...", value_delimiter = ',', value_parser = parse_range)]
    skip: Vec<(u32, u32)>,

    /// The model manifest whose input is made (default: the bundled fp32 model).
    #[arg(long, value_name = "MANIFEST")]
    model: Option<PathBuf>,

    /// Output: a NumPy `.npy` file, float32, shape [frames, ...the model's input shape].
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

fn parse_range(value: &str) -> Result<(u32, u32), String> {
    let (a, b) = value
        .split_once('-')
        .ok_or_else(|| format!("`{value}` is not a range A-B"))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{value}` is not a range A-B of frame numbers"))
    };
    let (a, b) = (parse(a)?, parse(b)?);
    if a > b {
        return Err(format!("`{value}`: the range's start is after its end"));
    }
    Ok((a, b))
}

/// Whether frame `index` is taken.
fn taken(index: u32, args: &ModelInputsArgs) -> bool {
    index >= args.offset
        && (index - args.offset).is_multiple_of(args.every)
        && !args.skip.iter().any(|&(a, b)| (a..=b).contains(&index))
}

pub(crate) fn run(args: ModelInputsArgs) -> anyhow::Result<ExitCode> {
    let manifest = match &args.model {
        Some(path) => path.clone(),
        None => find_bundled_manifest(BUNDLED_FP32)?,
    };
    let spec = ModelSpec::load(&manifest)?;
    if !args.clip.is_file() {
        bail!("{}: no such file", args.clip.display());
    }
    init_gstreamer()?;
    let pipeline = gst::parse::launch(
        "filesrc name=file ! qtdemux ! h264parse ! avdec_h264 \
         ! appsink name=sink sync=false caps=video/x-raw,format=I420",
    )
    .context("building the decoding pipeline")?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow!("not a pipeline"))?;
    let file = pipeline.by_name("file").context("no filesrc")?;
    file.set_property("location", args.clip.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .context("no appsink")?;
    pipeline
        .set_state(gst::State::Playing)
        .with_context(|| format!("{}: cannot be played", args.clip.display()))?;

    let mut preprocessor = Preprocessor::new();
    let mut tensor: Array4<f32> = spec.input.new_tensor();
    let mut data: Vec<f32> = Vec::new();
    let mut count = 0usize;
    let mut index = 0u32;
    let result = loop {
        let Ok(sample) = sink.pull_sample() else {
            // End of stream, or an error the bus explains.
            let bus = pipeline.bus().context("no bus")?;
            match bus.pop_filtered(&[gst::MessageType::Error]) {
                Some(message) => match message.view() {
                    gst::MessageView::Error(e) => {
                        break Err(anyhow!("{}: {}", args.clip.display(), e.error()));
                    }
                    _ => break Ok(()),
                },
                None => break Ok(()),
            }
        };
        if taken(index, &args) {
            let (frame, _) =
                frame_from_sample(&sample).map_err(|e| anyhow!("frame {index}: {e}"))?;
            preprocessor
                .run_view(&frame.view().into(), &spec.input, &mut tensor)
                .with_context(|| format!("frame {index}"))?;
            data.extend(tensor.iter());
            count += 1;
        }
        index += 1;
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    if count == 0 {
        bail!("{}: no frame taken of {index}", args.clip.display());
    }
    let mut shape = vec![count];
    shape.extend_from_slice(&tensor.shape()[1..]);
    write_npy(&args.out, &shape, &data)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {count} of {index} frames, shape {shape:?}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A NumPy version 1.0 `.npy` file: float32, little-endian, C order.
fn write_npy(path: &std::path::Path, shape: &[usize], data: &[f32]) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(b"\x93NUMPY\x01\x00")?;
    let length = u16::try_from(header.len()).map_err(std::io::Error::other)?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(header.as_bytes())?;
    for value in data {
        out.write_all(&value.to_le_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_or_refused() {
        assert_eq!(parse_range("160-200"), Ok((160, 200)));
        assert_eq!(parse_range(" 5 - 5"), Ok((5, 5)));
        for bad in ["160", "a-b", "9-3", "-4"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_are_taken_on_the_pace_outside_the_skipped_ranges() {
        let args = ModelInputsArgs {
            clip: PathBuf::new(),
            every: 12,
            offset: 5,
            skip: vec![(160, 200)],
            model: None,
            out: PathBuf::new(),
        };
        let taken: Vec<u32> = (0..220).filter(|&i| taken(i, &args)).collect();
        assert_eq!(
            taken,
            [5, 17, 29, 41, 53, 65, 77, 89, 101, 113, 125, 137, 149, 209]
        );
    }

    #[test]
    fn npy_header_is_aligned_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        write_npy(&path, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        assert!(header.ends_with('\n'));
        assert_eq!(bytes.len(), 10 + header_len + 6 * 4);
        assert_eq!(
            &bytes[10 + header_len..10 + header_len + 4],
            &1.0f32.to_le_bytes()
        );
    }
}
