"""Datasets for the search: float32 NCHW examples, integer labels, fixed splits.

Two kinds of example share one layout. Images are (N, C, H, W) with H == W. Sequences (1-D
signals: sensor windows, audio features) are (N, C, L, 1): NCHW with W = 1, so that the 1-D
blocks are (k x 1) convolutions of the engine's CONV_2D and every tensor-shaped helper here
serves both; `resize` and `augment` tell them apart by W == 1.

Sources (`load_dataset`):
- "digits": scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): real data
  that needs no download, the embedded default;
- "mnist1d": MNIST-1D (the `mnist1d` package's generator, run locally: 12,000 sequences of
  length 40, 10 classes, the package's own 9,600 / 2,400 train / test split);
- the user's own arrays: a .npz file or a directory holding x.npy and y.npy (tinynas/arrays.py
  has the layout);
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

import functools
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .errors import TinyNASError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                  ".pgm")


KINDS = ("image", "sequence")


@dataclass
class Dataset:
    """`fixed_test`: the indices of a test part the source fixes (MNIST-1D's own test split, the
    user's x_test), which `split` keeps as the test part; None: `split` draws one."""

    x: np.ndarray  # (N, C, H, W) images or (N, C, L, 1) sequences, float32
    y: np.ndarray  # (N,) int64
    classes: list[str]
    name: str
    kind: str = "image"
    fixed_test: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or len(self.x) == 0:
            raise TinyNASError(f"dataset {self.name}: {len(self.x)} {self.noun}s but "
                               f"{len(self.y)} labels")
        if self.kind not in KINDS:
            raise TinyNASError(f"dataset {self.name}: kind {self.kind!r} is not one of "
                               f"{', '.join(KINDS)}")
        if self.kind == "sequence" and (self.x.ndim != 4 or self.x.shape[3] != 1):
            raise TinyNASError(f"dataset {self.name}: sequences are stored as (N, C, L, 1), "
                               f"got {self.x.shape}")
        if self.fixed_test is not None:
            t = np.asarray(self.fixed_test, np.int64)
            if len(t) == 0 or t.min() < 0 or t.max() >= len(self.y) or \
                    len(np.unique(t)) != len(t):
                raise TinyNASError(f"dataset {self.name}: the fixed test part must be distinct "
                                   f"indices of its {len(self.y)} examples")
            self.fixed_test = np.sort(t)

    @property
    def noun(self) -> str:
        return "image" if self.kind == "image" else "example"

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
        """H of an image (they are square), L of a sequence."""
        return int(self.x.shape[2])

    def subset(self, index: np.ndarray, part: str) -> Dataset:
        return Dataset(self.x[index], self.y[index], self.classes, f"{self.name}:{part}",
                       self.kind)


@dataclass
class Splits:
    train: Dataset
    val: Dataset
    test: Dataset


SOURCES = ("give 'digits', 'mnist1d', a .npz file of arrays, a directory holding x.npy and "
           "y.npy, a CIFAR-10 python directory or an ImageFolder directory")


def load_dataset(source: str | Path) -> Dataset:
    """'digits', 'mnist1d', the user's arrays (a .npz file, or a directory with x.npy and
    y.npy), a CIFAR-10 python directory, or an ImageFolder directory."""
    if str(source) == "digits":
        return load_digits()
    if str(source) == "mnist1d":
        return load_mnist1d()
    path = Path(source)
    if not path.exists():
        raise TinyNASError(f"dataset {str(source)!r}: no such directory or .npz file "
                           f"({SOURCES})")
    if path.is_file() and path.suffix.lower() == ".npz":
        from .arrays import load_arrays

        return load_arrays(path)
    if not path.is_dir():
        raise TinyNASError(f"dataset {path}: not a directory or a .npz file ({SOURCES})")
    if (path / "x.npy").exists() or (path / "y.npy").exists():
        from .arrays import load_arrays

        return load_arrays(path)
    if (path / "data_batch_1").exists():
        return load_cifar10(path)
    return load_image_folder(path)


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return Dataset(x, d.target.astype(np.int64), [str(i) for i in range(10)], "digits")


MNIST1D_SAMPLES = 12_000  # the protocol: 9,600 train and 2,400 test


def load_mnist1d() -> Dataset:
    """MNIST-1D as the package generates it: `make_dataset` with its default arguments (seed
    42, 80/20 split) but 12,000 samples, never `get_dataset` (which downloads). The package's
    test part is the fixed test part. Sequences of length 40, one channel, standardised by
    the package (mean 0, standard deviation 1), not scaled to [0, 1]."""
    x, y, n_train = _mnist1d_arrays()
    # copies: the cache must survive a caller that edits its arrays in place
    return Dataset(x.copy(), y.copy(), [str(i) for i in range(10)], "mnist1d", "sequence",
                   np.arange(n_train, len(y)))


@functools.cache
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, int]:
    """Generated once per process (about 2.5 s) and kept in memory; no file is written."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise TinyNASError(f"dataset 'mnist1d' needs the mnist1d package ({e}); install it "
                           "with pip install -c constraints.txt mnist1d") from None
    args = get_dataset_args()
    args.num_samples = MNIST1D_SAMPLES
    # make_dataset seeds the global numpy and random generators; put them back afterwards, so
    # that loading a dataset changes no other random stream of the process
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)[:, None, :, None]
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    return x, y, len(d["y"])


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
    search settings report on the same held-out examples.

    Where the source fixes its test part (data.fixed_test: MNIST-1D's, the user's x_test), that
    is the test part and `test` is not used; val is carved from the rest, stratified and seeded,
    and is still `val` of the whole (round(val * N) examples): MNIST-1D's 12,000 at val 0.15 are
    7,800 train, 1,800 val and its own 2,400 test."""
    from sklearn.model_selection import train_test_split

    if not (0 < test < 1 and 0 < val < 1 and test + val < 1):
        raise TinyNASError(f"split fractions test={test}, val={val}: each must be in (0, 1) "
                           "and together below 1")
    if data.fixed_test is not None:
        return _split_fixed_test(data, data.fixed_test, val, seed)
    counts = np.bincount(data.y, minlength=data.num_classes)
    if counts.min() < 3:
        raise TinyNASError(f"dataset {data.name}: class {data.classes[int(counts.argmin())]!r} "
                           f"has {counts.min()} {data.noun}(s); every class needs at least 3 "
                           "(one each for train, val and test)")
    n, k = len(data), data.num_classes
    if min(round(test * n), round(val * n)) < k:
        raise TinyNASError(f"dataset {data.name}: {n} {data.noun}s are too few for a stratified "
                           f"split into {k} classes (test {test:g} and val {val:g} of them must "
                           f"each hold at least one {data.noun} per class); add {data.noun}s or "
                           "raise the fractions")
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


