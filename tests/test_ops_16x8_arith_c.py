"""int16 (TFLite 16x8 mode) ADD, SUB, MUL, QUANTIZE and DEQUANTIZE: the C `_s16` kernels and
the requantize/quantize/dequantize conversions, called with what emit() gives, against the
numpy reference (in place too), and TE_ERR_ARG outside their domain. The cases and the other
checks are in tests/test_ops_16x8_arith.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tinyengine.ir import Graph, Op
from tinyengine.ops import get_op

from . import ckernels
from .test_ops_16x8_arith import (
    BINARY,
    CONVERSIONS,
    I16_MAX,
    I16_MIN,
    binary_case,
    bits,
    convert_case,
    reference,
)

TE_OK, TE_ERR_ARG = 0, 1


# ---------------------------------------------------------------------------------------------
# 3. C kernels == reference
# ---------------------------------------------------------------------------------------------

CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { te_dims_t dims; int32_t offset; int32_t multiplier; int32_t shift; }
    te_add_input_t;
typedef struct {
    te_add_input_t input1; te_add_input_t input2; te_dims_t output;
    int32_t left_shift; int32_t output_multiplier; int32_t output_shift; int32_t output_offset;
    int32_t act_min; int32_t act_max;
} te_add_params_t;
typedef struct { te_dims_t input1; te_dims_t input2; te_dims_t output; } te_broadcast_dims_t;
typedef struct { int32_t offset; int32_t multiplier; int32_t shift; } te_ew_input_t;
typedef struct {
    te_broadcast_dims_t dims; te_ew_input_t input1; te_ew_input_t input2; int32_t left_shift;
    int32_t output_multiplier; int32_t output_shift; int32_t output_offset;
    int32_t act_min; int32_t act_max;
} te_sub_params_t;
typedef struct {
    te_broadcast_dims_t dims; int32_t input1_offset; int32_t input2_offset;
    int32_t output_multiplier; int32_t output_shift; int32_t output_offset;
    int32_t act_min; int32_t act_max;
} te_mul_params_t;
typedef struct { int32_t size; float scale; int32_t input_zero_point; int32_t output_zero_point;
                 int32_t multiplier; int32_t shift; } te_quantize_params_t;
typedef struct { int32_t size; float scale; int32_t zero_point; } te_dequantize_params_t;

te_status_t te_add_s16(const te_add_params_t *, const int16_t *, const int16_t *, int16_t *);
te_status_t te_sub_s16(const te_sub_params_t *, const int16_t *, const int16_t *, int16_t *);
te_status_t te_mul_s16(const te_mul_params_t *, const int16_t *, const int16_t *, int16_t *);
te_status_t te_quantize_f32_s8(const te_quantize_params_t *, const float *, int8_t *);
te_status_t te_quantize_f32_s16(const te_quantize_params_t *, const float *, int16_t *);
te_status_t te_requantize_s8(const te_quantize_params_t *, const int8_t *, int8_t *);
te_status_t te_requantize_s16(const te_quantize_params_t *, const int16_t *, int16_t *);
te_status_t te_requantize_s8_s16(const te_quantize_params_t *, const int8_t *, int16_t *);
te_status_t te_requantize_s16_s8(const te_quantize_params_t *, const int16_t *, int8_t *);
te_status_t te_requantize_s8_s32(const te_quantize_params_t *, const int8_t *, int32_t *);
te_status_t te_requantize_s16_s32(const te_quantize_params_t *, const int16_t *, int32_t *);
te_status_t te_requantize_s32_s8(const te_quantize_params_t *, const int32_t *, int8_t *);
te_status_t te_requantize_s32_s16(const te_quantize_params_t *, const int32_t *, int16_t *);
te_status_t te_dequantize_s16_f32(const te_dequantize_params_t *, const int16_t *, float *);
"""


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(["te_add.h", "te_elementwise.h", "te_quantize.h"],
                          ["te_add.c", "te_elementwise.c", "te_quantize.c"], CDEF)


def fill(ffi: Any, cdata: Any, values: dict[str, Any] | list[Any]) -> None:
    """Set a cffi struct from emit()'s designated initialisers (nested lists -> nested structs)."""
    fields = [f for f, _ in ffi.typeof(cdata).fields]
    items = list(values.items()) if isinstance(values, dict) else list(zip(fields, values,
                                                                           strict=True))
    assert [k for k, _ in items] == fields[:len(items)], "params out of struct field order"
    for key, value in items:
        if isinstance(value, list):
            fill(ffi, getattr(cdata, key), value)
        else:
            setattr(cdata, key, value)


