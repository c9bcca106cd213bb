"""The C `_wrapper` of CONV_2D and DEPTHWISE_CONV_2D picks the variant the Python `kernel` hook
picks, its `_get_buffer_size` twin equals the Python `scratch_bytes`, and the wrapper's output is
the reference's, over seeded random layers inside and outside each fast kernel's domain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op
from tinyengine.reference import run_reference

from . import ckernels
from .test_ops_dw_fc_add import CCall

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { const int32_t *multiplier; const int8_t *shift; int32_t per_channel; }
    te_requant_t;
typedef struct { int32_t input_offset; int32_t output_offset; int32_t act_min; int32_t act_max; }
    te_quant_t;
typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output;
    int32_t stride_h; int32_t stride_w; int32_t dilation_h; int32_t dilation_w;
    int32_t pad_h; int32_t pad_w; te_quant_t q; te_requant_t rq; int32_t groups;
} te_conv2d_params_t;
typedef struct {
    te_dims_t input; te_dims_t filter; te_dims_t output; int32_t depth_multiplier;
    int32_t stride_h; int32_t stride_w; int32_t dilation_h; int32_t dilation_w;
    int32_t pad_h; int32_t pad_w; te_quant_t q; te_requant_t rq;
} te_depthwise_conv_params_t;
int te_conv2d_variant(const te_conv2d_params_t *p, int32_t in_place);
int32_t te_conv2d_get_buffer_size_s8(const te_conv2d_params_t *p, int32_t in_place);
te_status_t te_conv2d_wrapper_s8(const te_conv2d_params_t *p, const int8_t *input,
    const int8_t *filter, const int32_t *bias, int8_t *output, int8_t *scratch);
int te_depthwise_conv_variant(const te_depthwise_conv_params_t *p, int32_t in_place);
int32_t te_depthwise_conv_get_buffer_size_s8(const te_depthwise_conv_params_t *p,
    int32_t in_place);
te_status_t te_depthwise_conv_wrapper_s8(const te_depthwise_conv_params_t *p,
    const int8_t *input, const int8_t *filter, const int32_t *bias, int8_t *output,
    int8_t *scratch);
"""

VARIANTS = {"CONV_2D": ["te_conv2d_s8", "te_conv2d_1x1_s8", "te_conv2d_1x1_inplace_s8"],
            "DEPTHWISE_CONV_2D": ["te_depthwise_conv_s8", "te_depthwise_conv_3x3_s8",
                                  "te_depthwise_conv_inplace_s8"]}
C_NAME = {"CONV_2D": "te_conv2d", "DEPTHWISE_CONV_2D": "te_depthwise_conv"}


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_conv.h", "te_depthwise.h"], ["te_conv.c", "te_depthwise.c"], CDEF)


def _qp(scale: Any, zp: Any, axis: int = 0) -> QuantParams:
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def _layer(rng: np.random.Generator, kind: str) -> tuple[Graph, Op]:
    h, w, c = (int(v) for v in rng.integers(3, 9, 3))
    k = int(rng.choice([1, 3, 5]))
    stride = int(rng.choice([1, 1, 2]))
    padding = str(rng.choice(["SAME", "VALID"]))
    if kind == "CONV_2D":
        oc = int(rng.integers(1, 9))
        wshape, axis, attrs = (oc, k, k, c), 0, {}
    else:
        oc = c
        wshape, axis, attrs = (1, k, k, c), 3, {"depth_multiplier": 1}
    if padding == "VALID" and k > min(h, w):
        padding = "SAME"
    data = rng.integers(-127, 128, wshape, dtype=np.int8)
    oh = -(-h // stride) if padding == "SAME" else (h - k) // stride + 1
    ow = -(-w // stride) if padding == "SAME" else (w - k) // stride + 1
    tensors = {
        "x": Tensor("x", (1, h, w, c), "int8", _qp(0.05, int(rng.integers(-20, 20)))),
        "w": Tensor("w", wshape, "int8", _qp(rng.uniform(0.002, 0.02, oc), np.zeros(oc), axis),
                    data),
        "b": Tensor("b", (oc,), "int32", _qp(np.full(oc, 1e-4), np.zeros(oc)),
                    rng.integers(-500, 500, oc).astype(np.int32)),
        "y": Tensor("y", (1, oh, ow, oc), "int8", _qp(0.1, int(rng.integers(-20, 20)))),
    }
    op = Op("layer", kind, ["x", "w", "b"], ["y"],
            {"stride": (stride, stride), "padding": padding, "dilation": (1, 1),
             "activation": "NONE", **attrs})
    g = Graph(tensors, [op], ["x"], ["y"])
    verify(g)
    return g, op


@pytest.mark.parametrize("kind", ["CONV_2D", "DEPTHWISE_CONV_2D"])
@pytest.mark.parametrize("seed", range(12))
def test_wrapper_agrees_with_python(kernels, kind, seed):
    ffi, lib = kernels
    rng = np.random.default_rng(seed)
    g, op = _layer(rng, kind)
    opdef = get_op(kind)
    name = C_NAME[kind]
    in_place_options = [False] + ([True] if opdef.inplace_inputs(g, op) else [])
    for in_place in in_place_options:
        trial = Op(op.name, op.kind, op.inputs, op.outputs,
                   dict(op.attrs, **({"inplace": 0} if in_place else {})))
        em = opdef.emit(g, trial)
        call = CCall(ffi, em)
        variant = getattr(lib, f"{name}_variant")(call.params, int(in_place))
        assert VARIANTS[kind][variant] == opdef.kernel(g, trial)
        size = getattr(lib, f"{name}_get_buffer_size_s8")(call.params, int(in_place))
        assert size == opdef.scratch_bytes(g, trial) == em.scratch_bytes
    x = rng.integers(-128, 128, g.tensor("x").shape, dtype=np.int8)
    em = opdef.emit(g, op)
    call = CCall(ffi, em)
    out = np.zeros(g.tensor("y").shape, np.int8)
    status = getattr(lib, f"{name}_wrapper_s8")(
        call.params, ffi.from_buffer("int8_t[]", x),
        ffi.from_buffer("int8_t[]", call.consts["filter"]),
        ffi.from_buffer("int32_t[]", call.consts["bias"]), ffi.from_buffer("int8_t[]", out),
        ffi.NULL)
    assert status == 0
    np.testing.assert_array_equal(out, run_reference(g, [x])[0])
