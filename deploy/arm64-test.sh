#!/usr/bin/env bash
# Checks the arm64 build under qemu (CI runs this after deploy/cross-build.sh):
#
# 1. `watchpost detect --format json --model nanodet-m-416` on tests/data/frames/*.jpg gives
#    the same objects as the x86_64 build (the fp32 model, named: the default depends on the
#    CPU, and qemu's Cortex-A72 has no dot-product instructions): the same labels and
#    classes, scores within 1e-3 (one step of the printed rounding), boxes within 1e-3.
# 2. A short live run of the arm64 agent, `watchpost run` with a configuration file: it reads
#    RTSP from the x86_64 build's demo clip server (rtspsrc, decodebin, avdec_h264 of the arm64
#    GStreamer), runs the model, and publishes to a mosquitto started here; a subscriber must
#    receive a detections message with a person in it, then the agent must stop cleanly on
#    SIGTERM (exit 0, `offline` published).
#
#   deploy/arm64-test.sh
#
# The x86_64 binary: target/release/watchpost (built if missing) or $WATCHPOST_X86_BINARY.
# The emulated CPU: a Cortex-A72 unless $QEMU_CPU says otherwise (see deploy/arm64-run.sh).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

log() { printf 'arm64-test: %s\n' "$*" >&2; }
die() { printf 'arm64-test: FAILED: %s\n' "$*" >&2; exit 1; }

export QEMU_CPU="${QEMU_CPU:-cortex-a72}"  # the same default as arm64-run.sh, for the log
x86="${WATCHPOST_X86_BINARY:-$REPO_ROOT/target/release/watchpost}"
if [ ! -x "$x86" ]; then
  log "no x86_64 binary at $x86: building it"
  cargo build --release --locked --bin watchpost
fi
arm64() { "$REPO_ROOT/deploy/arm64-run.sh" "$@"; }

