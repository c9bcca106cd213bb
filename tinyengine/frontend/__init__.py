"""Frontends: model files -> the engine's IR."""

from pathlib import Path

from ..errors import TinyEngineError
from ..ir import Graph
from .tflite_reader import load_tflite, parse_tflite


def load_model(path: str | Path) -> Graph:
    """Load any supported model file, chosen by its contents (TFLite now; ONNX comes next)."""
    p = Path(path)
    if not p.is_file():
        raise TinyEngineError(f"{p}: no such model file")
    return load_tflite(p)


__all__ = ["load_model", "load_tflite", "parse_tflite"]
