"""A standalone PyTorch network for an `Arch`: what a supernet extracts, trains and deploys.

Plain layers only (SAME-padded Conv2d, BatchNorm2d, ReLU6, identity shortcuts, global average
pooling, Linear), so `tinyengine.convert.compile_torch` imports it op for op into the graph that
`tinynas.resources.build_graph` describes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .arch import Arch, LayerSpec
from .layers import ConvBN


class MBBlock(nn.Module):
    """Inverted residual block: [1x1 expand] -> kxk depthwise -> 1x1 project (+ shortcut)."""

    def __init__(self, spec: LayerSpec):
        super().__init__()
        self.expand = ConvBN(spec.cin, spec.mid, 1) if spec.expand != 1 else None
        self.depthwise = ConvBN(spec.mid, spec.mid, spec.kernel, spec.stride, groups=spec.mid)
        self.project = ConvBN(spec.mid, spec.cout, 1, relu6=False)
        self.residual = spec.residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y


class SubNet(nn.Module):
    """The network an `Arch` describes, with freshly initialised weights."""

    def __init__(self, arch: Arch, dropout: float = 0.0):
        super().__init__()
        self.arch = arch
        self.stem = ConvBN(arch.in_channels, arch.stem_channels, 3, arch.stem_stride)
        self.blocks = nn.ModuleList(MBBlock(spec) for spec in arch.layers())
        self.head = ConvBN(arch.body_channels, arch.head_channels, 1) if arch.head_channels \
            else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.classifier = nn.Linear(arch.last_channels, arch.num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        if self.head is not None:
            x = self.head(x)
        x = self.flatten(self.pool(x))
        if self.dropout is not None:
            x = self.dropout(x)
        return self.classifier(x)


def init_weights(module: nn.Module) -> None:
    """Kaiming for convolutions, unit BN, small normal for the classifier (MobileNetV2's)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def count_params(module: nn.Module) -> int:
    """Trainable parameters, BatchNorm's scale and shift included (as MCUNet's tables count)."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def recalibrate_bn(module: nn.Module, batches: Iterable[torch.Tensor],
                   max_batches: int | None = None) -> nn.Module:
    """Re-estimate every BatchNorm's running mean and variance from a few batches.

    Statistics inherited from a supernet belong to whichever subnets were trained; a subnet's
    own are the exact average over the given batches (momentum None = cumulative average), as
    once-for-all and MCUNet do before evaluating a subnet. Leaves the module in eval mode.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    module.train()
    try:
        for i, x in enumerate(batches):
            if max_batches is not None and i >= max_batches:
                break
            module(x[0] if isinstance(x, (tuple, list)) else x)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        module.eval()
    return module
