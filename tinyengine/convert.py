"""Float models (ONNX, PyTorch) to a compiled engine: import -> calibrate -> quantise -> compile.

One path: a PyTorch module is exported to ONNX with torch's exporter and then takes exactly the
road an ONNX file takes.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

from .codegen import compile_graph
from .errors import TinyEngineError
from .ir import Graph


def quantize_onnx(path: str | Path, calib: Any, method: str = "minmax",
                  input_shape: tuple[int, ...] | None = None) -> tuple[Any, Graph]:
    """(FloatModel, int8 graph) for an ONNX float model and calibration data (a directory of
    images, an .npy/.npz file, or an iterable of batches such as a torch DataLoader)."""
    from .frontend.onnx_reader import load_onnx
    from .quantize import load_calibration, quantize_model

    model = load_onnx(path, input_shape)
    shape = _onnx_input_shape(model)
    batches = load_calibration(calib, shape)
    return model, quantize_model(model, batches, method=method)


def _onnx_input_shape(model: Any) -> tuple[int, ...]:
    graph = model.onnx_model.graph
    inits = {i.name for i in graph.initializer}
    first = next(i for i in graph.input if i.name not in inits)
    return tuple(int(d.dim_value) for d in first.type.tensor_type.shape.dim)


def source_model_info(model: Any, graph: Graph) -> dict[str, Any]:
    """What report.json records so that `tinyengine run` speaks the ONNX model's language."""
    producers = {op.outputs[0]: op for op in graph.ops}
    onnx_graph = model.onnx_model.graph
    shapes = {v.name: [int(d.dim_value) for d in v.type.tensor_type.shape.dim]
              for v in list(onnx_graph.input) + list(onnx_graph.output)}
    inputs = [{"name": n, "layout": model.input_layouts.get(n, "engine"),
               "shape": shapes.get(n, list(graph.tensor(n).shape))} for n in graph.inputs]
    outputs = []
    for n in graph.outputs:
        op = producers.get(n)
        q = graph.tensor(op.inputs[0]) if op is not None and op.kind == "DEQUANTIZE" else None
        outputs.append({"name": n, "layout": model.output_layouts.get(n, "engine"),
                        "shape": shapes.get(n, list(graph.tensor(n).shape)),
                        "scale": q.scale if q is not None else None,
                        "zero_point": q.zero_point if q is not None else None})
    return {"format": "onnx", "source": model.source, "inputs": inputs, "outputs": outputs}


def compile_onnx(path: str | Path, out_dir: str | Path, calib: Any, method: str = "minmax",
                 input_shape: tuple[int, ...] | None = None, qdq: bool = True,
                 source: str | None = None, **compile_options: Any) -> dict[str, Any]:
    """Quantise an ONNX float model with `calib` and compile it into `out_dir`. With `qdq`, the
    project also holds model_qdq.onnx: the deployed quantisation as an ONNX QDQ model.
    source: how the generated files name the model (default: the ONNX path)."""
    from .quantize import export_qdq

    model, graph = quantize_onnx(path, calib, method, input_shape)
    if source is not None:
        model.source = source
    extra: dict[str, bytes] = {}
    if qdq:
        with tempfile.TemporaryDirectory() as tmp:
            export_qdq(graph, model, Path(tmp) / "q.onnx")
            extra["model_qdq.onnx"] = (Path(tmp) / "q.onnx").read_bytes()
    return compile_graph(graph, out_dir, source=source or str(path),
                         source_model=source_model_info(model, graph), extra_files=extra,
                         **compile_options)


def export_torch(module: Any, example_input: Any, path: str | Path) -> Path:
    """torch.nn.Module -> ONNX (opset 17, TorchScript exporter, eval mode)."""
    import torch

    module = module.eval()
    try:
        # Tracing warns about every Python int taken from a shape; ours are meant to be constant.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            torch.onnx.export(module, (example_input,), str(path), dynamo=False,
                              opset_version=17, input_names=["input"], output_names=["output"])
    except Exception as e:  # the exporter raises many kinds of errors for unsupported modules
        raise TinyEngineError(f"torch.onnx.export failed for {type(module).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return Path(path)


def compile_torch(module: Any, example_input: Any, calib: Any, out_dir: str | Path,
                  method: str = "minmax", **compile_options: Any) -> dict[str, Any]:
    """A PyTorch module and an example input -> a compiled engine, through ONNX."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_torch(module, example_input, Path(tmp) / "model.onnx")
        # Named after the module, not the temporary file: the same model gives the same C.
        return compile_onnx(onnx_path, out_dir, calib, method,
                            source=f"PyTorch {type(module).__name__} (via ONNX)",
                            **compile_options)
