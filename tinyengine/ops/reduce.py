"""MEAN and SUM: int8 and int16 reductions over any set of axes (TFLite's reduce).

Semantics: TFLM's reduce.cc, EvalMeanHelper / EvalSumHelper -> reference_ops::QuantizedMeanOrSum
(the only path TFLM takes for int8 and int16, whether or not the input and output quantisations
are equal; int16 runs the same arithmetic, sums in int32 too, and clamps to [-32768, 32767]).
Axes may be negative (from the end) and repeat (TFLite's ResolveAxis drops duplicates). With n
input elements per output element:
  (M, s) = QuantizeMultiplier(double(in_scale) / double(out_scale))
  MEAN only: k = min(floor(log2 n), 32, 31 + s);  M = (int64(M) << k) / n (truncating);  s -= k
  out = clamp(MultiplyByQuantizedMultiplier(int32(sum(q) - in_zp * n), M, s) + out_zp)
where sum(q) wraps in int32 (AddTensorValuesWithExpectedOverflow; for int16 possible from 65538
elements per output on). keep_dims only changes the output's dims, not its bytes.

Kernels (csrc/te_reduce.h): a reduction whose reduced axes of size > 1 form one contiguous run
[outer][reduced][inner] runs te_mean_s8 / _s16 (te_pool.c: channel-blocked, contiguous reads);
any other set of axes runs the general te_reduce_s8 / _s16. te_reduce_wrapper_s8 / _s16 apply
the same rule in C.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import (
    Arg,
    CValue,
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
    check_io,
    clamp_to,
    qrange,
    tflite_const,
    tflite_import,
    tflite_options,
)

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

MAX_DIMS = 8  # TE_REDUCE_MAX_DIMS
POOL_SOURCES = ["te_common.h", "te_pool.h", "te_pool.c"]
# te_reduce.c's wrapper calls te_mean_s8, so te_pool.c links with it.
REDUCE_SOURCES = [*POOL_SOURCES, "te_reduce.h", "te_reduce.c"]
NCHW = (0, 3, 1, 2)  # ONNX axis j of a 4-D tensor is IR (NHWC) axis NCHW[j]


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """TFLM QuantizedMeanOrSum's multiplier and shift, with the 1/count division folded in."""
    mult, shift = quant.quantize_multiplier(float(np.float64(in_scale) / np.float64(out_scale)))
    k = min(count.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // count), shift - k


def resolve_axes(axes: Any, rank: int, where: str, tensor: str) -> tuple[int, ...]:
    """TFLite's ResolveAxis: negative axes count from the end, duplicates are dropped; sorted.
    Raises UnsupportedError for an axis outside [-rank, rank)."""
    out: set[int] = set()
    for a in np.asarray(axes if axes is not None else (), np.int64).ravel().tolist():
        if not -rank <= a < rank:
            raise UnsupportedError(f"{where}: axis {a} is out of range for input {tensor} of "
                                   f"rank {rank}; axes must lie in [{-rank}, {rank})")
        out.add(a % rank)
    return tuple(sorted(out))


def reduced_shape(shape: tuple[int, ...], axes: tuple[int, ...],
                  keep_dims: bool) -> tuple[int, ...]:
    if keep_dims:
        return tuple(1 if a in axes else d for a, d in enumerate(shape))
    kept = tuple(d for a, d in enumerate(shape) if a not in axes)
    return kept or (1,)  # the IR holds a scalar as shape (1,)


def collapse(shape: tuple[int, ...], axes: tuple[int, ...]) -> list[tuple[int, bool]]:
    """(size, reduced) runs: size-1 axes dropped, neighbours of the same kind merged. The same
    input elements meet in the same output elements, in the same order."""
    runs: list[tuple[int, bool]] = []
    for a, d in enumerate(shape):
        if d == 1:
            continue
        red = a in axes
        if runs and runs[-1][1] == red:
            runs[-1] = (runs[-1][0] * d, red)
        else:
            runs.append((d, red))
    return runs or [(1, False)]


def single_run(runs: list[tuple[int, bool]]) -> tuple[int, int, int] | None:
    """(outer, reduced, inner) when at most one run is reduced (te_mean_s8's domain), else None.
    The same rule as te_reduce_wrapper_s8."""
    reduced = [i for i, (_, r) in enumerate(runs) if r]
    if len(reduced) > 1:
        return None
    if not reduced:
        return int(np.prod([d for d, _ in runs])), 1, 1
    i = reduced[0]
    return (int(np.prod([d for d, _ in runs[:i]])), runs[i][0],
            int(np.prod([d for d, _ in runs[i + 1:]])))


class _Reduce(OpDef):
    """MEAN and SUM differ only in the multiplier (MEAN folds in 1/n)."""

    dtypes = ("int8", "int16")
    patch = "none"
    not_applicable = frozenset({"window", "scratch_bytes"})
    is_mean = True

    def _axes(self, graph: Graph, op: Op) -> tuple[int, ...]:
        x = graph.tensor(op.inputs[0])
        return resolve_axes(op.attrs.get("axes", ()), len(x.shape), f"op {op.name} ({op.kind})",
                            x.name)

    def _requant(self, graph: Graph, op: Op) -> tuple[Tensor, Tensor, int, int, int]:
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        axes = self._axes(graph, op)
        count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
        if self.is_mean:
            mult, shift = mean_multiplier(x.scale, out.scale, count)
        else:
            mult, shift = quant.quantize_multiplier(
                float(np.float64(x.scale) / np.float64(out.scale)))
        return x, out, count, mult, shift

    # -- semantics ------------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if len(op.inputs) != 1 or len(op.outputs) != 1:
            raise UnsupportedError(f"{where}: needs one input and one output (the axes are "
                                   f"attrs), got inputs {op.inputs}")
        check_io(graph, op, 1, self.dtypes)
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if len(x.shape) > MAX_DIMS:
            raise UnsupportedError(f"{where}: input {x.name} has rank {len(x.shape)}; at most "
                                   f"{MAX_DIMS} dims are supported")
        if x.size >= 2 ** 31:
            raise UnsupportedError(f"{where}: input {x.name} has {x.size} elements; at most "
                                   "2^31 - 1 are supported")
        want = self.infer_shapes(graph, op)[0]
        if tuple(out.shape) != want:
            raise UnsupportedError(
                f"{where}: output {out.name} has shape {out.shape}, but the {op.kind} of "
                f"{x.name} {x.shape} over axes {self._axes(graph, op)} with keep_dims="
                f"{bool(op.attrs.get('keep_dims', False))} has shape {want}")
        _, _, _, _, shift = self._requant(graph, op)
        if shift > 30:
            raise UnsupportedError(f"{where}: the rescale from input {x.name} (scale {x.scale}) "
                                   f"to output {out.name} (scale {out.scale}) is 2^30 or more; "
                                   "give the output a larger scale")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        return [reduced_shape(tuple(x.shape), self._axes(graph, op),
                              bool(op.attrs.get("keep_dims", False)))]

    def macs(self, graph: Graph, op: Op) -> int:
        return 0  # additions only, no multiply-accumulates

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, out, count, mult, shift = self._requant(graph, op)
        axes = self._axes(graph, op)
        total = inputs[0].astype(np.int64).sum(axis=axes) if axes else \
            inputs[0].astype(np.int64)
        shifted = quant._wrap32(total - x.zero_point * count)  # TFLM sums in wrapping int32
        y = quant.multiply_by_quantized_multiplier(shifted, mult, shift) + out.zero_point
        return [clamp_to(y, out).reshape(out.shape)]

    # -- C --------------------------------------------------------------------------------------

    def kernel(self, graph: Graph, op: Op) -> str:
        x = graph.tensor(op.inputs[0])
        fast = single_run(collapse(tuple(x.shape), self._axes(graph, op)))
        return f"te_{'mean' if fast is not None else 'reduce'}_{SUFFIX[x.dtype]}"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        x, out, _, mult, shift = self._requant(graph, op)
        runs = collapse(tuple(x.shape), self._axes(graph, op))
        q: list[CValue] = [-x.zero_point, out.zero_point, *qrange(out)]
        ctype = CTYPE[x.dtype]
        args = [Arg("tensor", op.inputs[0], f"const {ctype}"),
                Arg("tensor", op.outputs[0], ctype)]
        fast = single_run(runs)
        if fast is not None:
            outer, red, inner = fast
            return OpEmission(
                kernel=self.kernel(graph, op), params_type="te_mean_params_t",
                params={"input": [outer, red, 1, inner], "output": [outer, 1, 1, inner],
                        "q": q, "multiplier": mult, "shift": shift},
                args=args, sources=list(POOL_SOURCES))
        pad = [0] * (MAX_DIMS - len(runs))
        return OpEmission(
            kernel=self.kernel(graph, op), params_type="te_reduce_params_t",
            params={"rank": len(runs), "dims": [d for d, _ in runs] + pad,
                    "reduced": [int(r) for _, r in runs] + pad,
                    "q": q, "multiplier": mult, "shift": shift},
            args=args, sources=list(REDUCE_SOURCES))

    # -- frontends ------------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "ReducerOptions")
        x = inputs[0]
        axes = resolve_axes(tflite_const(inputs, 1, f"{self.kind} axes"), len(x.shape),
                            f"op {self.kind}", x.name)
        return tflite_import({"axes": axes, "keep_dims": bool(o.KeepDims()) if o else False},
                             1, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.ReducerOptionsT()
        o.keepDims = bool(op.attrs.get("keep_dims", False))
        return TfliteLowering("ReducerOptions", o,
                              [np.array(self._axes(graph, op), np.int32)])

    def from_onnx(self, b: Any, i: int, node: NodeProto) -> None:
        from ..frontend import onnx_ops as ox
        a = ox.node_attrs(node)
        x = b.activation(node.input[0])
        shape = tuple(b.shape(x))
        rank = len(shape)
        axes = a.get("axes")
        if len(node.input) > 1 and node.input[1]:
            axes = b.const(node.input[1], "axes").astype(np.int64).ravel().tolist()
        if not axes:
            if a.get("noop_with_empty_axes", 0):
                raise ox.Unsupported("noop_with_empty_axes with no axes is an identity; "
                                     "remove the node")
            axes = list(range(rank))
        if any(not -rank <= int(v) < rank for v in axes):
            raise ox.Unsupported(f"axes {axes} are out of range for input {x} of rank {rank}")
        onnx_axes = sorted({int(v) % rank for v in axes})
        keep = bool(a.get("keepdims", 1))
        ir_axes = tuple(sorted(NCHW[v] for v in onnx_axes)) if rank == 4 else tuple(onnx_axes)
        if rank == 4 and not keep:
            # The kept axes must come out in the same order in NCHW and NHWC, or the result
            # (not 4-D, so held in ONNX's order) would hold its elements in another order.
            ir_kept = [v for v in range(4) if v not in ir_axes and shape[NCHW.index(v)] > 1]
            onnx_kept = [NCHW[v] for v in range(4) if v not in onnx_axes and shape[v] > 1]
            if ir_kept != onnx_kept:
                raise ox.Unsupported(f"reducing NCHW axes {onnx_axes} without keepdims leaves "
                                     "the other axes in a different order than the engine's "
                                     "NHWC; use keepdims=1")
        b.emit(self.kind, node, [x], node.output[0], {"axes": ir_axes, "keep_dims": keep})

    def to_qdq(self, b: Any, op: Op) -> str:
        x, out = b.graph.tensor(op.inputs[0]), b.graph.tensor(op.outputs[0])
        axes = self._axes(b.graph, op)
        keep = bool(op.attrs.get("keep_dims", False))
        rank = len(x.shape)
        onnx_axes = sorted(NCHW.index(a) for a in axes) if rank == 4 else list(axes)
        # A 4-D input reduced to a lower rank: reduce with kept dims in NCHW, then back to the
        # IR's axis order (NHWC) before dropping them.
        fold = rank == 4 and len(out.shape) != 4
        v = b.dequantized(op.inputs[0])
        onnx_type = "ReduceMean" if self.is_mean else "ReduceSum"
        keepdims = int(keep or fold)
        if not axes:
            v = b.node("Identity", [v], op.name)
        elif self.is_mean:  # opset 17: ReduceMean takes its axes as an attribute
            v = b.node(onnx_type, [v], op.name, axes=onnx_axes, keepdims=keepdims)
        else:
            v = b.node(onnx_type, [v, b.const("axes", np.array(onnx_axes, np.int64))], op.name,
                       keepdims=keepdims)
        if fold:
            v = b.node("Transpose", [v], op.name, perm=[0, 2, 3, 1])
            v = b.node("Reshape", [v, b.shape_const(out.shape)], op.name)
        return v

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule()  # both requantise: the output has its own parameters


@register
class Mean(_Reduce):
    kind = "MEAN"
    onnx_types = ("ReduceMean",)
    is_mean = True


@register
class Sum(_Reduce):
    kind = "SUM"
    onnx_types = ("ReduceSum",)
    is_mean = False
