"""tinyengine: compile int8 models into standalone, malloc-free C projects for microcontrollers.

The Python API (tinyengine/api.py; each name is imported on first use, so `import tinyengine`
stays cheap):

    compile_model(model, output, ...)   a .tflite / .onnx file or a Graph -> C project + report
    compile_torch(module, example, calib, output)   a PyTorch module, through ONNX
    HostModel(project).invoke([x, ...])             run a compiled project on the host
    estimate_cost(model, patch="off")               peak SRAM, flash and MACs, nothing written
    verify_model(path) / verify_graph(graph)        C == numpy reference (== TFLM)
    load_model(path) -> Graph                       the engine's IR of an int8 model file
    TinyEngineError, UnsupportedError               what every user-caused error raises
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "compile_model": ".api", "estimate_cost": ".api",
    "compile_torch": ".convert",
    "Cost": ".cost",
    "HostModel": ".runtime",
    "verify_model": ".verify", "verify_graph": ".verify", "OutputVerdict": ".verify",
    "load_model": ".frontend",
    "Graph": ".ir",
    "TinyEngineError": ".errors", "UnsupportedError": ".errors",
}

__all__ = [
    "__version__", "compile_model", "estimate_cost", "compile_torch", "Cost", "HostModel",
    "verify_model", "verify_graph", "OutputVerdict", "load_model", "Graph", "TinyEngineError",
    "UnsupportedError",
]

if TYPE_CHECKING:
    from .api import compile_model, estimate_cost
    from .convert import compile_torch
    from .cost import Cost
    from .errors import TinyEngineError, UnsupportedError
    from .frontend import load_model
    from .ir import Graph
    from .runtime import HostModel
    from .verify import OutputVerdict, verify_graph, verify_model


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tinyengine' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
