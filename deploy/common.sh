# Shared by the scripts in deploy/ that cross-build, package and test (sourced, not run): where
# things live and how to get them.
#
#   WATCHPOST_CACHE_DIR        downloads and the sysroot, kept between runs (default
#                              /var/cache/watchpost-build; not /var/cache/watchpost, which
#                              belongs to the installed package and goes on purge)
#   WATCHPOST_SYSROOT          arm64 sysroot (default $WATCHPOST_CACHE_DIR/sysroot-arm64)
#   WATCHPOST_ORT_VERSION      ONNX Runtime version (default 1.31.1, as deploy/setup.sh)
#   CARGO_TARGET_DIR           cargo's target dir for the cross build (default target/aarch64,
#                              apart from the native build's so neither invalidates the other)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CROSS_TARGET=aarch64-unknown-linux-gnu
CROSS_TRIPLE=aarch64-linux-gnu
ORT_VERSION="${WATCHPOST_ORT_VERSION:-1.31.1}"
CACHE_DIR="${WATCHPOST_CACHE_DIR:-/var/cache/watchpost-build}"
SYSROOT="${WATCHPOST_SYSROOT:-$CACHE_DIR/sysroot-arm64}"
CROSS_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target/aarch64}"
ARM64_BINARY="$CROSS_TARGET_DIR/$CROSS_TARGET/release/watchpost"
# Minimum qemu-user-static major version: bookworm's 7.2 segfaults inside ONNX Runtime's cpuinfo.
QEMU_MIN_MAJOR=10

# The arm64 packages of the sysroot. Build: headers and link libraries (only the three OpenCV
# modules watchpost uses, not libopencv-dev, which pulls VTK and Qt). Run under qemu: the
# GStreamer plug-ins the pipeline templates, the demo's RTSP server and the tests need. Their
# dependencies come along. Changing this list rebuilds the sysroot (the stamp holds it).
SYSROOT_PACKAGES=(
  libc6-dev libstdc++-12-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav
)
SYSROOT_STAMP="$SYSROOT/.watchpost-sysroot"

sysroot_stamp_text() {
  printf 'bookworm arm64 variant=extract\n%s\n' "${SYSROOT_PACKAGES[*]}"
}

sysroot_ready() {
  [ -f "$SYSROOT_STAMP" ] && [ "$(cat "$SYSROOT_STAMP")" = "$(sysroot_stamp_text)" ]
}

# The sysroot's library folders, as seen from inside it. blas/ and lapack/ because an extract
# sysroot runs no maintainer scripts, so the update-alternatives links (libblas.so.3,
# liblapack.so.3, needed by libopencv_core and by avdec_h264 through libavcodec) do not exist.
SYSROOT_LIB_DIRS=(
  /lib/$CROSS_TRIPLE /usr/lib/$CROSS_TRIPLE
  /usr/lib/$CROSS_TRIPLE/blas /usr/lib/$CROSS_TRIPLE/lapack
)

qemu_major() {
  local v
  v=$(qemu-aarch64-static --version 2>/dev/null | sed -n 's/^qemu-aarch64 version \([0-9]*\)\..*/\1/p')
  printf '%s' "${v:-0}"
}

debian_arch() {
  case "$1" in
    x86_64|amd64) echo amd64 ;;
    aarch64|arm64) echo arm64 ;;
    *) return 1 ;;
  esac
}

# The ONNX Runtime of architecture ARCH (amd64 or arm64), out of the official PyPI wheel, with
# its licence files: ort_dir ARCH prints the folder; ensure_ort_library ARCH fills it if needed.
ort_dir() { printf '%s/onnxruntime-%s-%s' "$CACHE_DIR" "$ORT_VERSION" "$1"; }

ensure_ort_library() {
  local arch=$1 dir platform tmp
  dir=$(ort_dir "$arch")
  if [ -f "$dir/libonnxruntime.so.$ORT_VERSION" ] && [ -f "$dir/LICENSE" ]; then
    return 0
  fi
  case "$arch" in
    amd64) platform=manylinux_2_28_x86_64 ;;
    arm64) platform=manylinux_2_28_aarch64 ;;
    *) echo "no ONNX Runtime wheel for $arch" >&2; return 1 ;;
  esac
  mkdir -p "$CACHE_DIR" 2>/dev/null && [ -w "$CACHE_DIR" ] || {
    echo "cannot write $CACHE_DIR: run as root or set WATCHPOST_CACHE_DIR" >&2; return 1; }
  tmp=$(mktemp -d)
  echo "downloading onnxruntime==$ORT_VERSION ($platform) from PyPI" >&2
  if python3 -m pip download -q --no-deps --only-binary=:all: --platform "$platform" \
      --python-version 3.11 -d "$tmp" "onnxruntime==$ORT_VERSION" \
    && python3 - "$tmp" "$ORT_VERSION" <<'PY'
import glob, os, sys, zipfile
tmp, version = sys.argv[1], sys.argv[2]
wanted = {f"onnxruntime/capi/libonnxruntime.so.{version}", "onnxruntime/LICENSE",
          "onnxruntime/ThirdPartyNotices.txt"}
out = os.path.join(tmp, "out")
os.makedirs(out)
with zipfile.ZipFile(glob.glob(os.path.join(tmp, "onnxruntime-*.whl"))[0]) as z:
    found = wanted & set(z.namelist())
    if found != wanted:
        sys.exit(f"the wheel lacks {sorted(wanted - found)}")
    for name in wanted:
        with open(os.path.join(out, os.path.basename(name)), "wb") as f:
            f.write(z.read(name))
PY
  then
    if ! { rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" && cp "$tmp"/out/* "$dir.tmp"/ \
      && chmod 0644 "$dir.tmp"/* && rm -rf "$dir" && mv "$dir.tmp" "$dir"; }; then
      rm -rf "$tmp" "$dir.tmp"
      echo "could not put onnxruntime==$ORT_VERSION for $arch into $dir" >&2
      return 1
    fi
    rm -rf "$tmp"
  else
    rm -rf "$tmp"
    echo "could not get onnxruntime==$ORT_VERSION for $arch from PyPI" >&2
    return 1
  fi
}
