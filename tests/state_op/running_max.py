"""A test-only stateful op, registered from outside the package like a user's op: RUNNING_MAX.

state := max(state, x) element-wise; y := state. Its state is an int8 variable tensor, so a fresh
or reset engine starts from the state's zero point (TFLM's rule for int8 variables), and every
output depends on all earlier inputs since the last reset: a wrong reset, a state region reused
by an arena tensor, or state lost between invokes all change the outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op
from tinyengine.ops import Arg, OpDef, OpEmission, register

HERE = Path(__file__).resolve().parent


@register
class RunningMax(OpDef):
    kind = "TEST_RUNNING_MAX"
    dtypes = ("int8",)
    patch = "none"
    not_applicable = frozenset({"macs", "scratch_bytes", "from_tflite", "to_tflite", "from_onnx",
                                "to_qdq", "quant_rule", "window"})

    def check(self, graph: Graph, op: Op) -> None:
        x, s, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
        if not s.variable or s.shape != x.shape or s.dtype != "int8":
            raise UnsupportedError(f"op {op.name}: input 1 must be an int8 variable of the input's "
                                   "shape")
        if (x.quant is None or s.quant is None or y.quant is None or x.scale != s.scale
                or x.zero_point != s.zero_point or y.scale != s.scale
                or y.zero_point != s.zero_point):
            raise UnsupportedError(f"op {op.name}: input, state and output share one quantisation")

    def state_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [1]

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [graph.tensor(op.inputs[0]).shape]

    def reference(self, graph: Graph, op: Op, inputs: list[Any]) -> list[np.ndarray]:
        x, state = inputs
        state[...] = np.maximum(state, x)
        return [state.copy()]

    def kernel(self, graph: Graph, op: Op) -> str:
        return "test_running_max_s8"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="test_running_max_params_t",
            params={"size": graph.tensor(op.inputs[0]).size},
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("tensor", op.inputs[1], "int8_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            sources=["te_common.h", str(HERE / "running_max.h"), str(HERE / "running_max.c")])
