#!/usr/bin/env bash
# Runs the arm64 build of watchpost on this x86_64 machine under qemu-user-static (10 or newer),
# with the arm64 sysroot's libraries and GStreamer plug-ins and the arm64 ONNX Runtime.
#
#   deploy/arm64-run.sh --version
#   deploy/arm64-run.sh detect --format json tests/data/frames/street-01.jpg
#   WATCHPOST_ARM64_BINARY=path/to/watchpost deploy/arm64-run.sh ...   # another arm64 binary
#
# Made by deploy/cross-setup.sh (sysroot, qemu, ONNX Runtime) and deploy/cross-build.sh (the
# binary). Slow: every instruction is emulated (one inference takes 10 to 30 s instead of
# 40 ms). The emulated CPU is a Cortex-A72 (Raspberry Pi 4, RK3399) unless $QEMU_CPU names
# another: qemu's default `max` CPU offers SVE and SME, which ONNX Runtime then uses and qemu
# emulates some fifteen times slower still.
set -euo pipefail
source "$(dirname "$0")/common.sh"

die() { printf 'arm64-run: error: %s\n' "$*" >&2; exit 1; }

binary="${WATCHPOST_ARM64_BINARY:-$ARM64_BINARY}"
[ -x "$binary" ] || die "no arm64 binary at $binary: run deploy/cross-build.sh"
command -v qemu-aarch64-static >/dev/null || die "qemu-aarch64-static not found: run deploy/cross-setup.sh"
[ "$(qemu_major)" -ge "$QEMU_MIN_MAJOR" ] \
  || die "qemu-aarch64-static is $(qemu_major).x; $QEMU_MIN_MAJOR or newer is needed (7.2 crashes inside ONNX Runtime): run deploy/cross-setup.sh"
sysroot_ready || die "no arm64 sysroot at $SYSROOT: run deploy/cross-setup.sh"
ort_lib="$(ort_dir arm64)/libonnxruntime.so.$ORT_VERSION"
[ -f "$ort_lib" ] || die "no arm64 ONNX Runtime at $ort_lib: run deploy/cross-setup.sh"

# The guest's dynamic loader finds the sysroot through -L; the library folders are listed
# explicitly because an extract sysroot has no ld.so.cache and no blas/lapack alternatives
# links (libavcodec, and so avdec_h264, needs them).
lib_path=""
for d in "${SYSROOT_LIB_DIRS[@]}"; do lib_path+="${lib_path:+:}$SYSROOT$d"; done
# GStreamer: the arm64 plug-ins, scanned in-process (the scanner helper is an arm64 program
# that the kernel could only start through binfmt_misc), into a registry of their own.
registry_dir="${WATCHPOST_ARM64_GST_REGISTRY_DIR:-${TMPDIR:-/tmp}/watchpost-arm64-gst-$(id -u)}"
mkdir -p "$registry_dir"

exec env \
  QEMU_CPU="${QEMU_CPU:-cortex-a72}" \
  LD_LIBRARY_PATH="$lib_path" \
  GST_PLUGIN_SYSTEM_PATH_1_0="$SYSROOT/usr/lib/$CROSS_TRIPLE/gstreamer-1.0" \
  GST_PLUGIN_PATH_1_0= \
  GST_REGISTRY_FORK=no \
  GST_REGISTRY_1_0="$registry_dir/registry.aarch64.bin" \
  WATCHPOST_ORT_LIB="${WATCHPOST_ORT_LIB:-$ort_lib}" \
  qemu-aarch64-static -L "$SYSROOT" "$binary" "$@"
