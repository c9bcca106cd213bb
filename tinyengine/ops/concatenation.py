"""CONCATENATION: int8 or int16 tensors joined along one axis, with no requantisation.

Reference semantics: TFLM's concatenation.cc (reference_ops::Concatenation). For int8 TFLM's
Prepare insists that every input has the output's scale and zero point ("no re-scaling is needed
for the Int8 kernel") and that the fused activation is NONE, takes at most 10 inputs of rank at
most 6, and then copies bytes: the output is `outer` rows (the product of the dims before the
axis), row k holding row k of each input in turn. TFLite's converter gives all inputs the
output's parameters, so `quant_rule` shares every (input, output) pair. We implement exactly
that domain except for the input count: more than 10 inputs are the same copy, which TFLite (not
Micro) also runs.

For int16 TFLM's Prepare only asks every input and the output for zero point 0, then copies the
values as for int8: inputs of another scale than the output's would come out with their real
values changed. We refuse that as for int8 (one scale and zero point for all), naming the
tensor; the 16x8 converter gives them one scale anyway.

`concat_axis_offsets` serves the planner: when every dim before the axis is 1, each input is one
contiguous byte range of the output, and a producer may write straight into it.
"""

from __future__ import annotations

from itertools import accumulate
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import (
    Arg,
    ConstArray,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import (
    CTYPE,
    SUFFIX,
    TFLITE_ACTIVATION,
    check_io,
    fb_activation,
    io_dtype,
    tflite_options,
)

if TYPE_CHECKING:
    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

SOURCES = ["te_common.h", "te_concatenation.h", "te_concatenation.c"]
MAX_RANK = 6  # TFLite's RuntimeShape::kMaxSmallSize, which TFLM's Prepare enforces
TFLM_MAX_INPUTS = 10  # TFLM's kMaxInputNum (beyond it only TFLM refuses; we do not)
# 4-D axes between ONNX's NCHW and the IR's NHWC: ONNX C (1) is IR axis 3, H (2) 1, W (3) 2.
ONNX_TO_IR_AXIS = (0, 3, 1, 2)
IR_TO_ONNX_AXIS = (0, 2, 3, 1)


def check_same_quant(graph: Graph, op: Op, names: list[str], ref: str) -> None:
    """Each tensor in `names` has the scale and zero point of `ref` (a byte copy cannot
    requantise)."""
    r = graph.tensor(ref)
    for n in names:
        t = graph.tensor(n)
        if t.scale != r.scale or t.zero_point != r.zero_point:
            raise UnsupportedError(
                f"op {op.name} ({op.kind}): tensor {n} (scale {t.scale:g}, zero point "
                f"{t.zero_point}) and {ref} (scale {r.scale:g}, zero point {r.zero_point}) "
                f"have different quantisation; the {t.dtype} kernel copies values and cannot "
                "requantise, so give them one scale and zero point")


def concat_geometry(graph: Graph, op: Op) -> tuple[int, list[int]]:
    """(outer, copy size of each input): outer rows, input i giving copy_sizes[i] elements of
    each row."""
    out = graph.tensor(op.outputs[0])
    axis = int(op.attrs["axis"])
    outer = int(np.prod(out.shape[:axis], dtype=np.int64))
    inner = int(np.prod(out.shape[axis + 1:], dtype=np.int64))
    return outer, [graph.tensor(n).shape[axis] * inner for n in op.inputs]


@register
class Concatenation(OpDef):
    kind = "CONCATENATION"
    dtypes = ("int8", "int16")
    patch = "none"
    onnx_types = ("Concat",)
    not_applicable = frozenset({"scratch_bytes", "window"})

    # -- semantics ----------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if not op.inputs or not all(op.inputs) or len(op.outputs) != 1:
            raise UnsupportedError(f"{where}: needs one or more inputs and one output, got "
                                   f"inputs {op.inputs} and outputs {op.outputs}")
        if any(graph.tensor(n).is_const for n in op.inputs):
            const = next(n for n in op.inputs if graph.tensor(n).is_const)
            raise UnsupportedError(f"{where}: input {const} is a constant; only activations "
                                   "can be concatenated")
        check_io(graph, op, len(op.inputs), self.dtypes)
        if op.attrs.get("activation", "NONE") != "NONE":
            raise UnsupportedError(f"{where}: fused activation {op.attrs['activation']}; TFLM's "
                                   "CONCATENATION allows only NONE")
        first = graph.tensor(op.inputs[0])
        rank = len(first.shape)
        if rank > MAX_RANK:
            raise UnsupportedError(f"{where}: input {first.name} has rank {rank}; at most "
                                   f"{MAX_RANK} is supported")
        axis = op.attrs.get("axis")
        if not isinstance(axis, (int, np.integer)) or not 0 <= axis < rank:
            raise UnsupportedError(f"{where}: axis {axis} is out of range for inputs of rank "
                                   f"{rank} (allowed: 0 .. {rank - 1} after normalising)")
        for n in op.inputs[1:]:
            t = graph.tensor(n)
            if len(t.shape) != rank or any(a != b for d, (a, b) in
                                           enumerate(zip(t.shape, first.shape)) if d != axis):
                raise UnsupportedError(
                    f"{where}: input {n} {t.shape} does not match input {first.name} "
                    f"{first.shape} on the dims other than axis {axis}; only the axis dim may "
                    "differ")
        check_same_quant(graph, op, list(op.inputs), op.outputs[0])

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        axis = int(op.attrs["axis"])
        shapes = [graph.tensor(n).shape for n in op.inputs]
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return [tuple(out)]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [np.concatenate(inputs, axis=int(op.attrs["axis"]))]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0  # a copy

    def concat_axis_offsets(self, graph: Graph, op: Op) -> list[int] | None:
        """Byte offset of each input in the output when each input is one contiguous range of
        it (every output dim before the axis is 1); None otherwise."""
        out = graph.tensor(op.outputs[0])
        axis = int(op.attrs["axis"])
        if any(d != 1 for d in out.shape[:axis]):
            return None
        sizes = [graph.tensor(n).nbytes for n in op.inputs]
        return [0, *accumulate(sizes)][:-1]

    # -- C ------------------------------------------------------------------------------------

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_concatenation_{SUFFIX[io_dtype(graph, op)]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        outer, sizes = concat_geometry(graph, op)
        ctype = CTYPE[io_dtype(graph, op)]
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_concatenation_params_t",
            params={"n_inputs": len(op.inputs), "outer": outer, "output_row": sum(sizes),
                    "copy_sizes": "@copy_sizes"},
            args=[*(Arg("tensor", n, f"const {ctype}") for n in op.inputs),
                  Arg("tensor", op.outputs[0], ctype)],
            consts=[ConstArray("copy_sizes", "int32_t", np.array(sizes, np.int32))],
            sources=list(SOURCES),
        )

    # -- frontends ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "ConcatenationOptions")
        act = TFLITE_ACTIVATION.get(o.FusedActivationFunction(), "?") if o else "NONE"
        if act != "NONE":
            raise UnsupportedError(f"CONCATENATION with fused activation {act}; TFLM's "
                                   "kernel allows only NONE")
        if any(t is None for t in inputs):
            raise UnsupportedError("CONCATENATION with an absent input")
        rank = len(inputs[0].shape)
        axis = int(o.Axis()) if o else 0
        if not -rank <= axis < rank:
            raise UnsupportedError(f"CONCATENATION axis {axis} is out of range for rank {rank}")
        return TfliteImport({"axis": axis % rank, "activation": "NONE"},
                            list(range(len(inputs))))

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.ConcatenationOptionsT()
        o.axis = int(op.attrs["axis"])
        o.fusedActivationFunction = fb_activation(fb, op)
        return TfliteLowering("ConcatenationOptions", o)

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        from ..frontend import onnx_ops as ox

        inputs = [b.activation(n) for n in node.input if n]
        rank = len(b.shape(inputs[0]))
        axis = int(ox.node_attrs(node).get("axis", 0 if b.opset < 4 else 1))
        if not -rank <= axis < rank:
            raise ox.Unsupported(f"axis {axis} is out of range for rank {rank}")
        axis %= rank
        if rank == 4:  # ONNX's NCHW axis -> the IR's NHWC axis (C is last)
            axis = ONNX_TO_IR_AXIS[axis]
        b.emit(self.kind, node, inputs, node.output[0], {"axis": axis, "activation": "NONE"})

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        rank = len(b.graph.tensor(op.outputs[0]).shape)
        axis = int(op.attrs["axis"])
        if rank == 4:  # the export holds 4-D activations as NCHW
            axis = IR_TO_ONNX_AXIS[axis]
        return str(b.node("Concat", [b.dequantized(n) for n in op.inputs], op.name, axis=axis))

    # -- quantisation -------------------------------------------------------------------------

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(n, op.outputs[0]) for n in op.inputs])
