"""Float models (ONNX, PyTorch, float32 TFLite) to a compiled engine: import -> calibrate ->
quantise -> compile.

One path: a PyTorch module is exported to ONNX with torch's exporter and then takes exactly the
road an ONNX file takes; a float TFLite model is read into the same float IR and quantised by the
same post-training quantisation (frontend/tflite_float.py).

io: "float" (default) keeps the source model's float inputs and outputs, converted inside the
engine by QUANTIZE / DEQUANTIZE ops; "int8" makes the engine's inputs and outputs the int8
tensors themselves (`int8_io`), so the arena holds no float copy and the caller quantises.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .codegen import compile_graph
from .errors import TinyEngineError, UnsupportedError
from .ir import Graph, Op, Tensor, verify

IO_FORMS = ("float", "int8")


def _check_io(io: str) -> None:
    if io not in IO_FORMS:
        raise TinyEngineError(f"io {io!r}: choose one of {', '.join(IO_FORMS)}")


def int8_io(graph: Graph) -> Graph:
    """The quantised graph with int8 inputs and outputs: the QUANTIZE reading each float input
    and the DEQUANTIZE writing each float output are dropped, and the int8 tensor takes the float
    tensor's name (so report.json and `tinyengine run` still speak of the model's own names)."""
    rename: dict[str, str] = {}  # int8 tensor -> the float name it takes
    dropped: set[str] = set()
    for n in graph.inputs:
        readers = [op for op in graph.ops if n in op.inputs]
        if len(readers) != 1 or readers[0].kind != "QUANTIZE" or n in graph.outputs:
            raise UnsupportedError(f"input {n}: int8 I/O needs a float input read by one "
                                   "QUANTIZE op; keep float I/O for this model")
        rename[readers[0].outputs[0]] = n
        dropped.add(readers[0].name)
    producers = {out: op for op in graph.ops for out in op.outputs}
    for n in graph.outputs:
        op = producers.get(n)
        if op is None or op.kind != "DEQUANTIZE" or op.inputs[0] in rename:
            raise UnsupportedError(f"output {n}: int8 I/O needs a float output written by a "
                                   "DEQUANTIZE op; keep float I/O for this model")
        rename[op.inputs[0]] = n
        dropped.add(op.name)
    floats = set(rename.values())
    tensors = {}
    for t in graph.tensors.values():
        if t.name in floats:
            continue
        name = rename.get(t.name, t.name)
        tensors[name] = Tensor(name, t.shape, t.dtype, t.quant, t.data)
    ops = [Op(op.name, op.kind, [rename.get(n, n) for n in op.inputs],
              [rename.get(n, n) for n in op.outputs], dict(op.attrs))
           for op in graph.ops if op.name not in dropped]
    out = Graph(tensors, ops, list(graph.inputs), list(graph.outputs), graph.name)
    verify(out)
    return out


def quantize_onnx(path: str | Path, calib: Any, method: str = "minmax",
                  input_shape: tuple[int, ...] | None = None, io: str = "float"
                  ) -> tuple[Any, Graph]:
    """(FloatModel, int8 graph) for an ONNX float model and calibration data (a directory of
    images, an .npy/.npz file, or an iterable of batches such as a torch DataLoader)."""
    from .frontend.onnx_reader import load_onnx
    from .quantize import quantize_model

    _check_io(io)
    model = load_onnx(path, input_shape)
    batches = _onnx_calibration(model, calib)
    graph = quantize_model(model, batches, method=method)
    return model, int8_io(graph) if io == "int8" else graph


def quantize_tflite(path: str | Path, calib: Any, method: str = "minmax", io: str = "float"
                    ) -> tuple[Any, Graph]:
    """(FloatTflite, int8 graph) for a float32 TFLite model and calibration data in the model's
    own (NHWC) layout; a directory of images is read as ONNX's loader reads it, then made NHWC."""
    from .frontend.tflite_float import load_float_tflite, quantize_float_tflite
    from .quantize import load_calibration

    _check_io(io)
    model = load_float_tflite(path)
    shape = model.input_shape
    if len(shape) == 4 and isinstance(calib, (str, Path)) and Path(calib).is_dir():
        nchw = (shape[0], shape[3], shape[1], shape[2])
        batches = [np.ascontiguousarray(b.transpose(0, 2, 3, 1))
                   for b in load_calibration(calib, nchw)]
    else:
        batches = load_calibration(calib, shape)
    graph = quantize_float_tflite(model, batches, method)
    return model, int8_io(graph) if io == "int8" else graph


def _onnx_calibration(model: Any, calib: Any) -> list[Any]:
    """Batches for quantize_model: one array each, or for a model with several inputs one list
    each with an array per input (`calib` then yields lists or tuples in the model's input
    order, e.g. a DataLoader's (x0, x1, label); extra elements are ignored)."""
    from .quantize import load_calibration

    graph = model.onnx_model.graph
    inits = {i.name for i in graph.initializer}
    shapes = [tuple(int(d.dim_value) for d in i.type.tensor_type.shape.dim)
              for i in graph.input if i.name not in inits]
    if len(shapes) == 1:
        return load_calibration(calib, shapes[0])
    how = (f"the model takes {len(shapes)} inputs: give calibration data as batches, each a "
           "list or tuple with one array per input, in the model's order")
    if isinstance(calib, (str, Path, np.ndarray)):
        raise TinyEngineError(how)
    items = [list(b) if isinstance(b, (tuple, list)) and len(b) >= len(shapes) else None
             for b in calib]
    if not items or any(b is None for b in items):
        raise TinyEngineError(how)
    per_input = [load_calibration([b[k] for b in items], shape)  # type: ignore[index]
                 for k, shape in enumerate(shapes)]
    return [list(batch) for batch in zip(*per_input)]


