#!/usr/bin/env bash
# Idempotent set-up for building and testing the arm64 (aarch64) build on an x86_64 Debian 12
# machine: Debian's cross gcc, mmdebstrap, qemu-user-static 10 (bookworm-backports: bookworm's
# 7.2 crashes inside ONNX Runtime), an arm64 sysroot and the arm64 ONNX Runtime library.
#
#   deploy/cross-setup.sh        # as root, or through sudo (it re-runs itself with sudo)
#
# No dpkg multiarch: the arm64 packages go into a sysroot folder made by mmdebstrap
# (--variant=extract), never into the system. Cached and reused (see deploy/common.sh):
#   $WATCHPOST_SYSROOT (default /var/cache/watchpost-build/sysroot-arm64, about 1.1 GB), rebuilt only
#   when its package list changes; the ONNX Runtime library under $WATCHPOST_CACHE_DIR.
# The Rust target (rustup target add aarch64-unknown-linux-gnu) is added by
# deploy/cross-build.sh, as the user who builds.
set -euo pipefail
source "$(dirname "$0")/common.sh"

log() { printf 'cross-setup: %s\n' "$*" >&2; }
die() { printf 'cross-setup: error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (it installs system packages)"
  log "not root: re-running with sudo"
  exec sudo --preserve-env=WATCHPOST_CACHE_DIR,WATCHPOST_SYSROOT,WATCHPOST_ORT_VERSION bash "$0" "$@"
fi
command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
[ "$(uname -m)" = x86_64 ] || die "this set-up cross-builds from x86_64 (this is $(uname -m))"
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# bookworm-backports, for qemu-user-static 10.
apt_updated=no
apt_update() {
  if [ "$apt_updated" = no ]; then
    apt-get update -q
    apt_updated=yes
  fi
}
if [ "$codename" = bookworm ] \
  && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  log "adding bookworm-backports to the apt sources"
  cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt_update
fi

export DEBIAN_FRONTEND=noninteractive
packages=(mmdebstrap gcc-$CROSS_TRIPLE g++-$CROSS_TRIPLE binutils-$CROSS_TRIPLE python3 python3-pip)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_update
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "cross tools already installed"
fi
if [ "$(qemu_major)" -lt "$QEMU_MIN_MAJOR" ]; then
  suite=()
  [ "$codename" = bookworm ] && suite=(-t bookworm-backports)
  log "installing qemu-user-static >= $QEMU_MIN_MAJOR ${suite[*]}"
  apt_update
  apt-get install -y -q --no-install-recommends "${suite[@]}" qemu-user-static
  [ "$(qemu_major)" -ge "$QEMU_MIN_MAJOR" ] \
    || die "qemu-user-static is $(qemu_major).x after the install; $QEMU_MIN_MAJOR or newer is needed"
fi
log "$(qemu-aarch64-static --version | head -n1)"

# The arm64 sysroot.
if sysroot_ready; then
  log "arm64 sysroot already at $SYSROOT"
else
  log "making the arm64 sysroot at $SYSROOT (mmdebstrap, about a minute)"
  include=$(IFS=,; echo "${SYSROOT_PACKAGES[*]}")
  rm -rf "$SYSROOT.tmp"
  mkdir -p "$(dirname "$SYSROOT")"
  mmdebstrap --quiet --mode=root --variant=extract --architectures=arm64 \
    --include="$include" bookworm "$SYSROOT.tmp" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    || die "mmdebstrap failed (see above)"
  sysroot_stamp_text >"$SYSROOT.tmp/.watchpost-sysroot"
  rm -rf "$SYSROOT"
  mv "$SYSROOT.tmp" "$SYSROOT"
  log "arm64 sysroot ready: $(du -sh "$SYSROOT" | cut -f1)"
fi

# The arm64 ONNX Runtime (for the tests under qemu and the arm64 package).
ensure_ort_library arm64 || die "could not get the arm64 ONNX Runtime library"
log "arm64 ONNX Runtime: $(ort_dir arm64)/libonnxruntime.so.$ORT_VERSION"
log "done"