def c_pointer(ffi: Any, arr: np.ndarray) -> Any:
    return ffi.from_buffer("float[]" if arr.dtype == np.float32 else f"{arr.dtype}_t[]", arr)


def call_c(kernels: tuple[Any, Any], g: Graph, op: Op, vals: list[np.ndarray],
           aliased: int | None = None) -> tuple[int, np.ndarray]:
    """Run the kernel emit() names on `vals`; `aliased`: the output buffer starts at that input's
    (a copy of it, large enough for both)."""
    ffi, lib = kernels
    em = get_op(op.kind).emit(g, op)
    assert em.kernel == get_op(op.kind).kernel(g, op)
    params = ffi.new(f"{em.params_type} *")
    fill(ffi, params[0], em.params)
    out_t = g.tensor(op.outputs[0])
    bufs = {n: np.ascontiguousarray(v) for n, v in zip(op.inputs, vals)}
    consts = {c.name: np.ascontiguousarray(c.values) for c in em.consts}
    if aliased is None:
        out = np.full(out_t.shape, 55, out_t.dtype)
    else:
        src = bufs[op.inputs[aliased]]
        raw = np.zeros(max(src.nbytes, out_t.nbytes), np.uint8)
        raw[:src.nbytes] = src.view(np.uint8).ravel()
        bufs[op.inputs[aliased]] = raw[:src.nbytes].view(src.dtype).reshape(src.shape)
        out = raw[:out_t.nbytes].view(out_t.dtype).reshape(out_t.shape)
    bufs[op.outputs[0]] = out
    args = [c_pointer(ffi, bufs[a.ref] if a.kind == "tensor" else consts[a.ref])
            for a in em.args]
    return int(getattr(lib, em.kernel)(params, *args)), out.copy()


