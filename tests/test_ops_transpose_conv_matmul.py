"""TRANSPOSE_CONV and BATCH_MATMUL, checked on seeded random cases:

1. the numpy reference against naive scalar transcriptions of TFLite's reference loops
   (reference_integer_ops::TransposeConv, reference_ops::BatchMatMul) written here, with the
   scalar integer arithmetic of tests/test_ops_dw_fc_add.py;
2. generated C == reference == TFLM on random single-op graphs and on a graph chaining both;
3. the C kernels called directly (TRANSPOSE_CONV gathers each output pixel's taps and needs no
   scratch, where TFLM keeps an int32 buffer of the whole output), and their refusal of
   parameters outside their domain;
4. invalid graphs refused by `verify` with the op and the tensor named;
5. ASan/UBSan on a generated project;
6. ONNX: ConvTranspose (+BatchNorm, ReLU) and MatMul of two activations from PyTorch, compiled
   end to end: C == reference, and close to onnxruntime's float output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.ops.common import out_size

from . import ckernels
from .test_ops_dw_fc_add import (
    CCall,
    i8,
    n_act_range,
    n_conv_multipliers,
    n_mbqm,
    n_quantize_multiplier,
    n_wrap32,
    one_op_graph,
    qp,
)

TE_OK, TE_ERR_ARG = 0, 1
ACTS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


# ---------------------------------------------------------------------------------------------
# Random cases
# ---------------------------------------------------------------------------------------------

def out_sizes(in_size: int, filt: int, stride: int, padding: str) -> list[int]:
    """Every output size TensorFlow's conv2d_transpose allows (a convolution maps it back)."""
    if padding == "SAME":
        return list(range((in_size - 1) * stride + 1, in_size * stride + 1))
    return list(range((in_size - 1) * stride + filt, (in_size - 1) * stride + filt + stride))


def transpose_conv_case(rng: np.random.Generator, bias: bool | None = None,
                        act: str | None = None) -> tuple[Graph, Op]:
    n, ih, iw = int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    cin, cout = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    padding = str(rng.choice(["SAME", "VALID"]))
    oh = int(rng.choice(out_sizes(ih, fh, sh, padding)))
    ow = int(rng.choice(out_sizes(iw, fw, sw, padding)))
    per_channel = bool(rng.random() < 0.6)
    in_s = float(rng.uniform(0.005, 0.1))
    w_scales = (rng.uniform(0.002, 0.05, cout) if per_channel
                else np.array([rng.uniform(0.002, 0.05)]))
    taps = cin * math.ceil(fh / sh) * math.ceil(fw / sw)
    out_s = float(in_s * float(np.mean(w_scales)) * 74.0 * 74.0 * math.sqrt(taps) / 50.0
                  * rng.uniform(0.3, 3.0))
    has_bias = bool(rng.random() < 0.8) if bias is None else bias
    tensors = [Tensor("x", (n, ih, iw, cin), "int8", qp(in_s, int(rng.integers(-128, 128)))),
               Tensor("w", (cout, fh, fw, cin), "int8", qp(w_scales, np.zeros(w_scales.size))),
               Tensor("y", (n, oh, ow, cout), "int8", qp(out_s, int(rng.integers(-30, 31))))]
    tensors[1].data = i8(rng, (cout, fh, fw, cin))
    if has_bias:
        bs = np.float32(in_s) * w_scales.astype(np.float32)
        tensors.append(Tensor("b", (cout,), "int32", qp(bs, np.zeros(bs.size)),
                              rng.integers(-20000, 20000, cout).astype(np.int32)))
    attrs = {"output_shape": (n, oh, ow, cout), "stride": (sh, sw), "padding": padding,
             "activation": str(rng.choice(ACTS)) if act is None else act}
    op = Op("tconv", "TRANSPOSE_CONV", ["x", "w", "b" if has_bias else ""], ["y"], attrs)
    g = one_op_graph(op, tensors)
    verify(g)
    return g, op


