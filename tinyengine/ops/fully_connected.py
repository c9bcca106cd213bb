"""FULLY_CONNECTED: int8 matrix-vector product over a batch of rows, weights [out, in]; and 16x8
(int16 activations, int8 weights, int64 or int32 bias; tinyengine/ops/requant16.py).

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

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from . import requant16
from .base import (
    Arg,
    ConstArray,
    CValue,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    get_op,
    register,
)
from .common import (
    TFLITE_ACTIVATION,
    act_limits,
    check_activation,
    check_bias,
    check_io,
    compact_requant,
    conv_requant,
    fb_activation,
    io_dtype,
    requant_consts,
    requant_init,
    require_inputs,
    tflite_import,
    tflite_options,
    weight_consts,
)
from .conv import requantize_acc

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder


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
    dtypes = ("int8", "int16")
    patch = "none"
    onnx_types = ("Gemm", "MatMul")
    not_applicable = frozenset({"window", "scratch_bytes"})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "FullyConnectedOptions")
        if o is None:
            return tflite_import({"activation": "NONE", "keep_num_dims": False}, 3, inputs)
        if o.WeightsFormat() != 0:
            raise UnsupportedError("FULLY_CONNECTED with shuffled weights is not supported")
        return tflite_import({"activation": TFLITE_ACTIVATION[o.FusedActivationFunction()],
                              "keep_num_dims": bool(o.KeepNumDims()),
                              **requant16.bias_type_attr(o)}, 3, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.FullyConnectedOptionsT()
        o.fusedActivationFunction = fb_activation(fb, op)
        o.keepNumDims = bool(op.attrs.get("keep_num_dims", False))
        requant16.set_bias_type(fb, o, op)
        return TfliteLowering("FullyConnectedOptions", o)

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        if node.op_type == "Gemm":
            _gemm_from_onnx(b, i, node)
        elif b.name(node.input[1]) in b.consts:
            _matmul_from_onnx(b, i, node)
        else:  # a product of two activations
            get_op("BATCH_MATMUL").from_onnx(b, i, node)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return _fc_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(weights={1: 0}, weights_per_tensor=True)

    def kernel(self, graph: Graph, op: Op) -> str:
        if io_dtype(graph, op) == "int16":
            acc32 = requant16.accumulator(graph, op) == "int32"
            return "te_fully_connected_acc32_s16" if acc32 else "te_fully_connected_s16"
        return "te_fully_connected_s8"


    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input", "weights"), ("bias",))
        dtype = check_io(graph, op, dtypes=("int8", "int16"))
        check_activation(op)
        x, w, b = (graph.op_inputs(op) + [None])[:3]
        assert x is not None and w is not None
        where = f"op {op.name} ({op.kind})"
        if w.dtype != "int8" or w.quant is None or not w.is_const or len(w.shape) != 2:
            raise UnsupportedError(f"{where}: weights {w.name} {w.dtype} {w.shape} must be a "
                                   "constant 2-D int8 tensor [out, in]")
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
        if dtype == "int16":
            requant16.check_bias16(op, b, w, 0, ("int64", "int32"), filter_offset(w))
            _, shift = conv_requant(x, w, graph.tensor(op.outputs[0]))
            requant16.check_shifts16(op, shift, requant16.accumulator(graph, op))
            return
        check_bias(op, b, w, 0)
        conv_requant(x, w, graph.tensor(op.outputs[0]))

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
        if ot.dtype == "int16":
            y = requant16.requantize16(acc, mult, shift, requant16.accumulator(graph, op), ot,
                                       lo, hi)
            return [y.reshape(ot.shape)]
        return [requantize_acc(acc, mult, shift, ot.zero_point, lo, hi).reshape(ot.shape)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        b = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
        batches, n_in, n_out = fc_geometry(graph, op)
        mult, shift = compact_requant(*fc_requant(xt, wt, ot))
        lo, hi = act_limits(op, ot)
        assert wt.data is not None and wt.quant is not None
        params: dict[str, CValue] = {
            "batches": batches, "in_features": n_in, "out_features": n_out,
            "filter_offset": filter_offset(wt),
            "q": [-xt.zero_point, ot.zero_point, lo, hi],
            "rq": requant_init(mult),
        }
        kernel = self.kernel(graph, op)
        if ot.dtype == "int16":
            acc = requant16.accumulator(graph, op)
            consts = requant16.weight_consts16(wt, b, mult, shift, acc, "weights")
            io_args = [Arg("tensor", op.inputs[0], "const int16_t"),
                       Arg("const", "weights", "const int8_t"),
                       Arg("const", "bias" if b is not None else "", requant16.bias_ctype16(acc)),
                       Arg("tensor", op.outputs[0], "int16_t")]
        else:
            # The call goes to the path's own entry point (simd_path), not the dispatcher.
            kernel = simd_path(params, mult, shift, b is not None)
            if kernel == I4_ENTRY:
                bias = b.data if b is not None else None
                consts = [ConstArray("weights", "int32_t", interleave4(wt.data)),
                          *requant_consts(mult, shift),
                          ConstArray("bias", "int32_t",
                                     fold_input_offset(wt.data, bias, -xt.zero_point))]
            else:
                consts = weight_consts(wt, b, mult, shift, "weights")
            io_args = [Arg("tensor", op.inputs[0], "const int8_t"),
                       Arg("const", "weights",
                           "const int32_t" if kernel == I4_ENTRY else "const int8_t"),
                       Arg("const", "bias" if b is not None or kernel == I4_ENTRY else "",
                           "const int32_t"),
                       Arg("tensor", op.outputs[0], "int8_t")]
        return OpEmission(
            kernel=kernel,
            params_type="te_fully_connected_params_t",
            params=params,
            args=io_args,
            consts=consts,
            sources=["te_common.h", "te_simd.h", "te_requant16.h", "te_fc.h", "te_fc.c"],
        )


# -- the path a layer takes (issue 16: a model links only the paths it uses) ------------------

I4_ENTRY = "te_fully_connected_i4_s8"


def simd_path(params: dict[str, Any], mult: np.ndarray, shift: np.ndarray,
              has_bias: bool) -> str:
    """The entry point an int8 layer calls, from its params as emitted and its stored
    requantisation tables (one pair per tensor, else one per channel): te_fully_connected_i4_s8
    (interleaved weights, the input offset folded into the bias) where its SIMD loop applies, no
    filter offset, in_features a multiple of 4, at least four outputs, per tensor in the fast
    rule's domain; else dispatch_path. Only the code generator can choose i4: the layout
    differs, so the run-time dispatcher never does. A build without SIMD runs the portable loop
    under every one of these names."""
    n_in, n_out, w_off = params["in_features"], params["out_features"], params["filter_offset"]
    if fast_per_tensor(mult, shift) and w_off == 0 and n_in % 4 == 0 and n_out >= 4:
        return I4_ENTRY
    return dispatch_path(params, mult, shift, has_bias)


def fast_per_tensor(mult: np.ndarray, shift: np.ndarray) -> bool:
    """One stored pair, the multiplier >= 0 and the shift in [-22, -1]: the SIMD paths' rule."""
    m, sh = int(np.ravel(mult)[0]), int(np.ravel(shift)[0])
    return np.size(mult) == 1 and m >= 0 and -22 <= sh <= -1


