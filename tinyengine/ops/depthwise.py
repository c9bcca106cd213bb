"""DEPTHWISE_CONV_2D: int8 depthwise convolution with any depth multiplier, and 16x8 (int16
activations, int8 weights, int64 bias; tinyengine/ops/requant16.py).

Reference semantics: TFLite's reference_integer_ops::DepthwiseConvPerChannel, which TFLM runs
(its int16 overload for 16x8: int64 sums and the int64 requantisation rule).
Output channel oc = ic * multiplier + m reads input channel ic through filter channel oc. The
filter's zero point is never applied (TFLM ignores it), so a non-zero one is rejected. Multipliers
come from PopulateConvolutionQuantizationParams: double(input_scale) * double(filter_scale[c]) /
double(output_scale), the same rule as CONV_2D.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

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
from .conv import conv_to_qdq, conv_window, padded_windows, requantize_acc
from .rows_inplace import rows_of
from .simd_rq import rq_channels_ok

if TYPE_CHECKING:
    from types import ModuleType

    from ..quantize.qdq import QdqBuilder


def depth_multiplier(graph: Graph, op: Op) -> int:
    """The op's depth multiplier; the filter's channel count is the authority when it is absent."""
    x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    return int(op.attrs.get("depth_multiplier", w.shape[3] // max(x.shape[3], 1)))


def use_3x3_kernel(multiplier: int, fh: int, fw: int, dilation: tuple[int, int],
                   pad: tuple[int, int]) -> bool:
    """Domain of te_depthwise_conv_3x3_s8; the C kernel checks the same conditions."""
    return (multiplier == 1 and (fh, fw) == (3, 3) and tuple(dilation) == (1, 1)
            and 0 <= pad[0] <= 1 and 0 <= pad[1] <= 1)


# te_dw_small_pixels's bound on the padded plane the small-plane in-place path copies.
SMALL_PLANE_MAX_PIXELS = 64


# The band-by-band in-place driver and its front end (csrc/te_depthwise_rows.h).
ROWS_SOURCES = ["te_rows_inplace.h", "te_rows_inplace.c", "te_depthwise_rows.h",
                "te_depthwise_rows.c"]


def small_plane(h: int, w: int, c: int, multiplier: int, fh: int, fw: int,
                stride: tuple[int, int], dilation: tuple[int, int], pad: tuple[int, int],
                input_zero_point: int) -> bool:
    """te_dw_small_pixels's domain: the in-place layers whose ring of delayed outputs does not
    fit the plane and whose padded plane is small enough to copy four channels of."""
    return (multiplier == 1 and (fh, fw) == (3, 3) and tuple(dilation) == (1, 1)
            and tuple(stride) == (1, 1) and tuple(pad) == (1, 1) and c >= 4
            and 4 * (w + 2) > h * w and (h + 2) * (w + 2) <= SMALL_PLANE_MAX_PIXELS
            and -128 <= input_zero_point <= 127)


def inplace_scratch_bytes(h: int, w: int, c: int, multiplier: int, fh: int, fw: int,
                          stride: tuple[int, int], dilation: tuple[int, int],
                          pad: tuple[int, int], input_zero_point: int) -> int:
    """te_depthwise_conv_inplace_get_buffer_size: one output plane, or on a small plane whose
    ring of delayed outputs does not fit it the padded four-channel copy of the small-plane path
    (te_dw_small_pixels's domain, checked the same way here)."""
    small = small_plane(h, w, c, multiplier, fh, fw, stride, dilation, pad, input_zero_point)
    return max(h * w, 4 * (h + 2) * (w + 2)) if small else h * w


def inplace_path(h: int, w: int, c: int, multiplier: int, fh: int, fw: int,
                 stride: tuple[int, int], dilation: tuple[int, int], pad: tuple[int, int],
                 input_offset: int) -> str:
    """The path of te_depthwise_conv_inplace_s8 a layer inside the fast requantisation's domain
    takes: "small", "ring3", "rows", "ring" or "plane" (te_depthwise_path_s8's in-place
    branch)."""
    fast3 = (fh, fw) == (3, 3) and tuple(dilation) == (1, 1)
    stride, pad = (stride[0], stride[1]), (pad[0], pad[1])
    if small_plane(h, w, c, multiplier, fh, fw, stride, dilation, pad, -input_offset):
        return "small"
    if (fast3 and stride == (1, 1) and pad == (1, 1) and c >= 4
            and -127 <= input_offset <= 128 and 4 * (3 * w + 4) <= h * w):
        return "ring3"  # te_dw_inplace_ring3: three padded rows inside the plane
    if fast3 and stride == (1, 1) and pad[0] <= 1 and c >= 4 and 8 * w <= h * w:
        return "rows"  # te_dw_inplace_rows: two rows of four channels inside the plane
    if stride == (1, 1) and c >= 4 and 4 * (pad[0] * w + pad[1] + 1) <= h * w:
        return "ring"  # te_dw_inplace_ring: the ring of delayed outputs inside the plane
    return "plane"


# |filter * (input + offset)| <= 128 * 255 per term (TE_DW_MAX_TERM).
MAX_TERM = 128 * 255


def simd_path(params: dict[str, Any], mult: np.ndarray, shift: np.ndarray,
              bias: np.ndarray | None, variant: str) -> str:
    """The entry point of the path the int8 kernel `variant` ("generic", "3x3" or "inplace")
    takes in a SIMD build, from the layer's params as emitted (the C struct's fields) and its
    stored requantisation tables and bias: the twin of te_depthwise_path_s8 (te_depthwise.h;
    tests/test_kernel_paths.py holds the two equal). The generated code calls it instead of the
    variant's run-time dispatcher, so only the paths the model takes are linked. A build without
    SIMD runs the variant's portable loop under every one of these names."""
    _, _, _, ic = params["input"]
    _, fh, fw, _ = params["filter"]
    _, h, w, c = params["output"]
    m = params["depth_multiplier"]
    stride = (params["stride_h"], params["stride_w"])
    dilation = (params["dilation_h"], params["dilation_w"])
    pad = (params["pad_h"], params["pad_w"])
    input_offset = params["q"][0]
    ok = rq_channels_ok(mult, shift, bias, c, fh * fw, MAX_TERM)
    fast3 = (fh, fw) == (3, 3) and dilation == (1, 1)
    if variant == "inplace":
        if not ok.all():
            return "te_depthwise_conv_inplace_portable_s8"
        path = inplace_path(h, w, c, m, fh, fw, stride, dilation, pad, input_offset)
        return f"te_depthwise_conv_inplace_{path}_s8"
    if ic == 1 and m % 4 == 0 and dilation[1] == 1 and stride[1] in (1, 2) and not fast3:
        path = "pairs"  # te_dw_pairs_c1
    elif fast3 and m == 1:
        path = "3x3_w9" if variant == "3x3" else "w9"
    else:
        path = "quads"
    if ok.all():
        return f"te_depthwise_conv_{path}_s8"
    if ok.any():
        return f"te_depthwise_conv_{path}_partial_s8"
    return f"te_depthwise_conv_{'3x3_' if variant == '3x3' else ''}portable_s8"


# The int8 variants (the `kernel` hook's names) simd_path chooses among.
PATH_VARIANTS = {"te_depthwise_conv_s8": "generic", "te_depthwise_conv_3x3_s8": "3x3",
                 "te_depthwise_conv_inplace_s8": "inplace"}


@register
class DepthwiseConv2D(OpDef):
    kind = "DEPTHWISE_CONV_2D"
    dtypes = ("int8", "int16")
    patch = "windowed"
    # ONNX's Conv with groups == input channels imports as this op (CONV_2D's from_onnx).
    not_applicable = frozenset({"from_onnx"})

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "DepthwiseConv2DOptions")
        # The option is unreliable in old converters; the filter's channel count is the truth.
        x, w = inputs[0], inputs[1]
        return tflite_import({"stride": (o.StrideH(), o.StrideW()),
                              "padding": TFLITE_PADDING[o.Padding()],
                              "dilation": (o.DilationHFactor(), o.DilationWFactor()),
                              "activation": TFLITE_ACTIVATION[o.FusedActivationFunction()],
                              "depth_multiplier": max(1, w.shape[-1] // max(1, x.shape[-1]))
                              if x is not None and w is not None else 1},  # absent: see check
                             3, inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.DepthwiseConv2DOptionsT()
        o.padding = fb_padding(fb, op)
        o.strideH, o.strideW = op.attrs["stride"]
        o.dilationHFactor, o.dilationWFactor = op.attrs.get("dilation", (1, 1))
        o.depthMultiplier = int(op.attrs["depth_multiplier"])
        o.fusedActivationFunction = fb_activation(fb, op)
        # TFLM's depthwise Prepare segfaults on a bias index of -1 but reads a 2-input node as
        # "no bias"; CONV_2D and FULLY_CONNECTED take either form.
        return TfliteLowering("DepthwiseConv2DOptions", o, omit_absent_tail=True)

    def to_qdq(self, b: QdqBuilder, op: Op) -> str:
        return conv_to_qdq(b, op)

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule(weights={1: 3})

    def window(self, graph: Graph, op: Op) -> Window:
        return conv_window(graph, op)

    def kernel(self, graph: Graph, op: Op) -> str:
        if io_dtype(graph, op) == "int16":  # one generic 16x8 kernel
            if op.attrs.get("inplace") is not None:
                raise UnsupportedError(f"op {op.name} ({op.kind}): no in-place 16x8 kernel")
            return "te_depthwise_conv_s16"
        if op.attrs.get("inplace_offset") is not None:  # row by row, input at an offset
            return "te_depthwise_conv_rows_inplace_s8"
        if op.attrs.get("inplace") is not None:
            return "te_depthwise_conv_inplace_s8"
        x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        _, fh, fw, _ = w.shape
        _, _, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
        fast = use_3x3_kernel(depth_multiplier(graph, op), fh, fw,
                              op.attrs.get("dilation", (1, 1)), (ph, pw))
        return "te_depthwise_conv_3x3_s8" if fast else "te_depthwise_conv_s8"


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
            raise UnsupportedError(f"op {op.name} ({op.kind}): filter {w.name} has a non-zero "
                                   "zero point (TFLite requires symmetric depthwise weights)")
        if w.quant.per_channel and w.quant.axis != 3:
            raise UnsupportedError(f"op {op.name} ({op.kind}): filter {w.name} is quantised "
                                   f"along axis {w.quant.axis}; expected axis 3")
        if len(x.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
            raise UnsupportedError(f"op {op.name} ({op.kind}): need an NHWC input and a 1HWC "
                                   f"filter, got {x.shape} and {w.shape}")
        m = depth_multiplier(graph, op)
        if m < 1 or w.shape[3] != x.shape[3] * m:
            raise UnsupportedError(
                f"op {op.name} ({op.kind}): filter has {w.shape[3]} channels but input channels "
                f"{x.shape[3]} x depth multiplier {m} = {x.shape[3] * m}")
        if dtype == "int16":  # TFLM's 16x8 depthwise kernel reads an int64 bias only
            requant16.check_bias16(op, b, w, 3, ("int64",))
            _, shift = conv_requant(x, w, graph.tensor(op.outputs[0]))
            requant16.check_shifts16(op, shift, "int64")
            return
        check_bias(op, b, w, 3)
        conv_requant(x, w, graph.tensor(op.outputs[0]))

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        x, w = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
        oh, ow, _, _ = window_padding(op, x.shape[1], x.shape[2], w.shape[1], w.shape[2])
        return [(x.shape[0], oh, ow, w.shape[3])]

    def macs(self, graph: Graph, op: Op) -> int:
        w = graph.tensor(op.inputs[1])
        return graph.tensor(op.outputs[0]).size * w.shape[1] * w.shape[2]

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        # te_depthwise_conv_inplace_s8: one channel at a time through a plane of scratch (a
        # padded four-channel plane on small planes, scratch_bytes). With a single channel the
        # scratch costs what the aliasing saves, so it is not worth it.
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        ok = depth_multiplier(graph, op) == 1 and x.shape == out.shape and x.shape[3] > 1
        return [0] if ok and out.dtype == "int8" else []  # 16x8: no in-place kernel

    def inplace_class(self, graph: Graph, op: Op) -> str | None:
        """Which path of te_depthwise_conv_inplace_s8 the layer takes (inplace_path):
        "small_plane" (a padded four-channel copy), "ring3" (three padded rows), "rows" (two
        rows of four channels), "ring" (four channels through a ring of delayed outputs) or
        "plane" (a channel at a time through one plane of scratch). Each is its own class: one
        figure for ring3, rows and ring together (0.98) had the planner run person_detect's
        6x6x128 layers in place at 1.36x their out-of-place instructions."""
        if not self.inplace_inputs(graph, op):
            return None
        x, w, out = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                     graph.tensor(op.outputs[0]))
        _, fh, fw, _ = w.shape
        _, h, wd, c = out.shape
        _, _, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
        path = inplace_path(h, wd, c, 1, fh, fw, tuple(op.attrs["stride"]),
                            op.attrs.get("dilation", (1, 1)), (ph, pw), -int(x.zero_point))
        return "small_plane" if path == "small" else path

    def inplace_offsets(self, graph: Graph, op: Op) -> list[tuple[int, int]]:
        """(input, byte offset of that input after the output's start) pairs at which
        te_depthwise_conv_rows_inplace_s8 runs in place band by band, cheapest first:
        for the layers te_depthwise_conv_inplace_s8 does not take, a stride of 2 above all."""
        if graph.tensor(op.outputs[0]).dtype != "int8" or self.inplace_inputs(graph, op):
            return []
        rows = rows_of(graph, op)
        return [(0, offset) for offset in rows.options()] if rows.in_domain() else []

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        x, w, out = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                     graph.tensor(op.outputs[0]))
        if (op.attrs.get("inplace") is None or op.attrs.get("inplace_offset") is not None
                or out.dtype != "int8"):
            return 0  # te_depthwise_conv_rows_inplace_s8 (an inplace_offset mark) needs none
        _, fh, fw, _ = w.shape
        _, _, ph, pw = window_padding(op, x.shape[1], x.shape[2], fh, fw)
        return inplace_scratch_bytes(out.shape[1], out.shape[2], out.shape[3],
                                     depth_multiplier(graph, op), fh, fw, op.attrs["stride"],
                                     op.attrs.get("dilation", (1, 1)), (ph, pw), x.zero_point)

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, w, b = (list(inputs) + [None])[:3]
        assert x is not None and w is not None
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        _, fh, fw, oc = wt.shape
        m = depth_multiplier(graph, op)
        oh, ow, ph, pw = window_padding(op, xt.shape[1], xt.shape[2], fh, fw)
        acc = np.zeros((xt.shape[0], oh, ow, oc), np.int64)
        w64 = w.astype(np.int64)
        for ky, kx, win in padded_windows(x, xt.zero_point, oh, ow, fh, fw, op.attrs["stride"],
                                          op.attrs.get("dilation", (1, 1)), (ph, pw)):
            # np.repeat maps input channel ic to output channels ic*m .. ic*m + m-1.
            acc += np.repeat(win, m, axis=3) * w64[0, ky, kx, :]
        if b is not None:
            acc += b.astype(np.int64)
        mult, shift = conv_requant(xt, wt, ot)
        lo, hi = act_limits(op, ot)
        if ot.dtype == "int16":
            return [requant16.requantize16(acc, mult, shift, "int64", ot, lo, hi)]
        return [requantize_acc(acc, mult, shift, ot.zero_point, lo, hi)]

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, wt, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]),
                      graph.tensor(op.outputs[0]))
        b = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
        _, fh, fw, _ = wt.shape
        m = depth_multiplier(graph, op)
        oh, ow, ph, pw = window_padding(op, xt.shape[1], xt.shape[2], fh, fw)
        sh, sw = op.attrs["stride"]
        dh, dw = op.attrs.get("dilation", (1, 1))
        mult, shift = compact_requant(*conv_requant(xt, wt, ot))
        lo, hi = act_limits(op, ot)
        assert wt.data is not None and wt.quant is not None
        # The band-by-band kernel (an inplace_offset mark) takes no scratch.
        inplace = op.attrs.get("inplace") is not None and op.attrs.get("inplace_offset") is None
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
        params: dict[str, CValue] = {
            "input": dims4(xt.shape), "filter": dims4(wt.shape), "output": dims4(ot.shape),
            "depth_multiplier": m,
            "stride_h": sh, "stride_w": sw, "dilation_h": dh, "dilation_w": dw,
            "pad_h": ph, "pad_w": pw,
            "q": [-xt.zero_point, ot.zero_point, lo, hi],
            "rq": requant_init(mult),
        }
        # The call goes to the path's own entry point (simd_path), not the variant's dispatcher.
        kernel = self.kernel(graph, op)
        if kernel in PATH_VARIANTS:
            bias = b.data if b is not None else None
            kernel = simd_path(params, mult, shift, bias, PATH_VARIANTS[kernel])
        return OpEmission(
            kernel=kernel,
            params_type="te_depthwise_conv_params_t",
            params=params,
            args=io_args + ([Arg("scratch", "", "int8_t")] if inplace else []),
            consts=consts,
            sources=["te_common.h", "te_simd.h", "te_requant16.h", "te_depthwise.h",
                     "te_depthwise.c"]
            + (ROWS_SOURCES if op.attrs.get("inplace_offset") is not None else []),
            scratch_bytes=self.scratch_bytes(graph, op),
        )
