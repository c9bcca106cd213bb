"""BATCH_MATMUL: int8 batched matrix product of two int8 tensors, with batch broadcasting.

Reference semantics: TFLM's batch_matmul.cc, int8 path (reference_ops::BatchMatMul through
EvalInt8). Each operand has rank 2 to 5; the last two axes are the matrix ([rows, depth] for the
lhs, [depth, cols] for the rhs, each stored transposed when adj_x / adj_y is set), the others
are batch axes, aligned from the right, each equal or 1 (a 1 broadcasts). Per output element:
  acc = sum_k (lhs[.., i, k] - zp_lhs) * (rhs[.., k, j] - zp_rhs)   (int32, wrapping)
  out = clamp(MultiplyByQuantizedMultiplier(acc, M, s) + zp_out, -128, 127)
with (M, s) = QuantizeMultiplier(s_lhs * s_rhs / s_out) from GetQuantizedConvolutionMultipler,
which, like FULLY_CONNECTED's per-tensor multiplier, the installed TFLM computes with the two
scales multiplied in double (see fully_connected.py; a test here pins it). BATCH_MATMUL has no
fused activation; TFLM's flattening of broadcast batch axes (ReshapeToFlattenBatchDimsIfPossible)
does not change any value.

Either operand may be a constant int8 tensor (a TFLite model may hold one); ONNX MatMul with a
constant second operand is FULLY_CONNECTED's, with two activations it is ours (the
FULLY_CONNECTED converter hands it here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import (
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import check_int8_io, clamp_int8, operand_args, tflite_import, tflite_options

if TYPE_CHECKING:
    from types import ModuleType

SOURCES = ["te_common.h", "te_batch_matmul.h", "te_batch_matmul.c"]
MAX_RANK = 5  # TFLM's BatchMatMulPrepare: ranks 2 to 5
BATCH_DIMS = MAX_RANK - 2  # te_batch_matmul_params_t.batch


def matmul_dims(op: Op, lhs: tuple[int, ...], rhs: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(rows, lhs depth, rhs depth, cols) under the adj_x / adj_y flags."""
    rows, depth_l = (lhs[-1], lhs[-2]) if op.attrs.get("adj_x", False) else (lhs[-2], lhs[-1])
    depth_r, cols = (rhs[-1], rhs[-2]) if op.attrs.get("adj_y", False) else (rhs[-2], rhs[-1])
    return int(rows), int(depth_l), int(depth_r), int(cols)


