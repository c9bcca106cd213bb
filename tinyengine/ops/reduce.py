"""MEAN: the int8 mean over axes of a tensor (TFLite's reduce).

MEAN semantics: TFLM's reduce.cc, int8 path (EvalMeanHelper -> reference_ops::QuantizedMeanOrSum,
the only path TFLM takes for int8 since it aligned with TFLite in 2023, whether or not the input
and output quantisations are equal). With n elements per output:
  (M, s) = QuantizeMultiplier(double(in_scale) / double(out_scale))
  k = min(floor(log2 n), 32, 31 + s);  M' = (int64(M) << k) / n  (truncating);  s' = s - k
  out = clamp(MultiplyByQuantizedMultiplier(int32(sum(q) - in_zp * n), M', s') + out_zp)
We support the reduction over axes 1 and 2 of a 4-D tensor (global pooling), keep_dims or not.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, TfliteImport, TfliteLowering, register
from .common import check_int8_io, clamp_int8, dims4, tflite_const, tflite_import, tflite_options

SOURCES = ["te_common.h", "te_pool.h", "te_pool.c"]


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM QuantizedMeanOrSum's multiplier and shift, with the 1/count division folded in."""
    mult, shift = quant.quantize_multiplier(float(np.float64(in_scale) / np.float64(out_scale)))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // count), shift - k


@register
class Mean(OpDef):
    kind = "MEAN"
    dtypes = ("int8",)
    patch = "none"
    # MEAN requantises freely; ONNX's ReduceMean is still converted by the frontend's fallback.
    not_applicable = frozenset({"window", "scratch_bytes", "quant_rule", "from_onnx"})

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_mean_s8"

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "ReducerOptions")
        rank = len(inputs[0].shape)
        axes = sorted({int(a) % rank for a in tflite_const(inputs, 1, "MEAN axes").ravel()})
        return tflite_import({"axes": tuple(axes),
                              "keep_dims": bool(o.KeepDims()) if o else False}, 1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.ReducerOptionsT()
        o.keepDims = bool(op.attrs.get("keep_dims", False))
        return TfliteLowering("ReducerOptions", o, [np.array(op.attrs["axes"], np.int32)])

    def to_qdq(self, b: Any, op: Op) -> str:
        return b.node("ReduceMean", [b.dequantized(op.inputs[0])], op.name, axes=[2, 3],
                      keepdims=int(bool(op.attrs.get("keep_dims", False))))

    def check(self, graph: Graph, op: Op) -> None:
        check_int8_io(graph, op)
        x = graph.tensor(op.inputs[0])
        axes = tuple(op.attrs.get("axes", ()))
        if len(x.shape) != 4 or set(axes) != {1, 2}:
            raise UnsupportedError(
                f"op {op.name} (MEAN): only the mean over axes (1, 2) of a 4-D NHWC tensor "
                f"(global average pooling) is supported, got axes {axes} of shape {x.shape}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        n, _, _, c = graph.tensor(op.inputs[0]).shape
        return [(n, 1, 1, c) if op.attrs.get("keep_dims", False) else (n, c)]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0  # additions only, no multiply-accumulates

    def _requant(self, graph: Graph, op: Op) -> tuple[Tensor, Tensor, int, int, int]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        count = x.shape[1] * x.shape[2]
        mult, shift = mean_multiplier(x.scale, out.scale, count)
        return x, out, count, mult, shift

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out, count, mult, shift = self._requant(graph, op)
        total = inputs[0].astype(np.int64).sum(axis=(1, 2))
        shifted = quant._wrap32(total - x.zero_point * count)  # TFLM sums in wrapping int32
        y = quant.multiply_by_quantized_multiplier(shifted, mult, shift) + out.zero_point
        return [clamp_int8(y, -128, 127).reshape(out.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out, _, mult, shift = self._requant(graph, op)
        n, _, _, c = x.shape
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_mean_params_t",
            params={
                "input": dims4(x.shape), "output": [n, 1, 1, c],
                "q": [-x.zero_point, out.zero_point, -128, 127],
                "multiplier": mult, "shift": shift,
            },
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=list(SOURCES),
        )
