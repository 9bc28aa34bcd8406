#!/usr/bin/env bash
# Builds the Debian packages (cargo-deb, [package.metadata.deb] in Cargo.toml) into
# target/debian/: watchpost_VERSION-1_amd64.deb and/or watchpost_VERSION-1_arm64.deb.
#
#   deploy/package.sh            # this machine's architecture (builds the release binary if
#                                # needed): amd64 here, arm64 on an arm64 machine
#   deploy/package.sh arm64      # on x86_64: arm64, from deploy/cross-build.sh's binary
#   deploy/package.sh amd64 arm64
#
# Each package carries the ONNX Runtime library of its architecture (from the PyPI wheel,
# cached under $WATCHPOST_CACHE_DIR) as /usr/lib/watchpost/libonnxruntime.so, which the binary
# finds next to itself (../lib/watchpost/). Depends is written out in Cargo.toml, the same for
# both architectures (Debian's library package names do not depend on the architecture); this
# script checks it against dpkg-shlibdeps on the amd64 binary and against the libraries each
# binary needs (readelf), so that a new native dependency cannot be forgotten.
# cargo-deb is installed from crates.io (pinned) if it is missing.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

CARGO_DEB_VERSION=3.8.0
log() { printf 'package: %s\n' "$*" >&2; }
die() { printf 'package: error: %s\n' "$*" >&2; exit 1; }

native=$(debian_arch "$(uname -m)") || die "no package for a $(uname -m) machine"
multiarch=$(gcc -print-multiarch 2>/dev/null) || die "gcc not found (apt: build-essential)"
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=("$native")
for arch in "${arches[@]}"; do
  case "$arch" in
    "$native") ;;
    arm64) [ "$native" = amd64 ] || die "arm64 is cross-built from amd64 only" ;;
    *) die "cannot package $arch on this $native machine (amd64 or arm64)" ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps readelf; do
  command -v "$tool" >/dev/null || die "$tool not found (apt: dpkg-dev binutils)"
done

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  log "installing cargo-deb $CARGO_DEB_VERSION from crates.io"
  cargo install --locked --version "$CARGO_DEB_VERSION" cargo-deb
fi

# Depends as Cargo.toml writes it (the built package's control file is checked below).
declared_depends=$(python3 - <<'PY'
import tomllib
with open("Cargo.toml", "rb") as f:
    print(tomllib.load(f)["package"]["metadata"]["deb"]["depends"])
PY
)
deb_version=$(python3 - <<'PY'
import tomllib
with open("Cargo.toml", "rb") as f:
    package = tomllib.load(f)["package"]
print(package["version"] + "-" + str(package["metadata"]["deb"].get("revision", "1")))
PY
)
declared_names=$(printf '%s' "$declared_depends" | tr ',' '\n' | sed 's/^ *//; s/ .*//' | sort -u)

# The package of each shared library BINARY needs, by soname, looked up among this machine's
# packages: the names are the same on every architecture.
needed_packages() {
  local soname candidate p pkg
  for soname in $(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case "$soname" in ld-linux-*) continue ;; esac
    pkg=""
    for candidate in "/lib/$multiarch/$soname" "/usr/lib/$multiarch/$soname"; do
      [ -e "$candidate" ] || continue
      for p in "$candidate" "$(readlink -f "$candidate")"; do
        pkg=$(dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1)
        [ -n "$pkg" ] && break 2
      done
    done
    echo "${pkg:-?$soname}"
  done | sort -u
}

