"""IR -> .tflite flatbuffer: the inverse of the TFLite reader, so that TFLM can run any IR graph.

Tests build graphs in the IR (random ones included) and need TFLM's answer for them; this writer
turns them into models TFLM loads. It uses the flatbuffer object API of the schema that ships with
`tflite-micro`, so the files follow exactly the schema the oracle reads.

Constant parameters that the IR keeps in `Op.attrs` (reshape target, reduction axes, pad amounts)
become the int32 constant input tensors TFLite expects; every op kind maps its attrs to builtin
options in one small function of `_LOWERINGS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op, QuantParams, Tensor

_INSTALL_HINT = ("writing .tflite files needs the flatbuffer schema of TensorFlow Lite Micro: "
                 "install the tflm extra: pip install tflite-micro")

_TENSOR_TYPES = {"float32": "FLOAT32", "int32": "INT32", "int16": "INT16", "int8": "INT8"}

# Opcodes above 127 do not fit the deprecated int8 field; TFLite writes 127 there for them.
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127


@dataclass
class _Lowered:
    """What one IR op becomes: builtin options plus int32 constants appended to its inputs."""

    options_type: str  # a BuiltinOptions member name, "NONE" for none
    options: Any = None
    extra_inputs: list[np.ndarray] = field(default_factory=list)
    # Leave absent trailing inputs out instead of writing index -1 for them.
    omit_absent_tail: bool = False


def _schema() -> ModuleType:
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    except ImportError as e:
        raise TinyEngineError(_INSTALL_HINT) from e
    return schema_py_generated


def _activation(fb: ModuleType, op: Op) -> int:
    return int(getattr(fb.ActivationFunctionType, op.attrs.get("activation", "NONE")))


def _padding(fb: ModuleType, op: Op) -> int:
    return int(getattr(fb.Padding, op.attrs["padding"]))


def _conv_2d(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    o = fb.Conv2DOptionsT()
    o.padding = _padding(fb, op)
    o.strideH, o.strideW = op.attrs["stride"]
    o.dilationHFactor, o.dilationWFactor = op.attrs.get("dilation", (1, 1))
    o.fusedActivationFunction = _activation(fb, op)
    return _Lowered("Conv2DOptions", o)


def _depthwise_conv_2d(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    o = fb.DepthwiseConv2DOptionsT()
    o.padding = _padding(fb, op)
    o.strideH, o.strideW = op.attrs["stride"]
    o.dilationHFactor, o.dilationWFactor = op.attrs.get("dilation", (1, 1))
    o.depthMultiplier = int(op.attrs["depth_multiplier"])
    o.fusedActivationFunction = _activation(fb, op)
    # TFLM's depthwise Prepare segfaults on a bias index of -1 but reads a 2-input node as
    # "no bias"; CONV_2D and FULLY_CONNECTED take either form.
    return _Lowered("DepthwiseConv2DOptions", o, omit_absent_tail=True)


def _fully_connected(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    o = fb.FullyConnectedOptionsT()
    o.fusedActivationFunction = _activation(fb, op)
    o.keepNumDims = bool(op.attrs.get("keep_num_dims", False))
    return _Lowered("FullyConnectedOptions", o)


def _add(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    o = fb.AddOptionsT()
    o.fusedActivationFunction = _activation(fb, op)
    return _Lowered("AddOptions", o)


def _pool_2d(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    o = fb.Pool2DOptionsT()
    o.padding = _padding(fb, op)
    o.strideH, o.strideW = op.attrs["stride"]
    o.filterHeight, o.filterWidth = op.attrs["filter"]
    o.fusedActivationFunction = _activation(fb, op)
    return _Lowered("Pool2DOptions", o)


def _mean(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    o = fb.ReducerOptionsT()
    o.keepDims = bool(op.attrs.get("keep_dims", False))
    return _Lowered("ReducerOptions", o, [np.array(op.attrs["axes"], np.int32)])


def _reshape(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    # The target is the output's shape; TFLite carries it twice (options and a shape tensor).
    shape = [int(d) for d in graph.tensor(op.outputs[0]).shape]
    o = fb.ReshapeOptionsT()
    o.newShape = shape
    return _Lowered("ReshapeOptions", o, [np.array(shape, np.int32)])


def _softmax(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    o = fb.SoftmaxOptionsT()
    o.beta = float(op.attrs.get("beta", 1.0))
    return _Lowered("SoftmaxOptions", o)


def _pad(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    paddings = np.array(op.attrs["paddings"], np.int32).reshape(-1, 2)
    return _Lowered("PadOptions", fb.PadOptionsT(), [paddings])


def _quantize(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    return _Lowered("QuantizeOptions", fb.QuantizeOptionsT())


def _dequantize(fb: ModuleType, graph: Graph, op: Op) -> _Lowered:
    return _Lowered("DequantizeOptions", fb.DequantizeOptionsT())


_LOWERINGS: dict[str, Callable[[ModuleType, Graph, Op], _Lowered]] = {
    "CONV_2D": _conv_2d,
    "DEPTHWISE_CONV_2D": _depthwise_conv_2d,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _add,
    "AVERAGE_POOL_2D": _pool_2d,
    "MAX_POOL_2D": _pool_2d,
    "MEAN": _mean,
    "RESHAPE": _reshape,
    "SOFTMAX": _softmax,
    "PAD": _pad,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
}


class _ModelBuilder:
    """Accumulates tensors, buffers and operator codes of a one-subgraph model."""

    def __init__(self, fb: ModuleType) -> None:
        self.fb = fb
        self.buffers = [fb.BufferT()]  # buffer 0: the empty sentinel every activation points at
        self.tensors: list[Any] = []
        self.index: dict[str, int] = {}
        self.codes: list[Any] = []
        self.code_index: dict[str, int] = {}

    def add_tensor(self, name: str, shape: tuple[int, ...], dtype: str,
                   quant: QuantParams | None, data: np.ndarray | None) -> int:
        fb = self.fb
        if dtype not in _TENSOR_TYPES:
            raise UnsupportedError(f"tensor {name}: dtype {dtype} cannot be written to TFLite")
        t = fb.TensorT()
        t.name = name
        t.shape = [int(d) for d in shape]
        t.type = int(getattr(fb.TensorType, _TENSOR_TYPES[dtype]))
        t.buffer = 0
        if data is not None:
            t.buffer = len(self.buffers)
            buf = fb.BufferT()
            # TFLite stores constants little-endian; as uint8 the object API packs them at once.
            raw = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("<"))
            buf.data = np.frombuffer(raw.tobytes(), np.uint8)
            self.buffers.append(buf)
        if quant is not None:
            q = fb.QuantizationParametersT()
            q.scale = [float(s) for s in np.asarray(quant.scale, np.float32)]
            q.zeroPoint = [int(z) for z in quant.zero_point]
            q.quantizedDimension = int(quant.axis)
            t.quantization = q
        self.index[name] = len(self.tensors)
        self.tensors.append(t)
        return self.index[name]

    def fresh_name(self, name: str) -> str:
        """`name`, or `name_2`, `name_3`, ... if a tensor already has it."""
        candidate, n = name, 1
        while candidate in self.index:
            n += 1
            candidate = f"{name}_{n}"
        return candidate

    def add_ir_tensor(self, t: Tensor) -> int:
        return self.add_tensor(t.name, t.shape, t.dtype, t.quant, t.data)

    def opcode(self, kind: str) -> int:
        if kind not in self.code_index:
            code = int(getattr(self.fb.BuiltinOperator, kind))
            oc = self.fb.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = 1
            self.code_index[kind] = len(self.codes)
            self.codes.append(oc)
        return self.code_index[kind]

    def add_op(self, graph: Graph, op: Op) -> Any:
        fb = self.fb
        if op.kind not in _LOWERINGS:
            raise UnsupportedError(f"op {op.name}: cannot write {op.kind} to TFLite "
                                   f"(the writer knows {', '.join(sorted(_LOWERINGS))})")
        lowered = _LOWERINGS[op.kind](fb, graph, op)
        extra = [self.add_tensor(self.fresh_name(f"{op.name}/param{i}"), a.shape, "int32", None, a)
                 for i, a in enumerate(lowered.extra_inputs)]
        o = fb.OperatorT()
        o.opcodeIndex = self.opcode(op.kind)
        names = list(op.inputs)
        while lowered.omit_absent_tail and names and not names[-1]:
            names.pop()
        # TFLite marks an absent optional input (e.g. no bias) with index -1.
        o.inputs = [self.index[n] if n else -1 for n in names] + extra
        o.outputs = [self.index[n] for n in op.outputs]
        o.builtinOptionsType = int(getattr(fb.BuiltinOptions, lowered.options_type))
        o.builtinOptions = lowered.options
        return o


def write_tflite(graph: Graph) -> bytes:
    """Serialise an IR graph as a .tflite flatbuffer (schema version 3, one subgraph)."""
    fb = _schema()
    import flatbuffers  # a dependency of tflite-micro, so present whenever the schema is

    mb = _ModelBuilder(fb)
    for t in graph.tensors.values():
        mb.add_ir_tensor(t)
    operators = [mb.add_op(graph, op) for op in graph.ops]

    sub = fb.SubGraphT()
    sub.tensors = mb.tensors
    sub.inputs = [mb.index[n] for n in graph.inputs]
    sub.outputs = [mb.index[n] for n in graph.outputs]
    sub.operators = operators
    sub.name = graph.name

    model = fb.ModelT()
    model.version = 3
    model.description = "tinyengine"
    model.operatorCodes = mb.codes
    model.subgraphs = [sub]
    model.buffers = mb.buffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
