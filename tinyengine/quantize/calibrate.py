"""Calibration: per-tensor statistics over calibration batches, and the clipping range they give.

Every activation tensor gets one `TensorObserver`: its exact minimum, maximum and zero count, and
(for the methods that need it) a histogram that grows to cover whatever the batches hold. The
histogram's bin width only ever doubles and its lower edge moves by whole new bins, so growing it
merges old bins exactly into new ones: the result does not depend on the order of the batches
beyond the final bin grid, and no value is ever counted twice or dropped.

Three ways to turn the statistics into a range, registered by name in `RANGE_METHODS`:
- "minmax": the exact extremes (what TFLite's converter does).
- "percentile": the values below which `percentile` % (and above which 100 - `percentile` %) of
  the data lie, interpolated inside the histogram's bins; a few outliers no longer stretch the
  scale for everything else.
- "mse": the range minimising the expected squared quantisation error over the histogram.
  Values outside the range cost their squared distance to the clipping edge (bins as their
  centres); values inside cost their exact expected rounding error with each bin's values
  spread uniformly over it, which is scale^2 / 12 for bins wider than a step and the bin
  centre's own rounding error for narrow ones (exact zeros, which int8 with an integer zero
  point represents exactly, cost nothing). Prefix sums score a whole row of candidate ranges
  at once: a geometric grid of step sizes, each slid over the positions that keep 0 inside.
  A uniform-noise-only model would clip Student-t(2) data hard where that doubles the error.

Calibration data from users (`load_calibration`): a directory of images, an .npy/.npz, an array,
or any iterable of batches such as a torch DataLoader, in the ONNX model's layout.

Every range is clamped to the data's exact extremes and widened to include 0 later (ptq.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ..errors import TinyEngineError

QMAX_STEPS = 255  # int8 has 256 levels, 255 steps between -128 and 127
DEFAULT_BINS = 2048
DEFAULT_PERCENTILE = 99.99


@dataclass
class Histogram:
    """Counts over `bins` equal bins starting at `lo`; grows by powers of two to fit new data."""

    bins: int = DEFAULT_BINS
    lo: float = 0.0
    width: float = 0.0  # bin width; 0 until the first update
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))

    @property
    def hi(self) -> float:
        return self.lo + self.bins * self.width

    def edges(self) -> np.ndarray:
        return self.lo + self.width * np.arange(self.bins + 1, dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        """Add finite values; the range always includes 0, where activations cluster."""
        if x.size == 0:
            return
        xmin, xmax = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        if self.width == 0.0:
            self.lo = xmin
            # An all-zero first batch still needs a positive width; growth corrects it later.
            self.width = max((xmax - xmin) / self.bins, 1e-30)
            self.counts = np.zeros(self.bins, np.float64)
        if xmin < self.lo or xmax > self.hi:
            self._grow(xmin, xmax)
        idx = np.floor((x.astype(np.float64) - self.lo) / self.width).astype(np.int64)
        np.clip(idx, 0, self.bins - 1, out=idx)  # the top edge belongs to the last bin
        self.counts += np.bincount(idx, minlength=self.bins)

    def _grow(self, xmin: float, xmax: float) -> None:
        """Widen the bins by 2^k and shift the lower edge by m new bins until [xmin, xmax] fits;
        old bin i then lies wholly inside new bin m + i // 2^k."""
        k = 1
        while True:
            width = self.width * (1 << k)
            m = max(0, math.ceil((self.lo - xmin) / width))
            lo = self.lo - m * width
            if lo + self.bins * width >= xmax and m + (self.bins - 1) // (1 << k) < self.bins:
                break
            k += 1
        merged = np.zeros(self.bins, np.float64)
        # Past 2^62 every old bin lands in new bin m anyway; the cap keeps the shift in int64.
        np.add.at(merged, m + (np.arange(self.bins) >> min(k, 62)), self.counts)
        self.lo, self.width, self.counts = lo, width, merged


