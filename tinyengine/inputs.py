"""Model inputs from users: .npy files (one input or a batch), checks that each of several inputs
is in its place, random inputs for verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import TinyEngineError
from .ir import DTYPES, QRANGE, Graph


def load_npy(path: str | Path) -> np.ndarray:
    """One array from an .npy file; anything else (an .npz archive, a pickle, an empty or damaged
    file) is refused with one line."""
    try:
        x = np.load(path, allow_pickle=False)
    except OSError as e:
        raise TinyEngineError(f"{path}: cannot read ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 (numpy's format reader fails in many ways on bad bytes)
        detail = "the file is empty" if isinstance(e, EOFError) else f"{type(e).__name__}: {e}"
        raise TinyEngineError(f"{path}: not a readable .npy file ({detail}); save the input "
                              "with numpy.save") from None
    if not isinstance(x, np.ndarray):
        if hasattr(x, "close"):
            x.close()
        raise TinyEngineError(f"{path}: is an .npz archive, not an .npy array; give one .npy "
                              "file per model input (--input once per input)")
    return x


def _expected(shape: tuple[int, ...]) -> str:
    dims = ", ".join(map(str, shape))
    return f"the input shape ({dims}) or a batch of it (N, {dims})"


def as_batch(x: np.ndarray, spec: dict[str, Any], what: str) -> tuple[np.ndarray, bool]:
    """(batch, batched): x is one input of the spec's exact shape, or a batch of N >= 1 such
    inputs along a new first axis (for a model with batch 1, also N samples in place of that 1).
    Nothing else is reshaped: an array with the right number of elements in another layout (NCHW
    for an NHWC model) would run and give a wrong answer without a word."""
    shape = tuple(spec["shape"])
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TinyEngineError(f"{what}: dtype {x.dtype} is not numeric; this model takes "
                              f"{spec['dtype']} input")
    if x.shape == shape:
        batch, batched = x.reshape((1, *shape)), False
    elif x.shape[1:] == shape and x.ndim == len(shape) + 1:
        batch, batched = x, True
    elif shape and shape[0] == 1 and x.ndim == len(shape) and x.shape[1:] == shape[1:]:
        batch, batched = x[:, None], True  # a model with batch 1 given N samples along axis 0
    else:
        raise TinyEngineError(f"{what}: shape {x.shape} is neither {_expected(shape)}; "
                              "transpose or reshape it to the model's layout first")
    if len(batch) == 0:
        raise TinyEngineError(f"{what}: shape {x.shape} holds no samples; give at least one "
                              f"({_expected(shape)})")
    dtype = np.dtype(DTYPES[spec["dtype"]])
    if batch.dtype != dtype:
        if dtype.kind == "i" and batch.dtype.kind in "biu":
            info = np.iinfo(dtype)  # type: ignore[type-var]
            if batch.size and (batch.min() < info.min or batch.max() > info.max):
                raise TinyEngineError(f"{what}: values outside the {spec['dtype']} range")
        elif not (dtype.kind == "f" and batch.dtype.kind in "fiu"):
            raise TinyEngineError(f"{what}: dtype {batch.dtype}; this model takes "
                                  f"{spec['dtype']} input")
        batch = batch.astype(dtype)
    return batch, batched


def random_inputs(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    """One random input per graph input: the full range of its integer type, or for float
    inputs the range the first QUANTIZE reading them can represent (int8 or int16)."""
    out = []
    for name in graph.inputs:
        t = graph.tensor(name)
        if t.dtype == "float32":
            q = next((graph.tensor(op.outputs[0]) for op in graph.ops
                      if op.kind == "QUANTIZE" and op.inputs[0] == name), None)
            qmin, qmax = QRANGE.get(q.dtype, QRANGE["int8"]) if q else (0, 0)
            lo, hi = ((qmin - q.zero_point) * q.scale, (qmax - q.zero_point) * q.scale) if q \
                else (-1.0, 1.0)
            out.append(rng.uniform(lo, hi, t.shape).astype(np.float32))
        else:
            info = np.iinfo(DTYPES[t.dtype])  # type: ignore[type-var]
            out.append(rng.integers(info.min, info.max + 1, t.shape).astype(DTYPES[t.dtype]))
    return out


def input_specs(graph: Graph) -> list[dict[str, Any]]:
    """Name, shape, size and dtype of each graph input, as report.json's "inputs" hold them."""
    return [{"name": n, "shape": list(graph.tensor(n).shape), "size": graph.tensor(n).size,
             "dtype": graph.tensor(n).dtype} for n in graph.inputs]


def _shape_text(spec: dict[str, Any]) -> str:
    return f"{spec['name']} {'x'.join(map(str, spec['shape'])) or 'scalar'} {spec['dtype']}"


def check_input_count(given: int, specs: list[dict[str, Any]],
                      how: str = "pass --input once per input") -> None:
    """One array per model input, or an error that says how many and which."""
    if given != len(specs):
        raise TinyEngineError(f"the model takes {len(specs)} input(s) "
                              f"({', '.join(map(_shape_text, specs))}); got {given}: {how}, in "
                              "the model's order")


def _fits(shape: tuple[int, ...], spec_shape: tuple[int, ...]) -> bool:
    return shape == spec_shape or shape[1:] == spec_shape


def check_input_order(arrays: list[np.ndarray], specs: list[dict[str, Any]],
                      names: list[str]) -> None:
    """Refuse an array given in another input's place with a message that says so (as_batch
    would only say that the shape is wrong)."""
    shapes = [tuple(s["shape"]) for s in specs]
    for i, (x, what) in enumerate(zip(arrays, names)):
        if _fits(tuple(x.shape), shapes[i]):
            continue
        other = next((j for j, s in enumerate(shapes) if j != i and _fits(tuple(x.shape), s)),
                     None)
        if other is not None:
            raise TinyEngineError(
                f"{what}: shape {tuple(x.shape)} is input {other}'s ({_shape_text(specs[other])}),"
                f" not input {i}'s ({_shape_text(specs[i])}); give the inputs in the model's "
                "order")


def as_input(x: Any, spec: dict[str, Any], what: str) -> np.ndarray:
    """One sample for one inference, in the spec's exact shape and dtype."""
    batch, _ = as_batch(np.asarray(x), spec, what)
    if len(batch) != 1:
        raise TinyEngineError(f"{what}: {len(batch)} samples where one inference takes one; "
                              "invoke once per sample")
    return np.ascontiguousarray(batch[0])


def split_records(batches: list[np.ndarray], names: list[str]) -> list[list[np.ndarray]]:
    """Per-input batches (N, *shape) -> N records, each a list with one array per input."""
    lengths = [len(b) for b in batches]
    if len(set(lengths)) > 1:
        counts = ", ".join(f"{w} {n}" for w, n in zip(names, lengths))
        raise TinyEngineError(f"the inputs hold different numbers of samples ({counts}); give "
                              "every input the same batch size")
    return [[b[k] for b in batches] for k in range(lengths[0] if lengths else 0)]
