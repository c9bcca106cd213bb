"""Float models (ONNX, PyTorch, float32 TFLite) to a compiled engine: import -> calibrate ->
quantise -> compile.

One path: a PyTorch module is exported to ONNX with torch's exporter and then takes exactly the
road an ONNX file takes; a float TFLite model is read into the same float IR and quantised by the
same post-training quantisation (frontend/tflite_float.py).

activations: "int8" (default), "int16" (TFLite's 16x8 mode: int16 activations, int8 weights,
int64 biases) or "mixed" (int16 only in the layers where int8 loses most, chosen on the
calibration data; quantize/mixed.py). report.json's "source_model" -> "activations" names the
ops that run on int16.

io: "float" (default) keeps the source model's float inputs and outputs, converted inside the
engine by QUANTIZE / DEQUANTIZE ops; "int" makes the engine's inputs and outputs the quantised
tensors themselves (`integer_io`), int8 or int16 as the activations are, so the arena holds no
float copy and the caller quantises. "int8" and "int16" are "int" that also insist on that type
(so `--io int8` means what it always did, and refuses an int16 boundary rather than surprise).

The ONNX QDQ export (model_qdq.onnx) describes int8 graphs; a graph with int16 tensors is
compiled without it.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .codegen import compile_graph
from .errors import TinyEngineError, UnsupportedError
from .ir import QRANGE, Graph, Op, Tensor, verify
from .quantize.int16 import check_activations

IO_FORMS = ("float", "int", "int8", "int16")


def _check_io(io: str) -> None:
    if io not in IO_FORMS:
        raise TinyEngineError(f"io {io!r}: choose one of {', '.join(IO_FORMS)}")


def integer_io(graph: Graph, dtype: str | None = None) -> Graph:
    """The quantised graph with integer inputs and outputs: the QUANTIZE reading each float input
    and the DEQUANTIZE writing each float output are dropped, and the quantised tensor takes the
    float tensor's name (so report.json and `tinyengine run` still speak of the model's own
    names). `dtype` ("int8" or "int16"): refuse a boundary tensor of another type."""
    rename: dict[str, str] = {}  # quantised tensor -> the float name it takes
    dropped: set[str] = set()
    for n in graph.inputs:
        readers = [op for op in graph.ops if n in op.inputs]
        if len(readers) != 1 or readers[0].kind != "QUANTIZE" or n in graph.outputs:
            raise UnsupportedError(f"input {n}: integer I/O needs a float input read by one "
                                   "QUANTIZE op; keep float I/O for this model")
        rename[readers[0].outputs[0]] = n
        dropped.add(readers[0].name)
    producers = {out: op for op in graph.ops for out in op.outputs}
    for n in graph.outputs:
        op = producers.get(n)
        if op is None or op.kind != "DEQUANTIZE" or op.inputs[0] in rename:
            raise UnsupportedError(f"output {n}: integer I/O needs a float output written by a "
                                   "DEQUANTIZE op; keep float I/O for this model")
        rename[op.inputs[0]] = n
        dropped.add(op.name)
    for inner, n in rename.items():
        have = graph.tensor(inner).dtype
        if dtype is not None and have != dtype:
            raise UnsupportedError(f"--io {dtype}: {n} is quantised as {have} (the activation "
                                   f"types chosen); use --io int for the engine's own integer "
                                   f"types, or --io float")
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


def int8_io(graph: Graph) -> Graph:
    """integer_io of an all-int8 graph (the name this had before 16x8)."""
    return integer_io(graph, "int8")


def with_io(graph: Graph, io: str) -> Graph:
    """The float-I/O quantised graph with the I/O asked for."""
    _check_io(io)
    return graph if io == "float" else integer_io(graph, None if io == "int" else io)


def quantize_onnx(path: str | Path, calib: Any, method: str = "minmax",
                  input_shape: tuple[int, ...] | None = None, io: str = "float", *,
                  activations: str = "int8") -> tuple[Any, Graph]:
    """(FloatModel, quantised graph) for an ONNX float model and calibration data (a directory
    of images, an .npy/.npz file, or an iterable of batches such as a torch DataLoader)."""
    _check_io(io)
    check_activations(activations)
    model, q = _quantize_onnx(path, calib, method, input_shape, activations)
    return model, with_io(q.graph, io)


def _quantize_onnx(path: str | Path, calib: Any, method: str,
                   input_shape: tuple[int, ...] | None, activations: str,
                   mixed: Any = None) -> tuple[Any, Any]:
    from .frontend.onnx_reader import load_onnx
    from .quantize.ptq import quantize_onnx_model

    model = load_onnx(path, input_shape)
    batches = _onnx_calibration(model, calib)
    return model, quantize_onnx_model(model, batches, method=method, activations=activations,
                                      mixed=mixed)


def quantize_tflite(path: str | Path, calib: Any, method: str = "minmax", io: str = "float", *,
                    activations: str = "int8") -> tuple[Any, Graph]:
    """(FloatTflite, quantised graph) for a float32 TFLite model and calibration data in the
    model's own (NHWC) layout; a directory of images is read as ONNX's loader reads it, then
    made NHWC."""
    _check_io(io)
    check_activations(activations)
    model, q = _quantize_tflite(path, calib, method, activations)
    return model, with_io(q.graph, io)


def _quantize_tflite(path: str | Path, calib: Any, method: str, activations: str,
                     mixed: Any = None) -> tuple[Any, Any]:
    """The float TFLite model and its Quantized: the same quantiser as ONNX models (ptq.py),
    fed by the float TFLite graph's own activations (frontend/tflite_float.py)."""
    from .frontend.tflite_float import float_activations, load_float_tflite
    from .quantize import load_calibration
    from .quantize.ptq import quantize_float

    model = load_float_tflite(path)
    if len(model.graph.inputs) != 1:
        raise TinyEngineError(f"{model.source}: calibration of models with "
                              f"{len(model.graph.inputs)} inputs is not supported (one input)")
    shape = model.input_shape
    if len(shape) == 4 and isinstance(calib, (str, Path)) and Path(calib).is_dir():
        nchw = (shape[0], shape[3], shape[1], shape[2])
        batches = [np.ascontiguousarray(b.transpose(0, 2, 3, 1))
                   for b in load_calibration(calib, nchw)]
    else:
        batches = load_calibration(calib, shape)
    return model, quantize_float(model.graph, model.shares_quant,
                                 lambda b: float_activations(model, [b]), batches, method,
                                 activations=activations, mixed=mixed)


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


