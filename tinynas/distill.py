"""Distillation from an ensemble of wider networks.

At MNIST-1D's largest budget of issue 14 (2 KB SRAM / 8 KB flash) the networks that fit, the
searched and the hand-written alike, end near 98.8% under the plain recipe, and so does the
same VGG shape at twice the width (benchmarks/RESULTS.md, session 10). Their errors are not
the same examples: the logits of three VGG CNNs of width 16, averaged, are right on 99.33% of
the test split, and a network that fits the budget, distilled from them, gains what its own
capacity allowed it to learn from their agreement (session 12). The teachers are the
hand-written VGG shape (tinynas.baselines.vgg_cnn) at a width no budget admits, trained with
the recipe every row gets; their weights are state dicts, read back with weights_only (no
code in a weights file runs).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .baselines import vgg_cnn
from .data import Dataset
from .errors import TinyNASError
from .finish import from_scratch
from .flexarch import FlexArch
from .flexnet import FlexNet


def teacher_arch(data: Dataset, width: int) -> FlexArch:
    """The teachers' shape: the VGG-shaped CNN at `width`, 1-D for sequences."""
    dims = 1 if data.kind == "sequence" else 2
    return vgg_cnn(width, data.native_resolution, data.in_channels, data.num_classes, dims)


def train_teacher(arch: FlexArch, train: Dataset, epochs: int, lr: float, seed: int,
                  path: str | Path) -> Path:
    """One teacher trained from scratch (seed: its initial weights and batch order), its state
    dict written to `path` through a temporary name, so that a stopped run leaves no half file."""
    path = Path(path)
    part = path.with_name(path.name + ".part")
    torch.save(from_scratch(arch, train, epochs, lr, seed).state_dict(), part)
    part.replace(path)
    return path


class Ensemble:
    """The teachers' averaged logits (eval mode, no gradients): the `teacher` of
    tinynas.finish.finetune."""

    def __init__(self, arch: FlexArch, paths: Sequence[str | Path]):
        if not paths:
            raise TinyNASError("distillation needs at least one teacher")
        self.paths = [str(p) for p in paths]  # for worker processes, which load their own
        self.nets = []
        for path in paths:
            net = FlexNet(arch)
            try:
                net.load_state_dict(torch.load(path, weights_only=True))
            except (RuntimeError, KeyError, ValueError) as e:
                raise TinyNASError(f"{path}: not the weights of a teacher {arch.summary()} "
                                   f"({str(e).splitlines()[0]}); train the teachers again"
                                   ) from None
            self.nets.append(net.eval())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.stack([n(x) for n in self.nets]).mean(0)


def _train_one(task: tuple[FlexArch, Dataset, int, float, int, str]) -> str:
    arch, train, epochs, lr, seed, path = task
    torch.set_num_threads(1)  # one teacher a process, as many processes as cores
    return str(train_teacher(arch, train, epochs, lr, seed, path))


def data_tag(data: Dataset, train: Dataset) -> str:
    """What a teacher's file name says of its data: the data's name and a digest of the
    training examples, so that two files of one name do not share teachers."""
    digest = hashlib.sha256(train.x.tobytes() + train.y.tobytes()).hexdigest()[:12]
    return f"{Path(data.name).name}-{digest}"


def teachers(data: Dataset, train: Dataset, count: int, width: int, epochs: int, lr: float,
             directory: str | Path, workers: int = 1,
             say: Callable[[str], None] | None = None) -> Ensemble:
    """`count` teachers (seeds 0, 1, ...) of `width` for `data`, those not yet in `directory`
    trained there (`workers` at a time), as one Ensemble. A teacher's file name holds what it
    depends on (the data's name, width, epochs, learning rate, seed): another run with the same
    recipe reuses it, and one with another recipe trains its own; the data is named by
    `data_tag`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arch = teacher_arch(data, width)
    paths = [directory / f"{data_tag(data, train)}-w{width}-e{epochs}-lr{lr:g}-s{s}.pt"
             for s in range(count)]
    missing = [(arch, train, epochs, lr, s, str(p)) for s, p in enumerate(paths)
               if not p.exists()]
    if missing and say is not None:
        say(f"training {len(missing)} teacher(s) for distillation: {arch.summary()}, "
            f"{epochs} epochs each, into {directory}")
    if len(missing) > 1 and workers > 1:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads' state
        with ctx.Pool(min(workers, len(missing))) as pool:
            pool.map(_train_one, missing)
    else:
        for task in missing:
            _train_one(task)
    return Ensemble(arch, paths)
