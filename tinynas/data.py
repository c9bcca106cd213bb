"""Datasets for the search: images as float32 NCHW in [0, 1], integer labels, fixed splits.

Sources (`load_dataset`):
- "digits": scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): real data
  that needs no download, the embedded default;
- a CIFAR-10 python directory (data_batch_1..5 and test_batch, as the official tarball
  unpacks): 32x32 RGB, 10 classes;
- an ImageFolder directory (one sub-directory per class, images inside, as torchvision reads
  it): every image converted to the first one's mode (greyscale or RGB) and resized to a square
  of the first one's shorter side.

`split` makes the three disjoint parts the pipeline needs: train (supernet and fine-tuning),
val (held-out fitness and BN recalibration during the search) and test (only the final report:
never trained on, searched on or calibrated with). It is stratified and seeded.

Images keep their native size here; `resize` (and `augment`, for training) bring a batch to a
subnet's resolution, so one dataset serves every resolution of the search space.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import TinyNASError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


@dataclass
class Dataset:
    x: np.ndarray  # (N, C, H, W) float32 in [0, 1]
    y: np.ndarray  # (N,) int64
    classes: list[str]
    name: str

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or len(self.x) == 0:
            raise TinyNASError(f"dataset {self.name}: {len(self.x)} images but "
                               f"{len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def in_channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def native_resolution(self) -> int:
        return int(self.x.shape[2])

    def subset(self, index: np.ndarray, part: str) -> Dataset:
        return Dataset(self.x[index], self.y[index], self.classes, f"{self.name}:{part}")


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset


def load_dataset(source: str | Path) -> Dataset:
    """'digits', a CIFAR-10 python directory, or an ImageFolder directory."""
    if str(source) == "digits":
        return load_digits()
    path = Path(source)
    if not path.exists():
        raise TinyNASError(f"dataset {str(source)!r}: no such directory (give 'digits', a "
                           "CIFAR-10 python directory or an ImageFolder directory)")
    if not path.is_dir():
        raise TinyNASError(f"dataset {path}: not a directory (give 'digits', a CIFAR-10 python "
                           "directory or an ImageFolder directory)")
    if (path / "data_batch_1").exists():
        return load_cifar10(path)
    return load_image_folder(path)


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return Dataset(x, d.target.astype(np.int64), [str(i) for i in range(10)], "digits")


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler for CIFAR-10's python batches that builds numpy arrays, bytes and plain
    containers and nothing else. The batches are pickles, and a pickle may name any function
    to call while it loads: a dataset directory a user downloaded must not run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused: the file asks for the Python object "
                                         f"{module}.{name}, and a CIFAR-10 batch holds only "
                                         "arrays, lists and bytes")
        return super().find_class(module, name)


def _load_batch(path: Path) -> Any:
    with open(path, "rb") as fh:
        return _ArrayUnpickler(fh, encoding="bytes").load()


def load_cifar10(path: str | Path) -> Dataset:
    """The CIFAR-10 python batches (train batches and test_batch, all of them: `split` makes
    its own seeded test split so that every source is handled alike)."""
    path = Path(path)
    files = sorted(path.glob("data_batch_*")) + ([path / "test_batch"]
                                                 if (path / "test_batch").exists() else [])
    xs, ys = [], []
    for f in files:
        try:
            batch = _load_batch(f)
            data = np.asarray(batch[b"data"], np.uint8)
            labels = np.asarray(batch[b"labels"], np.int64)
        except (OSError, pickle.UnpicklingError, KeyError, EOFError, TypeError, ValueError) as e:
            raise TinyNASError(f"{f}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") \
                from None
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
            raise TinyNASError(f"{f}: expected N x 3072 pixels and N labels, got "
                               f"{data.shape} and {labels.shape}")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    classes = [str(i) for i in range(10)]
    meta = path / "batches.meta"
    if meta.exists():
        try:
            classes = [n.decode() for n in _load_batch(meta)[b"label_names"]]
        except Exception:  # names are cosmetic: fall back to indices
            pass
    y = np.concatenate(ys)
    if y.min() < 0 or y.max() >= len(classes):
        raise TinyNASError(f"{path}: labels outside 0..{len(classes) - 1}")
    return Dataset(np.concatenate(xs).astype(np.float32) / 255.0, y, classes, path.name)


def load_image_folder(path: str | Path) -> Dataset:
    """One sub-directory per class (sorted names are the classes), images inside."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise TinyNASError(f"{path}: no class sub-directories (an ImageFolder dataset has one "
                           "directory per class with images inside)")
    images, labels = [], []
    mode: str | None = None
    size: tuple[int, int] | None = None
    for label, name in enumerate(classes):
        files = sorted(f for f in (path / name).iterdir()
                       if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise TinyNASError(f"{path / name}: class {name!r} has no images "
                               f"({', '.join(IMAGE_SUFFIXES)})")
        for f in files:
            try:
                with Image.open(f) as opened:
                    if mode is None or size is None:
                        mode = "L" if opened.mode in ("1", "L", "I", "I;16", "F") else "RGB"
                        size = (min(opened.size), min(opened.size))
                    im = opened.convert(mode)
                    if im.size != size:
                        im = im.resize(size, Image.Resampling.BILINEAR)
                    a = np.asarray(im, np.float32) / 255.0
            except (OSError, UnidentifiedImageError) as e:
                raise TinyNASError(f"{f}: cannot read the image ({e})") from None
            images.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            labels.append(label)
    if len(classes) < 2:
        raise TinyNASError(f"{path}: one class only ({classes[0]}); a classifier needs two")
    return Dataset(np.stack(images), np.asarray(labels, np.int64), classes, path.name)


def split(data: Dataset, test: float = 0.2, val: float = 0.15, seed: int = 0) -> Splits:
    """Stratified, seeded train / val / test parts; `test` and `val` are fractions of the whole.
    The test part depends only on (data, test, seed), so runs with other val fractions or
    search settings report on the same held-out images."""
    from sklearn.model_selection import train_test_split

    if not (0 < test < 1 and 0 < val < 1 and test + val < 1):
        raise TinyNASError(f"split fractions test={test}, val={val}: each must be in (0, 1) "
                           "and together below 1")
    counts = np.bincount(data.y, minlength=data.num_classes)
    if counts.min() < 3:
        raise TinyNASError(f"dataset {data.name}: class {data.classes[int(counts.argmin())]!r} "
                           f"has {counts.min()} image(s); every class needs at least 3 "
                           "(one each for train, val and test)")
    n, k = len(data), data.num_classes
    if min(round(test * n), round(val * n)) < k:
        raise TinyNASError(f"dataset {data.name}: {n} images are too few for a stratified split "
                           f"into {k} classes (test {test:g} and val {val:g} of them must each "
                           f"hold at least one image per class); add images or raise the "
                           "fractions")
    index = np.arange(n)
    try:
        rest, test_i = train_test_split(index, test_size=test, random_state=seed,
                                        stratify=data.y)
        train_i, val_i = train_test_split(rest, test_size=val / (1 - test), random_state=seed,
                                          stratify=data.y[rest])
    except ValueError as e:  # scikit-learn's own check of a split too small to stratify
        raise TinyNASError(f"dataset {data.name}: cannot split it stratified ({e})") from None
    return Splits(data.subset(np.sort(train_i), "train"), data.subset(np.sort(val_i), "val"),
                  data.subset(np.sort(test_i), "test"))


def resize(x: torch.Tensor, r: int) -> torch.Tensor:
    """A batch at r x r (bilinear, as the deployed model's caller is told to resize)."""
    if x.shape[-1] == r and x.shape[-2] == r:
        return x
    return F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False,
                         antialias=r < x.shape[-1])