def batch_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Batch axes of two operands of ranks 2..5 that broadcast (aligned from the right)."""
    rank_a, rank_b = (int(r) for r in rng.integers(2, 6, 2))
    full = [int(rng.integers(1, 4)) for _ in range(max(rank_a, rank_b) - 2)]

    def pick(rank: int) -> tuple[int, ...]:
        dims = full[len(full) - (rank - 2):] if rank > 2 else []
        return tuple(d if rng.random() < 0.6 else 1 for d in dims)

    return pick(rank_a), pick(rank_b)


def batch_matmul_case(rng: np.random.Generator) -> tuple[Graph, Op]:
    ba, bb = batch_shapes(rng)
    rows, depth, cols = (int(v) for v in rng.integers(1, 7, 3))
    adj_x, adj_y = (bool(v) for v in rng.random(2) < 0.5)
    a_shape = ba + ((depth, rows) if adj_x else (rows, depth))
    b_shape = bb + ((cols, depth) if adj_y else (depth, cols))
    sa, sb = (float(v) for v in rng.uniform(0.005, 0.1, 2))
    out_s = float(sa * sb * 74.0 * 74.0 * math.sqrt(depth) / 50.0 * rng.uniform(0.3, 3.0))
    op = Op("bmm", "BATCH_MATMUL", ["a", "b"], ["y"], {"adj_x": adj_x, "adj_y": adj_y})
    out_shape = tuple(np.broadcast_shapes(ba, bb)) + (rows, cols)
    g = one_op_graph(op, [
        Tensor("a", a_shape, "int8", qp(sa, int(rng.integers(-128, 128)))),
        Tensor("b", b_shape, "int8", qp(sb, int(rng.integers(-128, 128)))),
        Tensor("y", out_shape, "int8", qp(out_s, int(rng.integers(-30, 31))))])
    verify(g)
    return g, op


def run_reference(g: Graph, op: Op, vals: list[np.ndarray | None]) -> np.ndarray:
    return get_op(op.kind).reference(g, op, vals)[0]  # type: ignore[arg-type]


def op_values(rng: np.random.Generator, g: Graph, op: Op) -> list[np.ndarray | None]:
    vals: list[np.ndarray | None] = []
    for n in op.inputs:
        t = g.tensor(n) if n else None
        vals.append(None if t is None else t.data if t.data is not None else i8(rng, t.shape))
    return vals


# ---------------------------------------------------------------------------------------------
# Naive scalar transcriptions of TFLite's reference loops
# ---------------------------------------------------------------------------------------------

def n_transpose_conv(g: Graph, op: Op, x: np.ndarray, w: np.ndarray,
                     b: np.ndarray | None) -> tuple[np.ndarray, int]:
    """reference_integer_ops::TransposeConv; also returns the MACs it performed."""
    xt, wt, ot = g.tensor("x"), g.tensor("w"), g.tensor("y")
    n, ih, iw, cin = x.shape
    cout, fh, fw, _ = w.shape
    _, oh, ow, _ = ot.shape
    sh, sw = op.attrs["stride"]
    padding = op.attrs["padding"]

    def pad(out: int, f: int, s: int) -> int:  # ComputePaddingHeightWidth on the output size
        conv_out = out_size(out, f, s, 1, padding)
        return max((conv_out - 1) * s + f - out, 0) // 2

    ph, pw = pad(oh, fh, sh), pad(ow, fw, sw)
    assert wt.quant is not None
    mults = n_conv_multipliers(xt.scale, wt.quant.scale, ot.scale, cout)
    lo, hi = n_act_range(op.attrs["activation"], ot.scale, ot.zero_point)
    scratch = [0] * (n * oh * ow * cout)
    macs = 0
    for bi in range(n):
        for iy in range(ih):
            for ix in range(iw):
                for ic in range(cin):
                    for ky in range(fh):
                        for kx in range(fw):
                            for oc in range(cout):
                                oy, ox = iy * sh - ph + ky, ix * sw - pw + kx
                                if 0 <= ox < ow and 0 <= oy < oh:
                                    k = ((bi * oh + oy) * ow + ox) * cout + oc
                                    scratch[k] = n_wrap32(scratch[k] + (
                                        int(x[bi, iy, ix, ic]) - xt.zero_point)
                                        * int(w[oc, ky, kx, ic]))
                                    macs += 1
    out = np.zeros(ot.shape, np.int8).ravel()
    for k, acc in enumerate(scratch):
        oc = k % cout
        if b is not None:
            acc = n_wrap32(acc + int(b[oc]))
        out[k] = min(max(n_mbqm(acc, *mults[oc]) + ot.zero_point, lo), hi)
    return out.reshape(ot.shape), macs


def n_batch_matmul(g: Graph, op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """reference_ops::BatchMatMul (int8) on the TFLite operands, one output element at a time."""
    at, bt, ot = g.tensor("a"), g.tensor("b"), g.tensor("y")
    m = n_quantize_multiplier(float(at.scale) * float(bt.scale) / float(ot.scale))
    rank = len(ot.shape)
    ea = (1,) * (rank - a.ndim) + a.shape
    eb = (1,) * (rank - b.ndim) + b.shape
    a, b = a.reshape(ea), b.reshape(eb)
    out = np.zeros(ot.shape, np.int8)
    depth = a.shape[-2] if op.attrs["adj_x"] else a.shape[-1]
    for idx in np.ndindex(*ot.shape):
        batch, i, j = idx[:-2], idx[-2], idx[-1]
        ia = tuple(d if s > 1 else 0 for d, s in zip(batch, ea[:-2]))
        ib = tuple(d if s > 1 else 0 for d, s in zip(batch, eb[:-2]))
        acc = 0
        for k in range(depth):
            lv = a[ia + ((k, i) if op.attrs["adj_x"] else (i, k))]
            rv = b[ib + ((j, k) if op.attrs["adj_y"] else (k, j))]
            acc = n_wrap32(acc + (int(lv) - at.zero_point) * (int(rv) - bt.zero_point))
        out[idx] = min(max(n_mbqm(acc, *m) + ot.zero_point, -128), 127)
    return out


def test_transpose_conv_reference_matches_naive_and_counts_macs() -> None:
    rng = np.random.default_rng(101)
    for i in range(20):
        g, op = transpose_conv_case(rng)
        vals = op_values(rng, g, op)
        want, macs = n_transpose_conv(g, op, *vals)  # type: ignore[arg-type]
        np.testing.assert_array_equal(run_reference(g, op, vals), want,
                                      err_msg=f"case {i}: {op.attrs}")
        assert get_op("TRANSPOSE_CONV").macs(g, op) == macs


def test_batch_matmul_reference_matches_naive() -> None:
    rng = np.random.default_rng(102)
    for i in range(20):
        g, op = batch_matmul_case(rng)
        vals = op_values(rng, g, op)
        want = n_batch_matmul(g, op, *vals)  # type: ignore[arg-type]
        np.testing.assert_array_equal(run_reference(g, op, vals), want,
                                      err_msg=f"case {i}: {g.tensor('a').shape} x "
                                              f"{g.tensor('b').shape} {op.attrs}")
        depth = g.tensor("a").shape[-2 if op.attrs["adj_x"] else -1]
        assert get_op("BATCH_MATMUL").macs(g, op) == g.tensor("y").size * depth


def test_transpose_conv_accumulator_wraps_like_int32() -> None:
    """A bias near INT32_MAX plus a positive product wraps in TFLite's int32 sum; so must we."""
    rng = np.random.default_rng(5)
    g, op = transpose_conv_case(rng, bias=True, act="NONE")
    b = g.tensor("b")
    assert b.data is not None
    b.data[:] = np.iinfo(np.int32).max - 3
    vals = op_values(rng, g, op)
    want, _ = n_transpose_conv(g, op, *vals)  # type: ignore[arg-type]
    np.testing.assert_array_equal(run_reference(g, op, vals), want)


