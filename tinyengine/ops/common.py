"""Helpers shared by the op definitions: TFLite's padding rule, requantisation, activations, and
the small pieces of TFLite's schema (options tables, enums) that the ops' TFLite hooks read and
write."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import tflite

from .. import quant
from ..errors import UnsupportedError
from ..ir import QRANGE, Graph, Op, Tensor
from .base import Arg, ConstArray, CValue, TfliteImport, TfliteLowering

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def where(op: Op) -> str:
    """How error messages name an op: "op conv_3 (CONV_2D)"."""
    return f"op {op.name} ({op.kind})"


def out_size(in_size: int, filt: int, stride: int, dilation: int, padding: str) -> int:
    """TFLite's ComputeOutSize."""
    eff = (filt - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - eff) // stride


def pad_before(in_size: int, filt: int, stride: int, dilation: int, out: int) -> int:
    """TFLite's ComputePaddingWithOffset: the top/left padding (the odd pixel goes bottom/right)."""
    eff = (filt - 1) * dilation + 1
    total = max((out - 1) * stride + eff - in_size, 0)
    return total // 2


def window_padding(op: Op, in_h: int, in_w: int, fh: int, fw: int) -> tuple[int, int, int, int]:
    """(out_h, out_w, pad_h, pad_w) for a windowed op with stride/dilation/padding attrs.

    A patch of a windowed op (memory/patch.py) carries its geometry explicitly in
    attrs["window"] = (out_h, out_w, pad_h, pad_w): its padding is only what falls outside the
    real image, which SAME/VALID cannot express.
    """
    if "window" in op.attrs:
        oh, ow, ph, pw = op.attrs["window"]
        return int(oh), int(ow), int(ph), int(pw)
    sh, sw = op.attrs["stride"]
    dh, dw = op.attrs.get("dilation", (1, 1))
    padding = op.attrs["padding"]
    oh = out_size(in_h, fh, sh, dh, padding)
    ow = out_size(in_w, fw, sw, dw, padding)
    if padding == "VALID":
        return oh, ow, 0, 0
    return oh, ow, pad_before(in_h, fh, sh, dh, oh), pad_before(in_w, fw, sw, dw, ow)


def require_inputs(op: Op, roles: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """The op's input list holds the inputs named by `roles`, each present, then at most the
    `optional` ones ("" for an absent one, as TFLite's index -1)."""
    where = f"op {op.name} ({op.kind})"
    if not len(roles) <= len(op.inputs) <= len(roles) + len(optional):
        allowed = ", ".join(roles) + "".join(f"[, {r}]" for r in optional)
        raise UnsupportedError(f"{where}: takes inputs ({allowed}), got {len(op.inputs)} "
                               f"inputs {op.inputs}")
    for k, role in enumerate(roles):
        if not op.inputs[k]:
            raise UnsupportedError(f"{where}: its {role} (input {k}) is absent (tensor index "
                                   "-1); this input is required")


def check_window(op: Op) -> None:
    """Strides and dilations of a windowed op are positive, padding SAME or VALID: a zero
    stride divides by zero in the shape rule, a negative one or a negative dilation makes the
    kernels read before the input."""
    where = f"op {op.name} ({op.kind})"
    for key in ("stride", "dilation"):
        value = op.attrs.get(key, (1, 1))
        if len(value) != 2 or min(int(v) for v in value) < 1:
            raise UnsupportedError(f"{where}: {key} {tuple(value)} must be two integers >= 1")
    if op.attrs.get("padding") not in ("SAME", "VALID"):
        raise UnsupportedError(f"{where}: padding {op.attrs.get('padding')} is not SAME or "
                               "VALID")


def check_bias(op: Op, bias: Tensor | None, weights: Tensor, axis: int) -> None:
    """A bias, if any, is a constant int32 vector of one value per output channel (the kernels
    read weights.shape[axis] values from it), and no accumulator can leave int32: the kernels
    add bias[c] + sum((x - zp) * w) in int32, |x - zp| <= 255, so |bias[c]| + 255 * sum |w[c]|
    must stay within int32 (beyond it C's signed overflow is undefined)."""
    channels = weights.shape[axis]
    if bias is None:
        return
    if bias.dtype != "int32" or not bias.is_const or tuple(bias.shape) != (channels,):
        raise UnsupportedError(f"op {op.name} ({op.kind}): bias {bias.name} {bias.dtype} "
                               f"{bias.shape} must be a constant int32 vector of the "
                               f"{channels} output channels")
    if bias.data is None or weights.data is None:
        return  # weights not known yet (a network description): nothing to bound
    w = np.moveaxis(np.abs(weights.data.astype(np.int64)), axis, 0).reshape(channels, -1)
    bound = np.abs(bias.data.astype(np.int64)) + 255 * w.sum(axis=1)
    if np.any(bound > quant.INT32_MAX):
        c = int(np.argmax(bound > quant.INT32_MAX))
        raise UnsupportedError(
            f"op {op.name} ({op.kind}): bias {bias.name}[{c}] = {int(bias.data[c])} with the "
            f"weights of channel {c} of {weights.name} can overflow the int32 accumulator "
            f"(|bias| + 255 * sum |w| = {int(bound[c])} > 2^31 - 1); the bias is out of range")


# C element types and kernel-name suffixes of the activation types.
CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
         "float32": "float"}
