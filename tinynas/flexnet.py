"""PyTorch networks of the flexible space: `FlexNet` (one architecture, standalone: what a
subnet extracts to, fine-tunes and deploys) and `FlexSupernet` (every architecture of a space at
one width multiplier, sharing weights).

The supernet holds, per slot of the space, one elastic module per kind the slot allows, at the
slot's widest channels and largest kernel and expand ratio; a subnet runs, per layer, its kind's
module with the first `out` channels (channel pruning: training always uses prefixes, so the
first channels become the important ones, as in slimmable networks), the centre of the kernel,
and the first cin * expand middle channels. Elastic depth: optional slots are left out.
`extract(arch)` copies the active weights into a FlexNet whose output equals the supernet's for
that architecture (tests/test_tinynas_flex.py).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import nn

from .blocks import HEAD, get_kind
from .errors import TinyNASError
from .flexarch import FlexArch
from .flexspace import FlexSpace


class FlexNet(nn.Module):
    """The network a FlexArch describes, freshly initialised."""

    def __init__(self, arch: FlexArch):
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleList(
            get_kind(s.layer.kind).standalone(s.layer, s.cin, arch.dims, arch.num_classes,
                                              s.size)
            for s in arch.steps())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class FlexSupernet(nn.Module):
    """All subnets of `space` at width multiplier `width_mult`, sharing weights."""

    def __init__(self, space: FlexSpace, width_mult: float):
        super().__init__()
        self.space, self.width_mult = space, width_mult
        self.slots = space.slots_at(width_mult)
        cins = space.max_inputs(width_mult)
        sizes = space.head_sizes()
        self.blocks = nn.ModuleList()
        for i, slot in enumerate(self.slots):
            self.blocks.append(nn.ModuleDict(
                {k: get_kind(k).elastic(slot, cins[i], space.dims, space.num_classes,
                                        sizes if k == HEAD else ())
                 for k in slot.kinds}))

    def sample(self, rng: np.random.Generator, resolution: int | None = None) -> FlexArch:
        return self.space.sample(rng, self.width_mult, resolution)

    def largest(self, resolution: int | None = None) -> FlexArch:
        return self.space.extreme(self.width_mult, resolution, largest=True)

    def check(self, arch: Any) -> None:
        if not isinstance(arch, FlexArch):
            raise TinyNASError(f"{getattr(arch, 'name', '') or 'the architecture'} is an MBConv "
                               f"network (tinynas-arch/1), not one of the {self.space.name} "
                               "space")
        if arch.width_mult != self.width_mult or not self.space.contains(arch):
            raise TinyNASError(f"{arch.name or 'the architecture'} is not a subnet of the "
                               f"{self.space.name} supernet at width {self.width_mult:g}")

    def sort_channels(self) -> None:
        """Nothing to reorder: every width is a prefix of the slot's channels from the first
        step of training on (the sandwich trains the smallest and random widths beside the
        largest), so the first channels are the ones every subnet relies on. (MCUNet's space
        sorts its middle channels after a largest-only phase; this space has none to sort.)"""

    def forward(self, x: torch.Tensor, arch: FlexArch) -> torch.Tensor:
        for layer in arch.layers:
            x = cast(nn.ModuleDict, self.blocks[layer.slot])[layer.kind](x, layer)
        return x

    @torch.no_grad()
    def extract(self, arch: FlexArch) -> FlexNet:
        """A standalone FlexNet for `arch` with the supernet's (inherited) weights."""
        self.check(arch)
        net = FlexNet(arch)
        for s, module in zip(arch.steps(), net.layers):
            elastic = cast(nn.ModuleDict, self.blocks[s.layer.slot])[s.layer.kind]
            get_kind(s.layer.kind).copy_into(elastic, module, s.layer, s.cin)
        return net.train(self.training)
