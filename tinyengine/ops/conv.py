"""CONV_2D: int8 convolution with per-channel (or per-tensor) int8 weights and int32 bias, and
16x8 (int16 activations, int8 weights, int64 or int32 bias; tinyengine/ops/requant16.py).

Reference semantics: TFLite's reference_integer_ops::ConvPerChannel (its int16 overload for
16x8). Padding pixels contribute nothing (they equal the input zero point); the odd pixel of SAME
padding goes bottom/right.

Grouped convolution (attrs["groups"] = G, default 1, as ONNX's Conv `group`): the filter is
(O, kh, kw, C/G); output channel oc belongs to group g = oc // (O/G) and reads input channels
g*C/G ... (g+1)*C/G - 1. With G == 1 this is exactly TFLite's CONV_2D.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op
from . import requant16
from .base import (
    Arg,
    CValue,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    Window,
    register,
)
from .common import (
    TFLITE_ACTIVATION,
    TFLITE_PADDING,
    act_limits,
    check_activation,
    check_bias,
    check_io,
    check_window,
    clamp_int8,
    compact_requant,
    conv_requant,
    dims4,
    fb_activation,
    fb_padding,
    io_dtype,
    requant_init,
    require_inputs,
    tflite_import,
    tflite_options,
    weight_consts,
    window_padding,
)
from .rows_inplace import rows_of
from .simd_rq import rq_channels_ok

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import NodeProto

    from ..frontend.onnx_ops import OnnxBuilder
    from ..quantize.qdq import QdqBuilder


def padded_windows(x: np.ndarray, zero_point: int, oh: int, ow: int, fh: int, fw: int,
                   stride: tuple[int, int], dilation: tuple[int, int], pad: tuple[int, int]):
    """Yield (ky, kx, window) with window[n, oy, ox, c] = input under tap (ky, kx), minus zp.

    Shared by every windowed op so that they agree on TFLite's padding geometry.
    """
    n, ih, iw, c = x.shape
    sh, sw = stride
    dh, dw = dilation
    ph, pw = pad
    need_h = (oh - 1) * sh + (fh - 1) * dh + 1
    need_w = (ow - 1) * sw + (fw - 1) * dw + 1
    xp = np.zeros((n, max(need_h, ph + ih), max(need_w, pw + iw), c), np.int64)
    xp[:, ph:ph + ih, pw:pw + iw, :] = x.astype(np.int64) - zero_point
    for ky in range(fh):
        for kx in range(fw):
            y0, x0 = ky * dh, kx * dw
            yield ky, kx, xp[:, y0:y0 + (oh - 1) * sh + 1:sh, x0:x0 + (ow - 1) * sw + 1:sw, :]


def requantize_acc(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, out_zp: int,
                   lo: int, hi: int) -> np.ndarray:
    """int32 accumulator (last axis = channel) -> int8, as TFLite's per-channel requantisation."""
    acc = quant._wrap32(acc)
    y = quant.multiply_by_quantized_multiplier(acc, mult.astype(np.int64), shift.astype(np.int64))
    return clamp_int8(y + out_zp, lo, hi)


# The band-by-band in-place driver and its CONV_2D front end (csrc/te_conv_rows.h).
ROWS_SOURCES = ["te_rows_inplace.h", "te_rows_inplace.c", "te_conv_rows.h", "te_conv_rows.c"]


def conv_groups(op: Op) -> int:
    """The op's group count (1: an ordinary convolution)."""
    return int(op.attrs.get("groups", 1))


def is_pointwise(graph: Graph, op: Op) -> bool:
    """Domain of te_conv2d_1x1_s8 and its in-place twin; the C kernels check the same."""
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    _, fh, fw, _ = w.shape
    oh, ow, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
    return ((fh, fw) == (1, 1) and tuple(op.attrs["stride"]) == (1, 1) and (ph, pw) == (0, 0)
            and (oh, ow) == tuple(x.shape[1:3]) and conv_groups(op) == 1)


# |filter * (input + offset)| per term, the offset folded into the bias: 128 * 256
# (TE_CONV_MAX_TERM in csrc/te_conv.c).
MAX_TERM = 128 * 256
# te_conv2d_im2col_layer's bounds (TE_CONV_IM2COL_MAX_ROW, TE_CONV_IM2COL_MIN_OC) and the input
# channels from which te_conv2d_1x1_s8 widens pixel pairs (TE_CONV_1X1_WIDEN_MIN_IC).
IM2COL_MAX_ROW = 32
IM2COL_MIN_OC = 8
WIDEN_MIN_IC = 16


