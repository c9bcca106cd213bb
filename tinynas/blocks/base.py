"""What every block kind provides, and the layers they share.

A network of the flexible space is a list of `Layer`s (tinynas/flexarch.py); each names a kind
from the registry (tinynas/blocks/__init__.py), and the kind owns everything about it:
- its choices (`sample`, `mutate`, `crossover`) inside a `Slot` of the search space;
- its elastic supernet module (`elastic`: the largest kernel and width, any smaller one sliced
  from it, so that candidates are scored with inherited weights) and the standalone module a
  subnet extracts to (`standalone`, `copy_into`);
- its weightless engine graph (`emit`), which the search prices with tinyengine.cost.

Sequences are (k x 1) versions of the same blocks: a sequence of length L with C channels is an
N x C x L x 1 tensor, kernels are k x 1 and strides (s, 1) (`dims` = 1).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TinyNASError
from ..layers import conv2d_same
from .graph import GraphBuilder


@dataclass(frozen=True)
class Layer:
    """One layer of a flexible network. Fields a kind does not use keep their defaults."""

    kind: str
    out: int = 0  # output channels (pooling: the input's, filled in by the kind)
    kernel: int = 1  # k: k x k for images, k x 1 for sequences (pooling: the window)
    stride: int = 1
    expand: int = 1  # MBConv's expand ratio
    residual: bool = False  # identity shortcut (stride 1 and as many channels in as out)
    pool: str = ""  # the dense head's: "avg" (global average) or "flatten"
    slot: int = -1  # the search space slot it came from; -1 for a hand-written layer


@dataclass(frozen=True)
class Slot:
    """The choices of one layer position at one width multiplier."""

    kinds: tuple[str, ...]
    channels: tuple[int, ...]  # output channel choices (channel pruning), ascending
    kernels: tuple[int, ...]
    stride: int
    expands: tuple[int, ...] = (2, 3, 4)
    optional: bool = False  # the search may leave the slot out (stride 1 only)
    residual: bool = True  # shortcuts may be chosen where shapes allow
    pools: tuple[str, ...] = ("avg",)  # the dense head's choices


def pair(v: int, dims: int) -> tuple[int, int]:
    """(h, w) of a kernel or stride: v x v for images, v x 1 for sequences."""
    return (v, v) if dims == 2 else (v, 1)


def pick(rng: np.random.Generator, choices: tuple[Any, ...]) -> Any:
    return choices[int(rng.integers(len(choices)))]


class BlockKind:
    """The hooks of a kind. Subclasses set `name` and override what differs."""

    name = ""
    has_weights = True
    can_residual = True

    # -- description -----------------------------------------------------------------------------

    def out_channels(self, layer: Layer, cin: int) -> int:
        return layer.out

    def validate(self, layer: Layer, cin: int, where: str) -> None:
        """Raise a TinyNASError naming `where` unless the layer is well formed after `cin`
        input channels."""
        if layer.out < 1 or layer.kernel < 1 or layer.kernel % 2 == 0 or \
                layer.stride not in (1, 2):
            raise TinyNASError(f"{where} ({self.name}): needs out >= 1, an odd kernel and stride "
                               f"1 or 2, got out {layer.out}, kernel {layer.kernel}, stride "
                               f"{layer.stride}")
        if layer.residual and not self.residual_ok(layer, cin):
            raise TinyNASError(f"{where} ({self.name}): a shortcut needs stride 1 and as many "
                               f"channels out as in ({cin} in, {layer.out} out)")

    def residual_ok(self, layer: Layer, cin: int) -> bool:
        return self.can_residual and layer.stride == 1 and layer.out == cin

    def describe(self, layer: Layer) -> str:
        res = "+" if layer.residual else ""
        return f"{self.name}{layer.out}k{layer.kernel}" + (f"s{layer.stride}" if
                                                            layer.stride > 1 else "") + res

    # -- choices ---------------------------------------------------------------------------------

    def sample(self, slot: Slot, cin: int, rng: np.random.Generator, index: int) -> Layer:
        layer = Layer(self.name, pick(rng, slot.channels), pick(rng, slot.kernels), slot.stride,
                      pick(rng, slot.expands) if self.uses_expand else 1, slot=index)
        return self._shortcut(layer, slot, cin, bool(rng.random() < 0.5))

    uses_expand = False

    def mutate(self, layer: Layer, slot: Slot, cin: int, rng: np.random.Generator,
               prob: float) -> Layer:
        """Each choice re-drawn with probability `prob`."""
        def maybe(v: Any, choices: tuple[Any, ...]) -> Any:
            return pick(rng, choices) if rng.random() < prob else v

        new = replace(layer, out=maybe(layer.out, slot.channels),
                      kernel=maybe(layer.kernel, slot.kernels),
                      expand=maybe(layer.expand, slot.expands) if self.uses_expand else 1)
        res = (not layer.residual) if rng.random() < prob else layer.residual
        return self._shortcut(new, slot, cin, res)

    def crossover(self, a: Layer, b: Layer, slot: Slot, cin: int,
                  rng: np.random.Generator) -> Layer:
        """Each field from either parent (both of this kind) with equal probability."""
        def either(x: Any, y: Any) -> Any:
            return x if rng.random() < 0.5 else y

        new = replace(a, out=either(a.out, b.out), kernel=either(a.kernel, b.kernel),
                      expand=either(a.expand, b.expand))
        return self._shortcut(new, slot, cin, either(a.residual, b.residual))

    def fit(self, layer: Layer, slot: Slot, cin: int) -> Layer:
        """The layer after `cin` channels (an earlier layer changed): a shortcut kept only
        where the shapes still allow it."""
        return self._shortcut(layer, slot, cin, layer.residual)

    def _shortcut(self, layer: Layer, slot: Slot, cin: int, want: bool) -> Layer:
        ok = slot.residual and self.residual_ok(replace(layer, residual=False), cin)
        return replace(layer, residual=want and ok)

    # -- modules ---------------------------------------------------------------------------------

    def elastic(self, slot: Slot, cin_max: int, dims: int, classes: int,
                sizes: tuple[int, ...]) -> nn.Module:
        """The supernet module of a slot: every layer of this kind the slot allows, after at
        most `cin_max` channels; `sizes` are the spatial sizes (h * w) its input may have."""
        raise NotImplementedError

    def standalone(self, layer: Layer, cin: int, dims: int, classes: int,
                   size: int) -> nn.Module:
        """The layer alone, freshly initialised, after `cin` channels of `size` positions."""
        raise NotImplementedError

    def copy_into(self, elastic: nn.Module, module: nn.Module, layer: Layer, cin: int) -> None:
        raise NotImplementedError

    # -- engine graph ----------------------------------------------------------------------------

    def emit(self, g: GraphBuilder, x: str, layer: Layer, name: str, dims: int,
             classes: int) -> str:
        raise NotImplementedError


# -- shared modules ----------------------------------------------------------------------------

class ConvBNAct(nn.Module):
    """SAME conv (kh x kw, any stride, groups) -> BatchNorm -> optional ReLU6: one engine op."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], stride: tuple[int, int],
                 groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, 0, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act
        self.stride, self.groups = stride, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(conv2d_same(x, self.conv.weight, None, self.stride, self.groups))
        return F.relu6(y) if self.act else y