SUFFIX = {"int8": "s8", "int16": "s16"}


def qrange(t: Tensor | str) -> tuple[int, int]:
    """(min, max) of a quantised activation tensor's type (or of a dtype name)."""
    dtype = t if isinstance(t, str) else t.dtype
    return QRANGE[dtype]


def clamp_to(acc: np.ndarray, t: Tensor | str, lo: int | None = None,
             hi: int | None = None) -> np.ndarray:
    """`acc` clamped to [lo, hi] (default: the type's range) and cast to the tensor's type."""
    qmin, qmax = qrange(t)
    dtype = t if isinstance(t, str) else t.dtype
    return np.clip(acc, qmin if lo is None else lo, qmax if hi is None else hi).astype(dtype)


def io_dtype(graph: Graph, op: Op) -> str:
    """The activation type an op runs on: its first output's (int8 or int16)."""
    return graph.tensor(op.outputs[0]).dtype


def check_io(graph: Graph, op: Op, n_act_inputs: int = 1,
             dtypes: tuple[str, ...] = ("int8",), symmetric_int16: bool = True) -> str:
    """Activation inputs and outputs are quantised per tensor, all of one type among `dtypes`;
    int16 ones symmetric (zero point 0), as TFLM's 16x8 kernels require. Returns the type."""
    for k, name in enumerate(op.inputs[:n_act_inputs]):
        if not name:
            raise UnsupportedError(f"op {op.name} ({op.kind}): input {k} is absent (tensor "
                                   "index -1); this input is required")
    if len(op.inputs) < n_act_inputs:
        raise UnsupportedError(f"op {op.name} ({op.kind}): takes {n_act_inputs} input(s), got "
                               f"{len(op.inputs)}")
    names = op.inputs[:n_act_inputs] + op.outputs
    first = graph.tensors[names[0]].dtype
    for name in names:
        t = graph.tensors[name]
        if t.dtype not in dtypes or t.quant is None:
            raise UnsupportedError(
                f"op {op.name} ({op.kind}): tensor {name} is {t.dtype}"
                f"{'' if t.quant is not None else ' without quantisation'}; this op runs on "
                f"{' or '.join(dtypes)} quantised activations")
        if t.dtype != first:
            raise UnsupportedError(
                f"op {op.name} ({op.kind}): tensor {name} is {t.dtype} where {names[0]} is "
                f"{first}; this op's inputs and outputs must have one type")
        if t.quant.per_channel:
            raise UnsupportedError(f"op {op.name}: activation {name} is quantised per channel")
        if symmetric_int16 and t.dtype == "int16" and t.zero_point != 0:
            raise UnsupportedError(
                f"op {op.name} ({op.kind}): int16 tensor {name} has zero point "
                f"{t.zero_point}; TFLite's 16x8 kernels take symmetric int16 activations "
                "(zero point 0)")
    return first


