"""Patch-based inference passes through an explicit PAD (torch's stride-2 convolution is PAD +
VALID conv) and through element-wise ops; a stage that cannot run patch by patch names the op
that stops it."""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.errors import TinyEngineError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.memory.patch import patch_graph, stage_candidates
from tinyengine.memory.schedule import schedule
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel


def _qp(scale, zp, axis=0):
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def torch_style(rng: np.random.Generator, pad_channels: bool = False) -> Graph:
    """x -> PAD 1 -> conv 3x3 s2 VALID (relu) -> RELU6 -> PAD 1 -> depthwise 3x3 s1 VALID ->
    conv 1x1 -> mean -> fc: the first layers of an exported PyTorch network."""
    t: dict[str, Tensor] = {"x": Tensor("x", (1, 32, 32, 3), "int8", _qp(0.02, -1))}
    ops: list[Op] = []
    q = _qp(0.05, -128)

    def add(name: str, shape: tuple[int, ...], quant: QuantParams = q) -> str:
        t[name] = Tensor(name, shape, "int8", quant)
        return name

    def weights(name: str, shape: tuple[int, ...], axis: int) -> str:
        n = shape[axis]
        t[name] = Tensor(name, shape, "int8", _qp(np.full(n, 0.01), np.zeros(n), axis),
                         rng.integers(-127, 128, shape, dtype=np.int8))
        return name

    chan = [(0, 0), (1, 1), (1, 1), (0, 1 if pad_channels else 0)]
    ops.append(Op("pad0", "PAD", ["x"], [add("p0", (1, 34, 34, 3 + chan[3][1]), t["x"].quant)],
                  {"paddings": chan}))
    cin = 3 + chan[3][1]
    ops.append(Op("conv0", "CONV_2D", ["p0", weights("w0", (8, 3, 3, cin), 0), ""],
                  [add("c0", (1, 16, 16, 8))],
                  {"stride": (2, 2), "padding": "VALID", "dilation": (1, 1),
                   "activation": "RELU"}))
    ops.append(Op("relu6", "RELU6", ["c0"], [add("r0", (1, 16, 16, 8))]))
    ops.append(Op("pad1", "PAD", ["r0"], [add("p1", (1, 18, 18, 8))],
                  {"paddings": [(0, 0), (1, 1), (1, 1), (0, 0)]}))
    ops.append(Op("dw1", "DEPTHWISE_CONV_2D", ["p1", weights("w1", (1, 3, 3, 8), 3), ""],
                  [add("d1", (1, 16, 16, 8), _qp(0.1, -128))],
                  {"stride": (1, 1), "padding": "VALID", "dilation": (1, 1),
                   "activation": "RELU", "depth_multiplier": 1}))
    ops.append(Op("pw2", "CONV_2D", ["d1", weights("w2", (16, 1, 1, 8), 0), ""],
                  [add("c2", (1, 16, 16, 16), _qp(0.1, 0))],
                  {"stride": (1, 1), "padding": "VALID", "dilation": (1, 1),
                   "activation": "NONE"}))
    ops.append(Op("mean", "MEAN", ["c2"], [add("m", (1, 16), _qp(0.05, 0))],
                  {"axes": (1, 2), "keep_dims": False}))
    ops.append(Op("fc", "FULLY_CONNECTED", ["m", weights("w3", (4, 16), 0), ""],
                  [add("y", (1, 4), _qp(0.1, 0))],
                  {"activation": "NONE", "keep_num_dims": False}))
    g = Graph(t, ops, ["x"], ["y"], name="torch_style")
    verify(g)
    return g


def test_patch_stage_passes_through_pad_and_elementwise(tmp_path):
    g = torch_style(np.random.default_rng(0))
    assert max(stage_candidates(g)) >= 6  # PAD, conv, RELU6, PAD, depthwise, pointwise
    whole = schedule(g, patch="off")
    patched = schedule(g, patch="auto")
    assert patched.patches is not None
    assert patched.plan.arena_bytes < whole.plan.arena_bytes
    assert patched.patches.stage_ops[0] == "pad0"  # the stage starts at the explicit PAD
    compile_graph(g, tmp_path / "p", prefix="tp", patch="auto")
    host = HostModel(tmp_path / "p")
    rng = np.random.default_rng(1)
    for _ in range(5):
        x = rng.integers(-128, 128, (1, 32, 32, 3), dtype=np.int8)
        np.testing.assert_array_equal(host.invoke([x])[0], run_reference(g, [x])[0])
        np.testing.assert_array_equal(run_reference(patched.graph, [x])[0],
                                      run_reference(g, [x])[0])


@pytest.mark.parametrize("grid", [(2, 2), (3, 2), (4, 4)])
def test_forced_grids_through_pad_are_exact(grid):
    g = torch_style(np.random.default_rng(2))
    n = max(stage_candidates(g))
    pg, _ = patch_graph(g, n, grid)
    verify(pg)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.integers(-128, 128, (1, 32, 32, 3), dtype=np.int8)
        np.testing.assert_array_equal(run_reference(pg, [x])[0], run_reference(g, [x])[0])


