"""Convolution with TensorFlow's SAME padding, exported to ONNX as one Conv.

PyTorch pads symmetrically. For a stride-2 window over an even-sized input, SAME pads one pixel
less at the top/left than at the bottom/right; written as F.pad + conv, the ONNX export would
carry a separate Pad node, which the engine must run as a PAD op holding a padded copy of the
tensor (more SRAM, for nothing). During export the convolution is therefore emitted as a single
ONNX Conv with asymmetric `pads`, which the importer maps to TFLite's SAME padding.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TFLite's SAME rule along one axis."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _ExportSameConv(torch.autograd.Function):
    """Only reached while torch.onnx.export traces the model; `symbolic` writes the node."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, groups, pads):
        top, left, bottom, right = pads
        return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride, 0, 1, groups)

    @staticmethod
    def symbolic(g, x, weight, bias, stride, groups, pads):
        inputs = [x, weight] if bias is None else [x, weight, bias]
        return g.op("Conv", *inputs, strides_i=list(stride), pads_i=list(pads),
                    group_i=groups)


def conv2d_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                stride: int | tuple[int, int], groups: int = 1) -> torch.Tensor:
    """F.conv2d with SAME padding for a kh x kw kernel `weight` (1-D blocks use k x 1 with
    stride (s, 1))."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    top, bottom = same_pads(int(x.shape[2]), int(weight.shape[-2]), sh)
    left, right = same_pads(int(x.shape[3]), int(weight.shape[-1]), sw)
    if top == bottom and left == right:
        return F.conv2d(x, weight, bias, (sh, sw), (top, left), 1, groups)
    if torch.onnx.is_in_onnx_export():
        return _ExportSameConv.apply(x, weight, bias, (sh, sw), groups,
                                     [top, left, bottom, right])
    return F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, (sh, sw), 0, 1, groups)


class SameConv2d(nn.Conv2d):
    """nn.Conv2d (square kernel, no dilation) with SAME padding at any input size."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 bias: bool = False):
        super().__init__(cin, cout, kernel, stride, 0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d_same(x, self.weight, self.bias, self.stride[0], self.groups)


class ConvBN(nn.Sequential):
    """Conv (SAME) -> BatchNorm -> optional ReLU6: what the engine fuses into one op."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 relu6: bool = True):
        layers: list[nn.Module] = [SameConv2d(cin, cout, kernel, stride, groups),
                                   nn.BatchNorm2d(cout)]
        if relu6:
            layers.append(nn.ReLU6())
        super().__init__(*layers)

    @property
    def conv(self) -> SameConv2d:
        return cast(SameConv2d, self[0])

    @property
    def bn(self) -> nn.BatchNorm2d:
        return cast(nn.BatchNorm2d, self[1])
