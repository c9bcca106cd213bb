"""What the search must beat: hand-written networks scaled to the budget, trained with the
same recipe, and a paired test that says whether one model beats another on the same examples.

- `plain_cnn`: what an engineer writes first: a k x k (sequences k x 1) convolution at full
  resolution, then three stride-2 convolutions doubling the channels once, then global average
  pooling or flattening and the classifier. Every layer plain conv + BN + ReLU6.
- `dwsep_cnn`: the same with depthwise-separable layers after the first (MobileNetV1's way).
- `vgg_cnn`: VGG's shape, the other network an engineer writes: two convolutions at full
  resolution, then max pooling before each further convolution, the channels doubling twice.
  On MNIST-1D it is the stronger of the two hand designs (benchmarks/RESULTS.md, session 10).
- `fit_to_budget`: the widest such network whose figures (tinyengine.cost, as the search's)
  fit the budget.
- `mcnemar`: the exact two-sided McNemar test on paired per-example correctness.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from .blocks import HEAD, Layer
from .budget import Budget, check_budget
from .errors import TinyNASError
from .flexarch import FlexArch

MAX_WIDTH = 256


def plain_cnn(width: int, resolution: int, in_channels: int, classes: int, dims: int,
              head: str = "avg", kind: str = "conv") -> FlexArch:
    """The hand-written CNN at `width` channels in its first layer (2x width after the second
    downsampling)."""
    wide = 2 * width
    layers = [Layer("conv", width, 5 if dims == 1 else 3)]
    for out in (width, wide, wide):
        layers.append(Layer(kind, out, 3, 2))
    layers.append(Layer(HEAD, 0, pool=head))
    return FlexArch(resolution, in_channels, classes, tuple(layers), dims,
                    name=f"{kind}-cnn-{head}")


def dwsep_cnn(width: int, resolution: int, in_channels: int, classes: int, dims: int,
              head: str = "avg") -> FlexArch:
    return plain_cnn(width, resolution, in_channels, classes, dims, head, kind="dwsep")


def vgg_cnn(width: int, resolution: int, in_channels: int, classes: int, dims: int,
            head: str = "avg") -> FlexArch:
    """conv w (k5 for sequences), conv 2w, then [max pool, conv] with 2w, 4w and 4w channels;
    3 x 3 (sequences 3 x 1) after the first."""
    k0 = 5 if dims == 1 else 3
    layers = [Layer("conv", width, k0), Layer("conv", 2 * width, 3)]
    for out in (2 * width, 4 * width, 4 * width):
        layers += [Layer("maxpool", layers[-1].out, 2, 2), Layer("conv", out, 3)]
    layers.append(Layer(HEAD, 0, pool=head))
    return FlexArch(resolution, in_channels, classes, tuple(layers), dims,
                    name=f"vgg-cnn-{head}")


def fit_to_budget(build: Callable[[int], FlexArch], budget: Budget,
                  int8_input: bool = False) -> FlexArch:
    """The widest network build(width) that fits (its cost grows with the width)."""
    best = None
    for width in range(1, MAX_WIDTH + 1):
        arch = build(width)
        if check_budget(arch, budget, "off", int8_input).fits:
            best = arch
        elif best is not None:
            break
    if best is None:
        raise TinyNASError(f"{build(1).name}: not even one channel fits {budget.describe()}")
    return best


@dataclass(frozen=True)
class Paired:
    a_only: int  # examples model A gets right and model B wrong
    b_only: int
    p_value: float  # exact two-sided McNemar (binomial on the discordant pairs)

    def to_dict(self) -> dict[str, float]:
        return {"a_only": self.a_only, "b_only": self.b_only, "p_value": self.p_value}


def mcnemar(a_correct: np.ndarray, b_correct: np.ndarray) -> Paired:
    """Whether A and B differ on the same examples: only the pairs where they disagree count.
    p = 1 when they never disagree."""
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise TinyNASError(f"paired test: {a.shape} and {b.shape} outcomes are not the same "
                           "examples")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(a_only, n, 0.5).pvalue)
    return Paired(a_only, b_only, p)
