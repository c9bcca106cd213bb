"""TRANSPOSE_CONV: int8 transposed convolution, per-channel (or per-tensor) int8 weights OHWI; and
16x8 (int16 activations, int8 weights, int64 or int16 bias; tinyengine/ops/requant16.py).

Reference semantics: TFLM's transpose_conv.cc, int8 path (reference_integer_ops::TransposeConv).
Its 16x8 path sums in int64 (an int16 bias widened to int64), requantises with the int64 rule and
applies no offsets (symmetric int16).
Every input pixel (y, x) scatters (q - zp_in) * w[oc, ky, kx, ic] into output pixel
(y * stride_h - pad_h + ky, x * stride_w - pad_w + kx) when that lies inside the output; the int32
accumulators wrap like TFLite's, then bias, per-channel requantisation (CONV_2D's multipliers,
PopulateConvolutionQuantizationParams), output offset and the fused activation's clamp. The
filter's zero point is never applied, so we require symmetric weights.

The output shape is TFLite's int32 input 0; the IR keeps it in attrs["output_shape"] when it is a
constant. When it is not (a model that feeds it as a graph input, as the SEANet ones do), the
attr is absent and the output tensor's own shape is the output shape: TFLM too takes the output
size from the output tensor and never reads that input's values.
TFLM takes the padding from the output size: pad = ComputePaddingWithOffset(stride, 1,
out_size, filter, ComputeOutSize(padding, out_size, filter, stride)), i.e. CONV_2D's padding of a
convolution from the output back to the input. We accept only output sizes that such a
convolution maps exactly onto the input (what TensorFlow's conv2d_transpose produces).

IR inputs: [input, weights, bias or ""]; TFLite's order is (output_shape, weights, input, bias).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op
from . import requant16
from .base import (
    Arg,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import (
    TFLITE_ACTIVATION,
    TFLITE_PADDING,
    act_limits,
    check_activation,
    check_bias,
    check_io,
    compact_requant,
    conv_requant,
    dims4,
    fb_activation,
    fb_padding,
    io_dtype,
    keep_inputs,
    out_size,
    pad_before,
    requant_init,
    tflite_const,
    tflite_options,
    weight_consts,
)
from .conv import requantize_acc

if TYPE_CHECKING:
    from types import ModuleType

SOURCES = ["te_common.h", "te_requant16.h", "te_transpose_conv.h", "te_transpose_conv.c"]


def transpose_pad(out: int, filt: int, stride: int, padding: str) -> int:
    """TFLM's top/left padding of a transposed convolution producing `out` pixels."""
    return pad_before(out, filt, stride, 1, out_size(out, filt, stride, 1, padding))


def output_shape(graph: Graph, op: Op) -> tuple[int, ...]:
    """The output shape: the constant of TFLite's input 0, else the output tensor's shape."""
    if "output_shape" in op.attrs:
        return tuple(int(d) for d in op.attrs["output_shape"])
    return tuple(int(d) for d in graph.tensor(op.outputs[0]).shape)


def geometry(graph: Graph, op: Op) -> tuple[int, int, int, int]:
    """(out_h, out_w, pad_h, pad_w)."""
    w = graph.tensor(op.inputs[1])
    _, oh, ow, _ = output_shape(graph, op)
    sh, sw = op.attrs["stride"]
    padding = op.attrs["padding"]
    return (int(oh), int(ow), transpose_pad(int(oh), w.shape[1], sh, padding),
            transpose_pad(int(ow), w.shape[2], sw, padding))


def taps_inside(in_size: int, filt: int, stride: int, pad: int, out: int) -> int:
    """(input pixel, filter tap) pairs along one axis whose output pixel lies inside."""
    return sum(1 for i in range(in_size) for k in range(filt) if 0 <= i * stride - pad + k < out)


