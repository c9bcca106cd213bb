"""The validation pass (tinyengine.ir.verify) refuses corrupted but self-consistent models.

Each case edits a real shared model through TFLite's flatbuffer object API, the way a damaged or
hostile file would differ, and checks that reading it (which verifies the graph before anything
is emitted) fails with one TinyEngineError that names the op or tensor and the rule, instead of
compiling into C that reads past a const array, shifts by more than 31 bits, or crashes with a
Python traceback. Issue 17, item 1: before these rules, every case here compiled (or crashed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import TinyEngineError
from tinyengine.frontend.tflite_reader import parse_tflite

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
if not MODELS.is_dir():
    MODELS = Path("/work/shared/models")
KWS = "tiny_kws_ref_model.tflite"  # CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL, FC, SOFTMAX
HELLO = "tflm_hello_world_int8.tflite"  # three FULLY_CONNECTED


def _edited(name: str, edit: Callable[[Any, Any], None]) -> bytes:
    pytest.importorskip("tflite_micro")
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    path = MODELS / name
    if not path.is_file():
        pytest.skip(f"shared model {name} not present")
    # A private copy: the object API's arrays are views on the buffer it unpacks.
    model = fb.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    edit(fb, model)
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _refused(buf: bytes, *words: str) -> str:
    with pytest.raises(TinyEngineError) as e:
        parse_tflite(buf, "edited.tflite")
    message = str(e.value)
    assert "\n" not in message
    for w in words:
        assert w in message, message
    return message


def _op_tensor(model: Any, op: int, pos: int, output: bool = False) -> Any:
    sub = model.subgraphs[0]
    operator = sub.operators[op]
    return sub.tensors[(operator.outputs if output else operator.inputs)[pos]]


def test_unedited_models_still_verify():
    for name in (KWS, HELLO):
        parse_tflite(_edited(name, lambda fb, m: None))


# -- per-op rules: the bias and the weights' per-channel axis -------------------------------------

@pytest.mark.parametrize("name,op,channels", [(KWS, 0, 64), (KWS, 1, 64), (HELLO, 0, 16)])
def test_bias_shorter_than_output_channels(name, op, channels):
    """CONV_2D never compared its bias with its output channels: the kernel read 8 int32 past
    the bias array (ASan: global-buffer-overflow). DEPTHWISE and FC are held to the same rule."""
    def edit(fb, model):
        t = _op_tensor(model, op, 2)
        n = channels - 8
        t.shape = np.array([n], np.int32)
        buf = model.buffers[t.buffer]
        buf.data = np.asarray(buf.data)[:4 * n]
        if t.quantization is not None and t.quantization.scale is not None \
                and len(t.quantization.scale) > 1:
            t.quantization.scale = t.quantization.scale[:n]
            t.quantization.zeroPoint = t.quantization.zeroPoint[:n]

    _refused(_edited(name, edit), "bias", f"{channels} output channels", f"_{op} (")


@pytest.mark.parametrize("op,axis", [(0, 1), (0, 2), (2, 3)])
def test_filter_scales_along_another_axis(op, axis):
    """Per-channel scales on axis 1, 2 or 3 of a conv filter (as many as that axis is long, so
    the tensor itself is consistent): the kernels index the scale table by output channel and
    read past it."""
    def edit(fb, model):
        t = _op_tensor(model, op, 1)
        n = int(t.shape[axis])
        t.quantization.quantizedDimension = axis
        t.quantization.scale = np.asarray(t.quantization.scale)[:n]
        t.quantization.zeroPoint = np.asarray(t.quantization.zeroPoint)[:n]

    _refused(_edited(KWS, edit), f"conv_2d_{op} (CONV_2D)", f"along axis {axis}", "axis 0")


# -- generic tensor rules -------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1e-45, 1e-40, math.inf, -math.inf, math.nan, 0.0, -0.5])
def test_scale_not_finite_positive_normal(scale):
    """inf crashed with OverflowError in QuantizeMultiplier; a subnormal scale overflows 1/scale
    in float32 (the activation limits) and crashed the same way."""
    def edit(fb, model):
        _op_tensor(model, 0, 0, output=True).quantization.scale = [scale]

    _refused(_edited(KWS, edit), "quantisation scale", "finite positive")


@pytest.mark.parametrize("scale,op", [(1e-30, "conv_2d_0"), (1e-20, "conv_2d_0"),
                                      (1e10, "depthwise_conv_2d_1"), (1e20, "depthwise_conv_2d_1"),
                                      (3.4e38, "depthwise_conv_2d_1")])
def test_scale_whose_multiplier_is_not_representable(scale, op):
    """A finite output scale of conv_2d_0 (and so input scale of depthwise_conv_2d_1) that makes
    a requantisation multiplier of 2^31 or more: the C shifted an int32 by 32..138 bits
    (UBSan: shift exponent too large) and differed from the reference."""
    def edit(fb, model):
        _op_tensor(model, 0, 0, output=True).quantization.scale = [scale]

    _refused(_edited(KWS, edit), op, "left shift", "at most 31", "scale")


@pytest.mark.parametrize("zp", [255, 1000, -129])
def test_int8_zero_point_outside_int8(zp):
    def edit(fb, model):
        _op_tensor(model, 0, 0, output=True).quantization.zeroPoint = [zp]

    _refused(_edited(KWS, edit), f"zero point {zp}", "int8 range")


def test_per_channel_axis_outside_tensor():
    def edit(fb, model):
        _op_tensor(model, 0, 1).quantization.quantizedDimension = -1

    _refused(_edited(KWS, edit), "axis -1")


# -- op options and wiring ------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("strideH", 0), ("strideW", 0), ("strideH", -1),
                                         ("dilationHFactor", -2), ("dilationWFactor", 0)])
@pytest.mark.parametrize("op", [0, 1])  # CONV_2D, DEPTHWISE_CONV_2D
def test_stride_and_dilation_at_least_one(op, field, value):
    """stride 0 crashed with ZeroDivisionError; a negative dilation compiled."""
    def edit(fb, model):
        setattr(model.subgraphs[0].operators[op].builtinOptions, field, value)

    key = "stride" if field.startswith("stride") else "dilation"
    _refused(_edited(KWS, edit), f"_{op} (", key, ">= 1")


@pytest.mark.parametrize("name,op,pos,role", [(KWS, 0, 0, "input"), (KWS, 0, 1, "filter"),
                                              (KWS, 1, 1, "filter"), (HELLO, 0, 0, "input"),
                                              (HELLO, 1, 1, "weights"), (KWS, 12, 0, "input")])
def test_required_input_absent(name, op, pos, role):
    """Index -1 where a required input is expected: KeyError or AssertionError before."""
    def edit(fb, model):
        model.subgraphs[0].operators[op].inputs[pos] = -1

    _refused(_edited(name, edit), f"_{op} (", "absent", "required")


def test_absent_bias_is_still_allowed():
    def edit(fb, model):
        model.subgraphs[0].operators[0].inputs[2] = -1

    graph = parse_tflite(_edited(KWS, edit))
    assert graph.ops[0].inputs[2] == ""


# -- the multiplier rule itself -------------------------------------------------------------------

def test_quantize_multiplier_bounds():
    """The largest shift the C kernels take is 31 (te_common.h shifts an int32 by it): 2^30
    needs shift 31, 2^31 needs 32. Values worked out by hand from frexp."""
    assert quant.quantize_multiplier(2.0 ** 30) == (1 << 30, 31)
    assert quant.quantize_multiplier(0.5) == (1 << 30, 0)
    assert quant.quantize_multiplier(2.0 ** -40) == (0, 0)  # flushed to zero as TFLite does
    for bad in (2.0 ** 31, 1e30, math.inf, math.nan):
        with pytest.raises(quant.MultiplierRangeError):
            quant.quantize_multiplier(bad)


def test_activation_range_with_a_tiny_scale_is_an_error_not_overflow():
    with pytest.raises(TinyEngineError):
        quant.activation_range("RELU6", 1e-38, 0)


# -- accumulator range and tensor indices ---------------------------------------------------------

@pytest.mark.parametrize("name,op", [(KWS, 0), (KWS, 1), (HELLO, 0)])
def test_bias_that_overflows_the_int32_accumulator(name, op):
    """Fuzz finding tflite:tflm_person_detect.tflite:23: a bias element of INT32_MAX made the
    kernel's int32 accumulator overflow (UBSan: signed integer overflow in te_conv.c)."""
    def edit(fb, model):
        buf = model.buffers[_op_tensor(model, op, 2).buffer]
        data = np.asarray(buf.data, np.uint8).copy()
        data[:4] = np.frombuffer(np.int32(2**31 - 1).tobytes(), np.uint8)
        buf.data = data

    _refused(_edited(name, edit), f"_{op} (", "bias", "[0] = 2147483647", "int32 accumulator")


@pytest.mark.parametrize("where", ["op_output", "graph_input", "graph_output", "op_input"])
def test_tensor_index_outside_the_table(where):
    """An index of -1 (or below) where a tensor must be: Python read -1 as the last tensor."""
    def edit(fb, model):
        sub = model.subgraphs[0]
        if where == "op_output":
            sub.operators[0].outputs[0] = -1
        elif where == "graph_input":
            sub.inputs[0] = -1
        elif where == "graph_output":
            sub.outputs[0] = -1
        else:
            sub.operators[1].inputs[0] = -7

    _refused(_edited(HELLO, edit), "tensor index", "outside")
