"""QUANTIZE (float32 -> int8/int16, and requantisation between int8, int16 and int32) and
DEQUANTIZE (int8/int16 -> float32).

Reference semantics, TFLM's micro/kernels/quantize_common.cc and dequantize_common.cc:
- float32 -> int8/int16, reference_ops::AffineQuantize: q = round(x / float(scale)) + zero_point,
  clamped to the output type; the division is float32 and round() is std::round (half away from
  zero).
- integer -> integer, reference_ops::Requantize: MultiplyByQuantizedMultiplier(x - in_zp, m, s) +
  out_zp, clamped to the output type, with (m, s) = QuantizeMultiplier(double(in_scale) /
  double(out_scale)). TFLM runs it for int8 -> int8/int16/int32, int16 -> int8/int16/int32 and
  int32 -> int8/int16 (the pairs in REQUANTIZE_PAIRS).
- int8/int16 -> float32, reference_ops::Dequantize: float(double(scale) * (q - zero_point)).

int16 tensors here keep their zero point (an int16 SOFTMAX output has -32768, and TFLite's
converter puts a QUANTIZE to int32 after it). int32 tensors must have zero point 0: TFLM subtracts
and adds zero points in int32, which could overflow for an int32 value.

These are the only ops computed in floating point; numpy's float32 and float64 arithmetic is
IEEE, as the C kernels assume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import QRANGE, Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, TfliteImport, TfliteLowering, register
from .common import (
    CTYPE,
    require_inputs,
    tflite_import,
    where,
)

if TYPE_CHECKING:
    from types import ModuleType

    from ..quantize.qdq import QdqBuilder

SOURCES = ["te_common.h", "te_quantize.h", "te_quantize.c"]

# Kernel-name suffix of each type the conversions read or write.
TYPE_SUFFIX = {"int8": "s8", "int16": "s16", "int32": "s32", "float32": "f32"}
INT32_RANGE = (-(1 << 31), (1 << 31) - 1)

# (input, output) types of TFLM's Requantize (uint8 left out: the engine has no uint8 tensors).
REQUANTIZE_PAIRS = frozenset({
    ("int8", "int8"), ("int8", "int16"), ("int8", "int32"),
    ("int16", "int8"), ("int16", "int16"), ("int16", "int32"),
    ("int32", "int8"), ("int32", "int16"),
})
FLOAT_TO = ("int8", "int16")  # AffineQuantize's outputs
DEQUANTIZE_FROM = ("int8", "int16")


def type_range(dtype: str) -> tuple[int, int]:
    return INT32_RANGE if dtype == "int32" else QRANGE[dtype]


def _check_per_tensor(op: Op, t: Tensor, dtypes: tuple[str, ...]) -> None:
    """A per-tensor quantised tensor of one of `dtypes`, its zero point inside its type (0 for
    int32)."""
    if t.dtype not in dtypes or t.quant is None:
        raise UnsupportedError(
            f"{where(op)}: tensor {t.name} is {t.dtype}"
            f"{'' if t.quant is not None or t.dtype not in dtypes else ' without quantisation'}; "
            f"here it must be a quantised {' or '.join(dtypes)} tensor")
    if t.quant.per_channel:
        raise UnsupportedError(
            f"{where(op)}: tensor {t.name} is quantised per channel; TFLM supports only "
            "per-tensor quantisation here")
    lo, hi = (0, 0) if t.dtype == "int32" else QRANGE[t.dtype]
    if not lo <= t.zero_point <= hi:
        raise UnsupportedError(
            f"{where(op)}: tensor {t.name} ({t.dtype}) has zero point {t.zero_point} outside "
            f"[{lo}, {hi}]" + ("; int32 tensors must have zero point 0" if t.dtype == "int32"
                               else ""))


def _check_same_shape(graph: Graph, op: Op) -> None:
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if tuple(x.shape) != tuple(out.shape):
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): input shape {x.shape} differs from output shape "
            f"{out.shape}")


def affine_quantize(x: np.ndarray, scale: float, zero_point: int,
                    dtype: str = "int8") -> np.ndarray:
    """float32 -> int8/int16 as AffineQuantize. Values whose quotient leaves int32 range
    (undefined in TFLM) saturate, NaN gives the zero point: the kernel's documented choice."""
    qmin, qmax = QRANGE[dtype]
    # Any quotient beyond the type's span clamps, whatever the zero point: clip there so the
    # rounding below stays exact (the span is at most 2^16, far inside float32's 2^24).
    span = np.float32(qmax - qmin + 1)
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are handled below
        q = np.asarray(x, np.float32) / np.float32(scale)
    q = np.where(np.isnan(q), np.float32(0), np.clip(q, -span, span))
    t = np.trunc(q)
    frac = q - t  # exact: |q| <= 2^16 and t = trunc(q) share q's binade or a coarser one
    r = t.astype(np.int64) + (frac >= 0.5) - (frac <= -0.5)
    return np.clip(r + zero_point, qmin, qmax).astype(dtype)


def requantize_params(op: Op, xt: Tensor, out: Tensor) -> tuple[int, int]:
    """(multiplier, shift) of double(in_scale) / double(out_scale), as TFLM's Prepare."""
    real = float(np.float64(np.float32(xt.scale)) / np.float64(np.float32(out.scale)))
    return quant.quantize_multiplier(real)


