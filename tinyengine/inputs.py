"""Model inputs from users: .npy files (one input or a batch), random inputs for verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import TinyEngineError
from .ir import DTYPES, Graph


def load_npy(path: str | Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise TinyEngineError(f"{path}: cannot read as .npy ({e})") from None


def as_batch(x: np.ndarray, spec: dict[str, Any], what: str) -> tuple[np.ndarray, bool]:
    """(batch, batched): x is one input of the spec's shape or a batch along a new first axis."""
    shape = tuple(spec["shape"])
    if x.shape == shape or (x.size == spec["size"] and x.ndim != len(shape) + 1):
        batch, batched = x.reshape((1, *shape)), False
    elif x.shape[1:] == shape:
        batch, batched = x, True
    elif shape and shape[0] == 1 and x.ndim == len(shape) and x.shape[1:] == shape[1:]:
        batch, batched = x[:, None], True  # a model with batch 1 given N samples along axis 0
    else:
        raise TinyEngineError(f"{what}: shape {x.shape} is neither the input shape {shape} nor a "
                              f"batch of it (N, {', '.join(map(str, shape))})")
    dtype = np.dtype(DTYPES[spec["dtype"]])
    if batch.dtype != dtype:
        if dtype.kind == "i" and batch.dtype.kind in "iu":
            info = np.iinfo(dtype)  # type: ignore[type-var]
            if batch.size and (batch.min() < info.min or batch.max() > info.max):
                raise TinyEngineError(f"{what}: values outside the {spec['dtype']} range")
        elif not (dtype.kind == "f" and batch.dtype.kind in "fiu"):
            raise TinyEngineError(f"{what}: dtype {batch.dtype}; this model takes "
                                  f"{spec['dtype']} input")
        batch = batch.astype(dtype)
    return batch, batched


def random_inputs(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """One random input per graph input: the full int8 range, or for float inputs the range the
    first QUANTIZE reading them can represent."""
    out = []
    for name in graph.inputs:
        t = graph.tensor(name)
        if t.dtype == "float32":
            q = next((graph.tensor(op.outputs[0]) for op in graph.ops
                      if op.kind == "QUANTIZE" and op.inputs[0] == name), None)
            lo, hi = ((-128 - q.zero_point) * q.scale, (127 - q.zero_point) * q.scale) if q \
                else (-1.0, 1.0)
            out.append(rng.uniform(lo, hi, t.shape).astype(np.float32))
        else:
            info = np.iinfo(DTYPES[t.dtype])  # type: ignore[type-var]
            out.append(rng.integers(info.min, info.max + 1, t.shape).astype(DTYPES[t.dtype]))
    return out