def check_int8_io(graph: Graph, op: Op, n_act_inputs: int = 1) -> None:
    """Activation inputs and outputs must be int8 and quantised per tensor."""
    for k, name in enumerate(op.inputs[:n_act_inputs]):
        if not name:
            raise UnsupportedError(f"op {op.name} ({op.kind}): input {k} is absent (tensor "
                                   "index -1); this input is required")
    if len(op.inputs) < n_act_inputs:
        raise UnsupportedError(f"op {op.name} ({op.kind}): takes {n_act_inputs} input(s), got "
                               f"{len(op.inputs)}")
    for name in op.inputs[:n_act_inputs] + op.outputs:
        t = graph.tensors[name]
        if t.dtype != "int8" or t.quant is None:
            raise UnsupportedError(
                f"op {op.name} ({op.kind}): tensor {name} is {t.dtype}; only int8 quantised "
                "activations are supported (quantise the model to int8)")
        if t.quant.per_channel:
            raise UnsupportedError(f"op {op.name}: activation {name} is quantised per channel")


def check_activation(op: Op) -> None:
    act = op.attrs.get("activation", "NONE")
    if act not in ACTIVATIONS:
        raise UnsupportedError(f"op {op.name} ({op.kind}): fused activation {act} not supported")


def act_limits(op: Op, out: Tensor) -> tuple[int, int]:
    """The fused activation's limits in the output's units, within the output type's range."""
    qmin, qmax = QRANGE.get(out.dtype, QRANGE["int8"])
    return quant.activation_range(op.attrs.get("activation", "NONE"), out.scale, out.zero_point,
                                  qmin, qmax)


