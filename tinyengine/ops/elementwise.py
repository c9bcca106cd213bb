"""What the element-wise binary ops (SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM) share: the
broadcasting rule, the checks, in-place use, the ONNX import of an operand pair (constants
included) and the QDQ export of one. They run on int8; an op that also has TFLite's 16x8 path
(SUB, MUL) lists "int16" in its `dtypes`, and then takes symmetric int16 operands and output.

Broadcasting is numpy's (TFLite's): shapes align on the right, and a dimension of 1 stretches.
TFLM's kernels broadcast up to 6 or 8 dimensions; our C kernels (csrc/te_elementwise.c) iterate
4-D NHWC, so shapes that differ may broadcast up to 4-D, and equal shapes of any rank run as one
flat row. Each op module defines the arithmetic (`reference`, `emit`) and its TFLite options.
This module registers no op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .add import c_shapes
from .base import CValue, OpDef, OpEmission, QuantRule
from .common import check_activation, check_int8_io, check_io, operand_args, where

if TYPE_CHECKING:
    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder

MAX_BROADCAST_RANK = 4  # what te_elementwise.c iterates
SOURCES = ["te_common.h", "te_elementwise.h", "te_elementwise.c"]


class BinaryElementwise(OpDef):
    """Base of the element-wise binary ops; subclasses set kind, `fused_activation`, `onnx_types`
    and implement the arithmetic hooks."""

    dtypes: tuple[str, ...] = ("int8",)
    patch = "elementwise"
    # SUB and MUL carry TFLite's fused_activation_function; the others have no activation.
    fused_activation = False
    not_applicable = frozenset({"window", "scratch_bytes", "macs"})

    # -- semantics ------------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        if len(op.inputs) != 2 or not all(op.inputs) or len(op.outputs) != 1:
            raise UnsupportedError(f"{where(op)}: needs exactly two inputs and one output, got "
                                   f"inputs {op.inputs} and outputs {op.outputs}")
        if "int16" in self.dtypes:  # one type for all three; int16 ones symmetric
            check_io(graph, op, n_act_inputs=2, dtypes=self.dtypes)
        else:
            check_int8_io(graph, op, n_act_inputs=2)
        if self.fused_activation:
            check_activation(op)
        elif op.attrs.get("activation", "NONE") != "NONE":
            raise UnsupportedError(f"{where(op)}: has no fused activation, got "
                                   f"{op.attrs['activation']}")
        a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        broadcast_shape(op, a, b)
        for t in (a, b, graph.tensor(op.outputs[0])):
            if t.dtype == "int8" and not -128 <= t.zero_point <= 127:
                raise UnsupportedError(f"{where(op)}: zero point {t.zero_point} of {t.name} is "
                                       "outside int8 [-128, 127]")
        self.check_quant(graph, op)

    def emission(self, graph: Graph, op: Op, params_type: str,
                 params: dict[str, CValue]) -> OpEmission:
        """The kernel call every binary op makes: its own params after the broadcast dims, then
        operand pointers (a constant operand from flash) and the output."""
        args, consts = operand_args(graph, op)
        return OpEmission(kernel=self.kernel(graph, op), params_type=params_type,
                          params={"dims": broadcast_dims(graph, op), **params}, args=args,
                          consts=consts, sources=list(SOURCES))

    def check_quant(self, graph: Graph, op: Op) -> None:
        """Op-specific limits on the quantisation parameters."""

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        return [broadcast_shape(op, a, b)]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # The kernels read both operands of an element before writing it, so the output may
        # overwrite an operand of the output's full shape (not one that is broadcast).
        out = graph.tensor(op.outputs[0])
        return [i for i, n in enumerate(op.inputs[:2])
                if not graph.tensor(n).is_const and graph.tensor(n).shape == out.shape]

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(const_operands=True)


def broadcast_shape(op: Op, a: Tensor, b: Tensor) -> tuple[int, ...]:
    """The output shape of `a` op `b`, or UnsupportedError naming the op and both tensors."""
    try:
        out = tuple(int(d) for d in np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        raise UnsupportedError(f"{where(op)}: input {a.name} {a.shape} and {b.name} {b.shape} "
                               "do not broadcast") from None
    if a.shape != b.shape and len(out) > MAX_BROADCAST_RANK:
        raise UnsupportedError(
            f"{where(op)}: broadcasting {a.name} {a.shape} with {b.name} {b.shape} needs "
            f"{len(out)} dimensions; up to {MAX_BROADCAST_RANK}-D broadcasting is supported "
            "(equal shapes may have any rank)")
    return out


def broadcast_dims(graph: Graph, op: Op) -> list[CValue]:
    """The te_broadcast_dims_t initialiser {input1, input2, output}."""
    a, b, out = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                 graph.tensor(op.outputs[0]))
    d1, d2, dout = c_shapes(a, b, out.shape)
    return [d1, d2, dout]


def broadcast_inputs(graph: Graph, op: Op, inputs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The two operands as int64 arrays of the output's shape (numpy broadcasting)."""
    shape = graph.tensor(op.outputs[0]).shape
    return tuple(np.broadcast_to(np.asarray(x).astype(np.int64).reshape(graph.tensor(n).shape),
                                 shape) for x, n in zip(inputs, op.inputs))