check_binary_depends() { # BINARY ARCH
  local missing=() pkg
  while read -r pkg; do
    case "$pkg" in
      libgcc-s1) continue ;;  # left out like dpkg-shlibdeps -xlibgcc: libstdc++6 depends on it
      \?*) missing+=("no package here provides ${pkg#\?}") ;;
      *) grep -qx "$pkg" <<<"$declared_names" || missing+=("$pkg") ;;
    esac
  done < <(needed_packages "$1")
  [ ${#missing[@]} -eq 0 ] \
    || die "the $2 binary needs libraries of packages missing from Depends in Cargo.toml: ${missing[*]}"
}

stage_ort() { # ARCH: the ONNX Runtime files the assets name, for this architecture
  local dir
  ensure_ort_library "$1" || die "could not get the $1 ONNX Runtime library"
  dir=$(ort_dir "$1")
  rm -rf target/watchpost-deb
  mkdir -p target/watchpost-deb
  cp "$dir/libonnxruntime.so.$ORT_VERSION" target/watchpost-deb/libonnxruntime.so
  cp "$dir/LICENSE" target/watchpost-deb/onnxruntime-LICENSE
  cp "$dir/ThirdPartyNotices.txt" target/watchpost-deb/onnxruntime-ThirdPartyNotices.txt
}

sorted_list() { printf '%s' "$1" | tr ',' '\n' | sed 's/^ *//; s/ *$//' | sort; }

check_package() { # DEB ARCH
  local deb=$1 arch=$2 got
  got=$(dpkg-deb -f "$deb" Architecture)
  [ "$got" = "$arch" ] || die "$deb is for $got, not $arch"
  [ "$(sorted_list "$(dpkg-deb -f "$deb" Depends)")" = "$(sorted_list "$declared_depends")" ] \
    || die "$deb: Depends is not the one in Cargo.toml: $(dpkg-deb -f "$deb" Depends)"
  # The packaged ONNX Runtime is for the right machine.
  mkdir -p target/watchpost-deb/check && rm -rf target/watchpost-deb/check/*
  dpkg-deb -x "$deb" target/watchpost-deb/check
  for f in usr/bin/watchpost usr/lib/watchpost/libonnxruntime.so; do
    case "$arch:$(readelf -h "target/watchpost-deb/check/$f" 2>/dev/null | sed -n 's/^ *Machine: *//p')" in
      amd64:*X86-64*|arm64:AArch64) ;;
      *) die "$deb: /$f is not an $arch ELF file" ;;
    esac
  done
  rm -rf target/watchpost-deb/check
}

mkdir -p target/debian
for arch in "${arches[@]}"; do
  started=$SECONDS
  if [ "$arch" = "$native" ]; then
    cargo build --release --locked --bin watchpost
    binary=target/release/watchpost
    # Depends against dpkg-shlibdeps (what cargo-deb's $auto would say), entry by entry.
    tmp=$(mktemp -d)
    mkdir -p "$tmp/debian" && touch "$tmp/debian/control"
    shlibs=$(cd "$tmp" && dpkg-shlibdeps -O -xlibgcc "$REPO_ROOT/$binary" 2>/dev/null \
      | sed -n 's/^shlibs:Depends=//p')
    rm -rf "$tmp"
    [ -n "$shlibs" ] || die "dpkg-shlibdeps said nothing about $binary"
    while read -r entry; do
      grep -qxF "$entry" < <(printf '%s' "$declared_depends" | tr ',' '\n' | sed 's/^ *//') \
        || die "dpkg-shlibdeps wants \`$entry\`; Depends in Cargo.toml has not got it exactly (it says: $declared_depends)"
    done < <(printf '%s' "$shlibs" | tr ',' '\n' | sed 's/^ *//')
    check_binary_depends "$binary" "$arch"
    stage_ort "$arch"
    cargo deb --no-build --dbgsym --output target/debian/ >/dev/null
  else
    [ -x "$ARM64_BINARY" ] || die "no arm64 binary at $ARM64_BINARY: run deploy/cross-build.sh first"
    binary=$ARM64_BINARY
    check_binary_depends "$binary" arm64
    stage_ort arm64
    CARGO_TARGET_DIR="$CROSS_TARGET_DIR" \
      cargo deb --no-build --dbgsym --target "$CROSS_TARGET" --output target/debian/ >/dev/null
  fi
  deb="target/debian/watchpost_${deb_version}_${arch}.deb"
  [ -f "$deb" ] || die "cargo deb made no $deb"
  check_package "$deb" "$arch"
  log "$deb ($(du -h "$deb" | cut -f1), $((SECONDS - started)) s)"
done
rm -rf target/watchpost-deb
