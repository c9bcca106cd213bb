"""PAD: constant padding of an int8 tensor of rank 1 to 4.

Semantics: TFLM's pad.cc for int8 without a constant_values input. The padding holds the output
zero point (real 0.0) and the input bytes are copied unchanged, whatever the two tensors'
quantisation (TFLM does not requantise, and the converter gives them the same). Tensors of lower
rank are extended to 4-D with leading unpadded dimensions of 1, as TFLite's reference Pad does.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import Arg, OpDef, OpEmission, register
from .common import check_int8_io


def _paddings(op: Op) -> list[tuple[int, int]]:
    return [(int(b), int(a)) for b, a in op.attrs["paddings"]]


def _extend4(shape: tuple[int, ...], pads: list[tuple[int, int]]
             ) -> tuple[list[int], list[tuple[int, int]]]:
    lead = 4 - len(shape)
    return [1] * lead + list(shape), [(0, 0)] * lead + pads


@register
class Pad(OpDef):
    kind = "PAD"

    def check(self, graph: Graph, op: Op) -> None:
        check_int8_io(graph, op)
        x = graph.tensor(op.inputs[0])
        pads = op.attrs.get("paddings")
        if not 1 <= len(x.shape) <= 4:
            raise UnsupportedError(f"op {op.name} (PAD): input {x.name} has rank {len(x.shape)}; "
                                   "only ranks 1 to 4 are supported")
        if pads is None or len(pads) != len(x.shape) or any(len(p) != 2 for p in pads):
            raise UnsupportedError(f"op {op.name} (PAD): paddings {pads} must hold one "
                                   f"(before, after) pair for each of the {len(x.shape)} dims")
        if any(v < 0 for p in _paddings(op) for v in p):
            raise UnsupportedError(f"op {op.name} (PAD): negative paddings {pads} (cropping) "
                                   "are not supported")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        return [tuple(d + b + a for d, (b, a) in zip(x.shape, _paddings(op), strict=True))]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        zp = graph.tensor(op.outputs[0]).zero_point
        return [np.pad(inputs[0].astype(np.int8), _paddings(op), constant_values=np.int8(zp))]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        in4, pads4 = _extend4(x.shape, _paddings(op))
        out4 = [d + b + a for d, (b, a) in zip(in4, pads4, strict=True)]
        return OpEmission(
            kernel="te_pad_s8",
            params_type="te_pad_params_t",
            params={
                "input": in4, "output": out4,
                "pad_before": [b for b, _ in pads4], "pad_after": [a for _, a in pads4],
                "pad_value": out.zero_point,
            },
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=["te_common.h", "te_pad.h", "te_pad.c"],
        )
