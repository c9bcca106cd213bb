"""Pooling: a 2 x 2 (sequences 2 x 1) max or average window with stride 2, in a slot that
halves the resolution. No weights and no MACs to speak of: the cheapest way down, where a
strided convolution would cost flash."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TinyNASError
from .base import BlockKind, Layer, Slot, pair
from .graph import GraphBuilder


class PoolLayer(nn.Module):
    def __init__(self, kind: str, stride: int, dims: int):
        super().__init__()
        self.kind, self.window = kind, pair(stride, dims)

    def forward(self, x: torch.Tensor, layer: Layer | None = None) -> torch.Tensor:
        if self.kind == "maxpool":
            return F.max_pool2d(x, self.window, self.window)
        return F.avg_pool2d(x, self.window, self.window)


class Pool(BlockKind):
    has_weights = False
    can_residual = False

    def __init__(self, name: str):
        self.name = name

    def out_channels(self, layer: Layer, cin: int) -> int:
        return cin

    def validate(self, layer: Layer, cin: int, where: str) -> None:
        if layer.stride != 2 or layer.kernel != 2 or layer.residual or layer.out != cin:
            raise TinyNASError(f"{where} ({self.name}): pooling is a 2-wide window with stride "
                               f"2, as many channels out as in ({cin}) and no shortcut, got "
                               f"kernel {layer.kernel}, stride {layer.stride}, out {layer.out}")

    def describe(self, layer: Layer) -> str:
        return self.name

    def sample(self, slot: Slot, cin: int, rng: np.random.Generator, index: int) -> Layer:
        return Layer(self.name, cin, 2, 2, slot=index)

    def mutate(self, layer: Layer, slot: Slot, cin: int, rng: np.random.Generator,
               prob: float) -> Layer:
        return Layer(self.name, cin, 2, 2, slot=layer.slot)

    def fit(self, layer: Layer, slot: Slot, cin: int) -> Layer:
        return Layer(self.name, cin, 2, 2, slot=layer.slot)

    def crossover(self, a: Layer, b: Layer, slot: Slot, cin: int,
                  rng: np.random.Generator) -> Layer:
        return Layer(self.name, cin, 2, 2, slot=a.slot)

    def elastic(self, slot: Slot, cin_max: int, dims: int, classes: int,
                sizes: tuple[int, ...]) -> nn.Module:
        return PoolLayer(self.name, 2, dims)

    def standalone(self, layer: Layer, cin: int, dims: int, classes: int,
                   size: int) -> nn.Module:
        return PoolLayer(self.name, 2, dims)

    def copy_into(self, elastic: nn.Module, module: nn.Module, layer: Layer, cin: int) -> None:
        pass  # nothing to copy

    def emit(self, g: GraphBuilder, x: str, layer: Layer, name: str, dims: int,
             classes: int) -> str:
        kind = "MAX_POOL_2D" if self.name == "maxpool" else "AVERAGE_POOL_2D"
        return g.pool(name, x, kind, pair(2, dims), pair(2, dims))
