"""The main job until the search lands: a built-in int8 CNN taken through the whole engine.

The network (seeded random weights, no download) is written as a real .tflite file, read back
through the TFLite frontend, compiled to a C project, built and run on the host through cffi, and
checked bit for bit against the numpy reference and, when installed, TensorFlow Lite Micro.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import tflm
from .ir import Graph, Op, QuantParams, Tensor

_ACT_SCALE = 0.05  # the demo's activations cover about +-6, the ReLU6 range


def _act(name: str, shape: tuple[int, ...], scale: float = _ACT_SCALE, zp: int = -128) -> Tensor:
    return Tensor(name, shape, "int8", QuantParams(np.array([scale], np.float32),
                                                   np.array([zp], np.int64)))


def _weights(rng: np.random.Generator, name: str, shape: tuple[int, ...], axis: int,
             fan_in: int, in_scale: float) -> tuple[Tensor, Tensor, float]:
    """Per-channel symmetric int8 weights (He-like spread) and an int32 bias."""
    channels = shape[axis]
    real = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    max_abs = np.max(np.abs(np.moveaxis(real, axis, 0).reshape(channels, -1)), axis=1)
    scales = (max_abs / 127.0).astype(np.float32)
    spread = np.expand_dims(scales, [i for i in range(len(shape)) if i != axis])
    q = np.clip(np.round(real / spread), -127, 127).astype(np.int8)
    w = Tensor(name, shape, "int8", QuantParams(scales, np.zeros(channels, np.int64), axis), q)
    bias_scale = (in_scale * scales.astype(np.float64)).astype(np.float32)
    bias = np.round(rng.normal(0.0, 0.1, channels) / bias_scale).astype(np.int32)
    b = Tensor(name + "_bias", (channels,), "int32",
               QuantParams(bias_scale, np.zeros(channels, np.int64)), bias)
    return w, b, float(np.sqrt(fan_in) * in_scale)


def demo_graph(seed: int = 0) -> Graph:
    """A small MobileNet-like CNN: 32x32x3 -> conv s2 -> depthwise -> pointwise -> residual
    add -> average pool -> fully connected -> softmax over 10 classes."""
    rng = np.random.default_rng(seed)
    t: dict[str, Tensor] = {}
    ops: list[Op] = []

    def add(*tensors: Tensor) -> None:
        t.update({x.name: x for x in tensors})

    add(_act("input", (1, 32, 32, 3), 1 / 128, 0))
    w, b, _ = _weights(rng, "conv0_w", (16, 3, 3, 3), 0, 27, 1 / 128)
    add(w, b, _act("conv0", (1, 16, 16, 16)))
    ops.append(Op("conv0", "CONV_2D", ["input", w.name, b.name], ["conv0"],
                  {"stride": (2, 2), "dilation": (1, 1), "padding": "SAME",
                   "activation": "RELU6"}))
    w, b, _ = _weights(rng, "dw1_w", (1, 3, 3, 16), 3, 9, _ACT_SCALE)
    add(w, b, _act("dw1", (1, 16, 16, 16)))
    ops.append(Op("dw1", "DEPTHWISE_CONV_2D", ["conv0", w.name, b.name], ["dw1"],
                  {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME",
                   "activation": "RELU6", "depth_multiplier": 1}))
    w, b, _ = _weights(rng, "pw1_w", (16, 1, 1, 16), 0, 16, _ACT_SCALE)
    add(w, b, _act("pw1", (1, 16, 16, 16), 0.08, 0))
    ops.append(Op("pw1", "CONV_2D", ["dw1", w.name, b.name], ["pw1"],
                  {"stride": (1, 1), "dilation": (1, 1), "padding": "VALID",
                   "activation": "NONE"}))
    add(_act("res1", (1, 16, 16, 16), 0.1, 0))
    ops.append(Op("res1", "ADD", ["conv0", "pw1"], ["res1"], {"activation": "RELU"}))
    add(_act("pool", (1, 1, 1, 16), 0.1, 0))
    ops.append(Op("pool", "AVERAGE_POOL_2D", ["res1"], ["pool"],
                  {"stride": (16, 16), "filter": (16, 16), "padding": "VALID",
                   "activation": "NONE"}))
    add(_act("flat", (1, 16), 0.1, 0))
    ops.append(Op("flat", "RESHAPE", ["pool"], ["flat"], {}))
    w, b, _ = _weights(rng, "fc_w", (10, 16), 0, 16, 0.1)
    # FULLY_CONNECTED in TFLM takes per-tensor weights: requantise to one scale.
    assert w.quant is not None and w.data is not None and b.data is not None
    per_channel = w.quant.scale
    scale = np.float32(per_channel.max())
    w.data = np.clip(np.round(w.data * (per_channel[:, None] / scale)), -127, 127).astype(np.int8)
    w.quant = QuantParams(np.array([scale], np.float32), np.zeros(1, np.int64))
    b.quant = QuantParams(np.array([0.1 * scale], np.float32), np.zeros(1, np.int64))
    add(w, b, _act("logits", (1, 10), 0.15, 0))
    ops.append(Op("fc", "FULLY_CONNECTED", ["flat", w.name, b.name], ["logits"],
                  {"activation": "NONE", "keep_num_dims": False}))
    add(_act("probs", (1, 10), 1 / 256, -128))
    ops.append(Op("softmax", "SOFTMAX", ["logits"], ["probs"], {"beta": 1.0}))
    return Graph(t, ops, ["input"], ["probs"], name="demo_cnn")


def run_demo(out_dir: Path) -> int:
    """Write demo_cnn.tflite, compile it into out_dir/project, verify it, print a summary."""
    from .codegen import compile_graph
    from .frontend import load_model
    from .verify import verify_graph

    out_dir.mkdir(parents=True, exist_ok=True)
    graph = demo_graph()
    source, tflite_bytes = "demo_cnn", None
    if tflm.tflm_available():
        from .frontend.tflite_writer import write_tflite

        model = out_dir / "demo_cnn.tflite"
        model.write_bytes(write_tflite(graph))
        print(f"wrote {model} (built-in demo CNN, int8, seeded weights)")
        graph, source, tflite_bytes = load_model(model), str(model), model.read_bytes()
    else:
        print("tflite-micro is not installed: no .tflite file and no TFLM check (pip install "
              "tflite-micro)")
    verdicts, _ = verify_graph(graph, tflite_bytes, n_random=20, progress=True, source=source)
    report = compile_graph(graph, out_dir / "project", prefix="demo", source=source)
    print(f"compiled {out_dir / 'project'}: {len(report['ops'])} ops, arena "
          f"{report['arena_bytes']} B, flash {report['flash_bytes']} B, {report['macs']} MACs")
    for v in verdicts:
        print(v.line(report["arena_bytes"]))
    print(f"build it: make -C {out_dir / 'project'}")
    return 0 if all(v.exact for v in verdicts) else 1
