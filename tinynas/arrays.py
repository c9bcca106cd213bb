"""The user's own arrays as a dataset: a .npz file, or a directory of .npy files.

Layout (the same names in both forms; in a directory each is NAME.npy):
- x: the training examples, one of
    N x C x H x W   images (H == W: tinynas's images are square),
    N x L x C       sequences of length L with C channels (a window of C sensor axes),
    N x L           one-channel sequences;
  uint8 is divided by 255 (8-bit pixels); every other integer or float type keeps its values,
  as float32 (scale them as you will scale the device's input).
- y: N integer labels 0..K-1, every class present in y.
- x_test, y_test (optional, both or neither): a test part kept as given (`split` carves val
  from x and reports on x_test); without them `split` draws a stratified test part from x.
- classes (optional): K class names, a string array; K = max(y) + 1 without it.

Sequences are stored as (N, C, L, 1) (tinynas/data.py). N x L x C is read as written: an array
saved channels-first (N x C x L, as PyTorch's Conv1d takes it) must be transposed first.

The files are untrusted: they are read with allow_pickle=False, so loading never runs code,
and an object array is refused by name. Every bad input is one TinyNASError line naming the
file and the array.
"""

from __future__ import annotations

import functools
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .data import Dataset
from .errors import TinyNASError

NAMES = ("x", "y", "x_test", "y_test", "classes")
LAYOUTS = ("N x C x H x W images, N x L x C sequences or N x L one-channel sequences")