# -- ONNX import and QDQ export ------------------------------------------------------------------

def binary_from_onnx(opdef: BinaryElementwise, b: OnnxBuilder, node: NodeProto) -> None:
    """The `from_onnx` of an element-wise op: its two operands, and a following Relu/Clip folded
    into the fused activation where the op has one."""
    from ..frontend import onnx_ops as ox

    operands = onnx_operands(b, node)
    attrs: dict[str, Any] = {}
    output = node.output[0]
    if opdef.fused_activation:
        tail = ox.fold_tail(b, node.output[0], 0, affine=False)
        output, attrs["activation"] = tail.output, tail.activation
    b.emit(opdef.kind, node, operands, output, attrs)


def onnx_operands(b: OnnxBuilder, node: NodeProto) -> list[str]:
    """IR names of a binary node's two operands. A constant operand becomes an IR constant of
    the output's rank, in the IR's layout (ptq quantises it as a per-tensor activation); an
    activation operand must have the output's rank when that is 4 (NCHW -> NHWC permutes the
    axes, so a lower-rank one would align with the wrong ones)."""
    from ..frontend import onnx_ops as ox

    if len(node.input) != 2 or not all(node.input):
        raise ox.Unsupported(f"{node.op_type} with {len(node.input)} inputs: only two inputs "
                             "are supported")
    is_const = [b.name(n) in b.consts for n in node.input]
    if all(is_const):
        raise ox.Unsupported("both inputs are constants (fold them before export)")
    rank = len(b.shape(node.output[0]))
    names = []
    for k, n in enumerate(node.input):
        if is_const[k]:
            data = b.const(n, "operand")
            data = data.reshape((1,) * (rank - data.ndim) + data.shape)
            if rank == 4:
                data = data.transpose(0, 2, 3, 1)  # NCHW -> NHWC
            base = node.name or f"{node.op_type}_{len(b.ops)}"
            names.append(b.add_const(f"{base}.input{k + 1}", data))
            continue
        x = b.activation(n)
        if rank == 4 and len(b.shape(x)) != 4:
            raise ox.Unsupported(f"input {x} has rank {len(b.shape(x))} and the output rank 4; "
                                 "broadcasting an activation across NCHW -> NHWC needs equal "
                                 "ranks")
        names.append(x)
    return names


def qdq_operands(b: QdqBuilder, op: Op) -> list[str]:
    """The dequantised operands in ONNX layout, NHWC broadcasting made explicit in NCHW."""
    from ..quantize import qdq as qx

    out_rank = len(b.graph.tensor(op.outputs[0]).shape)
    operands = []
    for n in op.inputs:
        t = b.graph.tensor(n)
        v = b.dequantized(n)
        if out_rank == 4 and len(t.shape) < 4:
            padded = (1,) * (4 - len(t.shape)) + tuple(t.shape)
            v = b.node("Reshape", [v, b.shape_const(padded)], op.name)
            v = b.node("Transpose", [v], op.name, perm=list(qx.NCHW))
        operands.append(v)
    return operands
