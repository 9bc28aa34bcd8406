#!/usr/bin/env bash
# Installs the amd64 package on THIS machine and checks it as a technician would use it, then
# removes and purges it (CI runs this as root; on a development machine it is fine too, and
# leaves nothing behind but the Depends apt installed):
#
#   install   dpkg -i, then apt-get -f install
#   run       watchpost --version; config validate of /etc/watchpost/watchpost.toml (as root
#             and as the service user); detect on a frame as the service user, from /, with
#             the packaged model and ONNX Runtime (/usr/lib/watchpost, seen with LD_DEBUG),
#             giving the same objects as the build tree's binary; the installed unit passes
#             systemd-analyze verify
#   set up    the README's lines: config init over the packaged example (no --force), the
#             password file readable by the service; doctor as root judges the outbox for the
#             service user
#   edit      the service user edits the configuration as the page and config.apply do (a
#             zone added, audited), root edits it after, and both can still read it
#   upgrade   installing the package again keeps a changed configuration and the state
#   remove    the binary goes; /etc/watchpost/watchpost.toml and /var/lib/watchpost stay
#   purge     both go, and the password files the CLI wrote
#
#   deploy/package-test.sh [target/debian/watchpost_VERSION_amd64.deb]
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

log() { printf 'package-test: %s\n' "$*" >&2; }
die() { printf 'package-test: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs the package into this system"
deb="${1:-}"
if [ -z "$deb" ]; then
  version=$(python3 -c 'import tomllib; p = tomllib.load(open("Cargo.toml", "rb"))["package"]; print(p["version"] + "-" + str(p["metadata"]["deb"].get("revision", "1")))')
  deb="target/debian/watchpost_${version}_amd64.deb"
fi
[ -f "$deb" ] || die "no package at $deb: run deploy/package.sh"
deb=$(readlink -f "$deb")
if dpkg-query -W -f='${Status}' watchpost 2>/dev/null | grep -qv "not-installed"; then
  die "a watchpost package is already on this machine ($(dpkg-query -W -f='${Status} ${Version}' watchpost)): this test will not touch it"
fi
# The CLI's default paths: a developer's own configuration and state there would be purged.
for d in /etc/watchpost /var/lib/watchpost /var/cache/watchpost; do
  [ ! -e "$d" ] || die "$d exists on this machine (yours, not a package's): this test will not touch it"
done
user_existed=no
getent passwd watchpost >/dev/null && user_existed=yes
export DEBIAN_FRONTEND=noninteractive

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  if dpkg-query -W -f='${Status}' watchpost 2>/dev/null | grep -qv "not-installed"; then
    log "purging the package left by a failed check"
    dpkg --purge watchpost >/dev/null 2>&1 || true
  fi
  # None of these existed before (checked above).
  rm -rf /etc/watchpost /var/lib/watchpost /var/cache/watchpost
  if [ "$user_existed" = no ] && getent passwd watchpost >/dev/null; then
    userdel watchpost 2>/dev/null || true
    getent group watchpost >/dev/null && { groupdel watchpost 2>/dev/null || true; }
  fi
  rm -rf "$work"
}
trap cleanup EXIT
n_passed=0
pass() { n_passed=$((n_passed + 1)); log "ok: $*"; }
# A clean environment, as a technician's shell or the service has: no variable of the build.
clean() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
as_service() { clean runuser -u watchpost -- env HOME=/var/lib/watchpost "$@"; }

# --- install ----------------------------------------------------------------------------------
started=$SECONDS
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || log "dpkg -i left dependencies to apt-get -f install"
apt-get -f install -y -q --no-install-recommends >>"$work/dpkg.log" 2>&1 \
  || { cat "$work/dpkg.log" >&2; die "apt-get -f install"; }
[ "$(dpkg-query -W -f='${Status}' watchpost)" = "install ok installed" ] \
  || { cat "$work/dpkg.log" >&2; die "the package is not installed"; }
pass "installed $(basename "$deb") ($((SECONDS - started)) s)"

# --- run --------------------------------------------------------------------------------------
cd /
expected="watchpost $(dpkg-query -W -f='${Version}' watchpost | sed 's/-[^-]*$//')"
got=$(clean watchpost --version)
[ "$got" = "$expected" ] || die "watchpost --version printed \`$got\`, not \`$expected\`"
pass "watchpost --version: $got"

clean watchpost config validate /etc/watchpost/watchpost.toml >&2 \
  || die "config validate /etc/watchpost/watchpost.toml (as root)"
as_service watchpost config validate /etc/watchpost/watchpost.toml >&2 \
  || die "config validate /etc/watchpost/watchpost.toml (as the watchpost user)"
