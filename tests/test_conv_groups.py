"""Grouped CONV_2D (attrs["groups"]): reference == a naive loop, C kernel == reference.

The naive loop is written from the definition (output channel oc of group g = oc // (O/G) reads
input channels g*C/G ...), not from the vectorised reference, so a slip in either shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import base
from tinyengine.ops.common import conv_requant, window_padding
from tinyengine.ops.conv import is_pointwise, requantize_acc
from tinyengine.reference import run_reference
from tinyengine.runtime import HostModel

from . import ckernels
from .test_ops_dw_fc_add import CDEF as COMMON_CDEF
from .test_ops_dw_fc_add import CCall

TE_OK, TE_ERR_ARG = 0, 1

CONV_CDEF = COMMON_CDEF.split("typedef struct {\n    te_dims_t input; te_dims_t filter;")[0] + """
typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output;
    int32_t stride_h; int32_t stride_w; int32_t dilation_h; int32_t dilation_w;
    int32_t pad_h; int32_t pad_w;
    te_quant_t q; te_requant_t rq;
    int32_t groups;
} te_conv2d_params_t;
te_status_t te_conv2d_s8(const te_conv2d_params_t *p, const int8_t *input, const int8_t *filter,
                         const int32_t *bias, int8_t *output);
te_status_t te_conv2d_1x1_s8(const te_conv2d_params_t *p, const int8_t *input,
                             const int8_t *filter, const int32_t *bias, int8_t *output);
te_status_t te_conv2d_1x1_inplace_s8(const te_conv2d_params_t *p, const int8_t *input,
                                     const int8_t *filter, const int32_t *bias, int8_t *output,
                                     int8_t *scratch);
te_status_t te_conv2d_1x1_inplace_q15_s8(const te_conv2d_params_t *p, const int8_t *input,
                                         const int8_t *filter, const int32_t *bias,
                                         int8_t *output, int8_t *scratch);
