"""How much slower (or faster) each in-place kernel is than its out-of-place twin, per shape
class: the table memory/ uses to take an in-place variant only where the arena needs it
(issue 15, point 2).

    .venv/bin/python benchmarks/inplace_speed.py            # print the table
    .venv/bin/python benchmarks/inplace_speed.py --write    # and store it for the planner

For each layer below, a two-op graph (a 1x1 convolution producing the layer's input, then the
layer) is compiled twice, in-place marks allowed and not, and run under QEMU (cortex-m4, the
SIMD kernels at -O2) with the project's own instruction counter; the ratio is the layer's
instructions in place over out of place. A class's figure is the geometric mean of its
layers' ratios. Written to
tinyengine/ops/inplace_speed.json, read by the ops' `inplace_speed` hooks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinyengine.codegen.project import compile_graph  # noqa: E402
from tinyengine.ir import Graph, Op, QuantParams, Tensor  # noqa: E402
from tinyengine.ops import get_op, speed  # noqa: E402
from tinyengine.target import bench  # noqa: E402

CORE = "cortex-m4"

# (kind, h, w, c_in, c_out or kernel): the shapes of the shared models' layers that have an
# in-place kernel (person_detect, kws), and a few beside them.
LAYERS = [
    ("DEPTHWISE_CONV_2D", 48, 48, 8, 3),
    ("DEPTHWISE_CONV_2D", 24, 24, 32, 3),
    ("DEPTHWISE_CONV_2D", 12, 12, 64, 3),
    ("DEPTHWISE_CONV_2D", 25, 5, 64, 3),
    ("DEPTHWISE_CONV_2D", 6, 6, 128, 3),
    ("DEPTHWISE_CONV_2D", 3, 3, 256, 3),
    ("DEPTHWISE_CONV_2D", 4, 4, 64, 3),
    ("DEPTHWISE_CONV_2D", 10, 10, 16, 7),
    ("CONV_2D", 48, 48, 8, 16),
    ("CONV_2D", 24, 24, 8, 8),
    ("CONV_2D", 24, 24, 16, 32),
    ("CONV_2D", 24, 24, 32, 32),
    ("CONV_2D", 25, 5, 64, 64),
    ("CONV_2D", 12, 12, 64, 64),
    ("CONV_2D", 6, 6, 128, 128),
    ("CONV_2D", 3, 3, 256, 256),
    ("CONV_2D", 6, 6, 96, 24),
]


def _q(scale, zp: int = 0, axis: int = 0) -> QuantParams:
    s = np.atleast_1d(np.asarray(scale, np.float32))
    return QuantParams(s, np.full(s.shape, zp, np.int64), axis)


def _conv_tensors(rng, tensors, name, x_scale, shape, oc) -> tuple[str, str]:
    w = rng.integers(-127, 128, shape).astype(np.int8)
    ws = rng.uniform(0.002, 0.01, oc).astype(np.float32)
    tensors[f"{name}_w"] = Tensor(f"{name}_w", shape, "int8", _q(ws, 0, 0 if shape[0] == oc else 3),
                                  w)
    b = rng.integers(-2000, 2000, oc).astype(np.int32)
    tensors[f"{name}_b"] = Tensor(f"{name}_b", (oc,), "int32", _q(ws * x_scale), b)
    return f"{name}_w", f"{name}_b"


def layer_graph(kind: str, h: int, w: int, c: int, last: int, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    tensors: dict[str, Tensor] = {}
    tensors["in"] = Tensor("in", (1, h, w, c), "int8", _q(0.05, -3))
    tensors["x"] = Tensor("x", (1, h, w, c), "int8", _q(0.04, 2))
    pw_w, pw_b = _conv_tensors(rng, tensors, "stem", 0.05, (c, 1, 1, c), c)
    attrs = {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "activation": "NONE"}
    ops = [Op("stem", "CONV_2D", ["in", pw_w, pw_b], ["x"], dict(attrs))]
    if kind == "DEPTHWISE_CONV_2D":
        wt, bt = _conv_tensors(rng, tensors, "layer", 0.04, (1, last, last, c), c)
        out_c = c
        ops.append(Op("layer", kind, ["x", wt, bt], ["y"], {**attrs, "depth_multiplier": 1}))
    else:
        wt, bt = _conv_tensors(rng, tensors, "layer", 0.04, (last, 1, 1, c), last)
        out_c = last
        ops.append(Op("layer", kind, ["x", wt, bt], ["y"], dict(attrs)))
    tensors["y"] = Tensor("y", (1, h, w, out_c), "int8", _q(0.06, -1))
    return Graph(tensors, ops, ["in"], ["y"], name=f"{kind.lower()}_{h}x{w}x{c}_{last}")


def measure(graph: Graph, work: Path) -> tuple[int, int, str, str]:
    """(in-place instructions, out-of-place instructions, kernels) of the graph's last op."""
    speed.ENABLED = False  # measure every in-place kernel, not only those the table allows
    counts, kernels = [], []
    for inplace in (True, False):
        project = work / f"{graph.name}_{int(inplace)}"
        report = compile_graph(graph, project, prefix="m", patch="off", inplace=inplace)
        kernels.append(report["ops"][-1]["kernel"])
        counts.append(bench(project, CORE).per_op[-1].instructions)
    return counts[0], counts[1], kernels[0], kernels[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="store the table for the planner")
    args = ap.parse_args(argv)
    start = time.time()
    ratios: dict[str, list[float]] = {}
    print(f"In-place kernels against their out-of-place twins, {CORE} -O2 (SIMD), QEMU "
          "instruction counts of the layer's call\n")
    print("| layer | class | in place | out of place | kernels | ratio |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, h, w, c, last in LAYERS:
            graph = layer_graph(kind, h, w, c, last)
            op = graph.ops[-1]
            marked = Op(op.name, op.kind, op.inputs, op.outputs, {**op.attrs, "inplace": 0})
            cls = get_op(kind).inplace_class(graph, marked)
            ins, outs, k_in, k_out = measure(graph, Path(tmp))
            if k_in == k_out:
                print(f"| {graph.name} | {cls} | - | {outs:,} | {k_out} (no in-place kernel "
                      "taken) | - |")
                continue
            ratio = ins / outs
            key = f"{kind}/{cls}"
            ratios.setdefault(key, []).append(ratio)
            print(f"| {graph.name} | {cls} | {ins:,} | {outs:,} | {k_in} / {k_out} | "
                  f"{ratio:.2f} |")
    table = {k: float(np.exp(np.mean(np.log(v)))) for k, v in ratios.items()}
    print("\n| class | layers | geometric mean | range |\n|---|---|---|---|")
    for key in sorted(table):
        print(f"| {key} | {len(ratios[key])} | {table[key]:.2f} | "
              f"{min(ratios[key]):.2f}-{max(ratios[key]):.2f} |")
    if args.write:
        data = {"core": CORE, "opt": "-O2", "command": "benchmarks/inplace_speed.py --write",
                "ratio": {k: round(v, 3) for k, v in sorted(table.items())}}
        speed.TABLE_PATH.write_text(json.dumps(data, indent=1) + "\n")
        print(f"\nwritten: {speed.TABLE_PATH.relative_to(ROOT)}")
    print(f"\n({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
