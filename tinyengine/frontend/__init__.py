"""Frontends: model files -> the engine's IR."""

from pathlib import Path

from ..errors import TinyEngineError
from ..ir import Graph
from .tflite_reader import load_tflite, parse_tflite


def is_onnx(path: str | Path) -> bool:
    """An ONNX file by name, or anything that is not a TFLite flatbuffer named .onnx."""
    p = Path(path)
    if not p.is_file():
        raise TinyEngineError(f"{p}: no such model file")
    with open(p, "rb") as f:
        head = f.read(8)
    return p.suffix.lower() == ".onnx" and head[4:8] != b"TFL3"


def load_model(path: str | Path) -> Graph:
    """Load an int8 model file (TFLite). Float ONNX models need calibration: see convert.py."""
    p = Path(path)
    if is_onnx(p):
        raise TinyEngineError(f"{p} is a float ONNX model: it needs calibration data to become "
                              "int8; use `tinyengine compile MODEL.onnx --calib DATA -o DIR`")
    return load_tflite(p)


__all__ = ["is_onnx", "load_model", "load_tflite", "parse_tflite"]
