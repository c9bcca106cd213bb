"""How fast the resource model prices a network: plans per second for a 50-op network.

    .venv/bin/python benchmarks/plan_speed.py [--seconds S]

The network is a MobileNetV2-like description without weights (constants marked const, as the
search builds them): a stride-2 stem, then inverted-residual blocks (pointwise expand,
depthwise 3x3, pointwise project, residual ADD where shapes allow), global pooling, a
classifier: 50 ops on a 96x96x3 input. Prints estimate() calls per second without patches and
with the automatic patch search.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tinyengine.cost import estimate
from tinyengine.ir import Graph, Op, QuantParams, Tensor

_Q = QuantParams(np.array([0.05], np.float32), np.array([-10], np.int64))


def mobilenet_like(resolution: int = 96, n_ops: int = 50) -> Graph:
    t: dict[str, Tensor] = {}
    ops: list[Op] = []

    def act(shape: tuple[int, ...]) -> str:
        name = f"a{len(t)}"
        t[name] = Tensor(name, shape, "int8", _Q)
        return name

    def const(shape: tuple[int, ...], dtype: str = "int8") -> str:
        name = f"w{len(t)}"
        t[name] = Tensor(name, shape, dtype, const=True)
        return name

    def conv(x: str, cout: int, k: int, stride: int, depthwise: bool = False) -> str:
        n, h, w, c = t[x].shape
        oh, ow = (h + stride - 1) // stride, (w + stride - 1) // stride
        y = act((n, oh, ow, c if depthwise else cout))
        wt = const((1, k, k, c) if depthwise else (cout, k, k, c))
        b = const((c if depthwise else cout,), "int32")
        attrs = {"stride": (stride, stride), "dilation": (1, 1), "padding": "SAME",
                 "activation": "RELU6"}
        if depthwise:
            attrs["depth_multiplier"] = 1
        ops.append(Op(f"op{len(ops)}", "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
                      [x, wt, b], [y], attrs))
        return y

    x = act((1, resolution, resolution, 3))
    inp = x
    y = conv(x, 16, 3, 2)
    channels = [16, 24, 24, 32, 32, 32, 64, 64, 64, 96, 96, 160, 160]
    i = 0
    while len(ops) < n_ops - 4:
        cout = channels[min(i, len(channels) - 1)]
        stride = 2 if i in (1, 3, 6, 11) else 1
        cin = t[y].shape[3]
        h = conv(y, cin * 3, 1, 1)
        h = conv(h, 0, 3, stride, depthwise=True)
        h = conv(h, cout, 1, 1)
        if stride == 1 and cin == cout and len(ops) < n_ops - 5:
            s = act(t[h].shape)
            ops.append(Op(f"op{len(ops)}", "ADD", [y, h], [s], {"activation": "NONE"}))
            h = s
        y = h
        i += 1
    n, hh, ww, c = t[y].shape
    p = act((n, 1, 1, c))
    ops.append(Op(f"op{len(ops)}", "AVERAGE_POOL_2D", [y], [p],
                  {"stride": (hh, ww), "filter": (hh, ww), "padding": "VALID",
                   "activation": "NONE"}))
    f = act((1, c))
    ops.append(Op(f"op{len(ops)}", "RESHAPE", [p], [f], {}))
    logits = act((1, 10))
    ops.append(Op(f"op{len(ops)}", "FULLY_CONNECTED", [f, const((10, c)), const((10,), "int32")],
                  [logits], {"activation": "NONE", "keep_num_dims": False}))
    return Graph(t, ops, [inp], [logits], name="mobilenet_like")


def rate(graph: Graph, patch: str, seconds: float) -> tuple[float, int, int]:
    n, t0 = 0, time.perf_counter()
    while True:
        cost = estimate(graph, patch=patch)
        n += 1
        if time.perf_counter() - t0 >= seconds:
            return n / (time.perf_counter() - t0), cost.peak_sram, cost.macs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    graph = mobilenet_like()
    print(f"network: {len(graph.ops)} ops, input {graph.tensor(graph.inputs[0]).shape}")
    print("| patch search | plans/s | peak SRAM B | MACs |")
    print("|---|---|---|---|")
    for patch in ("off", "auto"):
        per_s, peak, macs = rate(graph, patch, args.seconds)
        print(f"| {patch} | {per_s:.1f} | {peak:,} | {macs:,} |")


if __name__ == "__main__":
    main()
