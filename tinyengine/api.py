"""The Python API a user reaches for, re-exported by the package (`import tinyengine`).

    report = tinyengine.compile_model("model.tflite", "build/model")   # or .onnx + calib, a Graph
    outputs = tinyengine.HostModel("build/model").invoke([x])          # run the generated C
    cost = tinyengine.estimate_cost("model.tflite")                    # SRAM, flash, MACs
    verdicts, report = tinyengine.verify_model("model.tflite")         # C == reference == TFLM

`tinyengine compile` is compile_model; every error a user can cause raises TinyEngineError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cost import Cost, estimate
from .errors import TinyEngineError
from .ir import Graph
from .memory.schedule import DEFAULT_MAX_MAC_OVERHEAD


def compile_model(model: str | Path | Graph, output: str | Path, *, prefix: str = "model",
                  calib: Any = None, calib_method: str = "minmax", io: str | None = None,
                  activations: str = "int8",
                  input_shape: tuple[int, ...] | None = None, target: str | None = None,
                  planner: str = "auto", patch: str = "auto",
                  max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD,
                  stream_input: bool = False) -> dict[str, Any]:
    """Compile a model into a C project in `output` and return its report (also report.json).

    model: an int8 .tflite file; a float .onnx or float32 .tflite file with `calib`
    (calibration data: an image directory, an .npy/.npz or arrays, in the model's own layout);
    or a Graph in memory. io: for float models, "float" (default: inputs and outputs converted
    inside the engine), "int" (the quantised tensors themselves), "int8" or "int16".
    activations: for float models, "int8" (default), "int16" (TFLite's 16x8 mode) or "mixed"
    (int16 only where int8 loses accuracy on the calibration data).
    input_shape: fixes a dynamic ONNX input shape.
    target: a Cortex-M core or board preset (tinyengine.target), None for the host.
    planner, patch, max_mac_overhead, stream_input: the memory options of `tinyengine compile`.
    """
    from .codegen import compile_graph
    from .frontend import is_onnx, load_model

    options: dict[str, Any] = {"planner": planner, "patch": patch,
                               "max_mac_overhead": max_mac_overhead,
                               "stream_input": stream_input, "prefix": prefix, "target": target}
    quantised_only = calib is None and (io is not None or activations != "int8")
    if isinstance(model, Graph):
        if calib is not None or io is not None or activations != "int8":
            raise TinyEngineError(f"graph {model.name!r} is already quantised: calib, io and "
                                  "activations apply to float model files")
        return compile_graph(model, output, source=model.name, **options)
    if is_onnx(model):
        from .convert import compile_onnx

        if calib is None:
            raise TinyEngineError(f"{model} is a float ONNX model: pass calibration data "
                                  "with --calib (a directory of images, or an .npy/.npz)")
        return compile_onnx(model, output, calib, method=calib_method, input_shape=input_shape,
                            io=io or "float", activations=activations, **options)
    if calib is not None:  # a float TFLite model, quantised as ONNX models are
        from .convert import compile_tflite

        return compile_tflite(model, output, calib, method=calib_method, io=io or "float",
                              activations=activations, **options)
    if quantised_only:
        raise TinyEngineError(f"{model}: --io and --activations apply to float models compiled "
                              "with --calib; a quantised model keeps its own types")
    return compile_graph(load_model(model), output, source=str(model),
                         source_model={"format": "tflite"}, **options)


def estimate_cost(model: str | Path | Graph, patch: str = "off",
                  max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD,
                  planner: str = "auto") -> Cost:
    """Peak SRAM (the arena), flash and MACs of an int8 model file or Graph, as compile_model
    would build it, without generating anything."""
    from .frontend import load_model

    graph = model if isinstance(model, Graph) else load_model(model)
    return estimate(graph, patch, max_mac_overhead, planner)
