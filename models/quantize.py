"""Quantize the bundled fp32 NanoDet-m to int8 (static, QDQ, per-channel weights).

Run by models/quantize.sh, which makes the pinned venv and the calibration tensors; see
models/PROVENANCE.md for what is quantized and why.

    python quantize.py quantize FP32.onnx CALIBRATION.npy OUT.onnx
    python quantize.py batch-study FP32.onnx INT8.onnx
"""

import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

INPUT = "input_1:0"
# Only convolutions (with their activations) are quantized. The graph's explicit `Pad` nodes
# must stay float: quantized, their padding constant is folded into a range calibration never
# saw and every later layer is off (no detection survives). Resize, Concat and Add gain
# nothing measurable on this model and only add requantization steps.
OP_TYPES = ["Conv", "LeakyRelu"]


class Frames(CalibrationDataReader):
    """The calibration tensors, one frame at a time."""

    def __init__(self, tensors):
        self._frames = iter(tensors[i : i + 1] for i in range(tensors.shape[0]))

    def get_next(self):
        frame = next(self._frames, None)
        return None if frame is None else {INPUT: frame}


def quantize(fp32, calibration, out):
    tensors = np.load(calibration)
    print(f"calibration: {tensors.shape[0]} frames, mean {tensors.mean():.4f}")
    prepared = out + ".pre.onnx"
    quant_pre_process(fp32, prepared, skip_symbolic_shape=True)
    quantize_static(
        prepared,
        out,
        Frames(tensors),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=OP_TYPES,
    )


def dynamic_batch(path, out):
    """A copy of the model whose batch dimension is free (the tf2onnx graph reshapes its
    heads to a batch of 1; those shapes become [0, C, -1], 0 meaning "as the input")."""
    model = onnx.load(path)
    graph = model.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    producers = {o: n for n in graph.node for o in n.output}
    replaced = {}
    for node in graph.node:
        if node.op_type != "Reshape":
            continue
        source = producers[node.input[0]]
        while source.op_type in ("DequantizeLinear", "QuantizeLinear"):
            source = producers[source.input[0]]
        channels = 80 if source.op_type == "Sigmoid" else 44
        name = f"batch_free_shape_{channels}"
        if name not in replaced:
            graph.initializer.append(
                numpy_helper.from_array(np.array([0, channels, -1], np.int64), name)
            )
            replaced[name] = True
        node.input[1] = name
    for output in graph.output:
        output.type.tensor_type.shape.dim[0].dim_param = "batch"
    # Shapes inferred for a batch of 1 no longer hold.
    del graph.value_info[:]
    onnx.save(model, out)


def per_frame_ms(path, batch, threads, seconds=4.0):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = np.random.RandomState(7).randn(batch, 3, 416, 416).astype(np.float32)
    for _ in range(3):
        session.run(None, {INPUT: x})
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        session.run(None, {INPUT: x})
        runs += 1
    return (time.perf_counter() - start) / runs / batch * 1000


def batch_study(fp32, int8):
    """ms per frame for batches of 1, 2 and 4 on one thread: does one run on a batch beat
    N single runs?"""
    ort.set_default_logger_severity(3)
    work = tempfile.mkdtemp()
    for label, path in (("fp32", fp32), ("int8", int8)):
        free = os.path.join(work, label + "-batch.onnx")
        dynamic_batch(path, free)
        single = per_frame_ms(free, 1, 1)
        line = [f"{label}: batch 1 {single:.1f} ms/frame"]
        for batch in (2, 4):
            ms = per_frame_ms(free, batch, 1)
            line.append(f"batch {batch} {ms:.1f} ms/frame ({single / ms:.2f} x batch 1)")
        print(", ".join(line))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "quantize":
        quantize(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "batch-study":
        batch_study(*sys.argv[2:])
    else:
        sys.exit(__doc__)
