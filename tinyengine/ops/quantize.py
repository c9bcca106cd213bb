"""QUANTIZE (float32 -> int8, int8 -> int8) and DEQUANTIZE (int8 -> float32).

Reference semantics, TFLM's micro/kernels/quantize_common.cc and dequantize_common.cc:
- float32 -> int8, reference_ops::AffineQuantize: q = round(x / float(scale)) + zero_point,
  clamped; the division is float32 and round() is std::round (half away from zero).
- int8 -> int8, reference_ops::Requantize: MultiplyByQuantizedMultiplier(x - in_zp, m, s) +
  out_zp, clamped, with (m, s) = QuantizeMultiplier(double(in_scale) / double(out_scale)).
- int8 -> float32, reference_ops::Dequantize: float(double(scale) * (q - zero_point)).

These are the only ops computed in floating point; numpy's float32 and float64 arithmetic is
IEEE, as the C kernels assume.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, TfliteImport, TfliteLowering, register
from .common import (
    require_inputs,
    tflite_import,
)

if TYPE_CHECKING:
    from types import ModuleType

    from ..quantize.qdq import QdqBuilder

SOURCES = ["te_common.h", "te_quantize.h", "te_quantize.c"]


def _check_per_tensor_int8(op: Op, t: Tensor) -> None:
    if t.dtype != "int8" or t.quant is None:
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): tensor {t.name} is {t.dtype}; only float32 <-> int8 and "
            "int8 -> int8 are supported")
    if t.quant.per_channel:
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): tensor {t.name} is quantised per channel; TFLM supports "
            "only per-tensor quantisation here")
    if not -128 <= t.zero_point <= 127:
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): tensor {t.name} has zero point {t.zero_point} outside "
            "int8 range")


def _check_same_shape(graph: Graph, op: Op) -> None:
    x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if tuple(x.shape) != tuple(out.shape):
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): input shape {x.shape} differs from output shape "
            f"{out.shape}")


def affine_quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 -> int8 as AffineQuantize. Values whose quotient leaves int32 range (undefined in
    TFLM) saturate, NaN gives the zero point: the kernel's documented choice."""
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are handled below
        q = np.asarray(x, np.float32) / np.float32(scale)
    q = np.where(np.isnan(q), np.float32(0), np.clip(q, np.float32(-256), np.float32(256)))
    t = np.trunc(q)
    frac = q - t  # exact: |q| < 2^8 and t = trunc(q) share q's binade or a coarser one
    r = t.astype(np.int64) + (frac >= 0.5) - (frac <= -0.5)
    return np.clip(r + zero_point, -128, 127).astype(np.int8)


def requantize_params(op: Op, xt: Tensor, out: Tensor) -> tuple[int, int]:
    """(multiplier, shift) of double(in_scale) / double(out_scale), as TFLM's Prepare."""
    real = float(np.float64(np.float32(xt.scale)) / np.float64(np.float32(out.scale)))
    return quant.quantize_multiplier(real)


def requantize(x: np.ndarray, multiplier: int, shift: int, in_zp: int, out_zp: int) -> np.ndarray:
    y = quant.multiply_by_quantized_multiplier(np.asarray(x, np.int64) - in_zp, multiplier, shift)
    return np.clip(y + out_zp, -128, 127).astype(np.int8)


def dequantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 -> float32: the float64 product is exact, so only the conversion rounds."""
    d = np.float64(np.float32(scale)) * (np.asarray(x, np.int64) - zero_point).astype(np.float64)
    return d.astype(np.float32)


@register
class Quantize(OpDef):
    kind = "QUANTIZE"
    dtypes = ("int8", "float32")
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
        from_float = graph.tensor(op.inputs[0]).dtype == "float32"
        return "te_quantize_f32_s8" if from_float else "te_requantize_s8"


    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input",))
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.dtype != "float32":
            _check_per_tensor_int8(op, x)
        _check_per_tensor_int8(op, out)
        _check_same_shape(graph, op)
        if x.dtype != "float32":
            requantize_params(op, x, out)  # int8 -> int8: the multiplier must be representable

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # Element i is read before it is written, and float32 -> int8 writes byte i after
        # reading bytes 4i..4i+3, so an output that starts at the input is safe.
        return [0]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        xt, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if xt.dtype == "float32":
            return [affine_quantize(inputs[0], out.scale, out.zero_point)]
        m, s = requantize_params(op, xt, out)
        return [requantize(inputs[0], m, s, xt.zero_point, out.zero_point)]

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
            args=[Arg("tensor", op.inputs[0], "const float" if from_float else "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=SOURCES,
        )


@register
class Dequantize(OpDef):
    kind = "DEQUANTIZE"
    dtypes = ("int8", "float32")
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
        return "te_dequantize_s8_f32"


    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input",))
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        _check_per_tensor_int8(op, x)
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
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "float")],
            sources=SOURCES,
        )
