"""Once-for-all supernet over a search space at one width multiplier.

Every subnet of the space at width w shares the supernet's weights (Cai et al., once-for-all):
- elastic kernel: a block holds the largest depthwise kernel; a smaller one is its centre crop,
  optionally passed through a learned kernel-transform matrix per size step (7x7 -> 5x5 ->
  3x3, one k^2 x k^2 matrix per step and block, initialised to the identity), so small kernels
  need not equal the big kernel's centre exactly;
- elastic expand ratio: a block holds the largest middle width; a ratio e uses the first
  make_divisible(round(in * e)) channels, which `sort_channels` makes the most important ones
  (L1 norm of the projection weights reading them);
- elastic depth: a stage runs its first d blocks;
- any input resolution: the network is fully convolutional up to global pooling.
`extract(arch)` copies the active weights into a standalone `SubNet`; its output equals the
supernet's for that architecture (tests/test_tinynas_supernet.py).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .arch import Arch, LayerSpec, make_divisible
from .blocks.base import bn_tensors, sliced_bn
from .errors import TinyNASError
from .layers import ConvBN, conv2d_same
from .space import SearchSpace
from .subnet import MBBlock, SubNet, init_weights


class ElasticBlock(nn.Module):
    """One block position: the largest kernel and middle width of the space."""

    def __init__(self, cin: int, cout: int, stride: int, kernels: tuple[int, ...],
                 expands: tuple[int, ...], divisor: int, kernel_transform: bool):
        super().__init__()
        self.cin, self.cout, self.stride, self.divisor = cin, cout, stride, divisor
        self.kernels = tuple(sorted(kernels))
        self.residual = stride == 1 and cin == cout
        self.max_mid = self.mid(max(expands))
        kmax = self.kernels[-1]
        self.expand_conv = nn.Conv2d(cin, self.max_mid, 1, bias=False)
        self.expand_bn = nn.BatchNorm2d(self.max_mid)
        self.dw_conv = nn.Conv2d(self.max_mid, self.max_mid, kmax, groups=self.max_mid,
                                 bias=False)
        self.dw_bn = nn.BatchNorm2d(self.max_mid)
        self.project_conv = nn.Conv2d(self.max_mid, cout, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(cout)
        self.transforms = nn.ParameterDict()
        if kernel_transform:
            for big, small in zip(self.kernels[1:], self.kernels[:-1]):
                self.transforms[f"{big}to{small}"] = nn.Parameter(torch.eye(small * small))

    def mid(self, expand: int) -> int:
        return make_divisible(round(self.cin * expand), self.divisor)

    def dw_kernel(self, k: int) -> torch.Tensor:
        """The k x k depthwise weights: centre crops, step by step, each through its transform."""
        w = self.dw_conv.weight
        for big, small in zip(self.kernels[::-1], self.kernels[-2::-1]):
            if big <= k:
                break
            start = (big - small) // 2
            w = w[:, :, start:start + small, start:start + small]
            key = f"{big}to{small}"
            if key in self.transforms:
                flat = F.linear(w.reshape(-1, small * small), self.transforms[key])
                w = flat.reshape(-1, 1, small, small)
        return w

    def forward(self, x: torch.Tensor, kernel: int, expand: int) -> torch.Tensor:
        m = self.mid(expand)
        y = F.relu6(sliced_bn(F.conv2d(x, self.expand_conv.weight[:m]), self.expand_bn, m))
        y = conv2d_same(y, self.dw_kernel(kernel)[:m], None, self.stride, groups=m)
        y = F.relu6(sliced_bn(y, self.dw_bn, m))
        y = self.project_bn(F.conv2d(y, self.project_conv.weight[:, :m]))
        return x + y if self.residual else y

    @torch.no_grad()
    def sort_channels(self) -> None:
        """Order middle channels by importance (L1 norm of the projection weights reading them),
        so that every expand ratio keeps the most important ones. The block computes the same
        function afterwards; only which channels a smaller ratio keeps changes."""
        order = torch.argsort(self.project_conv.weight.abs().sum(dim=(0, 2, 3)), descending=True,
                              stable=True)
        self.project_conv.weight.copy_(self.project_conv.weight[:, order])
        self.dw_conv.weight.copy_(self.dw_conv.weight[order])
        self.expand_conv.weight.copy_(self.expand_conv.weight[order])
        for bn in (self.dw_bn, self.expand_bn):
            for t in bn_tensors(bn):
                t.copy_(t[order])

    @torch.no_grad()
    def copy_into(self, block: MBBlock, kernel: int, expand: int) -> None:
        """Write the active weights into a standalone block of the same shape."""
        m = self.mid(expand)
        assert block.expand is not None
        block.expand.conv.weight.copy_(self.expand_conv.weight[:m])
        _copy_bn(self.expand_bn, block.expand.bn, m)
        block.depthwise.conv.weight.copy_(self.dw_kernel(kernel)[:m])
        _copy_bn(self.dw_bn, block.depthwise.bn, m)
        block.project.conv.weight.copy_(self.project_conv.weight[:, :m])
        block.project.bn.load_state_dict(self.project_bn.state_dict())


def _copy_bn(src: nn.BatchNorm2d, dst: nn.BatchNorm2d, n: int) -> None:
    for s, d in zip(bn_tensors(src), bn_tensors(dst)):
        d.copy_(s[:n])
    if src.num_batches_tracked is not None and dst.num_batches_tracked is not None:
        dst.num_batches_tracked.copy_(src.num_batches_tracked)


class Supernet(nn.Module):
    """All subnets of `space` at width multiplier `width_mult`, sharing weights."""

    def __init__(self, space: SearchSpace, width_mult: float, kernel_transform: bool = True):
        super().__init__()
        if min(space.expands) < 2:
            raise TinyNASError(f"search space {space.name}: the supernet needs expand ratios "
                               ">= 2 (a ratio of 1 has no expand convolution to share)")
        self.space, self.width_mult = space, width_mult
        stem, first, widths, head = space.channels(width_mult)
        self.stem = ConvBN(space.in_channels, stem, 3, space.stem_stride)
        self.first = MBBlock(LayerSpec(0, -1, stem, first, stem, 3, 1, 1, False))
        self.stages = nn.ModuleList()
        cin = first
        for s, (c, stride) in enumerate(zip(widths, space.stage_strides)):
            self.stages.append(nn.ModuleList(
                ElasticBlock(cin if i == 0 else c, c, stride if i == 0 else 1, space.kernels,
                             space.expands, space.channel_divisor, kernel_transform)
                for i in range(max(space.depth_choices(s)))))
            cin = c
        self.head = ConvBN(cin, head, 1) if head else None
        self.classifier = nn.Linear(head or cin, space.num_classes)
        init_weights(self)
        self.active: Arch = self.largest()

    def largest(self, resolution: int | None = None) -> Arch:
        r = max(self.space.resolutions) if resolution is None else resolution
        return self.space.extreme(self.width_mult, r, largest=True)

    def sample(self, rng: np.random.Generator, resolution: int | None = None) -> Arch:
        return self.space.sample(rng, self.width_mult, resolution)

    def set_active(self, arch: Arch) -> None:
        self.check(arch)
        self.active = arch

    def check(self, arch: Any) -> None:
        """Raise unless `arch` is a subnet of this supernet (resolution aside: any works)."""
        if not isinstance(arch, Arch):
            raise TinyNASError(f"{getattr(arch, 'name', '') or 'the architecture'} is not an "
                               f"MBConv network (tinynas-arch/1): not a subnet of the "
                               f"{self.space.name} supernet")
        probe = arch if arch.resolution in self.space.resolutions else \
            replace(arch, resolution=self.space.resolutions[0])
        if arch.width_mult != self.width_mult or not self.space.contains(probe):
            raise TinyNASError(f"{arch.name or 'the architecture'} is not a subnet of the "
                               f"{self.space.name} supernet at width {self.width_mult:g}")

    def forward(self, x: torch.Tensor, arch: Arch | None = None) -> torch.Tensor:
        arch = self.active if arch is None else arch
        x = self.first(self.stem(x))
        for blocks, stage in zip(self.stage_blocks(), arch.stages):
            for block, b in zip(blocks, stage.blocks):
                x = block(x, b.kernel, b.expand)
        if self.head is not None:
            x = self.head(x)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    @torch.no_grad()
    def extract(self, arch: Arch | None = None) -> SubNet:
        """A standalone SubNet for `arch` with the supernet's (inherited) weights."""
        arch = self.active if arch is None else arch
        self.check(arch)
        net = SubNet(arch)
        net.stem.load_state_dict(self.stem.state_dict())
        net.blocks[0].load_state_dict(self.first.state_dict())
        index = 1
        for blocks, stage in zip(self.stage_blocks(), arch.stages):
            for block, b in zip(blocks, stage.blocks):
                block.copy_into(cast(MBBlock, net.blocks[index]), b.kernel, b.expand)
                index += 1
        if self.head is not None and net.head is not None:
            net.head.load_state_dict(self.head.state_dict())
        net.classifier.load_state_dict(self.classifier.state_dict())
        return net.train(self.training)

    def stage_blocks(self) -> list[list[ElasticBlock]]:
        """The elastic blocks, per stage (the deepest choice of each)."""
        return [[cast(ElasticBlock, b) for b in cast(nn.ModuleList, s)] for s in self.stages]

    def sort_channels(self) -> None:
        for blocks in self.stage_blocks():
            for block in blocks:
                block.sort_channels()
