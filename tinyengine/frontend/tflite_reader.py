"""TFLite frontend: a .tflite flatbuffer -> the engine's IR.

Reads with the `tflite` package (flatc-generated accessors for TFLite's schema), so no byte is
parsed by hand. Each op kind parses its own builtin options in its `from_tflite` hook
(tinyengine/ops/); CUSTOM operators are looked up by custom code among the registered ops, a
user's included. Everything the engine cannot run is collected and reported in one error, not one
at a time.

An int8 model is read as it is and verified. A float32 model is refused unless the caller asks
for it (`allow_float=True`): it is then read as a float graph (float32 activations, float weights
and biases in TFLite's layouts, no quantisation) for post-training quantisation
(frontend/tflite_float.py); such a graph is not verified, since the engine's ops run on int8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tflite

from ..errors import TinyEngineError, UnsupportedError
from ..ir import DTYPES, Graph, Op, QuantParams, Tensor, verify
from ..ops import CUSTOM_CODES, REGISTRY, implements
from . import tflite_resources

_BUILTIN_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_DTYPE = {"INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
          "FLOAT32": "float32"}


# Ops whose activations may be float: the boundary converters.
_FLOAT_OK = {"QUANTIZE", "DEQUANTIZE"}


def _read_tensor(model: Any, t: Any, index: int, name: str) -> Tensor:
    type_name = _TYPE_NAMES.get(t.Type(), str(t.Type()))
    if type_name not in _DTYPE:
        raise UnsupportedError(f"tensor {index} ({name}) has type {type_name}; the engine "
                               "supports int8 and 16x8 models (int8/int16 activations and "
                               "weights, int32/int64 biases, float32 only at I/O)")
    dtype = _DTYPE[type_name]
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    # shape_signature may say -1 (any batch); `shape` holds the size the model was built for.
    if any(d < 0 for d in shape):
        raise UnsupportedError(f"tensor {index} ({name}) has a dynamic shape; re-export the "
                               "model with a fixed input shape (batch 1)")
    if shape == ():
        shape = (1,)
    quant = None
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength(), np.int64)
        axis = int(q.QuantizedDimension())
        if len(shape) == 1:
            axis = 0  # converters copy the filter's axis (3 for depthwise) onto 1-D biases
        quant = QuantParams(np.asarray(q.ScaleAsNumpy(), np.float32).copy(),
                            np.asarray(zp, np.int64).copy(), axis)
    data = None
    buf = model.Buffers(t.Buffer())
    if buf is not None and buf.DataLength() > 0:
        raw = buf.DataAsNumpy().tobytes()
        expected = int(np.prod(shape)) * np.dtype(DTYPES[dtype]).itemsize
        if len(raw) != expected:
            raise TinyEngineError(f"tensor {index} ({name}): constant data has {len(raw)} bytes, "
                                  f"its shape {shape} needs {expected}; the file is corrupt")
        data = np.frombuffer(raw, DTYPES[dtype]).reshape(shape).copy()
    variable = bool(t.IsVariable())
    if variable and data is not None:
        # TFLM resets every variable tensor to zero (its zero point for int8), initial values
        # included; one with a buffer would start from values TFLM never uses.
        raise UnsupportedError(f"tensor {index} ({name}) is a variable tensor with initial "
                               "values; TFLM resets state to zero, re-export it without them")
    return Tensor(name, shape, dtype, quant, data, variable=variable)


def _unique_names(sub: Any) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for i in range(sub.TensorsLength()):
        raw = sub.Tensors(i).Name()
        name = raw.decode("utf-8", "replace") if raw else f"tensor_{i}"
        if name in seen:
            name = f"{name}#{i}"
        seen.add(name)
        names.append(name)
    return names


def _check_indices(source: str, what: str, indices: list[int], n_tensors: int,
                   absent_ok: bool = False) -> None:
    """Tensor indices lie in the subgraph's tensor table; -1 (absent) only where allowed. Python
    would otherwise read index -1 as the last tensor and run the wrong one without a word."""
    for j in indices:
        if not (0 <= j < n_tensors or (absent_ok and j == -1)):
            raise TinyEngineError(f"{source}: {what} tensor index {j} is outside the subgraph's "
                                  f"{n_tensors} tensors; the file is corrupt")


def _float_refusal(source: str, i: int, kind: str, tensor: str) -> UnsupportedError:
    return UnsupportedError(
        f"{source}: op {i} ({kind}) computes in float32 (tensor {tensor}); this is a float "
        "model: pass calibration data with --calib to quantise it to int8 (`tinyengine compile "
        "MODEL.tflite --calib DATA -o DIR`), or quantise it to full-integer int8 first")


def _parse(buf: bytes, source: str, allow_float: bool = False) -> Graph:
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise UnsupportedError(f"{source}: {model.SubgraphsLength()} subgraphs; the engine runs "
                               "single-subgraph models (no control flow)")
    sub = model.Subgraphs(0)
    names = _unique_names(sub)
    # Resource variables first: the RESOURCE tensors of VAR_HANDLE ops become variable tensors.
    res = tflite_resources.scan(model, sub, source)
    slots: list[Tensor | None] = [
        None if i in res.resources else _read_tensor(model, sub.Tensors(i), i, names[i])
        for i in range(len(names))]
    assign_outputs = res.resolve(model, sub, slots, names)
    tensors = [t for t in slots if t is not None]
    assert len(tensors) == len(names)
    ops: list[Op] = []
    float_ops: list[int] = []  # operators computing in float32 (allow_float only)
    unsupported: list[str] = []
    for i in range(sub.OperatorsLength()):
        raw_op = sub.Operators(i)
        code = model.OperatorCodes(raw_op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = _BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")
        if kind == "CUSTOM":
            custom = (code.CustomCode() or b"").decode("utf-8", "replace")
            kind = CUSTOM_CODES.get(custom, f"CUSTOM({custom})")
        if i in res.handles:
            continue  # VAR_HANDLE: its variable is a tensor of the IR
        in_idx = [int(j) for j in raw_op.InputsAsNumpy()] if raw_op.InputsLength() else []
        out_idx = [int(j) for j in raw_op.OutputsAsNumpy()] if raw_op.OutputsLength() else []
        out_idx = assign_outputs.get(i, out_idx)
        _check_indices(source, f"op {i} ({kind}) input", in_idx, len(names), absent_ok=True)
        _check_indices(source, f"op {i} ({kind}) output", out_idx, len(names))
        opdef = REGISTRY.get(kind)
        if opdef is None or not implements(opdef, "from_tflite"):
            unsupported.append(f"{kind} (op {i})")
            continue
        ins: list[Tensor | None] = [tensors[j] if j >= 0 else None for j in in_idx]
        try:
            imported = opdef.from_tflite(raw_op, ins)
        except UnsupportedError as e:
            unsupported.append(f"{kind} (op {i}): {e}")
            continue
        kept = [in_idx[k] if k is not None else -1 for k in imported.inputs]
        floats = [tensors[j].name for j in kept + out_idx
                  if j >= 0 and tensors[j].dtype == "float32"]
        if floats and kind not in _FLOAT_OK:
            if not allow_float:
                raise _float_refusal(source, i, kind, floats[0])
            float_ops.append(i)
        ops.append(Op(f"{kind.lower()}_{i}", kind, [names[j] if j >= 0 else "" for j in kept],
                      [names[j] for j in out_idx], imported.attrs))
    if unsupported:
        raise UnsupportedError(f"{source}: unsupported ops: {', '.join(unsupported)}; a missing "
                               "op can be registered from your own file with `--ops FILE.py` "
                               "(README: user-defined ops)")
    if float_ops:
        by_name = dict(zip(names, tensors))
        for op in ops:
            _check_float_op(source, op, [by_name[n] for n in op.inputs + op.outputs if n])
    used = {n for op in ops for n in op.inputs + op.outputs if n}
    in_graph = [int(j) for j in sub.InputsAsNumpy()] if sub.InputsLength() else []
    out_graph = [int(j) for j in sub.OutputsAsNumpy()] if sub.OutputsLength() else []
    _check_indices(source, "graph input", in_graph, len(names))
    _check_indices(source, "graph output", out_graph, len(names))
    if not in_graph or not out_graph:
        missing = "inputs" if not in_graph else "outputs"
        raise TinyEngineError(f"{source}: the subgraph lists no {missing}; the file is corrupt")
    inputs = [names[j] for j in in_graph]
    outputs = [names[j] for j in out_graph]
    keep_names = used | set(inputs) | set(outputs)
    return Graph({t.name: t for t in tensors if t.name in keep_names}, ops, inputs, outputs,
                  name=Path(source).stem)


def _check_float_op(source: str, op: Op, tensors: list[Tensor]) -> None:
    """In a float model every op computes in float32: activations, weights and biases float32
    and unquantised, no QUANTIZE / DEQUANTIZE. A model that mixes int8 and float ops, or keeps
    int8 weights beside float activations (dynamic-range quantisation), is refused."""
    for t in tensors:
        if op.kind in _FLOAT_OK or t.dtype != "float32" or t.quant is not None:
            raise UnsupportedError(
                f"{source}: op {op.name} ({op.kind}) reads or writes the {t.dtype}"
                f"{' quantised' if t.quant else ''} tensor {t.name}; a float model must compute "
                "in float32 throughout (give a float32 model with --calib, or a full-integer "
                "int8 model)")


def is_float_graph(graph: Graph) -> bool:
    """True for a graph read with allow_float whose ops compute in float32 (not an int8 model,
    whose float32 tensors are only its inputs and outputs at a QUANTIZE / DEQUANTIZE)."""
    return any(graph.tensor(n).dtype == "float32" for op in graph.ops
               if op.kind not in _FLOAT_OK for n in op.outputs)


def load_tflite(path: str | Path, allow_float: bool = False) -> Graph:
    """Read a .tflite file into a verified IR graph; raise TinyEngineError on bad input.
    allow_float: read a float32 model as an unverified float graph instead of refusing it."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise TinyEngineError(f"{path}: cannot read ({e.strerror})") from None
    return parse_tflite(buf, str(path), allow_float)


def parse_tflite(buf: bytes, source: str = "<bytes>", allow_float: bool = False) -> Graph:
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TinyEngineError(f"{source}: not a TFLite flatbuffer (no 'TFL3' identifier); pass a "
                              ".tflite file")
    try:
        graph = _parse(buf, source, allow_float)
    except TinyEngineError:
        raise
    except Exception as e:  # the flatbuffer accessors fail in many ways on a damaged file
        raise TinyEngineError(f"{source}: the TFLite flatbuffer is truncated or corrupt "
                              f"({type(e).__name__}: {e})") from None
    if not allow_float or not is_float_graph(graph):
        verify(graph)
    return graph