[ "$(stat -c '%U:%G %a' /etc/watchpost/watchpost.toml)" = "root:watchpost 660" ] \
  || die "/etc/watchpost/watchpost.toml is $(stat -c '%U:%G %a' /etc/watchpost/watchpost.toml)"
[ "$(stat -c '%U:%G %a' /etc/watchpost)" = "root:watchpost 2770" ] \
  || die "/etc/watchpost is $(stat -c '%U:%G %a' /etc/watchpost)"
dpkg-query -W -f='${Conffiles}\n' watchpost | grep -q '^ /etc/watchpost/watchpost.toml ' \
  || die "/etc/watchpost/watchpost.toml is not a conffile"
pass "config validate (root and watchpost), a conffile, root:watchpost 660 in a 2770 folder"

frame="$work/street-01.jpg"
cp "$REPO_ROOT/tests/data/frames/street-01.jpg" "$frame"
chmod 644 "$frame"
# By name (the packaged models folder is searched), by manifest path, and from the build tree:
# the same model must give the same objects. Named, because the default depends on the CPU.
as_service env LD_DEBUG=files watchpost detect --format json --model nanodet-m-416-int8 "$frame" \
  >"$work/detect.json" 2>"$work/detect.err" \
  || { tail -n 20 "$work/detect.err" >&2; die "detect as the watchpost user"; }
loaded=$(sed -n 's/.*file=\([^ ]*libonnxruntime[^ ]*\) .*dynamically loaded.*/\1/p' "$work/detect.err" | head -n1)
[ "$(readlink -f "$loaded")" = /usr/lib/watchpost/libonnxruntime.so ] \
  || die "ONNX Runtime was loaded from \`$loaded\`, not the package's /usr/lib/watchpost"
clean watchpost detect --format json --model /usr/share/watchpost/models/nanodet-m-416-int8.toml \
  "$frame" >"$work/detect-model.json" || die "detect with the packaged model named explicitly"
WATCHPOST_MODELS_DIR="$REPO_ROOT/models" "$REPO_ROOT/target/release/watchpost" detect \
  --format json --model nanodet-m-416-int8 "$frame" >"$work/detect-tree.json" \
  || die "detect with the build tree's binary"
python3 - "$work/detect.json" "$work/detect-model.json" "$work/detect-tree.json" <<'PY' \
  || die "the installed detect does not give the build tree's objects"
import json, sys
runs = [json.load(open(p)) for p in sys.argv[1:]]
objects = [r["objects"] for r in runs]
assert objects[0], "no objects on the street frame"
assert all(o == objects[0] for o in objects), objects
print(f"package-test: detect found {len(objects[0])} objects, as the build tree's binary",
      file=sys.stderr)
PY
pass "detect as the watchpost user with the packaged model and /usr/lib/watchpost/libonnxruntime.so"

unit=$(dpkg -L watchpost | grep '/systemd/system/watchpost.service$')
if ! systemd-analyze verify "$unit" >"$work/verify.txt" 2>&1 || [ -s "$work/verify.txt" ]; then
  cat "$work/verify.txt" >&2
  die "systemd-analyze verify $unit"
fi
for d in /var/lib/watchpost /var/lib/watchpost/outbox; do
  [ "$(stat -c '%U:%G %a' "$d")" = "watchpost:watchpost 750" ] \
    || die "$d is $(stat -c '%U:%G %a' "$d")"
done
[ "$(getent passwd watchpost | cut -d: -f6,7)" = "/var/lib/watchpost:/usr/sbin/nologin" ] \
  || die "the watchpost user: $(getent passwd watchpost)"
pass "$unit verifies; user watchpost, /var/lib/watchpost and its outbox in place"

# --- the README's second line: config init over the packaged example ---------------------------
# No --force for the untouched example; the file keeps root:watchpost 660, and the camera's
# password lands beside it readable by the service, not writable (as the service user reads it,
# validate reads it).
clean watchpost config init --no-input --site package-test --id post-9 \
  --broker mqtt://127.0.0.1:9 --camera-name gate-1 \
  --camera-url 'rtsp://viewer:pt-s3cret@127.0.0.1:9/stream1' >"$work/init.out" 2>&1 \
  || { cat "$work/init.out" >&2; die "config init over the packaged example"; }
grep -q "pt-s3cret" "$work/init.out" /etc/watchpost/watchpost.toml /var/lib/watchpost/audit.log \
  && die "config init wrote the camera password where it should not be"
for f in /etc/watchpost/watchpost.toml:660 /etc/watchpost/gate-1-password:640; do
  [ "$(stat -c '%U:%G %a' "${f%:*}")" = "root:watchpost ${f#*:}" ] \
    || die "${f%:*} is $(stat -c '%U:%G %a' "${f%:*}")"
