"""FULLY_CONNECTED: int8 matrix-vector product over a batch of rows, weights [out, in].

Reference semantics: TFLite's reference_integer_ops::FullyConnected (per-tensor weights, whose
zero point is applied as `weights_offset`) and FullyConnectedPerChannel (per-channel weights along
axis 0, no weights offset), as TFLM's fully_connected.cc dispatches them.

Multipliers: per channel, CalculateOpDataFullyConnected uses double(input_scale) *
double(filter_scale[c]) / double(output_scale), CONV_2D's rule. Per tensor it calls
GetQuantizedConvolutionMultipler, whose source up to August 2026 reads
`double(input_scale * filter_scale)` (a float32 product), but the TFLM we are measured against
(tflite-micro 0.dev20261023, g8f6596d) multiplies the two scales in double: its machine code is
cvtss2sd, cvtss2sd, mulsd, divsd, and tests/test_ops_dw_fc_add.py pins the rule on a case where the
two readings give different outputs. So every FC multiplier is CONV_2D's.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import Arg, OpDef, OpEmission, register
from .common import act_limits, check_activation, check_int8_io, conv_requant, weight_consts
from .conv import requantize_acc


def fc_requant(inp: Tensor, weights: Tensor, out: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Output multipliers and shifts as TFLM computes them (see the module docstring)."""
    return conv_requant(inp, weights, out)


def filter_offset(weights: Tensor) -> int:
    """TFLM's weights_offset: minus the zero point per tensor; per channel it is never applied."""
    assert weights.quant is not None
    return 0 if weights.quant.per_channel else -weights.zero_point


def fc_geometry(graph: Graph, op: Op) -> tuple[int, int, int]:
    """(batches, in_features, out_features) of the flattened product."""
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    return x.size // w.shape[1], w.shape[1], w.shape[0]


@register
class FullyConnected(OpDef):
    kind = "FULLY_CONNECTED"

    def check(self, graph: Graph, op: Op) -> None:
        check_int8_io(graph, op)
        check_activation(op)
        x, w, b = (graph.op_inputs(op) + [None])[:3]
        assert x is not None and w is not None
        where = f"op {op.name} ({op.kind})"
        if w.dtype != "int8" or w.quant is None or not w.is_const or len(w.shape) != 2:
            raise UnsupportedError(f"{where}: weights {w.name} must be a constant 2-D int8 "
                                   "tensor [out, in]")
        if w.quant.per_channel:
            if w.quant.axis != 0:
                raise UnsupportedError(f"{where}: weights {w.name} are quantised along axis "
                                       f"{w.quant.axis}; expected axis 0 (output channels)")
            if np.any(w.quant.zero_point != 0):
                raise UnsupportedError(f"{where}: per-channel weights {w.name} have non-zero "
                                       "zero points (TFLite requires symmetric weights)")
        elif not -128 <= w.zero_point <= 127:
            raise UnsupportedError(f"{where}: weights zero point {w.zero_point} is not int8")
        if x.size % w.shape[1] != 0:
            raise UnsupportedError(f"{where}: input {x.shape} has {x.size} elements, not a "
                                   f"multiple of the {w.shape[1]} input features")
        if op.attrs.get("keep_num_dims", False) and x.shape[-1] != w.shape[1]:
            raise UnsupportedError(f"{where}: keep_num_dims needs the input's last dimension "
                                   f"{x.shape[-1]} to equal the {w.shape[1]} input features")
        if b is not None and (b.dtype != "int32" or not b.is_const or b.size != w.shape[0]):
            raise UnsupportedError(f"{where}: bias {b.name} must be constant int32 with "
                                   f"{w.shape[0]} values")

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x = graph.tensor(op.inputs[0])
        batches, _, out = fc_geometry(graph, op)
        if op.attrs.get("keep_num_dims", False):
            return [tuple(x.shape[:-1]) + (out,)]
        return [(batches, out)]

    def macs(self, graph: Graph, op: Op) -> int:
        batches, n_in, n_out = fc_geometry(graph, op)
        return batches * n_in * n_out

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = (list(inputs) + [None])[:3]
        assert x is not None and w is not None
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        batches, n_in, _ = fc_geometry(graph, op)
        rows = x.reshape(batches, n_in).astype(np.int64) - xt.zero_point
        acc = rows @ (w.astype(np.int64) + filter_offset(wt)).T
        if b is not None:
            acc += b.astype(np.int64)
        mult, shift = fc_requant(xt, wt, ot)
        lo, hi = act_limits(op, ot)
        return [requantize_acc(acc, mult, shift, ot.zero_point, lo, hi).reshape(ot.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        b = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
        batches, n_in, n_out = fc_geometry(graph, op)
        mult, shift = fc_requant(xt, wt, ot)
        lo, hi = act_limits(op, ot)
        assert wt.data is not None and wt.quant is not None
        consts = weight_consts(wt, b, mult, shift, "weights")
        return OpEmission(
            kernel="te_fully_connected_s8",
            params_type="te_fully_connected_params_t",
            params={
                "batches": batches, "in_features": n_in, "out_features": n_out,
                "filter_offset": filter_offset(wt),
                "q": [-xt.zero_point, ot.zero_point, lo, hi],
                "rq": ["@mult", "@shift", int(wt.quant.per_channel)],
            },
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("const", "weights", "const int8_t"),
                  Arg("const", "bias" if b is not None else "", "const int32_t"),
                  Arg("tensor", op.outputs[0], "int8_t")],
            consts=consts,
            sources=["te_common.h", "te_simd.h", "te_fc.h", "te_fc.c"],
        )