def dispatch_path(params: dict[str, Any], mult: np.ndarray, shift: np.ndarray,
                  has_bias: bool) -> str:
    """The path te_fully_connected_s8 takes in a SIMD build, by te_fully_connected_path_s8's
    rule (tests/test_fc_paths.py holds the two equal)."""
    n_in, n_out, w_off = params["in_features"], params["out_features"], params["filter_offset"]
    if not fast_per_tensor(mult, shift):
        return "te_fully_connected_general_s8"
    if n_in == 1 and w_off == 0 and has_bias:
        return "te_fully_connected_one_in_s8"
    if n_out < 4 and w_off == 0:
        return "te_fully_connected_few_s8"
    return "te_fully_connected_per_tensor_s8"


def interleave4(w: np.ndarray) -> np.ndarray:
    """Weights int8 [out, in] (in a multiple of 4) as te_fully_connected_i4_s8 reads them
    (te_fc.h): int32 words of four weights of a row, the first in the low byte; for each block
    of four rows and each four inputs the four rows' words side by side, then the last
    out % 4 rows row after row."""
    n_out, n_in = w.shape
    by4 = n_out - n_out % 4
    blocks = w[:by4].reshape(by4 // 4, 4, n_in // 4, 4).transpose(0, 2, 1, 3)
    b = np.concatenate([blocks.ravel(), w[by4:].ravel()]).astype(np.int8).view(np.uint8)
    q = b.reshape(-1, 4).astype(np.uint32)
    words = q[:, 0] | (q[:, 1] << 8) | (q[:, 2] << 16) | (q[:, 3] << 24)
    return words.view(np.int32)


def fold_input_offset(w: np.ndarray, bias: np.ndarray | None, input_offset: int) -> np.ndarray:
    """bias + input_offset * (sum of each row's weights), modulo 2^32 as the int32 sums wrap:
    sum_i (x_i + off) w_i + b = sum_i x_i w_i + (b + off sum_i w_i), so the kernel's loop reads
    the inputs without an offset."""
    acc = input_offset * w.astype(np.int64).sum(axis=1)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64).ravel()
    return ((acc + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


# -- interop: ONNX import and QDQ export ----------------------------------------------------

def _fc_from_onnx(b: OnnxBuilder, node: NodeProto, x_onnx: str, w: np.ndarray,
                     bias: np.ndarray | None) -> None:
    """FULLY_CONNECTED from weights [out, in]; undoes a CHW flatten of the input."""
    from ..frontend import onnx_ops as ox
    x = b.name(x_onnx)
    if x in b.consts:
        raise ox.Unsupported(f"its input {x} is a constant")
    if len(b.shape(x)) != 2 or b.shape(x)[1] != w.shape[1]:
        raise ox.Unsupported(f"input shape {b.shape(x)}: only [batch, {w.shape[1]}] is supported")
    if x in b.chw_flattened:  # ONNX flattened in CHW order; the IR holds HWC order
        c, h, wd = b.chw_flattened[x]
        w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
    tail = ox.fold_tail(b, node.output[0], w.shape[0], affine=True)
    w, bias = ox.apply_tail(tail, w, bias)
    op_name = node.name or node.output[0]
    wname = b.add_const(f"{op_name}.weights", w)
    bname = b.add_const(f"{op_name}.bias", bias) if bias is not None else ""
    b.emit("FULLY_CONNECTED", node, [x, wname, bname], tail.output,
           {"activation": tail.activation, "keep_num_dims": False})


def _gemm_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    a = ox.node_attrs(node)
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 \
            or float(a.get("beta", 1.0)) != 1.0:
        raise ox.Unsupported("only transA=0, alpha=1, beta=1 are supported")
    w = b.const(node.input[1], "weight")
    w = w if a.get("transB", 0) else w.T
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = b.const(node.input[2], "bias")
        if c.size not in (1, w.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise ox.Unsupported(f"bias shape {c.shape} is not one value per output")
        bias = np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy()
    _fc_from_onnx(b, node, node.input[0], w, bias)


def _matmul_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    w = b.const(node.input[1], "weight [in, out]")
    if w.ndim != 2:
        raise ox.Unsupported(f"weight shape {w.shape}: only a 2-D [in, out] weight is supported")
    _fc_from_onnx(b, node, node.input[0], w.T, None)


def _fc_to_qdq(b: QdqBuilder, op: Op) -> str:
    from ..quantize import qdq as qx
    x, w, out = (b.graph.tensor(op.inputs[0]), b.graph.tensor(op.inputs[1]),
                 b.graph.tensor(op.outputs[0]))
    assert w.data is not None
    _, n_in, _ = fc_geometry(b.graph, op)
    rows = b.dequantized(x.name)
    if len(x.shape) == 4:  # the IR flattens qx.NHWC rows
        rows = b.node("Transpose", [rows], op.name, perm=list(qx.NHWC))
    if len(x.shape) != 2:
        rows = b.node("Reshape", [rows, b.shape_const([-1, n_in])], op.name)
    y = b.node("Gemm", [rows, b.const_dq(w, w.data, 0, np.int8), *qx.bias_inputs(b, op)], op.name,
               transB=1)
    if len(out.shape) != 2:
        y = b.node("Reshape", [y, b.shape_const(out.shape)], op.name)
        if len(out.shape) == 4:
            y = b.node("Transpose", [y], op.name, perm=list(qx.NCHW))
    return y
