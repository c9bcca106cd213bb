"""In-place kernels stay bit-exact: a graph built so that every in-place path runs (pointwise
convolutions narrowing and widening inside one buffer, depthwise through its plane of scratch,
ADD into a dying operand), compiled and run as C against the reference, also under ASan."""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.ir import Graph, Op, QuantParams, Tensor
from tinyengine.memory.inplace import alias_groups, mark_inplace
from tinyengine.memory.schedule import lower_bound
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel

from .random_graphs import random_graph
from .sanitized import check_sanitized_demo


def _q(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def inplace_graph(seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    t: dict[str, Tensor] = {}
    ops: list[Op] = []

    def act(name: str, c: int, scale: float = 0.05) -> str:
        t[name] = Tensor(name, (1, 6, 5, c), "int8", _q(scale, int(rng.integers(-20, 20))))
        return name

    def conv(name: str, x: str, cout: int, k: int = 1, depthwise: bool = False) -> str:
        cin = t[x].shape[3]
        shape = (1, k, k, cin) if depthwise else (cout, k, k, cin)
        axis = 3 if depthwise else 0
        channels = shape[axis]
        w = rng.integers(-127, 128, shape).astype(np.int8)
        t[name + "_w"] = Tensor(name + "_w", shape, "int8", QuantParams(
            rng.uniform(0.002, 0.01, channels).astype(np.float32), np.zeros(channels, np.int64),
            axis), w)
        t[name + "_b"] = Tensor(name + "_b", (channels,), "int32", None,
                                rng.integers(-500, 500, channels).astype(np.int32))
        y = act(name, cin if depthwise else cout, 0.1)
        attrs = {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "activation": "NONE"}
        if depthwise:
            attrs["depth_multiplier"] = 1
        ops.append(Op(name, "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D",
                      [x, name + "_w", name + "_b"], [y], attrs))
        return y

    x = act("x", 8)
    a = conv("narrow", x, 3)          # 8 -> 3 channels, in place over x, forward order
    b = conv("widen", a, 7)           # 3 -> 7 channels, fits the 8-channel buffer: reverse order
    c = conv("dw", b, 0, k=3, depthwise=True)  # 3x3 depthwise in place, one plane of scratch
    d = conv("side", x, 7, k=3)       # also reads x: run first, so x dies at "narrow"
    s = act("sum", 7, 0.2)
    ops.append(Op("add", "ADD", [c, d], [s], {"activation": "RELU"}))
    return Graph(t, ops, ["x"], ["sum"], name="inplace")


def _reordered_for_inplace(graph: Graph) -> Graph:
    """Run "side" first so that x dies at "narrow" and the chain can run in place."""
    order = ["side", "narrow", "widen", "dw", "add"]
    ops = {op.name: op for op in graph.ops}
    return Graph(graph.tensors, [ops[n] for n in order], graph.inputs, graph.outputs)


def test_every_inplace_kernel_path_is_exact(tmp_path):
    # Marks set by hand (compile_graph(inplace=False) keeps them): every in-place kernel path
    # runs whether or not mark_inplace would judge it worth it on this small graph.
    graph = _reordered_for_inplace(inplace_graph())
    for op in graph.ops:
        if op.name != "side":
            op.attrs["inplace"] = 0
    groups = alias_groups(graph)
    assert len({groups[n] for n in ("x", "narrow", "widen", "dw", "sum")}) == 1
    report = compile_graph(graph, tmp_path / "p", prefix="ip", patch="off", inplace=False)
    kernels = {o["name"]: o["kernel"] for o in report["ops"]}
    assert kernels["narrow"] == kernels["widen"] == "te_conv2d_1x1_inplace_s8"
    assert kernels["dw"] == "te_depthwise_conv_inplace_s8"
    host = HostModel(tmp_path / "p")
    rng = np.random.default_rng(1)
    cases = [[rng.integers(-128, 128, (1, 6, 5, 8)).astype(np.int8)] for _ in range(6)]
    for x in cases:
        np.testing.assert_array_equal(host.invoke(x)[0], run_reference(graph, x)[0])
    check_sanitized_demo(tmp_path / "p", "ip", graph, cases)


@pytest.mark.parametrize("seed", range(25))
def test_marks_never_raise_the_lower_bound(seed):
    graph = random_graph(np.random.default_rng(seed), max_ops=6)
    marked = mark_inplace(graph)
    assert lower_bound(marked, inplace=False) <= lower_bound(graph, inplace=False)


def test_inplace_lowers_the_arena(tmp_path):
    graph = _reordered_for_inplace(inplace_graph())
    with_inplace = compile_graph(graph, tmp_path / "a", patch="off")["arena_bytes"]
    without = compile_graph(graph, tmp_path / "b", patch="off", inplace=False)["arena_bytes"]
    assert with_inplace < without