""" + "".join(f"""te_status_t te_conv2d_{path}_s8(const te_conv2d_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output);
""" for path in ("portable", "direct", "direct_partial", "im2col", "im2col_partial", "im2col_q15",
                 "im2col_q15_partial", "1x1_portable", "1x1_pairs", "1x1_pairs_partial",
                 "1x1_widened", "1x1_widened_partial"))


def _q(scale: Any, zp: Any, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def grouped_conv_graph(rng: np.random.Generator, groups: int, c_per_group: int, o_per_group: int,
                       k: tuple[int, int], stride: tuple[int, int], padding: str,
                       dilation: tuple[int, int] = (1, 1), hw: tuple[int, int] = (7, 6),
                       bias: bool = True, per_channel: bool = True) -> Graph:
    c, o = groups * c_per_group, groups * o_per_group
    x = Tensor("x", (1, *hw, c), "int8", _q(0.05, int(rng.integers(-20, 20))))
    scales = rng.uniform(0.002, 0.01, o if per_channel else 1)
    w = Tensor("w", (o, *k, c_per_group), "int8", _q(scales, np.zeros(scales.size), 0),
               rng.integers(-127, 128, (o, *k, c_per_group)).astype(np.int8))
    tensors = {"x": x, "w": w}
    inputs = ["x", "w", ""]
    if bias:
        bscale = 0.05 * np.broadcast_to(scales, (o,))
        tensors["b"] = Tensor("b", (o,), "int32", _q(bscale, np.zeros(o)),
                              rng.integers(-3000, 3000, o).astype(np.int32))
        inputs[2] = "b"
    op = Op("conv", "CONV_2D", inputs, ["y"],
            {"stride": stride, "dilation": dilation, "padding": padding, "activation": "NONE",
             "groups": groups})
    g = Graph(tensors, [op], ["x"], ["y"], name="grouped")
    shape = base.get_op("CONV_2D").infer_shapes(g, op)[0]
    g.tensors["y"] = Tensor("y", shape, "int8", _q(0.08, int(rng.integers(-10, 10))))
    verify(g)
    return g


def naive_accumulators(g: Graph, x: np.ndarray) -> np.ndarray:
    """int64 accumulators by the definition of grouped convolution, one scalar at a time."""
    op = g.ops[0]
    xt, wt = g.tensor("x"), g.tensor("w")
    w = wt.data
    assert w is not None
    groups = op.attrs["groups"]
    o, fh, fw, cg = wt.shape
    og = o // groups
    oh, ow, ph, pw = window_padding(op, xt.shape[1], xt.shape[2], fh, fw)
    (sh, sw), (dh, dw) = op.attrs["stride"], op.attrs["dilation"]
    acc = np.zeros((1, oh, ow, o), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            for oc in range(o):
                total = 0
                for ky in range(fh):
                    for kx in range(fw):
                        iy, ix = oy * sh - ph + ky * dh, ox * sw - pw + kx * dw
                        if not (0 <= iy < xt.shape[1] and 0 <= ix < xt.shape[2]):
                            continue
                        for i in range(cg):
                            ic = (oc // og) * cg + i
                            total += (int(x[0, iy, ix, ic]) - xt.zero_point) * int(w[oc, ky, kx, i])
                acc[0, oy, ox, oc] = total
    return acc


CASES = [  # groups, C/G, O/G, kernel, stride, padding, dilation
    (2, 3, 2, (3, 3), (1, 1), "SAME", (1, 1)),
    (4, 1, 3, (3, 3), (2, 2), "SAME", (1, 1)),
    (3, 2, 1, (5, 3), (1, 2), "VALID", (1, 1)),
    (2, 4, 4, (1, 1), (1, 1), "VALID", (1, 1)),  # 1x1: must take the generic kernel
    (2, 2, 3, (3, 3), (1, 1), "SAME", (2, 1)),
    (1, 5, 4, (3, 3), (2, 1), "SAME", (1, 1)),  # one group: plain TFLite CONV_2D
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_reference_matches_naive_loop(case: int) -> None:
    groups, cg, og, k, stride, padding, dil = CASES[case]
    rng = np.random.default_rng(case)
    g = grouped_conv_graph(rng, groups, cg, og, k, stride, padding, dil)
    x = rng.integers(-128, 128, g.tensor("x").shape).astype(np.int8)
    acc = naive_accumulators(g, x)
    b = g.tensor("b").data
    assert b is not None
    acc += b.astype(np.int64)
    mult, shift = conv_requant(g.tensor("x"), g.tensor("w"), g.tensor("y"))
    y = g.tensor("y")
    expected = requantize_acc(acc, mult, shift, y.zero_point, -128, 127)
    np.testing.assert_array_equal(run_reference(g, [x])[0], expected)


@pytest.fixture(scope="module")
def conv_kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_conv.h"], ["te_conv.c"], CONV_CDEF)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_c_kernel_matches_reference(case: int, conv_kernels: tuple[Any, Any]) -> None:
    ffi, lib = conv_kernels
    groups, cg, og, k, stride, padding, dil = CASES[case]
    rng = np.random.default_rng(100 + case)
    g = grouped_conv_graph(rng, groups, cg, og, k, stride, padding, dil,
                           bias=case % 2 == 0, per_channel=case != 2)
    op = g.ops[0]
    em = base.get_op("CONV_2D").emit(g, op)
    assert em.params["groups"] == groups
    # The `kernel` hook names the variant; the emission calls that variant's path
    # (tests/test_conv_paths.py), which this build (no SIMD) runs as its portable loop.
    kernel = base.get_op("CONV_2D").kernel(g, op)
    pointwise = groups == 1 and k == (1, 1)
    assert (kernel == "te_conv2d_1x1_s8") == pointwise
    assert em.kernel.startswith("te_conv2d_1x1_") == pointwise, em.kernel
    x = rng.integers(-128, 128, g.tensor("x").shape).astype(np.int8)
    for fn in (em.kernel, kernel):
        out = np.full(g.tensor("y").shape, 55, np.int8)
        assert CCall(ffi, em)(lib, {"x": x, "y": out}, kernel=fn) == TE_OK
        np.testing.assert_array_equal(out, run_reference(g, [x])[0], err_msg=fn)


def test_pointwise_kernels_reject_groups(conv_kernels: tuple[Any, Any]) -> None:
    """A 1x1 grouped conv is outside the 1x1 kernels' domain: Python never picks them, and the
    C kernels refuse rather than compute an ungrouped product."""
    ffi, lib = conv_kernels
    g = grouped_conv_graph(np.random.default_rng(7), 2, 4, 4, (1, 1), (1, 1), "VALID")
    op = g.ops[0]
    assert not is_pointwise(g, op)
    assert base.get_op("CONV_2D").inplace_inputs(g, op) == []
    em = base.get_op("CONV_2D").emit(g, op)
    assert base.get_op("CONV_2D").kernel(g, op) == "te_conv2d_s8"
    assert not em.kernel.startswith("te_conv2d_1x1_"), em.kernel
    call = CCall(ffi, em)
    x = np.zeros(g.tensor("x").shape, np.int8)
    out = np.zeros(g.tensor("y").shape, np.int8)
    for fn in ("te_conv2d_1x1_s8", "te_conv2d_1x1_portable_s8", "te_conv2d_1x1_pairs_s8",
               "te_conv2d_1x1_widened_s8"):
        assert call(lib, {"x": x, "y": out}, kernel=fn) == TE_ERR_ARG, fn
    scratch = np.zeros(64, np.int8)
    args = [call.params, ffi.from_buffer("int8_t[]", x),
            ffi.from_buffer("int8_t[]", call.consts["filter"]),
            ffi.from_buffer("int32_t[]", call.consts["bias"]), ffi.from_buffer("int8_t[]", out),
            ffi.from_buffer("int8_t[]", scratch)]
    assert lib.te_conv2d_1x1_inplace_s8(*args) == TE_ERR_ARG
    assert lib.te_conv2d_1x1_inplace_q15_s8(*args) == TE_ERR_ARG
    call.params.groups = 0
    assert call(lib, {"x": x, "y": out}, kernel="te_conv2d_s8") == TE_ERR_ARG


def test_check_rejects_mismatched_groups() -> None:
    g = grouped_conv_graph(np.random.default_rng(3), 2, 3, 2, (3, 3), (1, 1), "SAME")
    g.ops[0].attrs["groups"] = 4  # 6 input channels are not 4 groups of 3
    with pytest.raises(UnsupportedError, match="groups"):
        verify(g)


def test_generated_project_runs_grouped_conv(tmp_path: Any) -> None:
    rng = np.random.default_rng(11)
    g = grouped_conv_graph(rng, 3, 2, 2, (3, 3), (2, 2), "SAME", hw=(9, 8))
    compile_graph(g, tmp_path / "p", prefix="grp")
    host = HostModel(tmp_path / "p")
    for _ in range(3):
        x = rng.integers(-128, 128, g.tensor("x").shape).astype(np.int8)
        np.testing.assert_array_equal(host.invoke([x])[0], run_reference(g, [x])[0])