done
as_service watchpost config validate /etc/watchpost/watchpost.toml >&2 \
  || die "the watchpost user cannot read the configuration config init wrote"
pass "config init replaced the packaged example; config root:watchpost 660, password 640"

# --- the third line's check: doctor as root asks for the service user ---------------------------
# (The broker of this test configuration is not there: doctor's verdict is FAIL; its outbox line
# is what is checked.)
outbox_line() { clean watchpost doctor 2>&1 | grep "outbox /var/lib/watchpost/outbox" || true; }
line=$(outbox_line)
case "$line" in PASS*) ;; *) die "doctor's outbox check as root: \`$line\`" ;; esac
chown root:root /var/lib/watchpost/outbox
line=$(outbox_line)
chown watchpost:watchpost /var/lib/watchpost/outbox
case "$line" in
  "FAIL  outbox /var/lib/watchpost/outbox: the service's user watchpost cannot write it"*) ;;
  *) die "doctor as root did not see that the service cannot write a root-owned outbox: \`$line\`" ;;
esac
pass "doctor as root checks the outbox for the watchpost user"

# --- edit: the service changes its own configuration (the page, config.apply), then root -------
# config init above, as root, started the audit log: it must be the service's to append to.
as_service watchpost camera zone add gate-1 yard --points "0.1,0.1 0.9,0.1 0.9,0.9" \
  --config /etc/watchpost/watchpost.toml >"$work/edit.out" 2>&1 \
  || { cat "$work/edit.out" >&2; die "the watchpost user cannot edit its configuration"; }
grep -q '^name = "yard"' /etc/watchpost/watchpost.toml || die "the zone is not in the file"
tail -n 1 /var/lib/watchpost/audit.log | grep -q '"command":"camera zone add"' \
  || die "the service's change is not audited: $(tail -n 1 /var/lib/watchpost/audit.log)"
[ "$(stat -c '%U:%G %a' /etc/watchpost/watchpost.toml)" = "watchpost:watchpost 660" ] \
  || die "after the service's edit the file is $(stat -c '%U:%G %a' /etc/watchpost/watchpost.toml)"
clean watchpost config set cameras.gate-1.detect_fps 4 --config /etc/watchpost/watchpost.toml \
  >"$work/edit.out" 2>&1 || { cat "$work/edit.out" >&2; die "root's edit after the service's"; }
as_service watchpost config validate /etc/watchpost/watchpost.toml >&2 \
  || die "the watchpost user cannot read the configuration after root's edit"
[ "$(stat -c '%U:%G %a' /etc/watchpost/watchpost.toml)" = "watchpost:watchpost 660" ] \
  || die "root's edit changed the file to $(stat -c '%U:%G %a' /etc/watchpost/watchpost.toml)"
pass "the service edits its configuration (audited), root edits after it, both read it"

# --- upgrade: the same package again keeps a changed conffile and the state ---------------------
echo "# changed by package-test" >>/etc/watchpost/watchpost.toml
as_service mkdir -p /var/lib/watchpost/outbox
as_service touch /var/lib/watchpost/outbox/kept
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "dpkg -i over the installed package"; }
grep -q "^# changed by package-test" /etc/watchpost/watchpost.toml || die "reinstalling replaced the changed configuration"
[ -f /var/lib/watchpost/outbox/kept ] || die "reinstalling lost /var/lib/watchpost"
pass "reinstall kept the changed configuration and the state"

# --- remove, then purge -----------------------------------------------------------------------
dpkg --remove watchpost >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "dpkg --remove"; }
[ ! -e /usr/bin/watchpost ] || die "/usr/bin/watchpost is still there after remove"
[ "$(dpkg-query -W -f='${Status}' watchpost)" = "deinstall ok config-files" ] \
  || die "after remove: $(dpkg-query -W -f='${Status}' watchpost)"
[ -f /var/lib/watchpost/outbox/kept ] || die "remove deleted the state"
grep -q "^# changed by package-test" /etc/watchpost/watchpost.toml || die "remove deleted the configuration"
pass "remove kept /etc/watchpost/watchpost.toml and /var/lib/watchpost"

dpkg --purge watchpost >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; die "dpkg --purge"; }
[ ! -e /var/lib/watchpost ] || die "purge left /var/lib/watchpost"
# The password files watchpost's CLI wrote go too (no secret outlives a purge).
[ ! -e /etc/watchpost ] || die "purge left /etc/watchpost: $(ls -A /etc/watchpost)"
dpkg-query -W -f='${Status}' watchpost 2>/dev/null | grep -qv "not-installed" \
  && die "after purge: $(dpkg-query -W -f='${Status}' watchpost)"
pass "purge deleted the configuration and the state"

echo "deb: $n_passed passed, 0 failed"