def _split_fixed_test(data: Dataset, test_i: np.ndarray, val: float, seed: int) -> Splits:
    from sklearn.model_selection import train_test_split

    rest = np.setdiff1d(np.arange(len(data)), test_i)
    counts = np.bincount(data.y[rest], minlength=data.num_classes)
    if counts.min() < 2:
        raise TinyNASError(f"dataset {data.name}: class {data.classes[int(counts.argmin())]!r} "
                           f"has {counts.min()} {data.noun}(s) outside the fixed test part; "
                           "every class needs at least 2 there (one each for train and val)")
    n_val, k = round(val * len(data)), data.num_classes
    if n_val < k or len(rest) - n_val < k:
        raise TinyNASError(f"dataset {data.name}: val {val:g} of its {len(data)} {data.noun}s "
                           f"is {n_val}, to be carved from the {len(rest)} outside the fixed "
                           f"test part with at least one per class ({k}) left in each of train "
                           "and val; change --val or give more training examples")
    try:
        train_i, val_i = train_test_split(rest, test_size=n_val, random_state=seed,
                                          stratify=data.y[rest])
    except ValueError as e:  # scikit-learn's own check of a split too small to stratify
        raise TinyNASError(f"dataset {data.name}: cannot split it stratified ({e})") from None
    return Splits(data.subset(np.sort(train_i), "train"), data.subset(np.sort(val_i), "val"),
                  data.subset(test_i, "test"))


def is_sequence(x: torch.Tensor | np.ndarray) -> bool:
    """A batch of sequences, (N, C, L, 1), rather than of (square) images."""
    return x.shape[-1] == 1 and x.shape[-2] > 1


def resize(x: torch.Tensor, r: int) -> torch.Tensor:
    """A batch of images at r x r (bilinear, as the deployed model's caller is told to resize;
    antialiased downwards), or of sequences at length r (linear along L, the same rule)."""
    if is_sequence(x):
        if x.shape[-2] == r:
            return x
        # torch's antialiased bilinear filter returns one constant per row when the width is
        # 1 (torch 2.13: every output sample the mean of the whole sequence), so the sequence
        # is resized as two equal columns and one is kept: the rule along L is the same.
        two = x.expand(*x.shape[:-1], 2)
        return F.interpolate(two, size=(r, 2), mode="bilinear", align_corners=False,
                             antialias=r < x.shape[-2])[..., :1].contiguous()
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
    images need, and the resize, together. A batch of sequences goes to `augment_sequence`
    (with `shift`, and `scale` as its amplitude scale), so that every caller serves both."""
    if is_sequence(x):
        return augment_sequence(x, r, gen, shift, scale)
    n = x.shape[0]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    angle = u[:, 0] * rotate * np.pi / 180
    s = 1 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, u[:, 2] * shift * 2], 1),
                         torch.stack([sin, cos, u[:, 3] * shift * 2], 1)], 1)
    grid = F.affine_grid(theta, [n, x.shape[1], r, r], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_sequence(x: torch.Tensor, r: int, gen: torch.Generator, shift: float = 0.12,
                     scale: float = 0.1) -> torch.Tensor:
    """Sequences (N, C, L, 1) shifted along L by up to `shift` of their length (zeros shift
    in: the signal starts early or late in its window) and scaled in amplitude by up to
    1 +- `scale` (a louder or quieter sensor), sampled at length r by linear interpolation in
    one grid_sample, the resize included."""
    n = x.shape[0]
    u = torch.rand(n, 2, generator=gen) * 2 - 1
    one, zero = torch.ones(n), torch.zeros(n)
    # grid coordinates are (w, h) in [-1, 1]: a shift of f of the length is 2f
    theta = torch.stack([torch.stack([one, zero, zero], 1),
                         torch.stack([zero, one, u[:, 0] * shift * 2], 1)], 1)
    grid = F.affine_grid(theta, [n, x.shape[1], r, 1], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out * (1 + u[:, 1] * scale).view(n, 1, 1, 1)


def distorted(data: Dataset, r: int, views: int, seed: int = 0) -> Dataset:
    """`views` copies of every example under the training distortions (augment) at r x r (a
    sequence: at length r), the same distortions for every caller with the same seed; views=0:
    the clean examples.

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
                   f"{data.name}:{views}-views", data.kind)


def batches(data: Dataset, batch: int, r: int, shuffle_gen: torch.Generator | None = None,
            shard: tuple[int, int] = (0, 1)) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(examples at r x r or length r, labels) batches, in order or shuffled by `shuffle_gen`;
    `shard` (rank, world) keeps every world-th example of each global batch (data-parallel
    training: each process its share of the same global batch)."""
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
