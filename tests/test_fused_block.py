"""Inverted-residual blocks run band by band (FUSED_BLOCK, csrc/te_fused_block.h): bit-exact
with the unfused ops' reference on host (portable and emulated SIMD), out of place and in place,
for strides 1 and 2, kernels 3/5/7, with and without the residual add, odd widths and
per-channel requantisation; the planner takes them only where the arena shrinks."""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.memory.fuse import fusable_blocks, fuse_blocks
from tinyengine.memory.plan import _aligned
from tinyengine.memory.schedule import schedule
from tinyengine.ops import get_op
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel

from .sanitized import check_sanitized_demo

EMULATE = ["-DTE_SIMD_EMULATE"]


def _q(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def block_graph(h: int = 9, w: int = 7, cin: int = 5, expand: int = 3, cout: int | None = None,
                k: int = 3, stride: int = 1, residual: bool = True, per_channel: bool = True,
                batch: int = 1, padding: str = "SAME", seed: int = 0) -> Graph:
    """x -> expand (1x1, RELU6) -> depthwise kxk -> project (1x1) [-> + x], random weights."""
    rng = np.random.default_rng(seed)
    cout = cin if cout is None else cout
    cexp = cin * expand
    t: dict[str, Tensor] = {}
    ops: list[Op] = []

    def act(name: str, shape: tuple[int, ...], scale: float) -> str:
        t[name] = Tensor(name, shape, "int8", _q(scale, int(rng.integers(-30, 30))))
        return name

    def weights(name: str, shape: tuple[int, ...], axis: int) -> list[str]:
        n = shape[axis] if per_channel else 1
        t[name + ".w"] = Tensor(name + ".w", shape, "int8", QuantParams(
            rng.uniform(0.002, 0.02, n).astype(np.float32), np.zeros(n, np.int64), axis),
            rng.integers(-127, 128, shape).astype(np.int8))
        t[name + ".b"] = Tensor(name + ".b", (shape[axis],), "int32", None,
                                rng.integers(-800, 800, shape[axis]).astype(np.int32))
        return [name + ".w", name + ".b"]

    x = act("x", (batch, h, w, cin), 0.05)
    conv = {"stride": (1, 1), "dilation": (1, 1), "padding": "SAME", "groups": 1}
    e = act("e", (batch, h, w, cexp), 0.04)
    ops.append(Op("expand", "CONV_2D", [x, *weights("expand", (cexp, 1, 1, cin), 0)], [e],
                  dict(conv, activation="RELU6")))
    oh = -(-h // stride) if padding == "SAME" else (h - k) // stride + 1
    ow = -(-w // stride) if padding == "SAME" else (w - k) // stride + 1
    d = act("d", (batch, oh, ow, cexp), 0.03)
    ops.append(Op("dw", "DEPTHWISE_CONV_2D", [e, *weights("dw", (1, k, k, cexp), 3)], [d],
                  {"stride": (stride, stride), "dilation": (1, 1), "padding": padding,
                   "activation": "RELU6", "depth_multiplier": 1}))
    p = act("p", (batch, oh, ow, cout), 0.06)
    ops.append(Op("project", "CONV_2D", [d, *weights("project", (cout, 1, 1, cexp), 0)], [p],
                  dict(conv, activation="NONE")))
    out = p
    if residual:
        out = act("y", (batch, oh, ow, cout), 0.08)
        ops.append(Op("add", "ADD", [x, p], [out], {"activation": "NONE"}))
    graph = Graph(t, ops, ["x"], [out], name="block")
    verify(graph)
    return graph


def _inputs(graph: Graph, n: int, seed: int = 1) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    shape = graph.tensor(graph.inputs[0]).shape
    return [[rng.integers(-128, 128, shape).astype(np.int8)] for _ in range(n)]


def _check_fused(graph: Graph, tmp_path, inplace: bool, flags: list[str] | None = None,
                 sanitized: bool = False) -> None:
    """Compile the fully fused graph (marks by hand: compile_graph(inplace=False) keeps them)
    and compare with the unfused reference."""
    fused = fuse_blocks(graph)
    assert [op.kind for op in fused.ops] == ["FUSED_BLOCK"]
    verify(fused)
    if inplace:
        fused.ops[0].attrs["inplace"] = 0
    report = compile_graph(fused, tmp_path / "p", prefix="fb", patch="off", inplace=False)
    assert [o["kernel"] for o in report["ops"]] == ["te_fused_block_s8"]
    x_bytes, y_bytes = (_aligned(graph.tensor(n).nbytes) for n in graph.inputs + graph.outputs)
    apart = x_bytes + y_bytes + get_op("FUSED_BLOCK").scratch_bytes(fused, fused.ops[0])
    assert (report["arena_bytes"] < apart) == inplace  # in place: one buffer for both
    host = HostModel(tmp_path / "p", extra_cflags=flags)
    cases = _inputs(graph, 3)
    for x in cases:
        want = run_reference(graph, x)[0]
        np.testing.assert_array_equal(run_reference(fused, x)[0], want)
        np.testing.assert_array_equal(host.invoke(x)[0], want)
    if sanitized:  # ASan/UBSan: nothing read or written outside the arena's buffers
        check_sanitized_demo(tmp_path / "p", "fb", graph, cases)


@pytest.mark.parametrize("k,stride,residual", [(3, 1, True), (5, 1, True), (7, 1, True),
                                               (3, 1, False), (3, 2, False), (5, 2, False),
                                               (7, 2, False)])
def test_fused_block_is_exact(k, stride, residual, tmp_path):
    graph = block_graph(h=11, w=9, k=k, stride=stride, residual=residual, seed=k + stride)
    _check_fused(graph, tmp_path, inplace=False)


@pytest.mark.parametrize("residual,stride", [(True, 1), (False, 2), (False, 1)])
def test_fused_block_in_place_is_exact(residual, stride, tmp_path):
    # Output over the input: the projection narrows (8 -> 5 channels) where there is no add.
    graph = block_graph(h=10, w=7, cin=8 if not residual else 5, cout=5, k=5, stride=stride,
                        residual=residual, seed=3)
    _check_fused(graph, tmp_path, inplace=True, sanitized=True)


@pytest.mark.parametrize("flags", [EMULATE, None])
def test_fused_block_simd_paths_batches_and_per_tensor(flags, tmp_path):
    # 16+ input channels take the widened 1x1 path, 3x3 the hoisted depthwise kernel; two
    # batches, per-tensor weights, odd width, VALID padding and stride 2.
    for i, graph in enumerate([
            block_graph(h=8, w=5, cin=16, expand=2, k=3, batch=2, per_channel=False, seed=5),
            block_graph(h=9, w=11, cin=4, expand=5, k=3, stride=2, residual=False,
                        padding="VALID", seed=6)]):
        _check_fused(graph, tmp_path / str(i), inplace=i == 0, flags=flags)


def test_planner_fuses_only_where_the_arena_shrinks(tmp_path):
    graph = block_graph(h=16, w=16, cin=8, expand=6, k=5, seed=7)
    sched = schedule(graph, "off")
    assert [op.kind for op in sched.graph.ops] == ["FUSED_BLOCK"]
    unfused = schedule(graph, "off", inplace=False)
    assert sched.plan.arena_bytes < unfused.plan.arena_bytes
    # The whole expanded tensor (16 x 16 x 48 B) no longer fits beside the input, but the
    # window of 5 rows does.
    assert sched.plan.arena_bytes < 16 * 16 * 48
    report = compile_graph(graph, tmp_path / "p", prefix="fb", patch="off")
    host = HostModel(tmp_path / "p")
    for x in _inputs(graph, 2):
        np.testing.assert_array_equal(host.invoke(x)[0], run_reference(graph, x)[0])
    assert report["ops"][0]["kernel"] == "te_fused_block_s8"
    # A block whose expansion is tiny gains nothing: left unfused.
    small = block_graph(h=3, w=3, cin=8, expand=1, cout=8, k=3, residual=False, seed=8)
    assert "FUSED_BLOCK" not in [op.kind for op in schedule(small, "off").graph.ops]


def test_chains_outside_the_domain_are_not_fused():
    graph = block_graph(seed=9)
    # The expansion also read elsewhere: the chain is not self-contained.
    ops = graph.ops + [Op("side", "ADD", ["e", "e"], ["y2"], {"activation": "NONE"})]
    tensors = dict(graph.tensors, y2=Tensor("y2", graph.tensor("e").shape, "int8",
                                            _q(0.1, 0)))
    assert fusable_blocks(Graph(tensors, ops, ["x"], ["y", "y2"])) == []
    # A 3x3 expansion is not pointwise.
    bad = block_graph(seed=9)
    w = bad.tensor("expand.w")
    bad.tensors["expand.w"] = Tensor(w.name, (15, 3, 3, 5), "int8", w.quant,
                                     np.zeros((15, 3, 3, 5), np.int8))
    assert fusable_blocks(bad) == []


def test_fused_op_refuses_a_broken_chain():
    fused = fuse_blocks(block_graph(seed=10))
    fused.ops[0].inputs[1] = "dw.w"
    with pytest.raises(UnsupportedError, match="FUSED_BLOCK"):
        verify(fused)


def test_plan_command_shows_the_fused_block(tmp_path, capsys):
    from tinyengine.cli import main
    from tinyengine.frontend.tflite_writer import write_tflite

    model = tmp_path / "block.tflite"
    model.write_bytes(write_tflite(block_graph(h=16, w=16, cin=8, expand=6, k=5, seed=7)))
    assert main(["plan", str(model), "--patch", "off", "--png", str(tmp_path / "m.png")]) == 0
    out = capsys.readouterr().out
    name = "conv_2d_0+depthwise_conv_2d_1+conv_2d_2+add_3"  # the file's op names
    assert f"peak step 0 {name} (FUSED_BLOCK)" in out
    assert f"fused blocks, expansion held a window of rows at a time (1): {name}" in out
    assert "x -> y" in out  # the block's output overwrites its input


CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { int32_t input_offset; int32_t output_offset; ...; } te_quant_t;
typedef struct { te_dims_t input; te_dims_t filter; te_dims_t output; int32_t stride_h;
                 int32_t dilation_h; int32_t pad_h; te_quant_t q; ...; } te_conv2d_params_t;
typedef struct { te_dims_t input; te_dims_t filter; te_dims_t output; int32_t stride_h;
                 int32_t dilation_h; int32_t pad_h; te_quant_t q; ...;
               } te_depthwise_conv_params_t;
typedef struct { te_dims_t dims; ...; } te_add_input_t;
typedef struct { te_add_input_t input1; te_add_input_t input2; te_dims_t output; ...;
               } te_add_params_t;
typedef struct { te_conv2d_params_t expand; te_depthwise_conv_params_t dw;
                 te_conv2d_params_t project; te_add_params_t add; int32_t residual;
               } te_fused_block_params_t;
int32_t te_fused_block_get_buffer_size(const te_fused_block_params_t *p);
te_status_t te_fused_block_s8(const te_fused_block_params_t *p, const int8_t *input,
    const int8_t *e_filter, const int32_t *e_bias, const int8_t *d_filter,
    const int32_t *d_bias, const int8_t *p_filter, const int32_t *p_bias, int8_t *output,
    int8_t *scratch);
"""


def test_kernel_refuses_what_it_cannot_do():
    """The C kernel's own checks, before any member kernel runs: scratch, overlap, geometry;
    and its scratch size is the planner's."""
    from .ckernels import build

    ffi, lib = build(["te_fused_block.h"], ["te_fused_block.c", "te_conv.c", "te_depthwise.c",
                                            "te_add.c"], CDEF,
                     deps=("te_conv.h", "te_depthwise.h", "te_add.h", "te_simd.h",
                           "te_requant16.h"))
    graph = block_graph(h=6, w=5, cin=4, expand=3, k=5, seed=13)
    fused = fuse_blocks(graph)
    p = ffi.new("te_fused_block_params_t *")
    for field, m in zip(("expand", "dw", "project"), fused.ops[0].attrs["block"]):
        s = getattr(p, field)
        x, w, y = (graph.tensor(n) for n in (m.inputs[0], m.inputs[1], m.outputs[0]))
        s.input, s.filter, s.output = (list(t.shape) for t in (x, w, y))
        s.stride_h, s.dilation_h = m.attrs["stride"][0], 1
        s.pad_h = 2 if field == "dw" else 0
        s.q.input_offset, s.q.output_offset = -x.zero_point, y.zero_point
    flat = [1, 1, 1, 6 * 5 * 4]
    p.add.input1.dims = p.add.input2.dims = p.add.output = flat
    p.residual = 1
    assert lib.te_fused_block_get_buffer_size(p) == \
        get_op("FUSED_BLOCK").scratch_bytes(fused, fused.ops[0])
    buf = np.zeros(4096, np.int8)
    scratch = np.zeros(lib.te_fused_block_get_buffer_size(p), np.int8)
    filt = np.zeros(64, np.int8)

    def call(x_at: int, y_at: int, with_scratch: bool = True) -> int:
        ptr = ffi.cast("int8_t *", ffi.from_buffer(buf))
        f = ffi.cast("int8_t *", ffi.from_buffer(filt))
        s = ffi.cast("int8_t *", ffi.from_buffer(scratch)) if with_scratch else ffi.NULL
        return int(lib.te_fused_block_s8(p, ptr + x_at, f, ffi.NULL, f, ffi.NULL, f, ffi.NULL,
                                         ptr + y_at, s))

    assert call(0, 1024, with_scratch=False) == lib.TE_ERR_SCRATCH
    assert call(0, 40) == lib.TE_ERR_ARG  # the output overlaps the input, not in place
    p.dw.pad_h = 5  # beyond the window of 5 rows: a window of padding alone
    assert call(0, 1024) == lib.TE_ERR_ARG
    p.dw.pad_h = 2
    p.dw.q.input_offset += 1  # the depthwise does not read the expansion's zero point
    assert call(0, 1024) == lib.TE_ERR_ARG
