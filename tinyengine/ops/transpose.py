"""TRANSPOSE: the axes of an int8 or int16 tensor permuted (numpy's transpose), up to 5-D.

Reference semantics: TFLM's transpose.cc -> reference_ops::Transpose, which only moves bytes:
output[i_0..i_r] = input[j] with j's axis perm[k] at index i_k. TFLM accepts 1-D to 5-D inputs
and a constant perm whose entries lie in [0, rank) (it does not check that they form a
permutation; we do), on int8 and int16 alike (its Eval instantiates Transpose<int16_t>, and the
16x8 converter leaves the symmetric int16 parameters unchanged). TFLite's converter gives input
and output one quantisation.

Also the helpers the other data-movement ops of this family share: the gather plan their C
kernels run (`gather_plan`), the same-quantisation check, the element-type suffix of their C
entry points, and the NCHW <-> NHWC axis maps of the ONNX frontend and the QDQ export.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from .base import Arg, OpDef, OpEmission, QuantRule, TfliteImport, TfliteLowering, register
from .common import CTYPE, SUFFIX, check_io, io_dtype, tflite_const, where

MAX_DIMS = 5  # the C kernels' loop depth; TFLM's TRANSPOSE and SLICE limit
# Activation types the byte movers run on: TFLM's kernels instantiate each for int8 and int16.
MOVER_DTYPES = ("int8", "int16")
# A 4-D IR tensor is NHWC while ONNX holds it NCHW: ONNX axis a is IR axis ONNX_TO_IR[a], and IR
# axis k is ONNX axis IR_TO_ONNX[k].
ONNX_TO_IR = (0, 3, 1, 2)
IR_TO_ONNX = (0, 2, 3, 1)


def check_moves_bytes(graph: Graph, op: Op, outputs: Sequence[str] | None = None) -> None:
    """int8 or int16 (symmetric) per-tensor activations in and out, all of one type and with the
    input's quantisation: the op only moves elements, so it cannot requantise (TFLite's
    converter makes them share)."""
    check_io(graph, op, 1, MOVER_DTYPES)
    x = graph.tensor(op.inputs[0])
    for name in outputs if outputs is not None else op.outputs:
        y = graph.tensor(name)
        if (y.scale, y.zero_point) != (x.scale, x.zero_point):
            raise UnsupportedError(
                f"{where(op)}: input {x.name} (scale {x.scale}, zero point {x.zero_point}) and "
                f"output {y.name} (scale {y.scale}, zero point {y.zero_point}) must share their "
                "quantisation; the op moves bytes and cannot requantise")


def mover_types(graph: Graph, op: Op) -> tuple[str, str]:
    """(C element type, kernel suffix) of a byte mover: ("int8_t", "s8") or ("int16_t", "s16")."""
    dtype = io_dtype(graph, op)
    return CTYPE[dtype], SUFFIX[dtype]


def strides_of(shape: Sequence[int]) -> list[int]:
    """Row-major element strides."""
    out = [1] * len(shape)
    for k in range(len(shape) - 2, -1, -1):
        out[k] = out[k + 1] * int(shape[k + 1])
    return out


def gather_plan(counts: Sequence[int], steps: Sequence[int], dims: int = MAX_DIMS,
                keep_inner: bool = False) -> tuple[list[int], list[int]]:
    """A row-major walk (counts[k] indices along axis k, steps[k] source elements apart),
    simplified for the C loops: unit axes dropped (but the innermost with `keep_inner`, for
    kernels that copy rows along it), an axis merged into the next outer one where the two are
    contiguous in the source as well (step[k] == step[k+1] * count[k+1]), then left-padded to
    `dims` axes with count 1 and step 0. Raises ValueError if more than `dims` axes remain."""
    last = len(counts) - 1
    axes = [(int(n), int(s)) for k, (n, s) in enumerate(zip(counts, steps))
            if n != 1 or (keep_inner and k == last)]
    merged: list[tuple[int, int]] = []
    for n, s in reversed(axes):  # innermost first
        if merged and s == merged[-1][1] * merged[-1][0]:
            merged[-1] = (merged[-1][0] * n, merged[-1][1])
        else:
            merged.append((n, s))
    merged.reverse()
    if not merged:
        merged = [(1, 1)]
    if len(merged) > dims:
        raise ValueError(f"{len(merged)} axes remain after merging; the kernel loops over {dims}")
    pad = dims - len(merged)
    return [1] * pad + [n for n, _ in merged], [0] * pad + [s for _, s in merged]


def onnx_axis_to_ir(axis: int, rank: int) -> int:
    """An ONNX axis (possibly negative) as the IR axis of the same tensor."""
    axis = axis + rank if axis < 0 else axis
    return ONNX_TO_IR[axis] if rank == 4 else axis


def ir_axis_to_onnx(axis: int, rank: int) -> int:
    return IR_TO_ONNX[axis] if rank == 4 else axis


def transpose_perm(op: Op) -> tuple[int, ...]:
    return tuple(int(p) for p in op.attrs["perm"])


@register
class Transpose(OpDef):
    kind = "TRANSPOSE"
    dtypes = MOVER_DTYPES
    # A 4-D transpose that keeps the batch first (PyTorch's NCHW input -> NHWC) moves whole
    # rows and columns: a patch of its output reads the same rows and columns of its input.
    patch = "elementwise"
    onnx_types = ("Transpose",)
    not_applicable = frozenset({"window"})

    def spatial_axes(self, graph: Graph, op: Op) -> tuple[int, int] | None:
        perm = transpose_perm(op)
        if len(perm) != 4 or perm[0] != 0:
            return None
        return perm[1], perm[2]

    def check(self, graph: Graph, op: Op) -> None:
        check_moves_bytes(graph, op)
        x = graph.tensor(op.inputs[0])
        perm = transpose_perm(op)
        if not 1 <= len(x.shape) <= MAX_DIMS:
            raise UnsupportedError(f"{where(op)}: input {x.name} has rank {len(x.shape)}; "
                                   f"TRANSPOSE supports 1-D to {MAX_DIMS}-D tensors")
        if sorted(perm) != list(range(len(x.shape))):
            raise UnsupportedError(f"{where(op)}: perm {list(perm)} is not a permutation of the "
                                   f"{len(x.shape)} axes of input {x.name} {x.shape}")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        return [tuple(int(x.shape[p]) for p in transpose_perm(op))]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        perm = transpose_perm(op)
        return [np.ascontiguousarray(np.transpose(inputs[0], perm))]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    def kernel(self, graph: Graph, op: Op) -> str:
        return f"te_transpose_{mover_types(graph, op)[1]}"

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        return 0

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x = graph.tensor(op.inputs[0])
        perm = transpose_perm(op)
        stride = strides_of(x.shape)
        counts, steps = gather_plan([x.shape[p] for p in perm], [stride[p] for p in perm])
        ctype = mover_types(graph, op)[0]
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_transpose_params_t",
            params={"count": counts, "step": steps, "input_size": x.size},
            args=[Arg("tensor", op.inputs[0], f"const {ctype}"),
                  Arg("tensor", op.outputs[0], ctype)],
            sources=["te_common.h", "te_gather.h", "te_transpose.h", "te_transpose.c"],
        )

    # -- frontends ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        perm = tflite_const(inputs, 1, "TRANSPOSE perm")
        return TfliteImport({"perm": tuple(int(p) for p in perm.ravel())}, [0])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        perm = np.array(op.attrs["perm"], np.int32)
        return TfliteLowering("TransposeOptions", fb.TransposeOptionsT(), extra_inputs=[perm])

    def from_onnx(self, b: Any, i: int, node: Any) -> None:
        from ..frontend import onnx_ops as ox

        x = b.activation(node.input[0], rank=tuple(range(1, MAX_DIMS + 1)))
        rank = len(b.shape(x))
        perm = [int(p) for p in ox.node_attrs(node).get("perm", range(rank - 1, -1, -1))]
        if sorted(perm) != list(range(rank)):
            raise ox.Unsupported(f"perm {perm} is not a permutation of {rank} axes")
        if rank == 4:  # IR axis k of the output is ONNX axis IR_TO_ONNX[k], and so on back
            perm = [ONNX_TO_IR[perm[IR_TO_ONNX[k]]] for k in range(4)]
        b.emit("TRANSPOSE", node, [x], node.output[0], {"perm": tuple(perm)})

    def to_qdq(self, b: Any, op: Op) -> str:
        perm = list(op.attrs["perm"])
        if len(perm) == 4:  # both sides NCHW in the QDQ model
            perm = [IR_TO_ONNX[perm[ONNX_TO_IR[j]]] for j in range(4)]
        return str(b.node("Transpose", [b.dequantized(op.inputs[0])], op.name, perm=perm))

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(share=[(op.inputs[0], op.outputs[0])])