def sliced_bn(x: torch.Tensor, bn: nn.BatchNorm2d, n: int) -> torch.Tensor:
    """nn.BatchNorm2d over the first n channels (its momentum logic, on sliced statistics)."""
    factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    use_batch = bn.training or bn.running_mean is None
    mean = bn.running_mean[:n] if bn.running_mean is not None else None
    var = bn.running_var[:n] if bn.running_var is not None else None
    return F.batch_norm(x, mean, var, bn.weight[:n], bn.bias[:n], use_batch, factor, bn.eps)


def crop(w: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """The centre kh x kw of a larger kernel (the elastic kernel of once-for-all)."""
    h0, w0 = (w.shape[2] - kh) // 2, (w.shape[3] - kw) // 2
    return w[:, :, h0:h0 + kh, w0:w0 + kw]


class ElasticConvBN(nn.Module):
    """The largest conv of a position; `forward` runs its first `cout` filters over the first
    `cin` input channels (depthwise: `cout` = `cin`) with the centre `k` of the kernel."""

    def __init__(self, cin_max: int, cout_max: int, kmax: int, stride: int, dims: int,
                 depthwise: bool = False, act: bool = True):
        super().__init__()
        kh, kw = pair(kmax, dims)
        self.weight = nn.Parameter(torch.empty(cout_max, 1 if depthwise else cin_max, kh, kw))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bn = nn.BatchNorm2d(cout_max)
        self.stride, self.dims = pair(stride, dims), dims
        self.depthwise, self.act = depthwise, act

    def kernel(self, cout: int, cin: int, k: int) -> torch.Tensor:
        w = self.weight[:cout] if self.depthwise else self.weight[:cout, :cin]
        return crop(w, *pair(k, self.dims))

    def forward(self, x: torch.Tensor, cout: int, k: int) -> torch.Tensor:
        cin = int(x.shape[1])
        cout = cin if self.depthwise else cout
        y = conv2d_same(x, self.kernel(cout, cin, k), None, self.stride,
                        cin if self.depthwise else 1)
        y = sliced_bn(y, self.bn, cout)
        return F.relu6(y) if self.act else y

    @torch.no_grad()
    def copy_into(self, dst: ConvBNAct, cout: int, cin: int, k: int) -> None:
        cout = cin if self.depthwise else cout
        dst.conv.weight.copy_(self.kernel(cout, cin, k))
        for s, d in zip(bn_tensors(self.bn), bn_tensors(dst.bn)):
            d.copy_(s[:cout])
        if self.bn.num_batches_tracked is not None and dst.bn.num_batches_tracked is not None:
            dst.bn.num_batches_tracked.copy_(self.bn.num_batches_tracked)


def bn_tensors(bn: nn.BatchNorm2d) -> list[torch.Tensor]:
    """Scale, shift, running mean and variance: the per-channel tensors of a BatchNorm."""
    assert bn.running_mean is not None and bn.running_var is not None
    return [bn.weight, bn.bias, bn.running_mean, bn.running_var]
