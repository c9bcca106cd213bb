"""TFLite resource variables: READ_VARIABLE and ASSIGN_VARIABLE on a variable (state) tensor.

In a .tflite file a VAR_HANDLE op names a variable by (container, shared_name) and outputs a
RESOURCE tensor; READ_VARIABLE(resource) -> value copies the variable out, ASSIGN_VARIABLE(
resource, value) (no outputs) copies a value in. The TFLite reader (frontend/tflite_resources.py)
turns each variable into one IR variable tensor and drops the VAR_HANDLE ops; the writer puts
them back. In the IR:
  READ_VARIABLE   inputs [variable]         outputs [value]   state input 0
  ASSIGN_VARIABLE inputs [variable, value]  outputs [view]    state input 0
ASSIGN's output exists only because every IR op has one: a view of its value (`is_view`, in
place over input 1), read by no op and no graph output, so it costs no arena and is not written
back to TFLite.

TFLM semantics (micro_resource_variable.cc): the variable's buffer is allocated when the first
ASSIGN_VARIABLE of it is prepared (all ops are prepared before the first invoke), sized by that
ASSIGN's value and filled with that value's zero point cast to int8 as a memset byte (0 without
quantisation); Reset memsets it again. Read and Assign are byte copies (memcpy), so the
quantisation of the tensors on either side is not looked at. A variable only read and never
assigned has no buffer (TFLM copies nothing and the output keeps whatever the arena held): the
engine refuses it. The engine's reset writes `Tensor.reset_value & 0xFF` as the same memset byte:
int8 state at its zero point, int16 state (symmetric, zero point 0) at 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import CTYPE, SUFFIX, where

if TYPE_CHECKING:
    from types import ModuleType

SOURCES = ["te_common.h", "te_variables.h", "te_variables.c"]
NOT_APPLICABLE = frozenset({"macs", "scratch_bytes", "from_onnx", "to_qdq", "window"})


def _variable(graph: Graph, op: Op) -> Tensor:
    """Input 0, which must be a variable tensor of a type the engine keeps as state."""
    if not op.inputs or not op.inputs[0]:
        raise UnsupportedError(f"{where(op)}: input 0 (the variable) is absent")
    v = graph.tensor(op.inputs[0])
    if not v.variable:
        raise UnsupportedError(f"{where(op)}: input 0 ({v.name}) must be a variable tensor (a "
                               "TFLite resource variable)")
    if v.dtype not in SUFFIX or v.quant is None or v.quant.per_channel:
        raise UnsupportedError(f"{where(op)}: variable {v.name} is {v.dtype}"
                               f"{'' if v.quant is not None else ' without quantisation'}; the "
                               "engine keeps int8 or int16 variables quantised per tensor")
    if v.dtype == "int16" and v.zero_point != 0:
        # TFLM memsets the buffer with the zero point's low byte: no int16 value for zp != 0.
        raise UnsupportedError(f"{where(op)}: int16 variable {v.name} has zero point "
                               f"{v.zero_point}; int16 activations are symmetric (zero point 0)")
    return v


def _same_layout(op: Op, v: Tensor, t: Tensor, role: str) -> None:
    if t.dtype != v.dtype or tuple(t.shape) != tuple(v.shape):
        raise UnsupportedError(
            f"{where(op)}: variable {v.name} is {v.dtype} {v.shape} but the {role} {t.name} is "
            f"{t.dtype} {t.shape}; every read and assign of one variable has its shape and type")


def _assigns(graph: Graph, name: str) -> list[Op]:
    return [o for o in graph.ops if o.kind == "ASSIGN_VARIABLE" and o.inputs[:1] == [name]]


def _emission(graph: Graph, op: Op, kernel: str, args: list[Arg]) -> OpEmission:
    v = graph.tensor(op.inputs[0])
    return OpEmission(kernel=kernel, params_type="te_variable_params_t",
                      params={"size": v.nbytes}, args=args, sources=list(SOURCES))


@register
class ReadVariable(OpDef):
    kind = "READ_VARIABLE"
    dtypes = ("int8", "int16")
    patch = "none"  # stateful: never split into patches
    not_applicable = NOT_APPLICABLE

    def check(self, graph: Graph, op: Op) -> None:
        if len(op.inputs) != 1 or len(op.outputs) != 1:
            raise UnsupportedError(f"{where(op)}: takes [variable] and gives [value], got "
                                   f"{len(op.inputs)} input(s) and {len(op.outputs)} output(s)")
        v = _variable(graph, op)
        _same_layout(op, v, graph.tensor(op.outputs[0]), "output")
        if not _assigns(graph, v.name):
            raise UnsupportedError(
                f"{where(op)}: variable {v.name} is read but never assigned; TFLM gives a "
                "variable its buffer at its first ASSIGN_VARIABLE, so this read returns "
                "undefined bytes")

    def state_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[0]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [inputs[0].copy()]  # a byte copy: the output's quantisation is not looked at

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_read_variable_{SUFFIX[graph.tensor(op.inputs[0]).dtype]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        ctype = CTYPE[graph.tensor(op.inputs[0]).dtype]
        return _emission(graph, op, self.kernel(graph, op),
                         [Arg("tensor", op.inputs[0], f"const {ctype}"),
                          Arg("tensor", op.outputs[0], ctype)])

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return TfliteImport({}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("NONE")

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])


@register
class AssignVariable(OpDef):
    kind = "ASSIGN_VARIABLE"
    dtypes = ("int8", "int16")
    patch = "none"
    not_applicable = NOT_APPLICABLE
    # The output is the value's bytes: the planner lays it over the value (input 1), and the
    # kernel then copies the value into the state only.
    is_view = True

    def check(self, graph: Graph, op: Op) -> None:
        if len(op.inputs) != 2 or len(op.outputs) != 1:
            raise UnsupportedError(f"{where(op)}: takes [variable, value] and gives one view of "
                                   f"the value, got {len(op.inputs)} input(s) and "
                                   f"{len(op.outputs)} output(s)")
        v = _variable(graph, op)
        if not op.inputs[1]:
            raise UnsupportedError(f"{where(op)}: input 1 (the value) is absent")
        x, out = graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
        if x.is_const:
            raise UnsupportedError(
                f"{where(op)}: assigns the constant {x.name} to variable {v.name}; the engine "
                "assigns computed values only (TFLite keeps variable initialisers in a CALL_ONCE "
                "subgraph, which the engine does not run)")
        _same_layout(op, v, x, "value")
        _same_layout(op, v, out, "output")
        if out.quant is None or x.quant is None or (out.scale, out.zero_point) != (
                x.scale, x.zero_point):
            raise UnsupportedError(f"{where(op)}: output {out.name} must have the quantisation "
                                   f"of the value {x.name} (it is a view of it)")
        if out.name in graph.outputs or any(out.name in o.inputs for o in graph.ops):
            raise UnsupportedError(
                f"{where(op)}: output {out.name} is read; TFLite's ASSIGN_VARIABLE has no "
                f"outputs (read {x.name}, or the variable through READ_VARIABLE)")
        first = _assigns(graph, v.name)[0]
        if first is op and v.dtype == "int8" and x.zero_point != v.zero_point:
            raise UnsupportedError(
                f"{where(op)}: the first assign of variable {v.name} has value {x.name} with zero "
                f"point {x.zero_point}, the variable {v.zero_point}; TFLM starts the variable at "
                "the first assigned value's zero point, so the two must agree")

    def state_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [0]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [1]

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [tuple(graph.tensor(op.inputs[1]).shape)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        state, x = inputs
        state[...] = x  # a byte copy: same type and shape (check)
        return [x.copy()]

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_assign_variable_{SUFFIX[graph.tensor(op.inputs[0]).dtype]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        ctype = CTYPE[graph.tensor(op.inputs[0]).dtype]
        return _emission(graph, op, self.kernel(graph, op),
                         [Arg("tensor", op.inputs[1], f"const {ctype}"),
                          Arg("tensor", op.inputs[0], ctype),
                          Arg("tensor", op.outputs[0], ctype)])

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        return TfliteImport({}, [0, 1])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        return TfliteLowering("NONE", no_outputs=True)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[1], op.inputs[0]), (op.inputs[1], op.outputs[0])])