def test_channel_pad_blocks_and_is_named():
    g = torch_style(np.random.default_rng(4), pad_channels=True)
    assert stage_candidates(g) == []
    with pytest.raises(TinyEngineError, match=r"op pad0 \(PAD\) cannot run patch by patch"):
        patch_graph(g, 3, (2, 2))


def nchw_input(rng: np.random.Generator) -> Graph:
    """PyTorch's exported TFLite: an NCHW input, TRANSPOSE to NHWC, PAD, stride-2 conv, ..."""
    g = torch_style(rng)
    x = g.tensors.pop("x")
    g.tensors["x_nchw"] = Tensor("x_nchw", (1, 3, 32, 32), "int8", x.quant)
    g.tensors["x"] = x
    g.ops.insert(0, Op("to_nhwc", "TRANSPOSE", ["x_nchw"], ["x"], {"perm": (0, 2, 3, 1)}))
    g.inputs = ["x_nchw"]
    verify(g)
    return g


def test_patch_stage_reads_an_nchw_input_through_its_transpose(tmp_path):
    g = nchw_input(np.random.default_rng(5))
    assert max(stage_candidates(g)) >= 7
    whole = schedule(g, patch="off")
    patched = schedule(g, patch="auto")
    assert patched.patches is not None and patched.patches.stage_ops[0] == "to_nhwc"
    assert patched.plan.arena_bytes < whole.plan.arena_bytes
    slices = [op for op in patched.graph.ops if op.name.startswith("slice_input@")]
    assert slices and all(op.attrs["begin"][1] == 0 for op in slices)  # channels whole
    compile_graph(g, tmp_path / "p", prefix="nc", patch="auto")
    host = HostModel(tmp_path / "p")
    rng = np.random.default_rng(6)
    for _ in range(4):
        x = rng.integers(-128, 128, (1, 3, 32, 32), dtype=np.int8)
        np.testing.assert_array_equal(host.invoke([x])[0], run_reference(g, [x])[0])


@pytest.mark.parametrize("grid", [(2, 2), (4, 3)])
def test_forced_grids_through_transpose_are_exact(grid):
    g = nchw_input(np.random.default_rng(7))
    pg, _ = patch_graph(g, max(stage_candidates(g)), grid)
    verify(pg)
    x = np.random.default_rng(8).integers(-128, 128, (1, 3, 32, 32), dtype=np.int8)
    np.testing.assert_array_equal(run_reference(pg, [x])[0], run_reference(g, [x])[0])


def test_patch_wholly_in_padding_is_refused_and_skipped():
    q = _qp(0.05, 0)
    w = np.ones((1, 1, 1, 1), np.int8)
    g = Graph({"x": Tensor("x", (1, 2, 2, 1), "int8", q),
               "p": Tensor("p", (1, 6, 6, 1), "int8", q),
               "w": Tensor("w", (1, 1, 1, 1), "int8", _qp(0.01, 0), w),
               "y": Tensor("y", (1, 6, 6, 1), "int8", q),
               "m": Tensor("m", (1, 1), "int8", q)},
              [Op("pad", "PAD", ["x"], ["p"], {"paddings": [(0, 0), (2, 2), (2, 2), (0, 0)]}),
               Op("conv", "CONV_2D", ["p", "w", ""], ["y"],
                  {"stride": (1, 1), "padding": "VALID", "dilation": (1, 1),
                   "activation": "NONE"}),
               Op("mean", "MEAN", ["y"], ["m"], {"axes": (1, 2), "keep_dims": False})],
              ["x"], ["m"])
    verify(g)
    with pytest.raises(TinyEngineError, match=r"wholly in the padding of op pad \(PAD\)"):
        patch_graph(g, 2, (3, 3))
    schedule(g, patch="auto")  # the search skips such grids instead of failing


def test_constant_first_operand_does_not_block_the_stage():
    """PyTorch's `1 - x` is SUB(constant, x): the constant comes first and broadcasts over H and
    W; the op is element-wise on its one activation input (review finding)."""
    g = torch_style(np.random.default_rng(9))
    relu6 = next(op for op in g.ops if op.kind == "RELU6")
    g.tensors["one"] = Tensor("one", (1, 1, 1, 8), "int8", g.tensor("c0").quant,
                              np.full((1, 1, 1, 8), 20, np.int8))
    g.tensors["s0"] = Tensor("s0", (1, 16, 16, 8), "int8", g.tensor("r0").quant)
    i = g.ops.index(relu6)
    g.ops.insert(i, Op("one_minus", "SUB", ["one", "c0"], ["s0"], {"activation": "NONE"}))
    relu6.inputs = ["s0"]
    verify(g)
    assert max(stage_candidates(g)) >= 7
    pg, _ = patch_graph(g, max(stage_candidates(g)), (2, 2))
    x = np.random.default_rng(10).integers(-128, 128, (1, 32, 32, 3), dtype=np.int8)
    np.testing.assert_array_equal(run_reference(pg, [x])[0], run_reference(g, [x])[0])


def test_blocker_names_a_skip_connection():
    g = torch_style(np.random.default_rng(11))
    longest = max(stage_candidates(g))
    with pytest.raises(TinyEngineError, match="cannot run as a patch stage .*op mean"):
        patch_graph(g, longest + 1, (2, 2))
