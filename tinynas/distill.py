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

from collections.abc import Sequence
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