@pytest.mark.parametrize("kind", BINARY)
def test_binary_c_kernels_equal_reference(kind: str, kernels: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(1350 + BINARY.index(kind))
    for case in range(30):
        g, op, vals = binary_case(kind, rng, const_b=case % 5 == 4)
        assert get_op(kind).kernel(g, op) == f"te_{kind.lower()}_s16"
        expected = reference(g, op, vals)
        status, out = call_c(kernels, g, op, vals)
        assert status == TE_OK
        np.testing.assert_array_equal(out, expected, err_msg=f"{kind} case {case}")
        for pos in get_op(kind).inplace_inputs(g, op):  # output overwriting that input
            status, out = call_c(kernels, g, op, vals, aliased=pos)
            assert status == TE_OK
            np.testing.assert_array_equal(out, expected, err_msg=f"{kind} in place {pos}")


@pytest.mark.parametrize("pair", CONVERSIONS + (("int16", "float32"),), ids=str)
def test_conversion_c_kernels_equal_reference(pair: tuple[str, str],
                                              kernels: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(1360 + (CONVERSIONS + (("int16", "float32"),)).index(pair))
    kind = "DEQUANTIZE" if pair[1] == "float32" else "QUANTIZE"
    for case in range(8):
        g, op, x = convert_case(rng, *pair, kind=kind)
        expected = bits(reference(g, op, [x]))
        status, out = call_c(kernels, g, op, [x])
        assert status == TE_OK
        np.testing.assert_array_equal(bits(out), expected, err_msg=f"{pair} case {case}")
        inplace = get_op(kind).inplace_inputs(g, op)
        # Only conversions that do not widen may overwrite their input.
        widening = np.dtype(pair[1]).itemsize > np.dtype(pair[0]).itemsize
        assert inplace == ([] if widening or kind == "DEQUANTIZE" else [0])
        if inplace:
            status, out = call_c(kernels, g, op, [x], aliased=0)
            assert status == TE_OK
            np.testing.assert_array_equal(bits(out), expected, err_msg=f"{pair} in place")


def test_c_kernels_refuse_parameters_outside_their_domain(kernels: tuple[Any, Any]) -> None:
    ffi, lib = kernels
    x16 = np.zeros(8, np.int16)
    p16 = ffi.from_buffer("int16_t[]", x16)
    dims = [1, 1, 2, 4]
    good: dict[str, dict[str, Any]] = {
        "te_add_s16": {"input1": [dims, 0, 1 << 30, 0], "input2": [dims, 0, 1 << 30, 0],
                       "output": dims, "left_shift": 15, "output_multiplier": 1 << 30,
                       "output_shift": -14, "output_offset": 0, "act_min": I16_MIN,
                       "act_max": I16_MAX},
        "te_sub_s16": {"dims": [dims, dims, dims], "input1": [0, 1 << 30, 0],
                       "input2": [0, 1 << 30, 0], "left_shift": 15, "output_multiplier": 1 << 30,
                       "output_shift": -14, "output_offset": 0, "act_min": I16_MIN,
                       "act_max": I16_MAX},
        "te_mul_s16": {"dims": [dims, dims, dims], "input1_offset": 0, "input2_offset": 0,
                       "output_multiplier": 1 << 30, "output_shift": 0, "output_offset": 0,
                       "act_min": I16_MIN, "act_max": I16_MAX},
    }
    bad: dict[str, list[dict[str, Any]]] = {
        "te_add_s16": [{"input1": [dims, 1, 1 << 30, 0]}, {"left_shift": 16},
                       {"output_offset": 1}, {"act_min": I16_MIN - 1}, {"act_max": I16_MAX + 1},
                       {"output_shift": 1}],
        "te_sub_s16": [{"input2": [-1, 1 << 30, 0]}, {"left_shift": 16}, {"output_offset": -1},
                       {"act_min": 5, "act_max": 4}, {"output_shift": 1}],
        "te_mul_s16": [{"input1_offset": 1}, {"output_shift": 1}, {"output_offset": 2},
                       {"act_max": I16_MAX + 1}],
    }
    ptype = {"te_add_s16": "te_add_params_t", "te_sub_s16": "te_sub_params_t",
             "te_mul_s16": "te_mul_params_t"}
    for kernel, values in good.items():
        def run(v: dict[str, Any], null: bool = False, kernel: str = kernel) -> int:
            p = ffi.new(f"{ptype[kernel]} *")
            fill(ffi, p[0], v)
            return int(getattr(lib, kernel)(p, p16, ffi.NULL if null else p16, p16))
        assert run(values) == TE_OK, kernel
        assert run(values, null=True) == TE_ERR_ARG, kernel
        for change in bad[kernel]:
            assert run({**values, **change}) == TE_ERR_ARG, (kernel, change)

    # Conversions: zero points outside the types (0 for int32), a bad shift or size.
    x32 = np.zeros(8, np.int32)
    ptrs = {"s8": ffi.from_buffer("int8_t[]", np.zeros(8, np.int8)), "s16": p16,
            "s32": ffi.from_buffer("int32_t[]", x32),
            "f32": ffi.from_buffer("float[]", np.zeros(8, np.float32))}
    zp_limits = {"s8": (-128, 127), "s16": (I16_MIN, I16_MAX), "s32": (0, 0)}
    def conv(name: str, in_zp: int, out_zp: int, shift: int = -3, size: int = 8) -> int:
        src, dst = (name.split("_") * 2)[:2]
        p = ffi.new("te_quantize_params_t *", {"size": size, "scale": 0.0,
                                               "input_zero_point": in_zp,
                                               "output_zero_point": out_zp,
                                               "multiplier": 1 << 30, "shift": shift})
        return int(getattr(lib, f"te_requantize_{name}")(p, ptrs[src], ptrs[dst]))

    for name in ("s16", "s8_s16", "s16_s8", "s8_s32", "s16_s32", "s32_s8", "s32_s16"):
        src, dst = (name.split("_") * 2)[:2]
        assert conv(name, zp_limits[src][0], zp_limits[dst][1]) == TE_OK, name
        assert conv(name, zp_limits[src][0] - 1, 0) == TE_ERR_ARG, name
        assert conv(name, 0, zp_limits[dst][1] + 1) == TE_ERR_ARG, name
        assert conv(name, 0, 0, shift=32) == TE_ERR_ARG, name
        assert conv(name, 0, 0, size=-1) == TE_ERR_ARG, name
    q = ffi.new("te_quantize_params_t *", {"size": 8, "scale": 0.5, "output_zero_point": 0})
    assert lib.te_quantize_f32_s16(q, ptrs["f32"], p16) == TE_OK
    q.output_zero_point = I16_MAX + 1
    assert lib.te_quantize_f32_s16(q, ptrs["f32"], p16) == TE_ERR_ARG
    q.output_zero_point, q.scale = 0, 0.0
    assert lib.te_quantize_f32_s16(q, ptrs["f32"], p16) == TE_ERR_ARG
    d = ffi.new("te_dequantize_params_t *", {"size": 8, "scale": 0.5, "zero_point": I16_MIN})
    assert lib.te_dequantize_s16_f32(d, p16, ptrs["f32"]) == TE_OK
    d.zero_point = I16_MIN - 1
    assert lib.te_dequantize_s16_f32(d, p16, ptrs["f32"]) == TE_ERR_ARG