def resize_numpy(x: np.ndarray, r: int) -> np.ndarray:
    with torch.no_grad():
        return resize(torch.from_numpy(x), r).numpy()


def augment(x: torch.Tensor, r: int, gen: torch.Generator, shift: float = 0.12,
            rotate: float = 10.0, scale: float = 0.1) -> torch.Tensor:
    """Random small affine distortions (shift as a fraction of the image, rotation in degrees,
    zoom), sampled at r x r in one grid_sample: the augmentation handwritten digits and small
    images need, and the resize, together."""
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    angle = u[:, 0] * rotate * np.pi / 180
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift * 2], 1),
                         torch.stack([sin, cos, u[:, 3] * shift * 2], 1)], 1)
    grid = F.affine_grid(theta, [n, x.shape[1], r, r], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def distorted(data: Dataset, r: int, views: int, seed: int = 0) -> Dataset:
    """`views` copies of every image under the training distortions (augment) at r x r, the
    same distortions for every caller with the same seed; views=0: the clean images.

    The search's fitness set. On a few hundred clean digits the admitted subnets of a tight
    budget make a handful of errors each, so their val accuracies tie or differ by noise (in a
    split-half check, accuracy on one half of val did not predict accuracy on the other half);
    the distorted views are harder and separate them (benchmarks/RESULTS.md)."""
    if views < 0:
        raise TinyNASError(f"{views} fitness views: give 0 (the clean images) or more")
    if views == 0:
        return data
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(data.x)
    with torch.no_grad():
        xs = [augment(x, r, gen).numpy() for _ in range(views)]
    return Dataset(np.concatenate(xs), np.tile(data.y, views), data.classes,
                   f"{data.name}:{views}-views")


def batches(data: Dataset, batch: int, r: int, shuffle_gen: torch.Generator | None = None,
            shard: tuple[int, int] = (0, 1)) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(images at r x r, labels) batches, in order or shuffled by `shuffle_gen`; `shard`
    (rank, world) keeps every world-th image of each global batch (data-parallel training:
    each process its share of the same global batch)."""
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    order = torch.randperm(len(y), generator=shuffle_gen) if shuffle_gen is not None \
        else torch.arange(len(y))
    rank, world = shard
    out = []
    for idx in order.split(batch):
        if len(idx) < world:  # a last global batch too small for every process to get a share:
            continue          # every process must run the same number of steps
        idx = idx[rank::world]
        out.append((resize(x[idx], r), y[idx]))
    return out
