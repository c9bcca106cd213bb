"""Band by band in place (csrc/te_rows_inplace.h): a convolution or depthwise convolution writes
its output over its own input, a band of output rows at a time, straight into place.

Checked here:
- the band rule itself, on a byte-level simulation: with the input `offset` bytes into the
  output's buffer, no band reads an input byte that it or an earlier band has overwritten, at
  every offset the ops offer; `band(offset)` is the largest band that holds (one more row per
  band would overwrite input still to be read), and need(r) is the least offset for bands of r;
- the C kernels (te_conv2d_rows_inplace_s8, te_depthwise_conv_rows_inplace_s8), run in place
  with the input at each offered offset, equal the numpy reference in the portable build and
  with the SIMD algorithms emulated (TE_SIMD_EMULATE), write nothing past the shared buffer and
  take the band the Python twin computes; apart (out of place) they run too;
- a generated MCUNet-like project (a stride-2 stem and stride-2 depthwise layers, which the
  planner runs this way) gives the reference's outputs on the host, under ASan/UBSan, and on the
  emulated Cortex-M4 (SIMD and portable kernels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.memory.schedule import schedule
from tinyengine.ops import get_op
from tinyengine.ops.rows_inplace import Rows, rows_of
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel
from tinyengine.target import run_records

from .ckernels import build
from .random_graphs import _Builder
from .sanitized import check_sanitized_demo
from .test_kernel_wrappers import CDEF
from .test_ops_dw_fc_add import CCall
from .test_simd import EMULATE, _assert_same, _conv, _dw, _graph, _input, _require_qemu

CSRC = Path(__file__).resolve().parent.parent / "csrc"
ROWS_CDEF = CDEF + """
int32_t te_conv2d_rows_inplace_band(const te_conv2d_params_t *p, int32_t offset);
te_status_t te_conv2d_rows_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
int32_t te_depthwise_conv_rows_inplace_band(const te_depthwise_conv_params_t *p,
    int32_t offset);
te_status_t te_depthwise_conv_rows_inplace_s8(const te_depthwise_conv_params_t *p,
    const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output);