def requantize(x: np.ndarray, multiplier: int, shift: int, in_zp: int, out_zp: int,
               dtype: str = "int8") -> np.ndarray:
    """Requantize to `dtype`. x - in_zp and the result before the clamp stay inside int32 for
    every tensor `check` accepts (an int32 tensor has zero point 0)."""
    y = quant.multiply_by_quantized_multiplier(np.asarray(x, np.int64) - in_zp, multiplier, shift)
    lo, hi = type_range(dtype)
    return np.clip(y + out_zp, lo, hi).astype(dtype)


def dequantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8/int16 -> float32: the float64 product is exact (24 x 17 bits at most), so only the
    conversion rounds."""
    d = np.float64(np.float32(scale)) * (np.asarray(x, np.int64) - zero_point).astype(np.float64)
    return d.astype(np.float32)


def quantize_kernel(in_dtype: str, out_dtype: str) -> str:
    """te_quantize_f32_<out>, te_requantize_<t> (one type) or te_requantize_<in>_<out>."""
    if in_dtype == "float32":
        return f"te_quantize_f32_{TYPE_SUFFIX[out_dtype]}"
    if in_dtype == out_dtype:
        return f"te_requantize_{TYPE_SUFFIX[in_dtype]}"
    return f"te_requantize_{TYPE_SUFFIX[in_dtype]}_{TYPE_SUFFIX[out_dtype]}"


@register
class Quantize(OpDef):
    kind = "QUANTIZE"
    dtypes = ("int8", "int16", "int32", "float32")
    patch = "elementwise"
    # The ONNX import and PTQ insert QUANTIZE at the graph inputs themselves.
    not_applicable = frozenset({"window", "scratch_bytes", "macs", "from_onnx", "quant_rule"})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return tflite_import({}, 1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("QuantizeOptions", fb.QuantizeOptionsT())

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        from ..quantize import qdq as qx

        qx.boundary(b, op)
        return ""

    def kernel(self, graph: Graph, op: Op) -> str:
        return quantize_kernel(graph.tensor(op.inputs[0]).dtype,
                               graph.tensor(op.outputs[0]).dtype)

    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input",))
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.dtype == "float32":
            _check_per_tensor(op, out, FLOAT_TO)
        else:
            _check_per_tensor(op, x, ("int8", "int16", "int32"))
            if (x.dtype, out.dtype) not in REQUANTIZE_PAIRS:
                outs = [o for o in ("int8", "int16", "int32") if (x.dtype, o) in REQUANTIZE_PAIRS]
                raise UnsupportedError(
                    f"{where(op)}: output {out.name} is {out.dtype}; TFLM requantizes {x.dtype} "
                    f"only to {' or '.join(outs)}")
            _check_per_tensor(op, out, ("int8", "int16", "int32"))
        _check_same_shape(graph, op)
        if x.dtype != "float32":
            requantize_params(op, x, out)  # the multiplier must be representable

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # Element i is read before it is written, and an output element no wider than an input
        # one (float32 -> int8 writes byte i after reading bytes 4i..4i+3) only covers input
        # bytes already read, so an output that starts at the input is safe. A widening one
        # (int8 -> int16, int16 -> int32) would overwrite input elements not yet read.
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        return [0] if out.nbytes <= x.nbytes else []

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        xt, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if xt.dtype == "float32":
            return [affine_quantize(inputs[0], out.scale, out.zero_point, out.dtype)]
        m, s = requantize_params(op, xt, out)
        return [requantize(inputs[0], m, s, xt.zero_point, out.zero_point, out.dtype)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        from_float = xt.dtype == "float32"
        m, s = (0, 0) if from_float else requantize_params(op, xt, out)
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_quantize_params_t",
            params={"size": xt.size, "scale": float(np.float32(out.scale)) if from_float else 0.0,
                    "input_zero_point": 0 if from_float else xt.zero_point,
                    "output_zero_point": out.zero_point, "multiplier": m, "shift": s},
            args=[Arg("tensor", op.inputs[0], f"const {CTYPE[xt.dtype]}"),
                  Arg("tensor", op.outputs[0], CTYPE[out.dtype])],
            sources=SOURCES,
        )


@register
class Dequantize(OpDef):
    kind = "DEQUANTIZE"
    dtypes = ("int8", "int16", "float32")
    patch = "none"
    not_applicable = frozenset({"window", "scratch_bytes", "macs", "from_onnx", "quant_rule"})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return tflite_import({}, 1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("DequantizeOptions", fb.DequantizeOptionsT())

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        from ..quantize import qdq as qx

        qx.boundary(b, op)
        return ""

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_dequantize_{TYPE_SUFFIX[graph.tensor(op.inputs[0]).dtype]}_f32"

    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input",))
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        _check_per_tensor(op, x, DEQUANTIZE_FROM)
        if out.dtype != "float32":
            raise UnsupportedError(
                f"op {op.name} (DEQUANTIZE): output {out.name} is {out.dtype}; only float32 is "
                "supported")
        _check_same_shape(graph, op)

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        xt = graph.tensor(op.inputs[0])
        return [dequantize(inputs[0], xt.scale, xt.zero_point)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt = graph.tensor(op.inputs[0])
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_dequantize_params_t",
            params={"size": xt.size, "scale": float(np.float32(xt.scale)),
                    "zero_point": xt.zero_point},
            args=[Arg("tensor", op.inputs[0], f"const {CTYPE[xt.dtype]}"),
                  Arg("tensor", op.outputs[0], "float")],
            sources=SOURCES,
        )
