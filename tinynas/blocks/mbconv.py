"""Inverted residual block (MobileNetV2 / MCUNet): [1x1 expand -> BN -> ReLU6] -> k x k
depthwise -> BN -> ReLU6 -> 1x1 project -> BN, optional shortcut. The middle has cin * expand
channels (no rounding: at a few channels, rounding to 8 would double the smallest layers); an
expand ratio of 1 has no expand convolution."""

from __future__ import annotations

import torch
from torch import nn

from .base import BlockKind, ConvBNAct, ElasticConvBN, Layer, Slot, pair
from .graph import GraphBuilder


def middle(layer: Layer, cin: int) -> int:
    return cin * layer.expand


class MBConvLayer(nn.Module):
    def __init__(self, layer: Layer, cin: int, dims: int):
        super().__init__()
        mid = middle(layer, cin)
        self.expand = ConvBNAct(cin, mid, (1, 1), (1, 1)) if layer.expand != 1 else None
        self.depthwise = ConvBNAct(mid, mid, pair(layer.kernel, dims), pair(layer.stride, dims),
                                   groups=mid)
        self.project = ConvBNAct(mid, layer.out, (1, 1), (1, 1), act=False)
        self.residual = layer.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class ElasticMBConv(nn.Module):
    def __init__(self, slot: Slot, cin_max: int, dims: int):
        super().__init__()
        mid = cin_max * max(slot.expands)
        self.expand = ElasticConvBN(cin_max, mid, 1, 1, dims)
        self.depthwise = ElasticConvBN(mid, mid, max(slot.kernels), slot.stride, dims,
                                       depthwise=True)
        self.project = ElasticConvBN(mid, max(slot.channels), 1, 1, dims, act=False)

    def forward(self, x: torch.Tensor, layer: Layer) -> torch.Tensor:
        mid = middle(layer, int(x.shape[1]))
        y = self.expand(x, mid, 1) if layer.expand != 1 else x
        y = self.project(self.depthwise(y, 0, layer.kernel), layer.out, 1)
        return x + y if layer.residual else y


class MBConv(BlockKind):
    name = "mbconv"
    uses_expand = True

    def describe(self, layer: Layer) -> str:
        return super().describe(layer).replace("k", f"e{layer.expand}k", 1)

    def elastic(self, slot: Slot, cin_max: int, dims: int, classes: int,
                sizes: tuple[int, ...]) -> nn.Module:
        return ElasticMBConv(slot, cin_max, dims)

    def standalone(self, layer: Layer, cin: int, dims: int, classes: int,
                   size: int) -> nn.Module:
        return MBConvLayer(layer, cin, dims)

    def copy_into(self, elastic: nn.Module, module: nn.Module, layer: Layer, cin: int) -> None:
        assert isinstance(elastic, ElasticMBConv) and isinstance(module, MBConvLayer)
        mid = middle(layer, cin)
        if module.expand is not None:
            elastic.expand.copy_into(module.expand, mid, cin, 1)
        elastic.depthwise.copy_into(module.depthwise, mid, mid, layer.kernel)
        elastic.project.copy_into(module.project, layer.out, mid, 1)

    def emit(self, g: GraphBuilder, x: str, layer: Layer, name: str, dims: int,
             classes: int) -> str:
        y = x
        if layer.expand != 1:
            y = g.conv(f"{name}.expand", y, middle(layer, g.shape(x)[3]), 1, 1, "RELU6")
        y = g.conv(f"{name}.dw", y, 0, pair(layer.kernel, dims), pair(layer.stride, dims),
                   "RELU6", depthwise=True)
        y = g.conv(f"{name}.project", y, layer.out, 1, 1, "NONE")
        return g.add(f"{name}.add", x, y) if layer.residual else y