@dataclass
class TensorObserver:
    """Statistics of one tensor over all calibration batches."""

    name: str
    histogram: Histogram | None = None  # only the histogram methods pay for one
    min: float = math.inf
    max: float = -math.inf
    count: int = 0
    zeros: int = 0

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x).ravel()
        finite = x[np.isfinite(x)]
        if finite.size != x.size:
            raise TinyEngineError(f"calibration: tensor {self.name} holds NaN or infinite values "
                                  "(check the calibration data and the float model)")
        if x.size == 0:
            return
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        self.count += x.size
        self.zeros += int(np.count_nonzero(x == 0))
        if self.histogram is not None:
            self.histogram.update(x)


def minmax_range(obs: TensorObserver) -> tuple[float, float]:
    return obs.min, obs.max


def _quantile(h: Histogram, mass: float) -> float:
    """The value below which `mass` of the histogram's counts lie, linear inside a bin."""
    cum = np.concatenate([[0.0], np.cumsum(h.counts)])
    i = int(np.searchsorted(cum, mass, side="left"))
    i = min(max(i, 1), h.bins)
    below, inside = cum[i - 1], h.counts[i - 1]
    frac = 0.0 if inside == 0 else (mass - below) / inside
    return float(h.lo + (i - 1 + frac) * h.width)


def percentile_range(obs: TensorObserver,
                     percentile: float = DEFAULT_PERCENTILE) -> tuple[float, float]:
    h = obs.histogram
    assert h is not None, "the percentile method needs a histogram"
    total = float(h.counts.sum())
    tail = total * (100.0 - percentile) / 100.0
    lo, hi = _quantile(h, tail), _quantile(h, total - tail)
    return max(lo, obs.min), min(hi, obs.max)


def _sawtooth_integral(u: np.ndarray) -> np.ndarray:
    """H(u) = integral from 0 to u of (t - round(t))^2 dt: 1/12 per whole period plus the part
    of the current one (t^2 up to 1/2, (1 - t)^2 after)."""
    whole = np.floor(u)
    f = u - whole
    part = np.where(f <= 0.5, f ** 3 / 3, 1 / 12 - (1 - f) ** 3 / 3)
    return whole / 12 + part


