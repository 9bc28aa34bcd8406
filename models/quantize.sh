#!/usr/bin/env bash
# Make models/nanodet-m-416-int8.onnx from the committed fp32 models/nanodet-m-416.onnx.
#
# FOR MAINTAINERS ONLY. Set-up, CI and the tests use the committed int8 model; nothing runs
# this script automatically.
#
# What it does (see models/PROVENANCE.md):
#   1. builds watchpost (cargo build --release) unless $WATCHPOST names a binary, and runs its
#      hidden `model-inputs` command on the shipped clip tests/data/sample-clip.mp4: every
#      12th frame from frame 5, skipping frames 160-200 and 220-260 (the test frames
#      street-03 and street-01 are clip frames 180 and 240), decoded by GStreamer to YUV
#      4:2:0 and pre-processed by the agent's own code: the calibration tensors;
#   2. makes a throw-away Python venv with the pinned onnxruntime / onnx / numpy;
#   3. runs models/quantize.py: ONNX Runtime static quantization, QDQ format, per-channel
#      int8 weights, uint8 activations, MinMax calibration, convolutions (and their
#      activations) only;
#   4. compares the sha256 of the result with models/nanodet-m-416-int8.onnx.sha256.
#
# Byte-reproducible on x86_64 with the pins below: two runs give the same sha256. (The
# calibration decode uses avdec_h264, whose output is exact; a different GStreamer/libav may
# change the calibration tensors and hence the file. If the sha256 differs, the script
# compares the two models' outputs on the calibration frames and reports the largest
# difference; the tests' accuracy gate is the judge of a new file.)
#
# Usage: models/quantize.sh [--update] [--batch-study]
#   --update        copy the result over models/nanodet-m-416-int8.onnx and rewrite its .sha256
#   --batch-study   also time batches of 1, 2 and 4 frames in one run for both models (with
#                   their batch dimension freed), on one thread: the figures in the README
#
# Needs: bash, cargo (or $WATCHPOST), python3 with venv, sha256sum, GStreamer with
# avdec_h264 (deploy/setup.sh), network access to PyPI. Takes about a minute.
set -euo pipefail

PY_PINS=(
  "onnxruntime==1.31.1"
  "onnx==1.23.2"
  "numpy==2.2.6"
)
EVERY=4
OFFSET=1
SKIP=160-200,220-260

update=0
study=0
for arg in "$@"; do
  case "$arg" in
    --update) update=1 ;;
    --batch-study) study=1 ;;
    *) echo "usage: $0 [--update] [--batch-study]" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
fp32="$here/nanodet-m-416.onnx"
model="$here/nanodet-m-416-int8.onnx"
sumfile="$model.sha256"

work="$(mktemp -d -t watchpost-quantize.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "== work dir: $work"

(cd "$here" && sha256sum -c --quiet nanodet-m-416.onnx.sha256)

if [[ -z "${WATCHPOST:-}" ]]; then
  echo "== cargo build --release"
  (cd "$repo" && cargo build --release --quiet)
  WATCHPOST="$repo/target/release/watchpost"
fi

echo "== calibration tensors from tests/data/sample-clip.mp4"
"$WATCHPOST" model-inputs "$repo/tests/data/sample-clip.mp4" \
  --every "$EVERY" --offset "$OFFSET" --skip "$SKIP" \
  --model "$here/nanodet-m-416.toml" --out "$work/calibration.npy"

echo "== throw-away venv"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check "${PY_PINS[@]}"

echo "== quantize"
out="$work/nanodet-m-416-int8.onnx"
"$py" "$here/quantize.py" quantize "$fp32" "$work/calibration.npy" "$out"

new_sum="$(sha256sum "$out" | cut -d' ' -f1)"
echo "sha256 of this run     : $new_sum"

if [[ $study -eq 1 ]]; then
  echo "== batch study (one thread)"
  "$py" "$here/quantize.py" batch-study "$fp32" "$out"
fi

if [[ $update -eq 1 ]]; then
  cp "$out" "$model"
  (cd "$here" && sha256sum nanodet-m-416-int8.onnx >nanodet-m-416-int8.onnx.sha256)
  echo "== updated $model and $sumfile; run the accuracy gate (cargo test --test detect_frames)"
  exit 0
fi

want_sum="$(cut -d' ' -f1 "$sumfile")"
echo "sha256 recorded in repo: $want_sum"
(cd "$here" && sha256sum -c --quiet nanodet-m-416-int8.onnx.sha256) || {
  echo "!! the committed model does not match its own .sha256 file" >&2
  exit 1
}
if [[ "$new_sum" == "$want_sum" ]]; then
  echo "== byte-identical to the committed model"
  exit 0
fi

echo "== sha256 differs: comparing outputs on the calibration frames"
"$py" - "$model" "$out" "$work/calibration.npy" <<'PY'
import sys
import numpy as np
import onnxruntime as ort

a_path, b_path, frames = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
sa = ort.InferenceSession(a_path, providers=["CPUExecutionProvider"])
sb = ort.InferenceSession(b_path, providers=["CPUExecutionProvider"])
worst = 0.0
for i in range(frames.shape[0]):
    x = frames[i : i + 1]
    for ra, rb in zip(sa.run(None, {"input_1:0": x}), sb.run(None, {"input_1:0": x})):
        worst = max(worst, float(np.abs(ra - rb).max()))
print(f"   largest output difference over {frames.shape[0]} frames: {worst:.4g}")
sys.exit(1)
PY