work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# --- 1. The same objects as the x86_64 build --------------------------------------------------
frames=(tests/data/frames/*.jpg)
started=$SECONDS
"$x86" detect --format json --model nanodet-m-416 "${frames[@]}" >"$work/x86_64.jsonl" 2>"$work/x86_64.err" \
  || { cat "$work/x86_64.err" >&2; die "the x86_64 detect failed"; }
arm64 detect --format json --model nanodet-m-416 "${frames[@]}" >"$work/arm64.jsonl" 2>"$work/arm64.err" \
  || { cat "$work/arm64.err" >&2; die "the arm64 detect failed under qemu"; }
log "detect on ${#frames[@]} frames under qemu ($QEMU_CPU): $((SECONDS - started)) s"
python3 - "$work/x86_64.jsonl" "$work/arm64.jsonl" <<'PY' || die "arm64 and x86_64 detections differ"
import json, sys

TOLERANCE = 1e-3 + 1e-9  # scores are printed with 3 decimals, boxes with 4
x86 = [json.loads(line) for line in open(sys.argv[1])]
arm = [json.loads(line) for line in open(sys.argv[2])]
problems, n_objects, max_score, max_box = [], 0, 0.0, 0.0
if [r["image"] for r in x86] != [r["image"] for r in arm]:
    sys.exit(f"different pictures: {[r['image'] for r in x86]} vs {[r['image'] for r in arm]}")
for a, b in zip(x86, arm):
    image, left = a["image"], list(b["objects"])
    if (a["width"], a["height"]) != (b["width"], b["height"]):
        problems.append(f"{image}: size {a['width']}x{a['height']} vs {b['width']}x{b['height']}")
    for obj in a["objects"]:
        # The arm64 object of the same label and class with the closest box.
        same = [o for o in left if (o["label"], o["class"]) == (obj["label"], obj["class"])]
        if not same:
            problems.append(f"{image}: x86_64 {obj} has no arm64 counterpart")
            continue
        match = min(same, key=lambda o: max(abs(p - q) for p, q in zip(o["bbox"], obj["bbox"])))
        left.remove(match)
        d_score = abs(match["score"] - obj["score"])
        d_box = max(abs(p - q) for p, q in zip(match["bbox"], obj["bbox"]))
        max_score, max_box, n_objects = max(max_score, d_score), max(max_box, d_box), n_objects + 1
        if d_score > TOLERANCE or d_box > TOLERANCE:
            problems.append(f"{image}: x86_64 {obj} vs arm64 {match}")
    problems += [f"{image}: arm64 {o} has no x86_64 counterpart" for o in left]
print(f"arm64-test: {len(x86)} pictures, {n_objects} objects matched; largest difference: "
      f"score {max_score:.4f}, box {max_box:.4f} (tolerance 0.001)", file=sys.stderr)
if n_objects == 0:
    problems.append("no objects at all: the comparison would prove nothing")
for p in problems:
    print(f"  {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

# --- 2. A live run: RTSP in, MQTT out --------------------------------------------------------
read -r rtsp_port demo_mqtt_port mqtt_port < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
wait_for_port() { # PORT SECONDS WHAT
  local i
  for ((i = 0; i < $2; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 1
  done
  die "$3 did not listen on 127.0.0.1:$1 within $2 s"
}
started=$SECONDS
cat >"$work/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
EOF
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
# The clip server of the x86_64 build (its own agent runs too, at a low rate, on its own broker).
"$x86" demo --rtsp-port "$rtsp_port" --mqtt-port "$demo_mqtt_port" --detect-fps 0.2 \
  >"$work/demo.log" 2>&1 &
pids+=($!)
wait_for_port "$mqtt_port" 30 mosquitto
wait_for_port "$rtsp_port" 60 "the x86_64 demo's RTSP server"
# The demo prints the camera's URL once its broker is up too, which can be after the port.
camera_url=
for ((i = 0; i < 60; i++)); do
  camera_url=$(sed -n 's/^ *camera *\(rtsp:[^ ]*\).*/\1/p' "$work/demo.log" | head -n1)
  [ -n "$camera_url" ] && break
  sleep 0.5
done
[ -n "$camera_url" ] || { cat "$work/demo.log" >&2; die "the demo printed no camera URL"; }

mkdir -p "$work/state"
cat >"$work/watchpost.toml" <<EOF
[device]
site = "ci"
id = "arm64"
state_dir = "$work/state"

[mqtt]
url = "mqtt://127.0.0.1:$mqtt_port"

[detection]
inference_threads = 1

[[cameras]]
name = "cam0"
url = "$camera_url"
detect_fps = 1
EOF
arm64 config validate "$work/watchpost.toml" >&2 || die "the arm64 build refused the configuration"

mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t 'watchpost/ci/arm64/#' -v >"$work/received.txt" 2>&1 &
pids+=($!)
sleep 1
# Not through the function: `$!` must be the agent itself (arm64-run.sh execs qemu), so that
# SIGTERM reaches it.
"$REPO_ROOT/deploy/arm64-run.sh" run --config "$work/watchpost.toml" >"$work/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
deadline=$((SECONDS + ${WATCHPOST_ARM64_LIVE_TIMEOUT_S:-300}))
detections=""
while [ $SECONDS -lt $deadline ]; do
  detections=$(grep -m1 '^watchpost/ci/arm64/cam0/detections ' "$work/received.txt" || true)
  [ -n "$detections" ] && break
  kill -0 "$agent" 2>/dev/null || { tail -n 30 "$work/agent.log" >&2; die "the arm64 agent exited"; }
  sleep 2
done
if [ -z "$detections" ]; then
  tail -n 30 "$work/agent.log" >&2
  cut -c1-300 "$work/received.txt" >&2
  die "no detections message from the arm64 agent"
fi
log "first detections message $((SECONDS - started)) s after start"
python3 - "${detections#* }" <<'PY' || die "the detections message is not what the agent should publish"
import json, sys
m = json.loads(sys.argv[1])
assert m["schema"] == "watchpost.detections/1", m["schema"]
assert m["camera"] == "cam0" and m["frame"] == {"width": 640, "height": 360}, m
persons = [o for o in m["objects"] if o["class"] == "person"]
assert persons, "no person detected on the street clip"
print(f"arm64-test: live run: {len(persons)} persons in frame seq {m['seq']}, "
      f"latency {m['latency_ms']:.0f} ms", file=sys.stderr)
PY

kill -TERM "$agent"
status=0
for ((i = 0; i < 120; i++)); do
  kill -0 "$agent" 2>/dev/null || break
  sleep 1
done
if kill -0 "$agent" 2>/dev/null; then
  tail -n 30 "$work/agent.log" >&2
  die "the arm64 agent did not stop within 120 s of SIGTERM"
fi
wait "$agent" || status=$?
[ "$status" -eq 0 ] || { tail -n 30 "$work/agent.log" >&2; die "the arm64 agent exited with $status after SIGTERM"; }
sleep 1
grep -q '^watchpost/ci/arm64/status .*"state":"offline"' "$work/received.txt" \
  || { cut -c1-300 "$work/received.txt" >&2; die "no offline status after the shutdown"; }
log "live run: $((SECONDS - started)) s; clean shutdown, offline published"
echo "arm64: 2 passed, 0 failed"