def batch_shape(lhs: tuple[int, ...], rhs: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast batch axes (TFLM's rule: equal, or one of them 1), None if they clash."""
    rank = max(len(lhs), len(rhs)) - 2
    a = (1,) * (rank - len(lhs) + 2) + tuple(lhs[:-2])
    b = (1,) * (rank - len(rhs) + 2) + tuple(rhs[:-2])
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        return None
    return tuple(max(x, y) for x, y in zip(a, b))


def batch_strides(shape: tuple[int, ...]) -> list[int]:
    """Elements between consecutive matrices of `shape` along each of the BATCH_DIMS output
    batch axes (the shape left-padded with 1s to rank 5); 0 where the extent is 1 (broadcast)."""
    full = (1,) * (MAX_RANK - len(shape)) + tuple(shape)
    return [0 if full[d] == 1 else int(np.prod(full[d + 1:], dtype=np.int64))
            for d in range(BATCH_DIMS)]


def output_rescale(lhs: Tensor, rhs: Tensor, out: Tensor) -> tuple[int, int]:
    """QuantizeMultiplier(double(s_lhs) * double(s_rhs) / double(s_out))."""
    real = np.float64(lhs.scale) * np.float64(rhs.scale) / np.float64(out.scale)
    return quant.quantize_multiplier(float(real))


@register
class BatchMatMul(OpDef):
    kind = "BATCH_MATMUL"
    dtypes = ("int8",)
    patch = "none"
    # ONNX MatMul belongs to FULLY_CONNECTED, which hands a MatMul of two activations here.
    onnx_types = ()
    not_applicable = frozenset({"window", "scratch_bytes"})

    # -- semantics ----------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if len(op.inputs) != 2 or not all(op.inputs) or len(op.outputs) != 1:
            raise UnsupportedError(f"{where}: needs two inputs (lhs, rhs) and one output, got "
                                   f"{op.inputs} -> {op.outputs}")
        check_int8_io(graph, op, n_act_inputs=2)
        a, b = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        for t in (a, b):
            if not 2 <= len(t.shape) <= MAX_RANK:
                raise UnsupportedError(f"{where}: input {t.name} has rank {len(t.shape)}; "
                                       f"ranks 2 to {MAX_RANK} are supported")
            if not -128 <= t.zero_point <= 127:
                raise UnsupportedError(f"{where}: zero point {t.zero_point} of {t.name} is "
                                       "not int8")
        if batch_shape(a.shape, b.shape) is None:
            raise UnsupportedError(f"{where}: batch dimensions of lhs {a.name} {a.shape} and rhs "
                                   f"{b.name} {b.shape} do not broadcast (each pair must be "
                                   "equal or contain a 1)")
        _, depth_l, depth_r, _ = matmul_dims(op, a.shape, b.shape)
        if depth_l != depth_r:
            raise UnsupportedError(
                f"{where}: lhs {a.name} {a.shape} (adj_x={bool(op.attrs.get('adj_x', False))}) "
                f"has depth {depth_l} but rhs {b.name} {b.shape} "
                f"(adj_y={bool(op.attrs.get('adj_y', False))}) has depth {depth_r}")
        out = graph.tensor(op.outputs[0])
        _, shift = output_rescale(a, b, out)
        if shift > 30:
            raise UnsupportedError(f"{where}: output {out.name} scale {out.scale} is too small "
                                   f"for input scales {a.scale} and {b.scale} (the rescale "
                                   "needs a left shift over 30)")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        a, b = graph.tensor(op.inputs[0]).shape, graph.tensor(op.inputs[1]).shape
        batch = batch_shape(a, b)
        assert batch is not None, "check() refuses batch dims that do not broadcast"
        rows, _, _, cols = matmul_dims(op, a, b)
        return [batch + (rows, cols)]

    def macs(self, graph: Graph, op: Op) -> int:
        a, b = graph.tensor(op.inputs[0]).shape, graph.tensor(op.inputs[1]).shape
        rows, depth, _, cols = matmul_dims(op, a, b)
        return graph.tensor(op.outputs[0]).size * depth

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        at, bt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        a = inputs[0].astype(np.int64) - at.zero_point
        b = inputs[1].astype(np.int64) - bt.zero_point
        if op.attrs.get("adj_x", False):
            a = np.swapaxes(a, -1, -2)
        if op.attrs.get("adj_y", False):
            b = np.swapaxes(b, -1, -2)
        acc = quant._wrap32(np.matmul(a, b))
        mult, shift = output_rescale(at, bt, ot)
        y = quant.multiply_by_quantized_multiplier(acc, mult, shift) + ot.zero_point
        return [clamp_int8(y, -128, 127).reshape(ot.shape)]

    # -- C ------------------------------------------------------------------------------------

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_batch_matmul_s8"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        at, bt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        rows, depth, _, cols = matmul_dims(op, at.shape, bt.shape)
        batch = (1,) * (MAX_RANK - len(ot.shape)) + tuple(ot.shape[:-2])
        mult, shift = output_rescale(at, bt, ot)
        args, consts = operand_args(graph, op, ("lhs", "rhs"))
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_batch_matmul_params_t",
            params={
                "batch": [int(d) for d in batch],
                "lhs_stride": batch_strides(at.shape), "rhs_stride": batch_strides(bt.shape),
                "rows": rows, "cols": cols, "depth": depth,
                "adj_x": int(bool(op.attrs.get("adj_x", False))),
                "adj_y": int(bool(op.attrs.get("adj_y", False))),
                "q": [-at.zero_point, ot.zero_point, -128, 127],
                "rhs_offset": -bt.zero_point,
                "multiplier": mult, "shift": shift,
            },
            args=args,
            consts=consts,
            sources=list(SOURCES),
        )

    # -- frontends ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "BatchMatMulOptions")
        adj_x, adj_y = (bool(o.AdjX()), bool(o.AdjY())) if o is not None else (False, False)
        return tflite_import({"adj_x": adj_x, "adj_y": adj_y}, 2, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.BatchMatMulOptionsT()
        o.adjX = bool(op.attrs.get("adj_x", False))
        o.adjY = bool(op.attrs.get("adj_y", False))
        return TfliteLowering("BatchMatMulOptions", o)

    def from_onnx(self, b: Any, i: int, node: Any) -> None:
        """ONNX MatMul of two activations (numpy matmul: no transposes). Only ranks 2 and 3:
        the IR holds a 4-D tensor as NHWC, so a 4-D ONNX operand's last two axes are not the
        IR's."""
        from ..frontend import onnx_ops as ox

        lhs = b.activation(node.input[0], rank=(2, 3))
        rhs = b.activation(node.input[1], rank=(2, 3))
        ls, rs = b.shape(lhs), b.shape(rhs)
        if ls[-1] != rs[-2]:
            raise ox.Unsupported(f"inner dimensions of {ls} and {rs} differ")
        if batch_shape(ls, rs) is None:
            raise ox.Unsupported(f"batch dimensions of {ls} and {rs} do not broadcast")
        b.emit("BATCH_MATMUL", node, [lhs, rhs], node.output[0],
               {"adj_x": False, "adj_y": False})

    def to_qdq(self, b: Any, op: Op) -> str:
        from ..quantize import qdq as qx

        operands = []
        for name, adj in ((op.inputs[0], "adj_x"), (op.inputs[1], "adj_y")):
            v = b.dequantized(name)
            rank = len(b.graph.tensor(name).shape)
            if rank == 4:  # the QDQ model holds 4-D tensors as NCHW; the product reads NHWC
                v = b.node("Transpose", [v], op.name, perm=list(qx.NHWC))
            if op.attrs.get(adj, False):
                perm = list(range(rank - 2)) + [rank - 1, rank - 2]
                v = b.node("Transpose", [v], op.name, perm=perm)
            operands.append(v)
        y = b.node("MatMul", operands, op.name)
        if len(b.graph.tensor(op.outputs[0]).shape) == 4:
            y = b.node("Transpose", [y], op.name, perm=list(qx.NCHW))
        return y

    # -- quantisation -------------------------------------------------------------------------

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # Both operands and the output have parameters of their own; nothing is shared or fixed.
        return QuantRule()
