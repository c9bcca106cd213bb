"""RESHAPE: the same bytes under a new shape.

The target shape is the output tensor's shape (the frontend drops TFLite's shape input). The C
kernel is a memmove-safe byte copy that does nothing when the planner aliases the two tensors.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import Arg, OpDef, OpEmission, register
from .common import check_int8_io


@register
class Reshape(OpDef):
    kind = "RESHAPE"

    def check(self, graph: Graph, op: Op) -> None:
        check_int8_io(graph, op)
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if x.size != out.size:
            raise UnsupportedError(f"op {op.name} (RESHAPE): input {x.name} {x.shape} and output "
                                   f"{out.name} {out.shape} hold different numbers of elements")
        if x.zero_point != out.zero_point or x.scale != out.scale:
            raise UnsupportedError(
                f"op {op.name} (RESHAPE): input {x.name} and output {out.name} have different "
                "quantisation; a reshape cannot requantise")

    is_view = True  # te_reshape_s8 does nothing when output == input

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.outputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0].reshape(graph.tensor(op.outputs[0]).shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        return OpEmission(
            kernel="te_reshape_s8",
            params_type="te_reshape_params_t",
            params={"size": graph.tensor(op.outputs[0]).nbytes},
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=["te_common.h", "te_reshape.h", "te_reshape.c"],
        )