# ---------------------------------------------------------------------------------------------
# C == reference == TFLM
# ---------------------------------------------------------------------------------------------

def assert_exact(g: Graph, seed: int, n_random: int = 3) -> None:
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    verdicts, _ = verify_graph(g, write_tflite(g), n_random=n_random, seed=seed)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


def test_transpose_conv_c_reference_tflm(tflm: Any) -> None:
    rng = np.random.default_rng(201)
    cases = [transpose_conv_case(rng) for _ in range(5)]
    cases.append(transpose_conv_case(rng, bias=False, act="RELU"))
    for i, (g, _) in enumerate(cases):
        assert_exact(g, seed=i)


def test_batch_matmul_c_reference_tflm(tflm: Any) -> None:
    rng = np.random.default_rng(202)
    for i in range(7):
        g, _ = batch_matmul_case(rng)
        assert_exact(g, seed=i)


def test_batch_matmul_multiplier_rule_matches_tflm(tflm: Any) -> None:
    """Pin s_lhs * s_rhs in double: on these scales a float32 product gives another output.

    A 1 x D by D x 1 product with the rhs all 127 gives acc = 127 * (sum of the lhs), so any
    multiple of 127 up to 127 * 127 * D is reachable; the search runs over all of them.
    """
    from tinyengine.frontend.tflite_writer import write_tflite

    depth = 4096
    rng = np.random.default_rng(77)
    sums = np.arange(-127 * depth, 127 * depth + 1, dtype=np.int64)
    while True:
        sa, sb = (float(np.float32(v)) for v in rng.uniform(0.01, 0.1, 2))
        s_out = float(np.float32(sa * sb / rng.uniform(0.5e-6, 1.5e-6)))
        m32 = n_quantize_multiplier(float(np.float32(sa) * np.float32(sb)) / s_out)
        m64 = n_quantize_multiplier(sa * sb / s_out)
        if m32 == m64:
            continue
        y32 = quant.multiply_by_quantized_multiplier(127 * sums, *m32)  # vectorised: a search
        y64 = quant.multiply_by_quantized_multiplier(127 * sums, *m64)
        hits = sums[(y32 != y64) & (np.abs(y64) < 100)]
        if hits.size:
            break
    total = int(hits[0])
    lhs = np.zeros(depth, np.int64)
    lhs[:abs(total) // 127] = 127
    lhs[abs(total) // 127] = abs(total) % 127
    lhs *= 1 if total >= 0 else -1
    acc = 127 * total
    op = Op("bmm", "BATCH_MATMUL", ["a", "b"], ["y"], {"adj_x": False, "adj_y": False})
    g = one_op_graph(op, [Tensor("a", (1, depth), "int8", qp(sa, 0)),
                          Tensor("b", (depth, 1), "int8", qp(sb, 0)),
                          Tensor("y", (1, 1), "int8", qp(s_out, 0))])
    vals = [lhs.astype(np.int8).reshape(1, depth), np.full((depth, 1), 127, np.int8)]
    y = run_reference(g, op, vals)  # type: ignore[arg-type]
    assert int(y[0, 0]) == n_mbqm(acc, *m64) != n_mbqm(acc, *m32)
    np.testing.assert_array_equal(y, tflm.run_tflm(write_tflite(g), vals)[0].reshape(1, 1))


def chained_graph(rng: np.random.Generator) -> Graph:
    """x -> TRANSPOSE_CONV (stride 2, SAME) -> t; BATCH_MATMUL(t, t, adj_y) -> y: each output
    row of t against every other, through the 4-D batch axes."""
    x = Tensor("x", (1, 3, 3, 2), "int8", qp(0.05, 3))
    w = Tensor("w", (4, 3, 3, 2), "int8", qp(rng.uniform(0.01, 0.03, 4), np.zeros(4)),
               i8(rng, (4, 3, 3, 2)))
    b = Tensor("b", (4,), "int32", qp(np.float32(0.05) * w.quant.scale, np.zeros(4)),  # type: ignore[union-attr]
               rng.integers(-500, 500, 4).astype(np.int32))
    t = Tensor("t", (1, 6, 6, 4), "int8", qp(0.08, -128))
    y = Tensor("y", (1, 6, 6, 6), "int8", qp(0.5, -5))
    ops = [Op("tconv", "TRANSPOSE_CONV", ["x", "w", "b"], ["t"],
              {"output_shape": (1, 6, 6, 4), "stride": (2, 2), "padding": "SAME",
               "activation": "RELU"}),
           Op("bmm", "BATCH_MATMUL", ["t", "t"], ["y"], {"adj_x": False, "adj_y": True})]
    graph = Graph({v.name: v for v in (x, w, b, t, y)}, ops, ["x"], ["y"], name="chain")
    verify(graph)
    return graph


def test_chained_graph_c_reference_tflm(tflm: Any) -> None:
    assert_exact(chained_graph(np.random.default_rng(203)), seed=3, n_random=4)


def test_tflite_round_trip_keeps_attrs_and_inputs() -> None:
    pytest.importorskip("tflite_micro")
    from tinyengine.frontend.tflite_reader import parse_tflite
    from tinyengine.frontend.tflite_writer import write_tflite

    rng = np.random.default_rng(204)
    for g, op in [transpose_conv_case(rng, bias=True), transpose_conv_case(rng, bias=False),
                  batch_matmul_case(rng)]:
        back = parse_tflite(write_tflite(g))
        (op2,) = back.ops
        assert op2.kind == op.kind
        assert [n or "" for n in op2.inputs] == [n for n in op.inputs if n] + \
            [""] * (len(op2.inputs) - len([n for n in op.inputs if n]))
        for key, value in op.attrs.items():
            assert tuple(np.ravel(op2.attrs[key])) == tuple(np.ravel(value)), key


# ---------------------------------------------------------------------------------------------
# Kernels: results and parameter domains
# ---------------------------------------------------------------------------------------------

TCONV_CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { const int32_t *multiplier; const int8_t *shift; int32_t per_channel; }
    te_requant_t;
typedef struct { int32_t input_offset; int32_t output_offset; int32_t act_min; int32_t act_max; }
    te_quant_t;
typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output;
    int32_t stride_h; int32_t stride_w; int32_t pad_h; int32_t pad_w;
    te_quant_t q; te_requant_t rq;
} te_transpose_conv_params_t;
te_status_t te_transpose_conv_s8(const te_transpose_conv_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
typedef struct {
    int32_t batch[3]; int32_t lhs_stride[3]; int32_t rhs_stride[3];
    int32_t rows; int32_t cols; int32_t depth; int32_t adj_x; int32_t adj_y;
    te_quant_t q; int32_t rhs_offset; int32_t multiplier; int32_t shift;
} te_batch_matmul_params_t;
te_status_t te_batch_matmul_s8(const te_batch_matmul_params_t *p, const int8_t *lhs,
    const int8_t *rhs, int8_t *output);
"""


class ArrayCCall(CCall):
    """CCall that also fills array fields (te_batch_matmul_params_t.batch and strides)."""

    def _fill(self, cdata: Any, items: list[tuple[str, Any]]) -> None:
        fields = [f for f, _ in self.ffi.typeof(cdata).fields]
        assert [k for k, _ in items] == fields[:len(items)], "params out of struct field order"
        for key, value in items:
            if isinstance(value, list) and self.ffi.typeof(getattr(cdata, key)).kind == "array":
                target = getattr(cdata, key)
                assert len(target) == len(value), key
                for i, v in enumerate(value):
                    target[i] = v
            else:
                self._one(cdata, key, value)

    def _one(self, cdata: Any, key: str, value: Any) -> None:
        if isinstance(value, list):  # a nested struct
            sub = getattr(cdata, key)
            sub_fields = [f for f, _ in self.ffi.typeof(sub).fields]
            for k, v in zip(sub_fields, value, strict=True):
                self._one(sub, k, v)
        elif isinstance(value, str):
            assert value.startswith("@"), value
            arr = self.consts[value[1:]]
            ptr = self.ffi.from_buffer(f"{arr.dtype}_t[]", arr)
            self.keep.append(ptr)
            setattr(cdata, key, ptr)
        else:
            setattr(cdata, key, value)


def tconv_call(ffi: Any, lib: Any, call: CCall, x: np.ndarray, out: np.ndarray) -> int:
    """te_transpose_conv_s8 with the emission's params and consts."""
    bias = call.consts.get("bias")
    return int(lib.te_transpose_conv_s8(
        call.params, ffi.from_buffer("int8_t[]", x),
        ffi.from_buffer("int8_t[]", call.consts["filter"]),
        ffi.NULL if bias is None else ffi.from_buffer("int32_t[]", bias),
        ffi.from_buffer("int8_t[]", out)))


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_transpose_conv.h", "te_batch_matmul.h"],
                          ["te_transpose_conv.c", "te_batch_matmul.c"], TCONV_CDEF)


def test_kernels_match_reference_without_scratch(kernels: Any) -> None:
    ffi, lib = kernels
    rng = np.random.default_rng(301)
    opdef = get_op("TRANSPOSE_CONV")
    for _ in range(8):
        g, op = transpose_conv_case(rng)
        em = opdef.emit(g, op)
        assert em.scratch_bytes == 0 and "scratch" not in [a.kind for a in em.args]
        vals = op_values(rng, g, op)
        out = np.full(g.tensor("y").shape, 77, np.int8)  # every byte must be written
        assert tconv_call(ffi, lib, CCall(ffi, em), vals[0], out) == TE_OK  # type: ignore[arg-type]
        np.testing.assert_array_equal(out, run_reference(g, op, vals))
    for _ in range(8):
        g, op = batch_matmul_case(rng)
        em = get_op("BATCH_MATMUL").emit(g, op)
        vals = op_values(rng, g, op)
        out = np.zeros(g.tensor("y").shape, np.int8)
        assert ArrayCCall(ffi, em)(lib, {"a": vals[0], "b": vals[1], "y": out}) == TE_OK  # type: ignore[dict-item]
        np.testing.assert_array_equal(out, run_reference(g, op, vals))


def test_kernels_refuse_parameters_outside_their_domain(kernels: Any) -> None:
    ffi, lib = kernels
    rng = np.random.default_rng(302)
    g, op = transpose_conv_case(rng, bias=True)
    em = get_op("TRANSPOSE_CONV").emit(g, op)
    vals = op_values(rng, g, op)
    out = np.zeros(g.tensor("y").shape, np.int8)
    x = vals[0]
    assert x is not None
    call = CCall(ffi, em)
    assert tconv_call(ffi, lib, call, x, out) == TE_OK
    assert lib.te_transpose_conv_s8(call.params, ffi.NULL,
                                    ffi.from_buffer("int8_t[]", call.consts["filter"]),
                                    ffi.NULL, ffi.from_buffer("int8_t[]", out)) == TE_ERR_ARG
    for field, bad in (("stride_h", 0), ("pad_w", -1)):
        call = CCall(ffi, em)
        setattr(call.params, field, bad)
        assert tconv_call(ffi, lib, call, x, out) == TE_ERR_ARG, field
    call = CCall(ffi, em)
    call.params.filter.c += 1  # filter channels disagree with the input's
    assert tconv_call(ffi, lib, call, x, out) == TE_ERR_ARG
    call = CCall(ffi, em)
    call.params.q.act_min, call.params.q.act_max = 10, 5
    assert tconv_call(ffi, lib, call, x, out) == TE_ERR_ARG

    g, op = batch_matmul_case(rng)
    em = get_op("BATCH_MATMUL").emit(g, op)
    vals = op_values(rng, g, op)
    tensors = {"a": vals[0], "b": vals[1], "y": np.zeros(g.tensor("y").shape, np.int8)}
    for field, bad in (("depth", 0), ("adj_x", 2), ("rhs_offset", 129), ("shift", 31)):
        call = ArrayCCall(ffi, em)
        setattr(call.params, field, bad)
        assert call(lib, tensors) == TE_ERR_ARG, field  # type: ignore[arg-type]
    call = ArrayCCall(ffi, em)
    call.params.lhs_stride[1] = -1
    assert call(lib, tensors) == TE_ERR_ARG  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Invalid graphs
# ---------------------------------------------------------------------------------------------

def _tconv_bad(change: str) -> Graph:
    g, op = transpose_conv_case(np.random.default_rng(401), bias=True)
    w, b = g.tensor("w"), g.tensor("b")
    assert w.data is not None and b.data is not None and w.quant is not None
    if change == "weights channels":
        g.tensors["w"] = Tensor("w", w.shape[:3] + (w.shape[3] + 1,), "int8", w.quant,
                                np.zeros(w.shape[:3] + (w.shape[3] + 1,), np.int8))
    elif change == "output channels":
        shape = tuple(op.attrs["output_shape"])
        op.attrs["output_shape"] = shape[:3] + (shape[3] + 1,)
        g.tensors["y"].shape = op.attrs["output_shape"]
    elif change == "output size":
        shape = tuple(op.attrs["output_shape"])
        op.attrs["output_shape"] = (shape[0], shape[1] + 10, shape[2], shape[3])
        g.tensors["y"].shape = op.attrs["output_shape"]
    elif change == "bias length":
        g.tensors["b"] = Tensor("b", (b.size + 1,), "int32", None,
                                np.zeros(b.size + 1, np.int32))
    elif change == "weights zero point":
        w.quant.zero_point = np.full_like(w.quant.zero_point, 3)
    return g


@pytest.mark.parametrize("change,tensor,words", [
    ("weights channels", "x", "channels"),
    ("output channels", "w", "output shape"),
    ("output size", "x", "does not fit"),
    ("bias length", "b", "bias"),
    ("weights zero point", "w", "zero point"),
])
def test_transpose_conv_invalid_graphs_are_refused(change: str, tensor: str, words: str) -> None:
    with pytest.raises(UnsupportedError, match=words) as e:
        verify(_tconv_bad(change))
    assert "op tconv (TRANSPOSE_CONV)" in str(e.value) and f" {tensor}" in str(e.value)


@pytest.mark.parametrize("a_shape,b_shape,words", [
    ((2, 3, 4), (3, 4, 5), "do not broadcast"),
    ((2, 3, 4), (2, 5, 6), "depth"),
    ((4,), (4, 2), "rank 1"),
    ((1, 1, 1, 1, 2, 3), (3, 2), "rank 6"),
])
def test_batch_matmul_invalid_graphs_are_refused(a_shape: tuple[int, ...],
                                                 b_shape: tuple[int, ...], words: str) -> None:
    op = Op("bmm", "BATCH_MATMUL", ["a", "b"], ["y"], {"adj_x": False, "adj_y": False})
    g = one_op_graph(op, [Tensor("a", a_shape, "int8", qp(0.1, 0)),
                          Tensor("b", b_shape, "int8", qp(0.1, 0)),
                          Tensor("y", (2, 3, 5), "int8", qp(0.1, 0))])
    with pytest.raises(UnsupportedError, match=words) as e:
        verify(g)
    assert "op bmm (BATCH_MATMUL)" in str(e.value) and " a" in str(e.value)


# ---------------------------------------------------------------------------------------------
# ASan / UBSan
# ---------------------------------------------------------------------------------------------

def test_sanitized_project(tmp_path: Path) -> None:
    from tinyengine.codegen import compile_graph
    from tinyengine.inputs import random_inputs

    from .sanitized import check_sanitized_demo

    g = chained_graph(np.random.default_rng(501))
    compile_graph(g, tmp_path / "p", prefix="tcm")
    rng = np.random.default_rng(502)
    check_sanitized_demo(tmp_path / "p", "tcm", g, [random_inputs(g, rng) for _ in range(3)])


# ---------------------------------------------------------------------------------------------
# ONNX, from PyTorch
# ---------------------------------------------------------------------------------------------

def compile_module(module: Any, shape: tuple[int, ...], tmp_path: Path) -> tuple[Graph, float]:
    """Quantise and compile the module; check C == reference on held-out inputs and the QDQ
    export against onnxruntime; return the graph and the worst output error against
    onnxruntime's float run of the source model, relative to the output range."""
    import onnxruntime as ort
    import torch

    from tinyengine.codegen import compile_graph
    from tinyengine.convert import export_torch, quantize_onnx
    from tinyengine.reference import run_reference as run_graph
    from tinyengine.runtime import HostModel
    from tinyengine.source_forms import source_input_batches, source_outputs

    torch.manual_seed(0)
    rng = np.random.default_rng(601)
    calib = rng.normal(0, 1, (16,) + shape[1:]).astype(np.float32)
    test = rng.normal(0, 1, (4,) + shape[1:]).astype(np.float32)
    path = export_torch(module, torch.from_numpy(calib[:1]), tmp_path / "m.onnx")
    model, graph = quantize_onnx(path, calib)
    from tinyengine.convert import source_model_info

    report = compile_graph(graph, tmp_path / "p", source_model=source_model_info(model, graph))
    host = HostModel(tmp_path / "p")
    (batch,), _ = source_input_batches(report, [test], ["test"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x, b in zip(test, batch):
        c = host.invoke([b])[0]
        np.testing.assert_array_equal(c, run_graph(graph, [b])[0])
        want = session.run(None, {session.get_inputs()[0].name: x[None]})[0]
        (got,) = source_outputs(report, [c[None]], raw=False)
        worst = max(worst, float(np.abs(got.reshape(want.shape) - want).max()
                                 / (np.ptp(want) + 1e-9)))
    # The QDQ export (the ops' to_qdq) computes the same thing in float: onnxruntime running it
    # as written stays within a step or two of the engine's int8 outputs.
    from tinyengine.quantize.qdq import compare_with_onnxruntime, qdq_model

    agreement = compare_with_onnxruntime(graph, model, qdq_model(graph, model), list(test[:, None]),
                                         optimized=False)
    assert agreement.max_abs_diff <= 2, agreement
    return graph, worst


def test_onnx_conv_transpose_bn_relu(tmp_path: Path) -> None:
    nn = pytest.importorskip("torch.nn")
    import torch

    class Up(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up1 = nn.ConvTranspose2d(3, 4, 4, stride=2, padding=1)  # SAME: 5x5 -> 10x10
            self.bn = nn.BatchNorm2d(4)
            self.up2 = nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1)  # VALID, +1

        def forward(self, x: Any) -> Any:
            return self.up2(nn.functional.relu(self.bn(self.up1(x))))

    torch.manual_seed(0)
    m = Up()
    m.bn.running_mean.uniform_(-0.5, 0.5)
    m.bn.running_var.uniform_(0.5, 2.0)
    graph, err = compile_module(m, (1, 3, 5, 5), tmp_path)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("TRANSPOSE_CONV") == 2 and "BATCH_NORMALIZATION" not in kinds
    first = next(op for op in graph.ops if op.kind == "TRANSPOSE_CONV")
    assert first.attrs["padding"] == "SAME" and first.attrs["activation"] == "RELU"
    assert graph.tensor(graph.outputs[0]).shape[1:3] == (22, 22)
    assert err < 0.1, err  # a few int8 steps; a wrong layout is far off


def test_onnx_conv_transpose_padding_tflite_cannot_express(tmp_path: Path) -> None:
    nn = pytest.importorskip("torch.nn")
    import torch

    from tinyengine.convert import export_torch
    from tinyengine.frontend.onnx_reader import load_onnx

    # PyTorch's k3 s2 p1 op1 pads (1, 0); TFLite SAME pads (0, 1) for the same output size.
    m = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1)
    path = export_torch(m, torch.zeros(1, 2, 4, 4), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedError, match="neither TFLite SAME nor VALID"):
        load_onnx(path)


def test_onnx_matmul_of_two_activations(tmp_path: Path) -> None:
    nn = pytest.importorskip("torch.nn")
    import torch

    class Product(nn.Module):
        def forward(self, x: Any) -> Any:  # x: (1, 4, 4); the rhs is an ADD's output
            return torch.matmul(x, x + x)

    class Batched(nn.Module):
        def forward(self, x: Any) -> Any:  # x: (1, 4, 4): a rank-3 product with itself
            return torch.matmul(x, x)

    for name, module, shape in (("product", Product(), (1, 4, 4)),
                                ("batched", Batched(), (1, 4, 4))):
        (tmp_path / name).mkdir()
        graph, err = compile_module(module, shape, tmp_path / name)
        assert [op.kind for op in graph.ops].count("BATCH_MATMUL") == 1, name
        assert err < 0.1, (name, err)
