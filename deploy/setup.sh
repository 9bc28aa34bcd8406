#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 (bookworm) machine for building, running and testing
# watchpost: system packages and the ONNX Runtime shared library.
#
#   deploy/setup.sh            # as root, or through sudo (it re-runs itself with sudo)
#
# The ONNX Runtime library comes from the PyPI wheel (no other download is needed) and is
# installed to $WATCHPOST_ORT_DIR (default /opt/watchpost/onnxruntime), which watchpost looks
# in by default. Running the script again changes nothing that is already in place.
set -euo pipefail

ORT_VERSION="${WATCHPOST_ORT_VERSION:-1.31.1}"
ORT_DIR="${WATCHPOST_ORT_DIR:-/opt/watchpost/onnxruntime}"

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (it installs system packages)"
  log "not root: re-running with sudo"
  exec sudo --preserve-env=WATCHPOST_ORT_VERSION,WATCHPOST_ORT_DIR bash "$0" "$@"
fi
command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"

PACKAGES=(
  build-essential pkg-config ca-certificates openssl curl unzip python3 python3-pip
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp gstreamer1.0-tools
  libopencv-dev clang libclang-dev mosquitto mosquitto-clients
  tmux  # the interactive `config init` test drives a real terminal
  chromium chromium-driver  # the technician's page is tested in a real browser (tests only; about 370 MB)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${#missing[@]} system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "system packages already installed"
fi

# ONNX Runtime: the shared library out of the official PyPI wheel for this architecture.
lib="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [ -f "$lib" ]; then
  log "ONNX Runtime $ORT_VERSION already at $lib"
else
  case "$(uname -m)" in
    x86_64) platform=manylinux_2_28_x86_64 ;;
    aarch64) platform=manylinux_2_28_aarch64 ;;
    *) die "no ONNX Runtime wheel for $(uname -m)" ;;
  esac
  py=$(command -v python3) || die "python3 is needed to download the ONNX Runtime wheel"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  log "downloading onnxruntime==$ORT_VERSION ($platform) from PyPI"
  "$py" -m pip download -q --no-deps --only-binary=:all: --platform "$platform" \
    --python-version 3.11 -d "$tmp" "onnxruntime==$ORT_VERSION" \
    || die "could not download the onnxruntime wheel from PyPI"
  wheel=$(ls "$tmp"/onnxruntime-*.whl)
  "$py" - "$wheel" "$tmp/x" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if "/capi/libonnxruntime.so" in n:
            z.extract(n, sys.argv[2])
PY
  so=$(find "$tmp/x" -name "libonnxruntime.so.$ORT_VERSION" | head -n1)
  [ -n "$so" ] || die "the wheel holds no libonnxruntime.so.$ORT_VERSION"
  install -d "$ORT_DIR"
  install -m 0644 "$so" "$lib"
  log "installed $lib"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"

command -v cargo >/dev/null || log "note: no Rust toolchain found; install one with rustup (1.95 or newer) to build watchpost"
log "done"
