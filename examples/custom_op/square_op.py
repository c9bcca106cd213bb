"""A user-defined op, registered from outside the tinyengine package: USER_SQUARE, y = x * x.

TFLite has no such builtin, so a model carries it as a CUSTOM operator with the custom code
"UserSquare". This file is everything tinyengine needs to compile such a model: the Python hooks
(semantics, C emission, TFLite form) and the C kernel beside it (user_square.c / .h). Load it with
`tinyengine compile model.tflite --ops square_op.py -o build`, or
`tinyengine.ops.load_op_library("square_op.py")` in Python.

Semantics (our own definition, so the reference below is the specification): int8 in, int8 out,
through a 256-entry table computed here in float64 and rounded half away from zero, so the C kernel
is one lookup per element and agrees with the reference bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op
from tinyengine.ops import (
    Arg,
    ConstArray,
    OpDef,
    OpEmission,
    TfliteImport,
    TfliteLowering,
    register,
)

HERE = Path(__file__).resolve().parent


def square_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """int8 output for each int8 input -128..127, as int8[256]."""
    q = np.arange(-128, 128, dtype=np.float64)
    real = (in_scale * (q - in_zp)) ** 2
    y = real / out_scale + out_zp
    y = np.trunc(y + np.copysign(0.5, y))  # half away from zero
    return np.clip(y, -128, 127).astype(np.int8)


@register
class UserSquare(OpDef):
    kind = "USER_SQUARE"
    tflite_custom_code = "UserSquare"
    dtypes = ("int8",)
    patch = "elementwise"  # the patch pass may run it patch by patch
    not_applicable = frozenset({"macs", "scratch_bytes", "from_onnx", "to_qdq", "quant_rule",
                                "window"})

    def check(self, graph: Graph, op: Op) -> None:
        for name in (op.inputs[0], op.outputs[0]):
            t = graph.tensor(name)
            if t.dtype != "int8" or t.quant is None or t.quant.per_channel:
                raise UnsupportedError(f"op {op.name} (USER_SQUARE): tensor {name} must be int8 "
                                       "quantised per tensor")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [graph.tensor(op.inputs[0]).shape]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]  # one read, then one write, per element

    def _table(self, graph: Graph, op: Op) -> np.ndarray:
        x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        return square_table(x.scale, x.zero_point, y.scale, y.zero_point)

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        table = self._table(graph, op)
        return [table[inputs[0].astype(np.int16) + 128]]

    def kernel(self, graph: Graph, op: Op) -> str:
        return "user_square_s8"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="user_square_params_t",
            params={"size": graph.tensor(op.inputs[0]).size, "table": "@table"},
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            consts=[ConstArray("table", "int8_t", self._table(graph, op))],
            # Absolute paths: the user's own C files, copied into the project's kernels/.
            sources=["te_common.h", str(HERE / "user_square.h"), str(HERE / "user_square.c")],
        )

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return TfliteImport({}, [0])

    def to_tflite(self, fb: Any, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("NONE", custom_code=self.tflite_custom_code)
