"""What a user would write without watchpost: OpenCV reads each RTSP camera on a grabber thread
that keeps only the newest frame, ONNX Runtime (its default threads) runs the same NanoDet
model on the newest frame of each camera in turn, with the same letterbox and normalisation.

Run by `cargo bench --bench agent` (in a venv it makes under target/) on the same streams as
the agent, one after the other; it prints one JSON line:

    {"analysed_fps": ..., "latency_ms": {"p50": ..., "p99": ...}, "frames": ...}

Latency runs from a frame's arrival at the grabber to the end of its post-processing, like the
agent's `latency_ms` (arrival to publication).

    python_baseline.py MODEL.onnx SECONDS WARMUP_SECONDS URL [URL ...]
"""

import json
import os
import sys
import threading
import time

os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

SIZE = 416
MEAN = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD = np.array([57.375, 57.12, 58.395], dtype=np.float32)


class Grabber(threading.Thread):
    """Reads one camera as fast as it sends; keeps the newest frame and its arrival time."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
        self.lock = threading.Lock()
        self.newest = None
        self.serial = 0
        self.running = True

    def run(self):
        while self.running:
            ok, frame = self.capture.read()
            if not ok:
                time.sleep(0.01)
                continue
            with self.lock:
                self.newest = (frame, time.monotonic())
                self.serial += 1

    def take(self, seen):
        with self.lock:
            if self.newest is None or self.serial == seen:
                return None, seen
            return self.newest, self.serial


def preprocess(frame):
    h, w = frame.shape[:2]
    scale = min(SIZE / w, SIZE / h)
    rw, rh = round(w * scale), round(h * scale)
    resized = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((SIZE, SIZE, 3), 114, dtype=np.uint8)
    top, left = (SIZE - rh) // 2, (SIZE - rw) // 2
    canvas[top:top + rh, left:left + rw] = resized
    tensor = (canvas.astype(np.float32) - MEAN) / STD
    return tensor.transpose(2, 0, 1)[np.newaxis]


def postprocess(outputs, threshold=0.35):
    found = 0
    for output in outputs:
        if output.ndim == 3 and output.shape[-1] == 80:
            found += int((output[0].max(axis=1) > threshold).sum())
    return found


def main():
    model, seconds, warmup, urls = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    grabbers = [Grabber(url) for url in urls]
    for grabber in grabbers:
        grabber.start()
    seen = [0] * len(grabbers)
    latencies, frames = [], 0
    start = time.monotonic()
    measuring_from = start + warmup
    camera = 0
    while time.monotonic() < measuring_from + seconds:
        taken = None
        for _ in range(len(grabbers)):
            item, serial = grabbers[camera].take(seen[camera])
            index = camera
            camera = (camera + 1) % len(grabbers)
            if item is not None:
                seen[index] = serial
                taken = item
                break
        if taken is None:
            time.sleep(0.001)
            continue
        frame, arrived = taken
        outputs = session.run(None, {name: preprocess(frame)})
        postprocess(outputs)
        done = time.monotonic()
        if arrived >= measuring_from:
            latencies.append((done - arrived) * 1e3)
            frames += 1
    for grabber in grabbers:
        grabber.running = False
    latencies.sort()

    def percentile(q):
        return latencies[round((len(latencies) - 1) * q)] if latencies else None

    print(json.dumps({
        "analysed_fps": frames / seconds,
        "latency_ms": {"p50": percentile(0.5), "p99": percentile(0.99)},
        "frames": frames,
    }), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