def conv_requant(inp: Tensor, weights: Tensor, out: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (or per-tensor) output multipliers as TFLM's PopulateConvolutionQuant...Params.

    effective_scale = double(input_scale) * double(filter_scale[c]) / double(output_scale).
    """
    assert weights.quant is not None
    real = (np.float64(inp.scale) * weights.quant.scale.astype(np.float64)) / np.float64(out.scale)
    return quant.quantize_multipliers(real)


def compact_requant(mult: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The requantisation tables as stored in flash: one (multiplier, shift) pair where every
    output channel has the same one (a per-tensor layer, or per-channel scales that happen to
    agree), else one pair per channel. The kernels read element 0 for every channel when
    te_requant_t.per_channel is 0, which requant_init sets exactly for one pair."""
    m, s = np.asarray(mult).ravel(), np.asarray(shift).ravel()
    if m.size > 1 and (m == m[0]).all() and (s == s[0]).all():
        return m[:1], s[:1]
    return m, s


def requant_init(mult: np.ndarray) -> list[CValue]:
    """The te_requant_t initialiser of an op's "mult" and "shift" arrays (requant_consts):
    per_channel is 1 where more than one pair is stored."""
    return ["@mult", "@shift", int(np.asarray(mult).size > 1)]


def requant_consts(mult: np.ndarray, shift: np.ndarray) -> list[ConstArray]:
    """The multiplier (int32_t) and shift (int8_t) arrays of te_requant_t.

    quant.quantize_multiplier gives shifts in [-31, 31] (it rejects larger left shifts and
    zeroes smaller right ones), so int8_t holds every one, for the int32 and the int64
    (16x8) rules alike; a word per channel would waste 3 bytes of each."""
    s = np.asarray(shift).ravel()
    assert s.size == 0 or (s.min() >= -31 and s.max() <= 31), s
    return [ConstArray("mult", "int32_t", np.asarray(mult).ravel().astype(np.int32)),
            ConstArray("shift", "int8_t", s.astype(np.int8))]


def weight_consts(weights: Tensor, bias: Tensor | None, mult: np.ndarray, shift: np.ndarray,
                  weights_name: str = "filter") -> list[ConstArray]:
    """The flash arrays of a weighted op: weights, requantisation tables, and the bias if any.
    The tables are stored as given: callers that compact them (compact_requant) say so in the
    params with requant_init."""
    assert weights.data is not None
    consts = [ConstArray(weights_name, "int8_t", weights.data.ravel()),
              *requant_consts(mult, shift)]
    if bias is not None:
        assert bias.data is not None
        consts.append(ConstArray("bias", "int32_t", bias.data.ravel()))
    return consts


def clamp_int8(acc: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(acc, lo, hi).astype(np.int8)


def dims4(shape: tuple[int, ...]) -> list[int]:
    """NHWC dims of a 4-D tensor as a C initialiser {n, h, w, c}."""
    assert len(shape) == 4, shape
    return [int(s) for s in shape]


# -- TFLite schema helpers for the ops' from_tflite / to_tflite hooks --------------------------

TFLITE_ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH",
                     5: "SIGN_BIT"}
TFLITE_PADDING = {0: "SAME", 1: "VALID"}


def tflite_options(operator: Any, name: str) -> Any:
    """The operator's builtin options table read as `tflite.<name>` (e.g. "Conv2DOptions"), or
    None when the operator has none."""
    table = operator.BuiltinOptions()
    if table is None:
        return None
    opts = getattr(tflite, name)()
    opts.Init(table.Bytes, table.Pos)
    return opts


def tflite_const(inputs: list[Any], i: int, what: str) -> np.ndarray:
    """The values of constant input `i` (a parameter such as axes or paddings)."""
    if len(inputs) <= i or inputs[i] is None or inputs[i].data is None:
        raise UnsupportedError(f"{what} must be a constant tensor")
    data = inputs[i].data
    assert data is not None
    return data


def keep_inputs(n: int, inputs: list[Any]) -> list[int | None]:
    """The first n input positions (None where the operator has no such input)."""
    return [i if i < len(inputs) and inputs[i] is not None else None for i in range(n)]


def tflite_import(attrs: dict[str, Any], n: int, inputs: list[Any]) -> TfliteImport:
    return TfliteImport(attrs, keep_inputs(n, inputs))


def fb_activation(fb: ModuleType, op: Op) -> int:
    return int(getattr(fb.ActivationFunctionType, op.attrs.get("activation", "NONE")))


def fb_padding(fb: ModuleType, op: Op) -> int:
    return int(getattr(fb.Padding, op.attrs["padding"]))


def activation_options_import(operator: Any, options: str, inputs: list[Any],
                              n: int = 2) -> TfliteImport:
    """attrs of an op whose only option is a fused activation (ADD, SUB, MUL): `options` names
    its options table, e.g. "AddOptions"."""
    o = tflite_options(operator, options)
    act = TFLITE_ACTIVATION[o.FusedActivationFunction()] if o else "NONE"
    return tflite_import({"activation": act}, n, inputs)


def activation_options_lowering(fb: ModuleType, op: Op, options: str) -> TfliteLowering:
    """The inverse of activation_options_import."""
    o = getattr(fb, f"{options}T")()
    o.fusedActivationFunction = fb_activation(fb, op)
    return TfliteLowering(options, o)


def operand_args(graph: Graph, op: Op, slots: tuple[str, str] = ("input1", "input2")
                 ) -> tuple[list[Arg], list[ConstArray]]:
    """Kernel arguments of a two-operand op (operands, then the output); a constant operand goes
    to flash as the const array named by its slot."""
    consts: list[ConstArray] = []
    args: list[Arg] = []
    for slot, name in zip(slots, op.inputs):
        t = graph.tensor(name)
        ctype = CTYPE[t.dtype]
        if t.is_const:
            assert t.data is not None, f"constant {name} has no values"
            consts.append(ConstArray(slot, ctype, t.data.ravel()))
            args.append(Arg("const", slot, f"const {ctype}"))
        else:
            args.append(Arg("tensor", name, f"const {ctype}"))
    args.append(Arg("tensor", op.outputs[0], CTYPE[io_dtype(graph, op)]))
    return args, consts