@dataclass
class _MseModel:
    """Prefix sums over a histogram for scoring clipping ranges (bins as centres for clipping,
    as uniform densities for rounding)."""

    h: Histogram
    zeros: int

    def __post_init__(self) -> None:
        h = self.h
        c = h.counts
        self.centres = h.lo + (np.arange(h.bins) + 0.5) * h.width
        x = self.centres
        self.n = np.concatenate([[0.0], np.cumsum(c)])
        self.s1 = np.concatenate([[0.0], np.cumsum(c * x)])
        self.s2 = np.concatenate([[0.0], np.cumsum(c * x * x)])
        # Exact zeros (ReLU outputs, padding) quantise without error: no rounding cost for them.
        self.rounded = c.copy()
        z = int(np.clip(np.floor(-h.lo / h.width), 0, h.bins - 1))
        self.rounded[z] = max(self.rounded[z] - self.zeros, 0.0)

    def clip_cost(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """sum c (lo - x)^2 over centres below lo, plus sum c (x - hi)^2 over centres above hi."""
        i = np.searchsorted(self.centres, lo)  # bins [0, i) are below lo
        j = np.searchsorted(self.centres, hi, side="right")  # bins [j, end) are above hi
        n, s1, s2 = self.n, self.s1, self.s2
        below = lo * lo * n[i] - 2 * lo * s1[i] + s2[i]
        an, a1, a2 = n[-1] - n[j], s1[-1] - s1[j], s2[-1] - s2[j]
        above = hi * hi * an - 2 * hi * a1 + a2
        return np.maximum(below, 0.0) + np.maximum(above, 0.0)

    def round_cost(self, scale: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Expected rounding error of the bins whose centres lie in [lo, hi]: for values uniform
        on a bin [a, b], E (x - s round(x / s))^2 = s^3 (H(b / s) - H(a / s)) / (b - a); the grid
        always holds 0 because the zero point is an integer."""
        h = self.h
        edges = h.edges() / scale
        per_bin = self.rounded * scale ** 3 * np.diff(_sawtooth_integral(edges)) / h.width
        cum = np.concatenate([[0.0], np.cumsum(per_bin)])
        i = np.searchsorted(self.centres, lo)
        j = np.searchsorted(self.centres, hi, side="right")
        return cum[j] - cum[np.minimum(i, j)]


def mse_range(obs: TensorObserver, scales: int = 96, offsets: int = 48,
              max_clip: float = 4096.0) -> tuple[float, float]:
    """The (lo, hi) minimising clipping + rounding error: for each of `scales` step sizes from
    the full range's down to 1/`max_clip` of it (geometric), slide the 255-step window over
    `offsets` positions that keep 0 inside, and score every pair at once."""
    h = obs.histogram
    assert h is not None, "the mse method needs a histogram"
    xmin, xmax = min(obs.min, 0.0), max(obs.max, 0.0)
    if xmax - xmin <= 0:
        return obs.min, obs.max
    model = _MseModel(h, obs.zeros)
    full = (xmax - xmin) / QMAX_STEPS
    best = (model.clip_cost(np.array([xmin]), np.array([xmax]))
            + model.round_cost(full, np.array([xmin]), np.array([xmax])))[0], xmin, xmax
    for scale in full * np.geomspace(1.0, 1.0 / max_clip, scales)[1:]:
        span = scale * QMAX_STEPS
        lo = np.linspace(max(xmin, -span), min(0.0, xmax - span), offsets)
        hi = lo + span
        err = model.clip_cost(lo, hi) + model.round_cost(float(scale), lo, hi)
        k = int(np.argmin(err))
        if err[k] < best[0]:
            best = err[k], float(lo[k]), float(hi[k])
    _, lo_best, hi_best = best
    return max(lo_best, obs.min), min(hi_best, obs.max)


RANGE_METHODS: dict[str, Callable[[TensorObserver], tuple[float, float]]] = {
    "minmax": minmax_range,
    "percentile": percentile_range,
    "mse": mse_range,
}


def check_method(method: str) -> None:
    if method not in RANGE_METHODS:
        raise TinyEngineError(f"unknown calibration method {method!r}; choose one of "
                              f"{', '.join(RANGE_METHODS)}")


def observe(activation_batches: Iterable[Mapping[str, np.ndarray]], method: str = "minmax",
            bins: int = DEFAULT_BINS) -> dict[str, TensorObserver]:
    """Feed every batch's tensors (name -> float values) to one observer per tensor name."""
    check_method(method)
    observers: dict[str, TensorObserver] = {}
    for batch in activation_batches:
        for name, value in batch.items():
            if name not in observers:
                observers[name] = TensorObserver(
                    name, None if method == "minmax" else Histogram(bins))
            observers[name].update(value)
    return observers


def calibration_ranges(observers: Mapping[str, TensorObserver], method: str = "minmax",
                       percentile: float = DEFAULT_PERCENTILE) -> dict[str, tuple[float, float]]:
    """name -> (lo, hi) clipping range chosen by `method` (sorted by name for determinism)."""
    check_method(method)
    if not 50.0 < percentile <= 100.0:
        raise TinyEngineError(f"percentile {percentile} must be in (50, 100]")
    ranges = {}
    for name in sorted(observers):
        obs = observers[name]
        if obs.count == 0:
            continue
        if method == "percentile":
            ranges[name] = percentile_range(obs, percentile)
        else:
            ranges[name] = RANGE_METHODS[method](obs)
    return ranges



# ---------------------------------------------------------------------------------------------
# Calibration data from users
# ---------------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DEFAULT_BATCH_SIZE = 32
_HOW = "pass a directory of images, an .npy/.npz file, or an iterable of arrays (a DataLoader)"


def load_calibration(source: str | Path | np.ndarray | Iterable[Any],
                     input_shape_onnx: tuple[int, ...], dtype: DTypeLike = np.float32, *,
                     input_name: str | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE,
                     max_samples: int | None = None) -> list[np.ndarray]:
    """Calibration batches for a model input of shape `input_shape_onnx` (leading batch axis
    included, ONNX layout), each (B, *input_shape_onnx[1:]) in `dtype`.

    `source` is a directory of PNG/JPEG/BMP images (converted to the input's 1 or 3 channels,
    resized to its H x W, scaled to [0, 1]; for other preprocessing save an .npy instead), an
    .npy (N samples or one), an .npz (the array named `input_name`, else the first), such an
    array itself, or any iterable such as a torch DataLoader (first element of tuples/lists,
    tensors via .numpy()).
    Files are read in name order and at most `max_samples` samples are kept.
    """
    sample_shape = tuple(int(d) for d in input_shape_onnx[1:])
    if isinstance(source, (str, Path, np.ndarray)):
        if isinstance(source, np.ndarray):  # what an .npy would hold
            what = "the calibration array"
            samples = _as_samples(source, sample_shape, what)[:max_samples]
        else:
            what = str(source)
            samples = _load_path(Path(source), tuple(input_shape_onnx), input_name, max_samples)
        chunks = [samples[i:i + batch_size] for i in range(0, len(samples), batch_size)]
        return [_finite(c.astype(dtype), what) for c in chunks]
    if not isinstance(source, Iterable) or isinstance(source, bytes):
        raise TinyEngineError(f"calibration data of type {type(source).__name__}: {_HOW}")
    batches: list[np.ndarray] = []
    taken = 0
    for i, item in enumerate(source):
        what = f"calibration batch {i}"
        batch = _as_samples(_to_numpy(item, what), sample_shape, what)
        if max_samples is not None:
            batch = batch[:max_samples - taken]
        batches.append(_finite(batch.astype(dtype), what))
        taken += len(batch)
        if max_samples is not None and taken >= max_samples:
            break
    if not batches:
        raise TinyEngineError(f"the calibration data holds no batches; {_HOW}")
    return batches


def _load_path(path: Path, shape: tuple[int, ...], input_name: str | None,
               max_samples: int | None) -> np.ndarray:
    if not path.exists():
        raise TinyEngineError(f"calibration data {path} does not exist; {_HOW}")
    if path.is_dir():
        return _load_images(path, shape, max_samples)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise TinyEngineError(f"{path}: calibration files must be .npy or .npz (or a directory "
                              "of PNG/JPEG/BMP images)")
    magic = {".npy": b"\x93NUMPY", ".npz": b"PK"}[suffix]
    try:
        with open(path, "rb") as f:
            head = f.read(len(magic))
    except OSError as e:
        raise TinyEngineError(f"{path}: cannot read ({e.strerror})") from None
    if head != magic:  # np.load would try to unpickle it
        raise TinyEngineError(f"{path}: cannot read as {suffix} (not written by np.save"
                              f"{'z' if suffix == '.npz' else ''})")
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):  # an object array: strings, lists, mixed types
            raise TinyEngineError(f"{path}: holds non-numeric data; save a numeric array with "
                                  "np.save") from None
        raise TinyEngineError(f"{path}: cannot read as {suffix} ({e})") from None
    except (OSError, EOFError) as e:
        raise TinyEngineError(f"{path}: cannot read as {suffix} ({e})") from None
    if isinstance(loaded, np.ndarray):
        array = loaded
    else:
        with loaded:
            if not loaded.files:
                raise TinyEngineError(f"{path}: the .npz holds no arrays; add one of shape "
                                      f"(N, {', '.join(map(str, shape[1:]))})")
            key = input_name if input_name in loaded.files else loaded.files[0]
            try:
                array = loaded[key]
            except ValueError:
                raise TinyEngineError(f"{path}: array {key!r} holds non-numeric data; save a "
                                      "numeric array") from None
    samples = _as_samples(array, shape[1:], str(path))
    return samples if max_samples is None else samples[:max_samples]


def _to_numpy(item: Any, what: str) -> np.ndarray:
    if isinstance(item, (tuple, list)):
        if not item:
            raise TinyEngineError(f"{what} is an empty {type(item).__name__}")
        item = item[0]  # (inputs, labels) as datasets yield them
    if hasattr(item, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        item = item.detach().cpu().numpy()
    elif hasattr(item, "numpy") and not isinstance(item, np.ndarray):
        item = item.numpy()
    try:
        return np.asarray(item)
    except (TypeError, ValueError) as e:
        raise TinyEngineError(f"{what}: cannot convert {type(item).__name__} to an array "
                              f"({e}); yield numeric arrays or tensors") from None


def _as_samples(array: np.ndarray, sample_shape: tuple[int, ...], what: str) -> np.ndarray:
    """(N, *sample_shape) from a batch of samples or a single sample."""
    if array.dtype.kind not in "biuf":
        raise TinyEngineError(f"{what}: holds non-numeric data (dtype {array.dtype}); "
                              "calibration data must be numbers")
    if array.size == 0:
        raise TinyEngineError(f"{what}: is empty (shape {array.shape}); it needs at least one "
                              "sample")
    if tuple(array.shape) == sample_shape:
        return array[None]
    if tuple(array.shape[1:]) == sample_shape:
        return array
    sample = ", ".join(map(str, sample_shape))
    raise TinyEngineError(f"{what}: expected shape (N, {sample}) or ({sample}), got "
                          f"{tuple(array.shape)}; the model input is (N, {sample}) in ONNX "
                          "layout")


def _finite(batch: np.ndarray, what: str) -> np.ndarray:
    if batch.dtype.kind == "f" and not np.all(np.isfinite(batch)):
        raise TinyEngineError(f"{what}: holds NaN or infinite values; clean the calibration "
                              "data")
    return np.ascontiguousarray(batch)


def _load_images(folder: Path, shape: tuple[int, ...], max_samples: int | None) -> np.ndarray:
    """Images of a directory as float samples in [0, 1] of the input's (C, H, W) (or (H, W, C)
    when the input is channels-last), in file-name order."""
    if len(shape) == 4 and shape[1] in (1, 3):
        channels, (h, w), channels_last = shape[1], shape[2:4], False
    elif len(shape) == 4 and shape[3] in (1, 3):
        channels, (h, w), channels_last = shape[3], shape[1:3], True
    else:
        raise TinyEngineError(f"{folder}: a directory of images needs a model input of shape "
                              f"(N, 1 or 3, H, W); this model takes {shape}: save the samples "
                              "as an .npy instead")
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise TinyEngineError("reading calibration images needs Pillow (pip install pillow), "
                              "or pass an .npy") from None
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if max_samples is not None:
        files = files[:max_samples]
    if not files:
        raise TinyEngineError(f"{folder}: no PNG, JPEG or BMP images in the directory; add "
                              "some or pass an .npy")
    samples = []
    for f in files:
        try:
            with Image.open(f) as raw:
                img = raw.convert("L" if channels == 1 else "RGB")
            img = img.resize((w, h), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, np.float32) / np.float32(255.0)
        except (UnidentifiedImageError, OSError) as e:
            raise TinyEngineError(f"{f}: cannot read as an image ({e}); remove it from the "
                                  "calibration directory") from None
        pixels = pixels.reshape(h, w, channels)
        samples.append(pixels if channels_last else pixels.transpose(2, 0, 1))
    return np.stack(samples)


__all__ = ["Histogram", "RANGE_METHODS", "TensorObserver", "calibration_ranges", "load_calibration",
           "minmax_range", "mse_range", "observe", "percentile_range"]