def source_model_info(model: Any, graph: Graph) -> dict[str, Any]:
    """What report.json records so that `tinyengine run` speaks the source model's language:
    its layouts and shapes, and the int8 parameters of each quantised input and output (of the
    int8 tensor itself with int8 I/O, else of the one behind the final DEQUANTIZE)."""
    producers = {op.outputs[0]: op for op in graph.ops}
    onnx_model = getattr(model, "onnx_model", None)
    shapes: dict[str, list[int]] = {}
    if onnx_model is not None:
        shapes = {v.name: [int(d.dim_value) for d in v.type.tensor_type.shape.dim]
                  for v in list(onnx_model.graph.input) + list(onnx_model.graph.output)}

    def entry(n: str, layout: str, q: Tensor | None) -> dict[str, Any]:
        return {"name": n, "layout": layout, "shape": shapes.get(n, list(graph.tensor(n).shape)),
                "dtype": graph.tensor(n).dtype,
                "scale": q.scale if q is not None else None,
                "zero_point": q.zero_point if q is not None else None}

    def own(n: str) -> Tensor | None:
        return graph.tensor(n) if graph.tensor(n).dtype == "int8" else None

    inputs = [entry(n, model.input_layouts.get(n, "engine"), own(n)) for n in graph.inputs]
    outputs = []
    for n in graph.outputs:
        op = producers.get(n)
        q = graph.tensor(op.inputs[0]) if op is not None and op.kind == "DEQUANTIZE" else own(n)
        outputs.append(entry(n, model.output_layouts.get(n, "engine"), q))
    io = "int8" if all(graph.tensor(n).dtype == "int8" for n in graph.inputs) else "float"
    return {"format": "onnx" if onnx_model is not None else "tflite", "source": model.source,
            "io": io, "inputs": inputs, "outputs": outputs}


def _compile_quantized(model: Any, graph: Graph, out_dir: str | Path, io: str, qdq: bool,
                       source: str, **compile_options: Any) -> dict[str, Any]:
    """Compile a float-I/O int8 graph with the I/O asked for; with `qdq`, the project also holds
    model_qdq.onnx (the deployed quantisation as an ONNX QDQ model, float I/O)."""
    from .quantize import export_qdq

    extra: dict[str, bytes] = {}
    if qdq:
        with tempfile.TemporaryDirectory() as tmp:
            export_qdq(graph, model, Path(tmp) / "q.onnx")
            extra["model_qdq.onnx"] = (Path(tmp) / "q.onnx").read_bytes()
    if io == "int8":
        graph = int8_io(graph)
    return compile_graph(graph, out_dir, source=source,
                         source_model=source_model_info(model, graph), extra_files=extra,
                         **compile_options)


def compile_onnx(path: str | Path, out_dir: str | Path, calib: Any, method: str = "minmax",
                 input_shape: tuple[int, ...] | None = None, qdq: bool = True,
                 source: str | None = None, io: str = "float",
                 **compile_options: Any) -> dict[str, Any]:
    """Quantise an ONNX float model with `calib` and compile it into `out_dir`. With `qdq`, the
    project also holds model_qdq.onnx: the deployed quantisation as an ONNX QDQ model.
    source: how the generated files name the model (default: the ONNX path).
    io: "float" (float inputs/outputs, converted inside the engine) or "int8"."""
    _check_io(io)
    model, graph = quantize_onnx(path, calib, method, input_shape)
    if source is not None:
        model.source = source
    return _compile_quantized(model, graph, out_dir, io, qdq, source or str(path),
                              **compile_options)


def compile_tflite(path: str | Path, out_dir: str | Path, calib: Any, method: str = "minmax",
                   qdq: bool = True, io: str = "float", **compile_options: Any) -> dict[str, Any]:
    """Quantise a float32 TFLite model with `calib` (TFLite input layout) and compile it."""
    _check_io(io)
    model, graph = quantize_tflite(path, calib, method)
    return _compile_quantized(model, graph, out_dir, io, qdq, str(path), **compile_options)


def export_torch(module: Any, example_input: Any, path: str | Path) -> Path:
    """torch.nn.Module -> ONNX (opset 17, TorchScript exporter, eval mode). example_input: a
    tensor, or a tuple of tensors for a forward() with several inputs. The ONNX inputs and
    outputs are named input and output, or input0, input1, ... and output0, ... where several."""
    import torch

    module = module.eval()
    args = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)

    def names(kind: str, n: int) -> list[str]:
        return [kind] if n == 1 else [f"{kind}{i}" for i in range(n)]

    try:
        # Tracing warns about every Python int taken from a shape; ours are meant to be constant.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            result = module(*args)  # to name every output
            n_out = len(result) if isinstance(result, (tuple, list)) else 1
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=17,
                              input_names=names("input", len(args)),
                              output_names=names("output", n_out))
    except Exception as e:  # the exporter raises many kinds of errors for unsupported modules
        raise TinyEngineError(f"torch.onnx.export failed for {type(module).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return Path(path)


def compile_torch(module: Any, example_input: Any, calib: Any, out_dir: str | Path,
                  method: str = "minmax", io: str = "float",
                  **compile_options: Any) -> dict[str, Any]:
    """A PyTorch module and an example input (a tuple for several inputs) -> a compiled engine,
    through ONNX (io: as compile_onnx). For several inputs `calib` yields one list or tuple of
    arrays per batch, one array per input."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_torch(module, example_input, Path(tmp) / "model.onnx")
        # Named after the module, not the temporary file: the same model gives the same C.
        return compile_onnx(onnx_path, out_dir, calib, method,
                            source=f"PyTorch {type(module).__name__} (via ONNX)", io=io,
                            **compile_options)