def source_model_info(model: Any, graph: Graph, activations: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """What report.json records so that `tinyengine run` speaks the source model's language:
    its layouts and shapes, and the quantisation of each quantised input and output (of the
    integer tensor itself with integer I/O, else of the one behind the final DEQUANTIZE; its
    type in "quant_dtype", int8 or int16); with `activations`, how their types were chosen."""
    producers = {op.outputs[0]: op for op in graph.ops}
    onnx_model = getattr(model, "onnx_model", None)
    shapes: dict[str, list[int]] = {}
    if onnx_model is not None:
        shapes = {v.name: [int(d.dim_value) for d in v.type.tensor_type.shape.dim]
                  for v in list(onnx_model.graph.input) + list(onnx_model.graph.output)}

    def entry(n: str, layout: str, q: Tensor | None) -> dict[str, Any]:
        return {"name": n, "layout": layout, "shape": shapes.get(n, list(graph.tensor(n).shape)),
                "dtype": graph.tensor(n).dtype,
                "quant_dtype": q.dtype if q is not None else None,
                "scale": q.scale if q is not None else None,
                "zero_point": q.zero_point if q is not None else None}

    def own(n: str) -> Tensor | None:
        return graph.tensor(n) if graph.tensor(n).dtype in QRANGE else None

    inputs = [entry(n, model.input_layouts.get(n, "engine"), own(n)) for n in graph.inputs]
    outputs = []
    for n in graph.outputs:
        op = producers.get(n)
        q = graph.tensor(op.inputs[0]) if op is not None and op.kind == "DEQUANTIZE" else own(n)
        outputs.append(entry(n, model.output_layouts.get(n, "engine"), q))
    # "int8" / "int16": integer I/O of that one type (report.json's io before 16x8 said "int8").
    types = {graph.tensor(n).dtype for n in (*graph.inputs, *graph.outputs)}
    io = "float" if "float32" in types else types.pop() if len(types) == 1 else "int"
    info = {"format": "onnx" if onnx_model is not None else "tflite", "source": model.source,
            "io": io, "inputs": inputs, "outputs": outputs}
    if activations is not None:
        info["activations"] = activations
    return info


def activations_note(report: dict[str, Any]) -> str:
    """The compile summary's words on activation types ("" for int8): how many ops run on
    int16 and how many QUANTIZE ops convert between the types."""
    act = report.get("source_model", {}).get("activations")
    if not act or act["mode"] == "int8":
        return ""
    note = f"; activations {act['mode']}: {len(act['int16_ops'])} of {act['ops']} ops on int16"
    if act["requantize_ops"]:
        note += f", {len(act['requantize_ops'])} int8 <-> int16 QUANTIZE ops"
    return note


def _compile_quantized(model: Any, quantized: Any, out_dir: str | Path, io: str, qdq: bool,
                       source: str, **compile_options: Any) -> dict[str, Any]:
    """Compile a float-I/O quantised graph (a ptq.Quantized) with the I/O asked for; with `qdq`,
    the project of an int8 graph also holds model_qdq.onnx (the deployed quantisation as an ONNX
    QDQ model, float I/O)."""
    from .quantize import export_qdq

    graph = quantized.graph
    extra: dict[str, bytes] = {}
    if qdq and all(t.dtype != "int16" for t in graph.tensors.values()):
        with tempfile.TemporaryDirectory() as tmp:
            export_qdq(graph, model, Path(tmp) / "q.onnx")
            extra["model_qdq.onnx"] = (Path(tmp) / "q.onnx").read_bytes()
    graph = with_io(graph, io)
    return compile_graph(graph, out_dir, source=source,
                         source_model=source_model_info(model, graph, quantized.summary()),
                         extra_files=extra, **compile_options)


def compile_onnx(path: str | Path, out_dir: str | Path, calib: Any, method: str = "minmax",
                 input_shape: tuple[int, ...] | None = None, qdq: bool = True,
                 source: str | None = None, io: str = "float", *, activations: str = "int8",
                 mixed: Any = None, **compile_options: Any) -> dict[str, Any]:
    """Quantise an ONNX float model with `calib` and compile it into `out_dir`. With `qdq`, the
    project also holds model_qdq.onnx: the deployed quantisation as an ONNX QDQ model (int8
    graphs only). source: how the generated files name the model (default: the ONNX path).
    io: "float" (float inputs/outputs, converted inside the engine), "int" (the quantised
    tensors), or "int8" / "int16" (the quantised tensors, which must be of that type).
    activations: "int8", "int16" or "mixed"; mixed: a quantize.mixed.MixedOptions."""
    _check_io(io)
    check_activations(activations)
    model, quantized = _quantize_onnx(path, calib, method, input_shape, activations, mixed)
    if source is not None:
        model.source = source
    return _compile_quantized(model, quantized, out_dir, io, qdq, source or str(path),
                              **compile_options)


def compile_tflite(path: str | Path, out_dir: str | Path, calib: Any, method: str = "minmax",
                   qdq: bool = True, io: str = "float", *, activations: str = "int8",
                   mixed: Any = None, **compile_options: Any) -> dict[str, Any]:
    """Quantise a float32 TFLite model with `calib` (TFLite input layout) and compile it
    (io, activations, mixed: as compile_onnx)."""
    _check_io(io)
    check_activations(activations)
    model, quantized = _quantize_tflite(path, calib, method, activations, mixed)
    return _compile_quantized(model, quantized, out_dir, io, qdq, str(path), **compile_options)


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
                  method: str = "minmax", io: str = "float", *, activations: str = "int8",
                  mixed: Any = None, **compile_options: Any) -> dict[str, Any]:
    """A PyTorch module and an example input (a tuple for several inputs) -> a compiled engine,
    through ONNX (io, activations, mixed: as compile_onnx). For several inputs `calib` yields one
    list or tuple of arrays per batch, one array per input."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_torch(module, example_input, Path(tmp) / "model.onnx")
        # Named after the module, not the temporary file: the same model gives the same C.
        return compile_onnx(onnx_path, out_dir, calib, method,
                            source=f"PyTorch {type(module).__name__} (via ONNX)", io=io,
                            activations=activations, mixed=mixed, **compile_options)