@register
class TransposeConv(OpDef):
    kind = "TRANSPOSE_CONV"
    dtypes = ("int8", "int16")
    patch = "none"
    onnx_types = ("ConvTranspose",)
    # The kernel gathers each output pixel's taps: no int32 (16x8: int64) buffer of the whole
    # output (TFLM's scratch), so no scratch at all.
    not_applicable = frozenset({"window", "scratch_bytes"})

    # -- semantics ----------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        where = f"op {op.name} ({op.kind})"
        if len(op.inputs) not in (2, 3) or not op.inputs[0] or not op.inputs[1] \
                or len(op.outputs) != 1:
            raise UnsupportedError(f"{where}: needs inputs (input, weights[, bias]) and one "
                                   f"output, got {op.inputs} -> {op.outputs}")
        dtype = check_io(graph, op, dtypes=("int8", "int16"))
        check_activation(op)
        x, w, b = (graph.op_inputs(op) + [None])[:3]
        assert x is not None and w is not None
        if w.dtype != "int8" or w.quant is None or not w.is_const or len(w.shape) != 4:
            raise UnsupportedError(f"{where}: weights {w.name} {w.dtype} {w.shape} must be a "
                                   "constant 4-D int8 tensor (OHWI)")
        if np.any(w.quant.zero_point != 0):
            raise UnsupportedError(f"{where}: weights {w.name} have a non-zero zero point "
                                   "(TFLite's transposed convolution needs symmetric weights)")
        if w.quant.per_channel and w.quant.axis != 0:
            raise UnsupportedError(f"{where}: weights {w.name} are quantised along axis "
                                   f"{w.quant.axis}; expected axis 0 (output channels)")
        if len(x.shape) != 4:
            raise UnsupportedError(f"{where}: input {x.name} must be 4-D NHWC, got {x.shape}")
        if x.shape[3] != w.shape[3]:
            raise UnsupportedError(f"{where}: input {x.name} has {x.shape[3]} channels but "
                                   f"weights {w.name} {w.shape} (OHWI) take {w.shape[3]}")
        shape = output_shape(graph, op)
        if len(shape) != 4 or min(shape) < 1:
            raise UnsupportedError(f"{where}: output shape {shape} must be 4 positive NHWC dims")
        if shape[0] != x.shape[0] or shape[3] != w.shape[0]:
            raise UnsupportedError(
                f"{where}: output shape {shape} must have the batch of input {x.name} "
                f"({x.shape[0]}) and the {w.shape[0]} output channels of weights {w.name}")
        stride = tuple(int(s) for s in op.attrs["stride"])
        padding = op.attrs["padding"]
        if len(stride) != 2 or min(stride) < 1 or padding not in ("SAME", "VALID"):
            raise UnsupportedError(f"{where}: stride {stride} must be two positive ints and "
                                   f"padding SAME or VALID, got {padding}")
        for axis, name in ((1, "height"), (2, "width")):
            back = out_size(shape[axis], w.shape[axis], stride[axis - 1], 1, padding)
            if back != x.shape[axis]:
                raise UnsupportedError(
                    f"{where}: output {name} {shape[axis]} does not fit input {x.name} "
                    f"{x.shape}: a {padding} convolution with filter {w.shape[axis]} and stride "
                    f"{stride[axis - 1]} maps it to {back}, not {x.shape[axis]}")
        if dtype == "int16":  # TFLM's 16x8 path reads an int64 bias, or widens an int16 one
            requant16.check_bias16(op, b, w, 0, ("int64", "int16"))
            _, shift = conv_requant(x, w, graph.tensor(op.outputs[0]))
            requant16.check_shifts16(op, shift, "int64")
            return
        check_bias(op, b, w, 0)
        conv_requant(x, w, graph.tensor(op.outputs[0]))

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        return [output_shape(graph, op)]

    def macs(self, graph: Graph, op: Op) -> int:
        # The multiply-accumulates the scatter performs: taps that land outside are skipped.
        x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        oh, ow, ph, pw = geometry(graph, op)
        sh, sw = op.attrs["stride"]
        rows = taps_inside(x.shape[1], w.shape[1], sh, ph, oh)
        cols = taps_inside(x.shape[2], w.shape[2], sw, pw, ow)
        return x.shape[0] * rows * cols * x.shape[3] * w.shape[0]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = (list(inputs) + [None])[:3]
        assert x is not None and w is not None
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        n, ih, iw, _ = xt.shape
        oc, fh, fw, _ = wt.shape
        oh, ow, ph, pw = geometry(graph, op)
        sh, sw = op.attrs["stride"]
        # Scatter into a canvas whose pixel (r, c) is output pixel (r - ph, c - pw); the canvas
        # reaches every tap and the whole output, and the output is its window at (ph, pw).
        full_h = max((ih - 1) * sh + fh, ph + oh)
        full_w = max((iw - 1) * sw + fw, pw + ow)
        canvas = np.zeros((n, full_h, full_w, oc), np.int64)
        xs = x.astype(np.int64) - xt.zero_point
        w64 = w.astype(np.int64)
        for ky in range(fh):
            for kx in range(fw):
                canvas[:, ky:ky + (ih - 1) * sh + 1:sh, kx:kx + (iw - 1) * sw + 1:sw, :] += \
                    xs @ w64[:, ky, kx, :].T
        acc = canvas[:, ph:ph + oh, pw:pw + ow, :]
        if b is not None:
            acc = acc + b.astype(np.int64)
        mult, shift = conv_requant(xt, wt, ot)
        lo, hi = act_limits(op, ot)
        if ot.dtype == "int16":  # int64 sums never wrap: the canvas is exact
            return [requant16.requantize16(acc, mult, shift, "int64", ot, lo, hi)]
        return [requantize_acc(acc, mult, shift, ot.zero_point, lo, hi)]

    # -- C ------------------------------------------------------------------------------------

    def kernel(self, graph: Graph, op: Op) -> str:
        return "te_transpose_conv_s16" if io_dtype(graph, op) == "int16" else \
            "te_transpose_conv_s8"

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        b = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
        _, _, ph, pw = geometry(graph, op)
        sh, sw = op.attrs["stride"]
        mult, shift = compact_requant(*conv_requant(xt, wt, ot))
        lo, hi = act_limits(op, ot)
        assert wt.quant is not None
        if ot.dtype == "int16":
            consts = requant16.weight_consts16(wt, b, mult, shift, "int64")
            io_args = [Arg("tensor", op.inputs[0], "const int16_t"),
                       Arg("const", "filter", "const int8_t"),
                       Arg("const", "bias" if b is not None else "", "const int64_t"),
                       Arg("tensor", op.outputs[0], "int16_t")]
        else:
            consts = weight_consts(wt, b, mult, shift)
            io_args = [Arg("tensor", op.inputs[0], "const int8_t"),
                       Arg("const", "filter", "const int8_t"),
                       Arg("const", "bias" if b is not None else "", "const int32_t"),
                       Arg("tensor", op.outputs[0], "int8_t")]
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_transpose_conv_params_t",
            params={
                "input": dims4(xt.shape), "filter": dims4(wt.shape), "output": dims4(ot.shape),
                "stride_h": int(sh), "stride_w": int(sw), "pad_h": ph, "pad_w": pw,
                "q": [-xt.zero_point, ot.zero_point, lo, hi],
                "rq": requant_init(mult),
            },
            args=io_args,
            consts=consts,
            sources=list(SOURCES),
        )

    # -- frontends ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "TransposeConvOptions")
        if o is None:
            raise UnsupportedError("TRANSPOSE_CONV without options (padding and strides)")
        attrs: dict[str, Any] = {"stride": (o.StrideH(), o.StrideW()),
                                 "padding": TFLITE_PADDING[o.Padding()],
                                 "activation": TFLITE_ACTIVATION[o.FusedActivationFunction()]}
        if inputs and inputs[0] is not None and inputs[0].data is not None:
            shape = tflite_const(inputs, 0, "TRANSPOSE_CONV's output shape (input 0)")
            attrs["output_shape"] = tuple(int(d) for d in np.asarray(shape).ravel())
        elif not inputs or inputs[0] is None:
            raise UnsupportedError("TRANSPOSE_CONV's output shape (input 0) is absent")
        # else a runtime tensor: TFLM ignores its values, the output tensor's shape rules
        _, weights, x, bias = (keep_inputs(4, inputs) + [None])[:4]
        return TfliteImport(attrs, [x, weights, bias])

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.TransposeConvOptionsT()
        o.padding = fb_padding(fb, op)
        o.strideH, o.strideW = (int(s) for s in op.attrs["stride"])
        o.fusedActivationFunction = fb_activation(fb, op)
        shape = np.array(output_shape(graph, op), np.int32)
        # TFLite's (output_shape, weights, input, bias); no bias: three inputs.
        return TfliteLowering("TransposeConvOptions", o, leading_inputs=[shape],
                              input_order=[1, 0, 2][:len(op.inputs)], omit_absent_tail=True)

    def from_onnx(self, b: Any, i: int, node: Any) -> None:
        from ..frontend import onnx_ops as ox

        a = ox.node_attrs(node)
        x = b.activation(node.input[0], rank=(4,))
        w = b.const(node.input[1], "weight")  # (Cin, Cout / group, kh, kw)
        if w.ndim != 4:
            raise ox.Unsupported(f"weight shape {w.shape}: only 2-D transposed convolution is "
                                 "supported")
        if int(a.get("group", 1)) != 1:
            raise ox.Unsupported(f"group {a['group']}: only group 1 is supported")
        if ox.pairs(a, "dilations", 1) != (1, 1):
            raise ox.Unsupported(f"dilations {a['dilations']}: only 1 is supported")
        bias = ox.bias_of(b, node, int(w.shape[1]))  # ONNX weights are (Cin, Cout, kh, kw)
        n, cin, ih, iw = b.shape(x)
        k, stride = (int(w.shape[2]), int(w.shape[3])), ox.pairs(a, "strides", 1)
        if "kernel_shape" in a and tuple(int(v) for v in a["kernel_shape"]) != k:
            raise ox.Unsupported(f"kernel_shape {a['kernel_shape']} differs from the weight's "
                                 f"{k}")
        # ONNX's output size and top/left padding, whatever attributes give them; TFLite's
        # SAME or VALID must give the same padding for that output size.
        _, cout, oh, ow = b.shape(node.output[0])
        out_hw = (int(oh), int(ow))
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER") or "output_shape" in a:
            raise ox.Unsupported("auto_pad SAME_* and the output_shape attribute are not "
                                 "supported; export with explicit pads")
        pads = [0, 0, 0, 0] if auto == "VALID" else [int(v) for v in a.get("pads", [0] * 4)]
        begin = (pads[0], pads[1])
        padding = next((p for p in ("VALID", "SAME")
                        if all(transpose_pad(size, kk, s, p) == pb
                               and out_size(size, kk, s, 1, p) == isz
                               for size, kk, s, pb, isz in zip(out_hw, k, stride, begin,
                                                               (ih, iw)))), None)
        if padding is None:
            raise ox.Unsupported(
                f"pads {pads} and output_padding {a.get('output_padding', [0, 0])} give output "
                f"{out_hw} from input {(ih, iw)} with top/left padding {begin}, which neither "
                "TFLite SAME nor VALID padding does")
        if w.shape[0] != cin or w.shape[1] != cout:
            raise ox.Unsupported(f"weight shape {w.shape} does not map {cin} to {cout} channels")
        # A following BatchNormalization / per-channel Add folds into the weights and bias, a
        # Relu / Clip(0, 6) into the fused activation (TransposeConvOptions has one).
        tail = ox.fold_tail(b, node.output[0], cout, affine=True)
        filt, bias = ox.apply_tail(tail, w.transpose(1, 2, 3, 0), bias)  # -> OHWI
        op_name = node.name or f"conv_transpose_{i}"
        wname = b.add_const(f"{op_name}.filter", filt)
        bname = b.add_const(f"{op_name}.bias", bias) if bias is not None else ""
        b.emit("TRANSPOSE_CONV", node, [x, wname, bname], tail.output,
               {"output_shape": (int(n), out_hw[0], out_hw[1], int(cout)),
                "stride": stride, "padding": padding, "activation": tail.activation})

    def to_qdq(self, b: Any, op: Op) -> str:
        from ..quantize import qdq as qx

        x, w = b.graph.tensor(op.inputs[0]), b.graph.tensor(op.inputs[1])
        assert w.data is not None
        _, fh, fw, _ = w.shape
        oh, ow, ph, pw = geometry(b.graph, op)
        sh, sw = op.attrs["stride"]
        # ONNX's output is s * (in - 1) + k + output_padding - pads_begin - pads_end: what lies
        # past TFLite's output is cut by pads_end, what TFLite adds beyond the last tap by
        # output_padding.
        extra_h = oh - ((x.shape[1] - 1) * sh + fh - ph)
        extra_w = ow - ((x.shape[2] - 1) * sw + fw - pw)
        wname = b.const_dq(w, w.data.transpose(3, 0, 1, 2), 1, np.int8)  # OHWI -> (I, O, H, W)
        return b.node("ConvTranspose", [b.dequantized(op.inputs[0]), wname,
                                        *qx.bias_inputs(b, op)], op.name,
                      kernel_shape=[fh, fw], strides=[int(sh), int(sw)],
                      pads=[ph, pw, max(-extra_h, 0), max(-extra_w, 0)],
                      output_padding=[max(extra_h, 0), max(extra_w, 0)])

    # -- quantisation -------------------------------------------------------------------------

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        # Weights per output channel (OHWI axis 0, TFLM's kTransposeConvQuantizedDimension).
        return QuantRule(weights={1: 0})
