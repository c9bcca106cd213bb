"""IR -> .tflite flatbuffer: the inverse of the TFLite reader, so that TFLM can run any IR graph.

Tests build graphs in the IR (random ones included) and need TFLM's answer for them; this writer
turns them into models TFLM loads. It uses the flatbuffer object API of the schema that ships with
`tflite-micro`, so the files follow exactly the schema the oracle reads.

Constant parameters that the IR keeps in `Op.attrs` (reshape target, reduction axes, pad amounts)
become the int32 constant input tensors TFLite expects; each op kind maps its attrs to builtin
options in its own `to_tflite` hook (tinyengine/ops/).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op, QuantParams, Tensor
from ..ops import get_op, implements
from .tflite_resources import ResourceWriter

_INSTALL_HINT = ("writing .tflite files needs the flatbuffer schema of TensorFlow Lite Micro: "
                 "install the tflm extra: pip install tflite-micro")

_TENSOR_TYPES = {"float32": "FLOAT32", "int64": "INT64", "int32": "INT32", "int16": "INT16",
                 "int8": "INT8"}

# Opcodes above 127 do not fit the deprecated int8 field; TFLite writes 127 there for them.
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def _schema() -> ModuleType:
    try:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    except ImportError as e:
        raise TinyEngineError(_INSTALL_HINT) from e
    return schema_py_generated


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
                   quant: QuantParams | None, data: np.ndarray | None,
                   variable: bool = False) -> int:
        fb = self.fb
        if dtype not in _TENSOR_TYPES:
            raise UnsupportedError(f"tensor {name}: dtype {dtype} cannot be written to TFLite")
        t = fb.TensorT()
        t.name = name
        t.shape = [int(d) for d in shape]
        t.type = int(getattr(fb.TensorType, _TENSOR_TYPES[dtype]))
        t.buffer = 0
        t.isVariable = variable
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
        return self.add_tensor(t.name, t.shape, t.dtype, t.quant, t.data, t.variable)

    def opcode(self, kind: str, custom_code: str = "") -> int:
        key = f"CUSTOM:{custom_code}" if custom_code else kind
        if key not in self.code_index:
            oc = self.fb.OperatorCodeT()
            if custom_code:
                code = int(self.fb.BuiltinOperator.CUSTOM)
                oc.customCode = custom_code
            else:
                code = int(getattr(self.fb.BuiltinOperator, kind))
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = 1
            self.code_index[key] = len(self.codes)
            self.codes.append(oc)
        return self.code_index[key]

    def add_op(self, graph: Graph, op: Op) -> Any:
        fb = self.fb
        opdef = get_op(op.kind)
        if not implements(opdef, "to_tflite"):
            raise UnsupportedError(f"op {op.name}: {op.kind} has no TFLite form (it is internal "
                                   "to the engine or user-defined without a to_tflite hook)")
        lowered = opdef.to_tflite(fb, graph, op)

        def params(arrays: list[Any], tag: str) -> list[int]:
            return [self.add_tensor(self.fresh_name(f"{op.name}/{tag}{i}"), a.shape,
                                    "int32", None, np.asarray(a, np.int32))
                    for i, a in enumerate(arrays)]

        leading = params(lowered.leading_inputs, "lead")
        extra = params(lowered.extra_inputs, "param")
        o = fb.OperatorT()
        o.opcodeIndex = self.opcode(op.kind, lowered.custom_code)
        names = list(op.inputs)
        if lowered.input_order is not None:
            names = [names[i] for i in lowered.input_order]
        while lowered.omit_absent_tail and names and not names[-1]:
            names.pop()
        # TFLite marks an absent optional input (e.g. no bias) with index -1.
        o.inputs = leading + [self.index[n] if n else -1 for n in names] + extra
        o.outputs = [] if lowered.no_outputs else [self.index[n] for n in op.outputs]
        o.builtinOptionsType = int(getattr(fb.BuiltinOptions, lowered.options_type))
        o.builtinOptions = lowered.options
        return o


def write_tflite(graph: Graph) -> bytes:
    """Serialise an IR graph as a .tflite flatbuffer (schema version 3, one subgraph)."""
    fb = _schema()
    import flatbuffers  # a dependency of tflite-micro, so present whenever the schema is

    mb = _ModelBuilder(fb)
    resources = ResourceWriter(fb, graph)  # READ/ASSIGN_VARIABLE's variables, VAR_HANDLE ops
    for t in graph.tensors.values():
        if not resources.add_tensor(mb, t):
            mb.add_ir_tensor(t)
    operators = []
    for op in graph.ops:
        operators += resources.handles_before(mb, op)
        operators.append(mb.add_op(graph, op))

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