"""
SOURCES = ["te_conv.c", "te_depthwise.c", "te_rows_inplace.c", "te_conv_rows.c",
           "te_depthwise_rows.c"]
HEADERS = ["te_conv.h", "te_depthwise.h", "te_rows_inplace.h", "te_conv_rows.h",
           "te_depthwise_rows.h", "te_common.h", "te_simd.h", "te_requant16.h"]


# --- the band rule, simulated byte by byte ----------------------------------------------------

def simulate(rows: Rows, offset: int, r: int) -> bool:
    """Run bands of r rows as te_rows_inplace_run does over a byte map of the shared buffer;
    False as soon as a band would read an input byte already overwritten (by an earlier band or
    by its own output)."""
    size = max(rows.out_bytes, offset + rows.in_bytes)
    clobbered = np.zeros(size, bool)
    for t0, t1 in rows.bands(r):
        b, r0 = divmod(t0, rows.out_h)
        y0 = r0 * rows.stride - rows.pad
        end = (t1 - 1 - b * rows.out_h) * rows.stride - rows.pad + \
            (rows.filter_h - 1) * rows.dilation + 1
        lo, hi = max(0, y0), min(rows.in_h, end)
        clobbered[t0 * rows.out_row:t1 * rows.out_row] = True
        if clobbered[offset + (b * rows.in_h + lo) * rows.in_row:
                     offset + (b * rows.in_h + hi) * rows.in_row].any():
            return False
    return True


def _rows_cases() -> list[Rows]:
    """Stems, strided and stride-1 layers, VALID and SAME, dilation, batches, wide outputs."""
    out = []
    for n, h, c_in, c_out, k, s, d, pad in [
            (1, 176, 3, 16, 3, 2, 1, 0), (1, 88, 24, 24, 7, 2, 1, 2), (1, 9, 4, 4, 3, 1, 1, 1),
            (2, 8, 3, 5, 5, 2, 1, 2), (1, 7, 2, 6, 3, 1, 2, 2), (1, 10, 8, 8, 3, 2, 1, 0),
            (1, 5, 1, 8, 3, 1, 1, 0), (3, 6, 4, 4, 1, 2, 1, 0), (1, 12, 8, 8, 5, 3, 1, 2),
            (1, 49, 10, 64, 10, 2, 1, 4)]:
        oh = (h + 2 * pad - d * (k - 1) - 1) // s + 1 if pad == 0 else -(-h // s)
        out.append(Rows(n, h, h * c_in, oh, -(-h // s) * c_out, s, pad, k, d))
    return out


@pytest.mark.parametrize("rows", _rows_cases(), ids=lambda r: f"{r.in_h}s{r.stride}k{r.filter_h}")
def test_bands_never_read_an_overwritten_byte(rows):
    assert rows.in_domain()
    offsets = {*rows.options(), *(rows.need(r) for r in (1, 2, 3, rows.out_h))}
    for offset in sorted(offsets):
        r = rows.band(offset)
        assert r >= 1 and simulate(rows, offset, r), (offset, r)
        if r < rows.out_h:  # the largest band that holds: one more row per band does not
            assert rows.need(r + 1) > offset
    for r in range(1, rows.out_h + 1):  # need(r) is the least offset for bands of r
        if rows.need(r) >= 1:
            assert not simulate(rows, rows.need(r) - 1, r) or rows.band(rows.need(r) - 1) >= r


def test_stem_of_mcunet_in3_shares_one_buffer():
    # 176x176x3 -> 88x88x16, 3x3 stride 2, no top padding: output row t ends at 1,408 (t + 1)
    # bytes and row t reads from input row 2t on (528 bytes each), so one-row bands need the
    # input 1,408 * 88 - 1,056 * 87 = 32,032 bytes in: 124,960 bytes for both tensors.
    rows = Rows(1, 176, 176 * 3, 88, 88 * 16, 2, 0, 3, 1)
    assert rows.need(1) == 32_032 and rows.band(32_032) == 1 and rows.band(32_028) == 0
    assert rows.options()[0] == 32_032
    assert max(rows.out_bytes, 32_032 + rows.in_bytes) == 124_960


def test_narrow_layers_are_not_offered_one_row_bands():
    # kws's first layer: 25 rows of 5 x 64 = 320 bytes; bands start at 4 rows (1,280 bytes).
    rows = Rows(1, 49, 10, 25, 320, 2, 4, 10, 1)
    assert all(rows.band(offset) >= 4 for offset in rows.options())


# --- the C kernels ----------------------------------------------------------------------------

def _build(cflags: list[str]) -> tuple[Any, Any]:
    return build(["te_conv_rows.h", "te_depthwise_rows.h"], SOURCES, ROWS_CDEF, tuple(cflags),
                 tuple(HEADERS))


@pytest.fixture(scope="module", params=["portable", "emulated"])
def kernels(request) -> tuple[Any, Any]:
    return _build(EMULATE if request.param == "emulated" else [])


def _qp(scale: Any, zp: Any, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def _layer(rng: np.random.Generator, kind: str, shape: tuple[int, int, int, int], oc: int,
           k: int, stride: int, padding: str = "SAME", dilation: int = 1,
           act: str = "NONE") -> Graph:
    n, h, w, c = shape
    eff = dilation * (k - 1) + 1
    oh = -(-h // stride) if padding == "SAME" else (h - eff) // stride + 1
    ow = -(-w // stride) if padding == "SAME" else (w - eff) // stride + 1
    if kind == "CONV_2D":
        wshape, axis, attrs = (oc, k, k, c), 0, {}
    else:
        wshape, axis, attrs = (1, k, k, oc), 3, {"depth_multiplier": oc // c}
    tensors = {
        "x": Tensor("x", shape, "int8", _qp(0.05, int(rng.integers(-30, 30)))),
        "w": Tensor("w", wshape, "int8", _qp(rng.uniform(0.002, 0.02, oc), np.zeros(oc), axis),
                    rng.integers(-127, 128, wshape, dtype=np.int8)),
        "b": Tensor("b", (oc,), "int32", _qp(np.full(oc, 1e-4), np.zeros(oc)),
                    rng.integers(-500, 500, oc).astype(np.int32)),
        "y": Tensor("y", (n, oh, ow, oc), "int8", _qp(0.1, int(rng.integers(-20, 20)))),
    }
    op = Op("layer", kind, ["x", "w", "b"], ["y"],
            {"stride": (stride, stride), "padding": padding, "dilation": (dilation, dilation),
             "activation": act, **attrs})
    g = Graph(tensors, [op], ["x"], ["y"])
    verify(g)
    return g


# kind, input (n, h, w, c), output channels, kernel, stride, padding, dilation
LAYERS = [
    ("CONV_2D", (1, 24, 24, 3), 16, 3, 2, "SAME", 1),      # a stem (im2col rows)
    ("CONV_2D", (1, 11, 9, 8), 8, 3, 1, "SAME", 1),        # stride 1, as wide as its input
    ("CONV_2D", (2, 9, 7, 5), 6, 5, 2, "VALID", 1),        # batches, no padding
    ("CONV_2D", (1, 10, 6, 4), 12, 3, 1, "SAME", 2),       # dilation, widening
    ("CONV_2D", (1, 8, 8, 16), 24, 1, 2, "VALID", 1),      # strided pointwise
    ("DEPTHWISE_CONV_2D", (1, 22, 22, 24), 24, 7, 2, "SAME", 1),  # mcunet's 7x7 stride 2
    ("DEPTHWISE_CONV_2D", (1, 9, 11, 8), 8, 3, 2, "SAME", 1),     # the 3x3 kernel
    ("DEPTHWISE_CONV_2D", (2, 8, 8, 5), 5, 5, 2, "SAME", 1),      # batches, odd channels
    ("DEPTHWISE_CONV_2D", (1, 9, 9, 4), 8, 3, 1, "SAME", 1),      # depth multiplier 2
    ("DEPTHWISE_CONV_2D", (1, 12, 12, 6), 6, 3, 2, "VALID", 2),   # dilation, no padding
]


def _call(ffi: Any, lib: Any, g: Graph, op: Op, buf: np.ndarray, x_at: int, y_at: int) -> int:
    em = get_op(op.kind).emit(g, op)
    call = CCall(ffi, em)
    whole = ffi.from_buffer("int8_t[]", buf)
    return int(getattr(lib, em.kernel)(
        call.params, whole + x_at, ffi.from_buffer("int8_t[]", call.consts["filter"]),
        ffi.from_buffer("int32_t[]", call.consts["bias"]), whole + y_at))


@pytest.mark.parametrize("layer", LAYERS, ids=lambda c: f"{c[0][:4]}{c[1][1]}s{c[4]}k{c[3]}")
def test_rows_kernel_in_place_equals_reference(kernels, layer):
    ffi, lib = kernels
    kind, shape, oc, k, stride, padding, dilation = layer
    rng = np.random.default_rng([len(kind), *shape, oc, k, stride, dilation])
    g = _layer(rng, kind, shape, oc, k, stride, padding, dilation,
               act="RELU6" if stride == 1 else "NONE")
    opdef = get_op(kind)
    rows = rows_of(g, g.ops[0])
    offers = opdef.inplace_offsets(g, g.ops[0])
    assert [o for _, o in offers] == rows.options()  # may be none on so small a layer
    x = rng.integers(-128, 128, shape, dtype=np.int8)
    want = run_reference(g, [x])[0]
    prefix = "te_conv2d" if kind == "CONV_2D" else "te_depthwise_conv"
    for offset in sorted({*rows.options(), *(-(-rows.need(r) // 4) * 4 for r in (1, 2, 3))}):
        op = Op("layer", kind, g.ops[0].inputs, g.ops[0].outputs,
                dict(g.ops[0].attrs, inplace=0, inplace_offset=offset))
        em = opdef.emit(g, op)
        assert em.kernel == f"{prefix}_rows_inplace_s8" == opdef.kernel(g, op)
        assert em.scratch_bytes == opdef.scratch_bytes(g, op) == 0
        assert not any(a.kind == "scratch" for a in em.args)
        band = getattr(lib, f"{prefix}_rows_inplace_band")(CCall(ffi, em).params, offset)
        assert band == rows.band(offset) >= 1
        buf = np.full(max(rows.out_bytes, offset + rows.in_bytes) + 16, 0x5A, np.uint8)
        buf[offset:offset + x.size] = x.view(np.uint8).ravel()
        assert _call(ffi, lib, g, op, buf.view(np.int8), offset, 0) == 0
        got = buf[:want.size].view(np.int8).reshape(want.shape)
        np.testing.assert_array_equal(got, want, err_msg=f"offset {offset}")
        assert np.all(buf[-16:] == 0x5A), "wrote past the shared buffer"
    # Apart: straight to the output.
    buf = np.zeros(rows.in_bytes + rows.out_bytes, np.int8)
    buf[:x.size] = x.ravel()
    assert _call(ffi, lib, g, op, buf, 0, rows.in_bytes) == 0
    np.testing.assert_array_equal(buf[rows.in_bytes:].reshape(want.shape), want)


def test_rows_kernel_refuses_what_it_cannot_do(kernels):
    ffi, lib = kernels
    g = _layer(np.random.default_rng(0), "DEPTHWISE_CONV_2D", (1, 8, 8, 4), 4, 3, 2)
    rows = rows_of(g, g.ops[0])
    op = Op("layer", "DEPTHWISE_CONV_2D", g.ops[0].inputs, g.ops[0].outputs,
            dict(g.ops[0].attrs, inplace=0, inplace_offset=0))
    buf = np.zeros(rows.in_bytes + 64, np.int8)
    assert rows.band(0) == 0
    assert _call(ffi, lib, g, op, buf, 0, 0) == 1  # too close: bands of one row overwrite input
    assert _call(ffi, lib, g, op, buf, 0, 8) == 1  # input before an overlapping output


# --- a generated project ----------------------------------------------------------------------

def mcunet_like(seed: int) -> Graph:
    """The start of an MCUNet: a stride-2 stem, a depthwise-separable block, an expanding block
    with a 7x7 stride-2 depthwise, another with a 5x5 one, and a residual block."""
    b = _Builder(np.random.default_rng(seed))
    x = _input(b, (1, 32, 32, 3))
    y = _conv(b, x, 16, k=3, stride=2, act="RELU6")            # 16x16x16
    y = _dw(b, y, k=3, act="RELU6")
    y = _conv(b, y, 8)
    y = _conv(b, y, 24, act="RELU6")                           # 8 -> 24, widening in place
    y = _dw(b, y, k=7, stride=2, act="RELU6")                  # 8x8x24, row by row
    y = _conv(b, y, 16)
    y = _conv(b, y, 48, act="RELU6")
    y = _dw(b, y, k=5, stride=2, act="RELU6")                  # 4x4x48
    y = _conv(b, y, 16)
    return _graph(b, x, y, f"mcunet_like{seed}")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Graph, Path, list, list]:
    graph = mcunet_like(0)
    path = tmp_path_factory.mktemp("rows") / "p"
    compile_graph(graph, path, prefix="m", patch="off")
    rng = np.random.default_rng(0)
    records = [random_inputs(graph, rng) for _ in range(4)]
    want = [run_reference(graph, r) for r in records]
    return graph, path, records, want


def test_planner_runs_the_strided_layers_row_by_row():
    # Without fusion: the fused block (memory/fuse.py) takes this strided chain whole.
    sched = schedule(mcunet_like(0), "off", fuse=False)
    kernels = [get_op(op.kind).kernel(sched.graph, op) for op in sched.graph.ops]
    assert kernels[0] == "te_conv2d_rows_inplace_s8"
    assert kernels.count("te_depthwise_conv_rows_inplace_s8") >= 1
    without = schedule(mcunet_like(0), "off", inplace=False, fuse=False)
    assert sched.plan.arena_bytes < without.plan.arena_bytes


def test_project_on_host_portable_emulated_and_sanitized(project):
    graph, path, records, want = project
    for flags in ([], EMULATE):
        model = HostModel(path, extra_cflags=flags)
        _assert_same(want, [model.invoke(r) for r in records], f"host {flags}")
    check_sanitized_demo(path, "m", graph, records)


def test_project_on_m4_simd_and_portable(project):
    _require_qemu()
    _, path, records, want = project
    for simd in (True, False):
        run = run_records(path, records, "cortex-m4", simd=simd)
        _assert_same(want, run.outputs, f"cortex-m4 ({'SIMD' if simd else 'portable'})")