def load_arrays(path: Path) -> Dataset:
    """A .npz file or a directory holding x.npy and y.npy (and the optional arrays)."""
    arrays, where = _read_npz(path) if path.is_file() else _read_directory(path)
    return arrays_dataset(arrays, where, path.stem if path.is_file() else path.name)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    where = {n: f"{path} (array {n})" for n in NAMES}
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise TinyNASError(f"{path}: not a readable .npz archive of arrays x and y "
                           f"({_one_line(e)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TinyNASError(f"{path}: holds one array, not a .npz archive of x and y (save with "
                           "np.savez(path, x=x, y=y))")
    with archive:
        unknown = sorted(set(archive.files) - set(NAMES))
        if unknown:
            raise TinyNASError(f"{path}: unknown array(s) {', '.join(map(repr, unknown))}; a "
                               f"dataset .npz holds {', '.join(NAMES)} (x and y required)")
        arrays = {n: _member(functools.partial(archive.__getitem__, n), where[n])
                  for n in archive.files}
    return arrays, where


def _read_directory(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    where = {n: str(path / f"{n}.npy") for n in NAMES}
    found = sorted(p.stem for p in path.glob("*.npy"))
    unknown = [n for n in found if n not in NAMES]
    if unknown:
        raise TinyNASError(f"{path}: unknown array file(s) "
                           f"{', '.join(f'{n}.npy' for n in unknown)}; a dataset directory "
                           f"holds {', '.join(f'{n}.npy' for n in NAMES)} (x and y required)")
    arrays = {n: _member(functools.partial(_load_npy, path / f"{n}.npy"), where[n])
              for n in found}
    return arrays, where


def _load_npy(file: Path) -> np.ndarray:
    with open(file, "rb") as f:
        if f.read(6) != b"\x93NUMPY":  # np.load would take anything else for a pickle
            raise _NotNpy
    return np.asarray(np.load(file, allow_pickle=False))


class _NotNpy(Exception):
    pass


def _member(read: Callable[[], np.ndarray], where: str) -> np.ndarray:
    try:
        a = read()
    except ValueError as e:
        if "Object arrays" in str(e):
            raise TinyNASError(f"{where}: an object array (Python objects, which only "
                               "unpickling could load, and loading never runs code); save "
                               "numbers, and class names as a string array") from None
        raise TinyNASError(f"{where}: cannot read it ({_one_line(e)})") from None
    except _NotNpy:
        raise TinyNASError(f"{where}: not a .npy array (a pickle or another format: refused, "
                           "loading never runs code); save it with np.save") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise TinyNASError(f"{where}: cannot read it ({_one_line(e)})") from None
    if not isinstance(a, np.ndarray):
        raise TinyNASError(f"{where}: not a numpy array")
    return a


def arrays_dataset(arrays: dict[str, np.ndarray], where: dict[str, str], name: str) -> Dataset:
    """Check the arrays (`where` names each one in messages) and build the dataset: x and
    x_test concatenated, x_test's indices the fixed test part."""
    for n in ("x", "y"):
        if n not in arrays:
            raise TinyNASError(f"{where[n]}: missing (a dataset needs x, the examples, and y, "
                               "their labels)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lack = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise TinyNASError(f"{where[lack]}: missing ({have} is given; give both or neither)")
    xs = [_examples(arrays["x"], where["x"])]
    if "x_test" in arrays:
        x_test = _examples(arrays["x_test"], where["x_test"])
        if x_test.shape[1:] != xs[0].shape[1:]:
            raise TinyNASError(f"{where['x_test']}: examples of shape {x_test.shape[1:]} but x "
                               f"holds {xs[0].shape[1:]}; both need the same layout")
        xs.append(x_test)
    ys = [_labels(arrays["y"], len(xs[0]), where["y"])]
    if "y_test" in arrays:
        ys.append(_labels(arrays["y_test"], len(xs[1]), where["y_test"]))
    classes = _classes(arrays["classes"], where["classes"]) if "classes" in arrays \
        else [str(i) for i in range(int(ys[0].max()) + 1)]
    for y, n in zip(ys, ("y", "y_test")):
        bad = np.flatnonzero(y >= len(classes))
        if len(bad):
            what = f"{len(classes)} class names" if "classes" in arrays else \
                f"labels 0..{len(classes) - 1} (from y)"
            raise TinyNASError(f"{where[n]}: label {y[bad[0]]} at index {bad[0]} is out of "
                               f"range: there are {what}")
    missing = np.flatnonzero(np.bincount(ys[0], minlength=len(classes)) == 0)
    if len(missing):
        raise TinyNASError(f"{where['y']}: class {classes[missing[0]]!r} (label {missing[0]}) "
                           "has no example in y; every class needs training examples")
    if len(classes) < 2:
        raise TinyNASError(f"{where['y']}: one class only ({classes[0]!r}); a classifier needs "
                           "two")
    x = np.concatenate(xs) if len(xs) > 1 else xs[0]
    kind = "image" if arrays["x"].ndim == 4 else "sequence"
    fixed = np.arange(len(xs[0]), len(x)) if len(xs) > 1 else None
    return Dataset(x, np.concatenate(ys), classes, name, kind, fixed)


def _examples(a: np.ndarray, where: str) -> np.ndarray:
    """x or x_test as float32 NCHW: (N, C, H, W) images or (N, C, L, 1) sequences."""
    if a.dtype.kind not in "iuf":
        raise TinyNASError(f"{where}: dtype {a.dtype}; examples must be integers or floats")
    if a.ndim not in (2, 3, 4):
        raise TinyNASError(f"{where}: shape {a.shape} has rank {a.ndim}; expected {LAYOUTS}")
    if a.size == 0:
        raise TinyNASError(f"{where}: empty (shape {a.shape})")
    if a.ndim == 4 and (a.shape[2] != a.shape[3] or a.shape[2] < 2):
        raise TinyNASError(f"{where}: images of {a.shape[2]} x {a.shape[3]} (shape {a.shape}); "
                           "tinynas's images are square, at least 2 x 2: crop or resize them "
                           "(or give sequences as N x L x C)")
    if a.ndim in (2, 3) and a.shape[1] < 2:
        raise TinyNASError(f"{where}: sequences of length {a.shape[1]} (shape {a.shape}); "
                           "a sequence is N x L x C or N x L with L >= 2")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range: reported below
        x = a.astype(np.float32) / np.float32(255) if a.dtype == np.uint8 \
            else a.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        first = ", ".join(str(int(i)) for i in np.argwhere(bad)[0])
        raise TinyNASError(f"{where}: {int(bad.sum())} value(s) are NaN or infinite (as "
                           f"float32), the first at [{first}]; fix or drop those examples")
    if x.ndim == 2:
        return x[:, None, :, None]
    if x.ndim == 3:
        return np.ascontiguousarray(x.transpose(0, 2, 1))[..., None]
    return np.ascontiguousarray(x)


def _labels(a: np.ndarray, n: int, where: str) -> np.ndarray:
    if a.ndim != 1:
        raise TinyNASError(f"{where}: shape {a.shape}; labels are one integer per example, "
                           "shape (N,) (not one-hot, not N x 1)")
    if a.dtype.kind not in "iu":
        raise TinyNASError(f"{where}: dtype {a.dtype}; labels must be integers 0..K-1")
    if len(a) != n:
        raise TinyNASError(f"{where}: {len(a)} labels but the examples are {n}")
    if len(a) and a.min() < 0:
        i = int(np.argmin(a))
        raise TinyNASError(f"{where}: label {a[i]} at index {i} is negative; labels are "
                           "0..K-1")
    return a.astype(np.int64)


def _classes(a: np.ndarray, where: str) -> list[str]:
    if a.ndim != 1 or a.dtype.kind not in "US":
        raise TinyNASError(f"{where}: {a.dtype} of shape {a.shape}; class names are one "
                           "string array (np.array(['cat', 'dog']))")
    names = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in a]
    if len(set(names)) != len(names):
        dup = next(v for v in names if names.count(v) > 1)
        raise TinyNASError(f"{where}: class name {dup!r} appears twice")
    return names
