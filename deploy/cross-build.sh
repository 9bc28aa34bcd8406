#!/usr/bin/env bash
# Cross-builds the release binary for arm64 edge boxes (aarch64-unknown-linux-gnu) on an x86_64
# Debian 12 machine, against an arm64 Debian sysroot (no dpkg multiarch: it breaks the native
# -dev packages).
#
#   deploy/cross-build.sh            # checks the prerequisites, then builds
#   deploy/cross-build.sh --setup    # first installs what is missing (deploy/cross-setup.sh,
#                                    # as root or through sudo)
#   deploy/cross-build.sh --check    # only says what is missing
#
# The binary: target/aarch64/aarch64-unknown-linux-gnu/release/watchpost (or under
# $CARGO_TARGET_DIR). Run it here with deploy/arm64-run.sh. Extra arguments after `--` go to
# cargo (for example `-- --bin watchpost`).
set -euo pipefail
source "$(dirname "$0")/common.sh"

log() { printf 'cross-build: %s\n' "$*" >&2; }
die() { printf 'cross-build: error: %s\n' "$*" >&2; exit 1; }

mode=build
cargo_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --setup) mode=setup ;;
    --check) mode=check ;;
    --) shift; cargo_args=("$@"); break ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done

if [ "$mode" = setup ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash "$REPO_ROOT/deploy/cross-setup.sh"
  else
    command -v sudo >/dev/null || die "--setup installs system packages: run it as root"
    sudo --preserve-env=WATCHPOST_CACHE_DIR,WATCHPOST_SYSROOT,WATCHPOST_ORT_VERSION \
      bash "$REPO_ROOT/deploy/cross-setup.sh"
  fi
fi

# Everything the build needs, checked up front so that nothing fails deep inside cargo.
missing=()
[ "$(uname -m)" = x86_64 ] || missing+=("an x86_64 build machine (this is $(uname -m))")
for tool in $CROSS_TRIPLE-gcc $CROSS_TRIPLE-g++; do
  command -v "$tool" >/dev/null || missing+=("$tool (apt: gcc-$CROSS_TRIPLE g++-$CROSS_TRIPLE)")
done
command -v pkg-config >/dev/null || missing+=("pkg-config (apt: pkg-config)")
command -v clang >/dev/null || missing+=("clang (apt: clang libclang-dev; opencv's binding generator)")
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=("libclang (apt: libclang-dev)")
command -v cargo >/dev/null || missing+=("cargo (a Rust toolchain 1.95 or newer, from rustup)")
sysroot_ready || missing+=("the arm64 sysroot at $SYSROOT (made by deploy/cross-setup.sh)")
if command -v rustup >/dev/null; then
  if ! rustup target list --installed 2>/dev/null | grep -qx "$CROSS_TARGET"; then
    if [ "$mode" = check ]; then
      missing+=("the Rust target $CROSS_TARGET (rustup target add $CROSS_TARGET)")
    else
      log "adding the Rust target $CROSS_TARGET"
      rustup target add "$CROSS_TARGET" >&2 \
        || missing+=("the Rust target $CROSS_TARGET: \`rustup target add $CROSS_TARGET\` failed (no network to the Rust distribution server?)")
    fi
  fi
elif command -v rustc >/dev/null \
  && ! [ -d "$(rustc --print sysroot)/lib/rustlib/$CROSS_TARGET" ]; then
  missing+=("the Rust standard library for $CROSS_TARGET (no rustup here: add it to your toolchain)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  printf 'cross-build: missing:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  printf 'cross-build: run `deploy/cross-build.sh --setup` (or deploy/cross-setup.sh as root) to install them\n' >&2
  exit 1
fi
if [ "$mode" = check ]; then
  log "all prerequisites present (sysroot $SYSROOT)"
  exit 0
fi

# The toolchain: Debian's cross gcc as compiler and linker, the sysroot for headers and
# libraries. Target-scoped variables, so that host build scripts are left alone.
triple_env=${CROSS_TARGET//-/_}
triple_env_upper=${triple_env^^}
rpath_links=""
for d in "${SYSROOT_LIB_DIRS[@]}"; do
  rpath_links+=" -C link-arg=-Wl,-rpath-link,$SYSROOT$d"
done
export "CARGO_TARGET_${triple_env_upper}_LINKER=$CROSS_TRIPLE-gcc"
export "CARGO_TARGET_${triple_env_upper}_RUSTFLAGS=-C link-arg=--sysroot=$SYSROOT$rpath_links"
export "CC_${triple_env}=$CROSS_TRIPLE-gcc"
export "CXX_${triple_env}=$CROSS_TRIPLE-g++"
export "CFLAGS_${triple_env}=--sysroot=$SYSROOT"
export "CXXFLAGS_${triple_env}=--sysroot=$SYSROOT"
export "AR_${triple_env}=$CROSS_TRIPLE-ar"
# pkg-config (GStreamer) reads only the sysroot's .pc files and prefixes their paths with it.
export "PKG_CONFIG_SYSROOT_DIR_${triple_env}=$SYSROOT"
export "PKG_CONFIG_LIBDIR_${triple_env}=$SYSROOT/usr/lib/$CROSS_TRIPLE/pkgconfig:$SYSROOT/usr/share/pkgconfig"
export "PKG_CONFIG_PATH_${triple_env}="
export PKG_CONFIG_ALLOW_CROSS=1
# OpenCV from the environment (the sysroot has no opencv4.pc: that comes with libopencv-dev).
# opencv's binding generator parses the sysroot's OpenCV headers (with the host clang's C++
# headers: the API is the same on both 64-bit Linux targets); the C++ glue is compiled by the
# cross g++ against the sysroot. bindgen-based crates, if any ever come in, get the sysroot too.
export OPENCV_INCLUDE_PATHS="$SYSROOT/usr/include/opencv4,$SYSROOT/usr/include/$CROSS_TRIPLE/opencv4"
export OPENCV_LINK_PATHS="$SYSROOT/usr/lib/$CROSS_TRIPLE"
export OPENCV_LINK_LIBS="opencv_imgcodecs,opencv_imgproc,opencv_core"
export OPENCV_DISABLE_PROBES="pkg_config,cmake,vcpkg_cmake,vcpkg"
export "BINDGEN_EXTRA_CLANG_ARGS_${triple_env}=--sysroot=$SYSROOT --target=$CROSS_TRIPLE"
export CARGO_TARGET_DIR="$CROSS_TARGET_DIR"
# RUSTFLAGS would replace the target's flags above (cargo takes only one source).
if [ -n "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ]; then
  log "ignoring RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS: they would replace the sysroot link flags"
  unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
fi

log "building watchpost for $CROSS_TARGET (sysroot $SYSROOT, target dir $CARGO_TARGET_DIR)"
cd "$REPO_ROOT"
cargo build --release --locked --target "$CROSS_TARGET" "${cargo_args[@]}"
machine=$(readelf -h "$ARM64_BINARY" 2>/dev/null | sed -n 's/^ *Machine: *//p')
[ "$machine" = AArch64 ] || die "$ARM64_BINARY is not an arm64 executable (machine: ${machine:-unknown})"
log "built $ARM64_BINARY"
