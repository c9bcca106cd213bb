"""Plain convolution: k x k (sequences k x 1) conv -> BN -> ReLU6, optional shortcut.

The block that wins at the smallest budgets (a plain 3x3 CNN beats MBConv below 1 KB of SRAM:
one tensor live per layer, no expanded middle)."""

from __future__ import annotations

import torch
from torch import nn

from .base import BlockKind, ConvBNAct, ElasticConvBN, Layer, Slot, pair
from .graph import GraphBuilder


class ConvLayer(nn.Module):
    def __init__(self, layer: Layer, cin: int, dims: int):
        super().__init__()
        self.conv = ConvBNAct(cin, layer.out, pair(layer.kernel, dims), pair(layer.stride, dims))
        self.residual = layer.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


class ElasticConv(nn.Module):
    def __init__(self, slot: Slot, cin_max: int, dims: int):
        super().__init__()
        self.conv = ElasticConvBN(cin_max, max(slot.channels), max(slot.kernels), slot.stride,
                                  dims)

    def forward(self, x: torch.Tensor, layer: Layer) -> torch.Tensor:
        y = self.conv(x, layer.out, layer.kernel)
        return x + y if layer.residual else y


class Conv(BlockKind):
    name = "conv"

    def elastic(self, slot: Slot, cin_max: int, dims: int, classes: int,
                sizes: tuple[int, ...]) -> nn.Module:
        return ElasticConv(slot, cin_max, dims)

    def standalone(self, layer: Layer, cin: int, dims: int, classes: int,
                   size: int) -> nn.Module:
        return ConvLayer(layer, cin, dims)

    def copy_into(self, elastic: nn.Module, module: nn.Module, layer: Layer, cin: int) -> None:
        assert isinstance(elastic, ElasticConv) and isinstance(module, ConvLayer)
        elastic.conv.copy_into(module.conv, layer.out, cin, layer.kernel)

    def emit(self, g: GraphBuilder, x: str, layer: Layer, name: str, dims: int,
             classes: int) -> str:
        y = g.conv(name, x, layer.out, pair(layer.kernel, dims), pair(layer.stride, dims),
                   "RELU6")
        return g.add(f"{name}.add", x, y) if layer.residual else y