def im2col_fits(params: dict[str, Any], room: int = 0) -> bool:
    """te_conv2d_im2col_ok: whether te_conv2d_s8's SIMD build gathers pixel pairs by im2col (one
    group, a short kernel row or enough output channels, an int8 zero point for the padding, and
    an output that holds a pixel pair besides the work space, with `room` bytes after it)."""
    _, _, _, ic = params["input"]
    _, fh, fw, fc = params["filter"]
    n, oh, ow, oc = params["output"]
    input_offset, n_px, k = params["q"][0], n * oh * ow, fh * fw * fc
    layer = (params["groups"] == 1 and (fw * fc <= IM2COL_MAX_ROW or oc >= IM2COL_MIN_OC)
             and oc >= 2 and -127 <= input_offset <= 128 and n_px >= 2)
    need = (4 * k if ic % 4 == 0 else 6 * k) + 3  # te_conv2d_im2col_bytes
    rows = 4 * fw * fc + 16 * ((oc + 1) >> 1) + 3  # te_conv2d_im2col_rows_bytes
    least = rows if ic % 4 == 0 and fh > 1 and rows < need else need
    return layer and (n_px - 2) * oc + room >= least


def pointwise_widens(params: dict[str, Any]) -> bool:
    """te_conv2d_1x1_widens: whether te_conv2d_1x1_s8's SIMD build widens pixel pairs once for
    every output channel (16 input channels or more, and an output that holds a pixel pair
    besides the widened pair)."""
    _, _, _, ic = params["input"]
    n, oh, ow, oc = params["output"]
    n_px = n * oh * ow
    return ic >= WIDEN_MIN_IC and n_px >= 2 and (n_px - 2) * oc >= 4 * ic + 3


def simd_path(params: dict[str, Any], mult: np.ndarray, shift: np.ndarray,
              bias: np.ndarray | None, variant: str) -> str:
    """The entry point of the path the int8 kernel `variant` ("generic", "1x1" or "inplace")
    takes in a SIMD build, from the layer's params as emitted (the C struct's fields) and its
    stored requantisation tables and bias: the twin of te_conv2d_path_s8 (te_conv.h;
    tests/test_conv_paths.py holds the two equal). The generated code calls it instead of the
    variant's run-time dispatcher, so only the paths the model takes are linked. A build without
    SIMD runs the variant's portable loop under every one of these names."""
    _, fh, fw, fc = params["filter"]
    oc = params["output"][3]
    pointwise = variant != "generic"
    products = fc if pointwise else fh * fw * fc  # filter.c == input.c on a pointwise layer
    ok = rq_channels_ok(mult, shift, bias, oc, products, MAX_TERM)
    if variant == "inplace":
        return f"te_conv2d_1x1_inplace_{'q15' if ok.all() else 'portable'}_s8"
    if not ok.any():
        return f"te_conv2d_{'1x1_' if pointwise else ''}portable_s8"
    if pointwise:
        path = "1x1_widened" if pointwise_widens(params) else "1x1_pairs"
    elif im2col_fits(params):
        path = "im2col_q15" if params["input"][3] % 4 == 0 else "im2col"
    else:
        path = "direct"
    return f"te_conv2d_{path}_s8" if ok.all() else f"te_conv2d_{path}_partial_s8"


# The int8 variants (the `kernel` hook's names) simd_path chooses among.
PATH_VARIANTS = {"te_conv2d_s8": "generic", "te_conv2d_1x1_s8": "1x1",
                 "te_conv2d_1x1_inplace_s8": "inplace"}


def conv_window(graph: Graph, op: Op) -> Window:
    """(fh, fw, sh, sw, dh, dw, pad_h, pad_w) of a convolution in whole-tensor execution."""
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    fh, fw = w.shape[1:3]
    sh, sw = op.attrs["stride"]
    dh, dw = op.attrs.get("dilation", (1, 1))
    _, _, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
    return fh, fw, sh, sw, dh, dw, ph, pw


