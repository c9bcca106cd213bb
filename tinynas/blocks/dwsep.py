"""Depthwise-separable convolution (MobileNetV1's block): k x k depthwise -> BN -> ReLU6 ->
1x1 pointwise -> BN -> ReLU6, optional shortcut. Fewer weights than a plain conv for the same
channels, and no expanded middle tensor as MBConv has."""

from __future__ import annotations

import torch
from torch import nn

from .base import BlockKind, ConvBNAct, ElasticConvBN, Layer, Slot, pair
from .graph import GraphBuilder


class DWSepLayer(nn.Module):
    def __init__(self, layer: Layer, cin: int, dims: int):
        super().__init__()
        self.depthwise = ConvBNAct(cin, cin, pair(layer.kernel, dims), pair(layer.stride, dims),
                                   groups=cin)
        self.pointwise = ConvBNAct(cin, layer.out, (1, 1), (1, 1))
        self.residual = layer.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(self.depthwise(x))
        return x + y if self.residual else y


class ElasticDWSep(nn.Module):
    def __init__(self, slot: Slot, cin_max: int, dims: int):
        super().__init__()
        self.depthwise = ElasticConvBN(cin_max, cin_max, max(slot.kernels), slot.stride, dims,
                                       depthwise=True)
        self.pointwise = ElasticConvBN(cin_max, max(slot.channels), 1, 1, dims)

    def forward(self, x: torch.Tensor, layer: Layer) -> torch.Tensor:
        y = self.pointwise(self.depthwise(x, 0, layer.kernel), layer.out, 1)
        return x + y if layer.residual else y


class DWSep(BlockKind):
    name = "dwsep"

    def elastic(self, slot: Slot, cin_max: int, dims: int, classes: int,
                sizes: tuple[int, ...]) -> nn.Module:
        return ElasticDWSep(slot, cin_max, dims)

    def standalone(self, layer: Layer, cin: int, dims: int, classes: int,
                   size: int) -> nn.Module:
        return DWSepLayer(layer, cin, dims)

    def copy_into(self, elastic: nn.Module, module: nn.Module, layer: Layer, cin: int) -> None:
        assert isinstance(elastic, ElasticDWSep) and isinstance(module, DWSepLayer)
        elastic.depthwise.copy_into(module.depthwise, cin, cin, layer.kernel)
        elastic.pointwise.copy_into(module.pointwise, layer.out, cin, 1)

    def emit(self, g: GraphBuilder, x: str, layer: Layer, name: str, dims: int,
             classes: int) -> str:
        y = g.conv(f"{name}.dw", x, 0, pair(layer.kernel, dims), pair(layer.stride, dims),
                   "RELU6", depthwise=True)
        y = g.conv(f"{name}.pw", y, layer.out, 1, 1, "RELU6")
        return g.add(f"{name}.add", x, y) if layer.residual else y