@register
class Conv2D(OpDef):
    kind = "CONV_2D"
    dtypes = ("int8", "int16")
    patch = "windowed"
    onnx_types = ("Conv",)

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "Conv2DOptions")
        return tflite_import({"stride": (o.StrideH(), o.StrideW()),
                              "padding": TFLITE_PADDING[o.Padding()],
                              "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                              "activation": TFLITE_ACTIVATION[o.FusedActivationFunction()],
                              **requant16.bias_type_attr(o)},
                             3, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.Conv2DOptionsT()
        o.padding = fb_padding(fb, op)
        o.strideH, o.strideW = op.attrs["stride"]
        o.dilationHFactor, o.dilationWFactor = op.attrs.get("dilation", (1, 1))
        o.fusedActivationFunction = fb_activation(fb, op)
        requant16.set_bias_type(fb, o, op)
        return TfliteLowering("Conv2DOptions", o)

    def from_onnx(self, b: OnnxBuilder, i: int, node: NodeProto) -> None:
        _conv_from_onnx(b, i, node)  # Conv with groups == channels becomes DEPTHWISE_CONV_2D

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return conv_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(weights={1: 0})

    def window(self, graph: Graph, op: Op) -> Window:
        return conv_window(graph, op)

    def kernel(self, graph: Graph, op: Op) -> str:
        if io_dtype(graph, op) == "int16":  # one generic kernel, per accumulator type
            if op.attrs.get("inplace") is not None:
                raise UnsupportedError(f"op {op.name} ({op.kind}): no in-place 16x8 kernel")
            acc32 = requant16.accumulator(graph, op) == "int32"
            return "te_conv2d_acc32_s16" if acc32 else "te_conv2d_s16"
        # The rule te_conv2d_wrapper_s8 applies: 1x1 kernels where their domain holds.
        if op.attrs.get("inplace_offset") is not None:  # row by row, input at an offset
            return "te_conv2d_rows_inplace_s8"
        if op.attrs.get("inplace") is not None:
            return "te_conv2d_1x1_inplace_s8"
        return "te_conv2d_1x1_s8" if is_pointwise(graph, op) else "te_conv2d_s8"


    def check(self, graph: Graph, op: Op) -> None:
        require_inputs(op, ("input", "filter"), ("bias",))
        dtype = check_io(graph, op, dtypes=("int8", "int16"))
        check_activation(op)
        check_window(op)
        x, w, b = (graph.op_inputs(op) + [None])[:3]
        assert x is not None and w is not None
        if w.dtype != "int8" or w.quant is None or not w.is_const:
            raise UnsupportedError(f"op {op.name} ({op.kind}): filter {w.name} is {w.dtype}"
                                   f"{'' if w.is_const else ' (not constant)'}; it must be a "
                                   "constant int8 tensor")
        if np.any(w.quant.zero_point != 0):
            raise UnsupportedError(f"op {op.name}: filter {w.name} has a non-zero zero point")
        groups = conv_groups(op)
        if groups < 1:
            raise UnsupportedError(f"op {op.name}: groups must be >= 1, got {groups}")
        if (len(x.shape) != 4 or len(w.shape) != 4 or x.shape[3] != w.shape[3] * groups
                or w.shape[0] % groups != 0):
            raise UnsupportedError(
                f"op {op.name}: input {x.shape} and filter {w.shape} need NHWC/OHWI with input "
                f"channels = filter channels x groups ({groups}) and output channels a multiple "
                "of groups")
        if dtype == "int16":
            requant16.check_bias16(op, b, w, 0, ("int64", "int32"))
            _, shift = conv_requant(x, w, graph.tensor(op.outputs[0]))
            requant16.check_shifts16(op, shift, requant16.accumulator(graph, op))
            return
        check_bias(op, b, w, 0)
        conv_requant(x, w, graph.tensor(op.outputs[0]))

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # te_conv2d_1x1_inplace_s8: pixel by pixel (portable) or pixel pair by pixel pair
        # (SIMD) through a small scratch. 16x8 has no in-place kernel.
        if io_dtype(graph, op) != "int8":
            return []
        return [0] if is_pointwise(graph, op) else []

    def inplace_class(self, graph: Graph, op: Op) -> str | None:
        """The pointwise in-place kernel widens pixel pairs into its scratch; out of place,
        te_conv2d_1x1_s8 does so from 16 input channels on (TE_CONV_1X1_WIDEN_MIN_IC) and runs
        channel pairs below: "narrow" and "wide" inputs."""
        if not self.inplace_inputs(graph, op):
            return None
        return "narrow" if graph.tensor(op.inputs[0]).shape[3] < 16 else "wide"

    def inplace_offsets(self, graph: Graph, op: Op) -> list[tuple[int, int]]:
        """(input, byte offset of that input after the output's start) pairs at which
        te_conv2d_rows_inplace_s8 runs in place band by band, cheapest first
        (ops/rows_inplace.py); for the convolutions the pointwise in-place kernel does not
        take."""
        if io_dtype(graph, op) != "int8" or is_pointwise(graph, op):
            return []
        rows = rows_of(graph, op)
        return [(0, offset) for offset in rows.options()] if rows.in_domain() else []

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        # te_conv2d_rows_inplace_s8 (an inplace_offset mark) needs none.
        # te_conv2d_1x1_inplace_get_buffer_size: one output pixel (portable), or two input
        # pixels widened to int16 (SIMD, 4 bytes per input channel), whichever is larger.
        # te_conv2d_s8's im2col path (short kernel rows) needs none: its work space is the end
        # of its own output buffer, since a scratch would grow the arena where it peaks (a
        # model's first convolution, input and output the whole live set).
        if (op.attrs.get("inplace") is None or op.attrs.get("inplace_offset") is not None
                or io_dtype(graph, op) != "int8"):
            return 0
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        return max(out.shape[3], 4 * x.shape[3])

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        oh, ow, _, _ = window_padding(op, x.shape[1], x.shape[2], w.shape[1], w.shape[2])
        return [(x.shape[0], oh, ow, w.shape[0])]

    def macs(self, graph: Graph, op: Op) -> int:
        out = graph.tensor(op.outputs[0])
        w = graph.tensor(op.inputs[1])
        return out.size * w.shape[1] * w.shape[2] * w.shape[3]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = (list(inputs) + [None])[:3]
        assert x is not None and w is not None
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        oc, fh, fw, _ = wt.shape
        oh, ow, ph, pw = window_padding(op, xt.shape[1], xt.shape[2], fh, fw)
        acc = np.zeros((xt.shape[0], oh, ow, oc), np.int64)
        w64 = w.astype(np.int64)
        groups = conv_groups(op)
        gi, go = wt.shape[3], oc // groups  # input and output channels per group
        for ky, kx, win in padded_windows(x, xt.zero_point, oh, ow, fh, fw, op.attrs["stride"],
                                          op.attrs.get("dilation", (1, 1)), (ph, pw)):
            for g in range(groups):
                acc[..., g * go:(g + 1) * go] += (win[..., g * gi:(g + 1) * gi]
                                                  @ w64[g * go:(g + 1) * go, ky, kx, :].T)
        if b is not None:
            acc += b.astype(np.int64)
        mult, shift = conv_requant(xt, wt, ot)
        lo, hi = act_limits(op, ot)
        if ot.dtype == "int16":
            return [requant16.requantize16(acc, mult, shift, requant16.accumulator(graph, op),
                                           ot, lo, hi)]
        return [requantize_acc(acc, mult, shift, ot.zero_point, lo, hi)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        b = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
        oc, fh, fw, _ = wt.shape
        oh, ow, ph, pw = window_padding(op, xt.shape[1], xt.shape[2], fh, fw)
        sh, sw = op.attrs["stride"]
        dh, dw = op.attrs.get("dilation", (1, 1))
        mult, shift = compact_requant(*conv_requant(xt, wt, ot))
        lo, hi = act_limits(op, ot)
        # The band-by-band kernel (an inplace_offset mark) takes no scratch.
        inplace = op.attrs.get("inplace") is not None and op.attrs.get("inplace_offset") is None
        assert wt.data is not None
        if ot.dtype == "int16":
            acc = requant16.accumulator(graph, op)
            consts = requant16.weight_consts16(wt, b, mult, shift, acc)
            io_args = [Arg("tensor", op.inputs[0], "const int16_t"),
                       Arg("const", "filter", "const int8_t"),
                       Arg("const", "bias" if b is not None else "", requant16.bias_ctype16(acc)),
                       Arg("tensor", op.outputs[0], "int16_t")]
        else:
            consts = weight_consts(wt, b, mult, shift)
            io_args = [Arg("tensor", op.inputs[0], "const int8_t"),
                       Arg("const", "filter", "const int8_t"),
                       Arg("const", "bias" if b is not None else "", "const int32_t"),
                       Arg("tensor", op.outputs[0], "int8_t")]
        params: dict[str, CValue] = {
            "input": dims4(xt.shape), "filter": dims4(wt.shape), "output": dims4(ot.shape),
            "stride_h": sh, "stride_w": sw, "dilation_h": dh, "dilation_w": dw,
            "pad_h": ph, "pad_w": pw,
            "q": [-xt.zero_point, ot.zero_point, lo, hi],
            "rq": requant_init(mult),
            "groups": conv_groups(op),
        }
        # The call goes to the path's own entry point (simd_path), not the variant's dispatcher.
        # The band-by-band driver (te_conv2d_rows_inplace_s8) keeps the dispatcher: a band's
        # im2col choice depends on the room it has, which differs from band to band.
        kernel = self.kernel(graph, op)
        if kernel in PATH_VARIANTS:
            kernel = simd_path(params, mult, shift, b.data if b is not None else None,
                               PATH_VARIANTS[kernel])
        return OpEmission(
            kernel=kernel,
            params_type="te_conv2d_params_t",
            params=params,
            args=io_args + ([Arg("scratch", "", "int8_t")] if inplace else []),
            consts=consts,
            sources=["te_common.h", "te_simd.h", "te_requant16.h", "te_conv.h", "te_conv.c"]
            + (ROWS_SOURCES if op.attrs.get("inplace_offset") is not None else []),
            scratch_bytes=self.scratch_bytes(graph, op),
        )


# -- interop: ONNX import and QDQ export ----------------------------------------------------

def _conv_from_onnx(b: OnnxBuilder, i: int, node: NodeProto) -> None:
    from ..frontend import onnx_ops as ox
    a = ox.node_attrs(node)
    x = b.activation(node.input[0], rank=(4,))
    w = b.const(node.input[1], "weight")
    if w.ndim != 4:
        raise ox.Unsupported(f"weight shape {w.shape}: only 2-D convolution is supported")
    _, cin, ih, iw = b.shape(x)
    groups, cout = int(a.get("group", 1)), w.shape[0]
    bias = ox.bias_of(b, node, cout)
    k = (w.shape[2], w.shape[3])
    stride, dil = ox.pairs(a, "strides", 1), ox.pairs(a, "dilations", 1)
    same = ox.same_pads((ih, iw), k, stride, dil)
    padding, pads = ox.pad_mode(ox.onnx_pads(a, same), same)
    tail = ox.fold_tail(b, node.output[0], cout, affine=True)
    w, bias = ox.apply_tail(tail, w, bias)
    if pads is not None:
        x = ox.insert_pad(b, node, x, pads)
    attrs: dict[str, Any] = {"stride": stride, "dilation": dil, "padding": padding,
                             "activation": tail.activation}
    depthwise = groups > 1 and groups == cin
    if depthwise:
        kind, filt = "DEPTHWISE_CONV_2D", w.transpose(1, 2, 3, 0)  # (C*m,1,kh,kw) -> 1HW(C*m)
        attrs["depth_multiplier"] = cout // cin
    else:
        kind, filt = "CONV_2D", w.transpose(0, 2, 3, 1)  # OIHW -> OHWI, I = Cin/groups
        attrs["groups"] = groups
    op_name = node.name or f"conv_{i}"
    wname = b.add_const(f"{op_name}.filter", filt)
    bname = b.add_const(f"{op_name}.bias", bias) if bias is not None else ""
    b.emit(kind, node, [x, wname, bname], tail.output, attrs)


def conv_to_qdq(b: QdqBuilder, op: Op) -> str:
    from ..quantize import qdq as qx
    from .depthwise import depth_multiplier

    w = b.graph.tensor(op.inputs[1])
    assert w.data is not None
    _, fh, fw, _ = w.shape
    if op.kind == "CONV_2D":
        weights, group = w.data.transpose(0, 3, 1, 2), int(op.attrs.get("groups", 1))
    else:  # depthwise 1HW(C*m) -> (C*m, 1, H, W), one group per input channel
        weights = w.data[0].transpose(2, 0, 1)[:, None]
        group = w.shape[3] // depth_multiplier(b.graph, op)
    wname = b.const_dq(w, weights, 0, np.int8)
    return b.node("Conv", [b.dequantized(op.inputs[0]), wname, *qx.bias_inputs(b, op)], op.name,
                  kernel_shape=[fh, fw], strides=list(op.attrs["stride"]),
                  dilations=list(op.attrs.get("dilation", (1, 1))),
                  pads=qx.window_pads(op, b.graph, fh, fw), group=group)
