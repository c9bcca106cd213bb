"""The dense head: global average pooling or flattening, an optional hidden dense layer
(ReLU6), and the classifier. On a short sequence the positions carry the class (MNIST-1D's
digits are shapes along the signal): flattening keeps them, at (positions x channels x classes)
weights; global pooling keeps only channels.

`out` is the hidden width (0: no hidden layer), `pool` "avg" or "flatten". The elastic head
holds the largest hidden layer; a flattening first layer is held once per input size, since
its weights are per position.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TinyNASError
from .base import BlockKind, Layer, Slot, pick
from .graph import GraphBuilder

POOLS = ("avg", "flatten")


class HeadLayer(nn.Module):
    def __init__(self, layer: Layer, cin: int, classes: int, size: int):
        super().__init__()
        self.flatten = layer.pool == "flatten"
        features = cin * size if self.flatten else cin
        self.hidden = nn.Linear(features, layer.out) if layer.out else None
        self.classifier = nn.Linear(layer.out or features, classes)
        for m in (self.hidden, self.classifier):
            if m is not None:
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x if self.flatten else F.adaptive_avg_pool2d(x, 1), 1)
        if self.hidden is not None:
            x = F.relu6(self.hidden(x))
        return self.classifier(x)


class ElasticHead(nn.Module):
    """Weights of the first dense layer as (out, channels, positions): a narrower input keeps
    the first channels of every position, in PyTorch's channel-major flatten order."""

    def __init__(self, slot: Slot, cin_max: int, classes: int, sizes: tuple[int, ...]):
        super().__init__()
        hmax = max(slot.channels)
        first_out = hmax or classes
        self.first = nn.ParameterDict()
        for size in (sorted(set(sizes)) if "flatten" in slot.pools else []):
            self.first[f"flat{size}"] = nn.Parameter(torch.randn(first_out, cin_max, size) * 0.01)
        if "avg" in slot.pools:
            self.first["avg"] = nn.Parameter(torch.randn(first_out, cin_max, 1) * 0.01)
        self.first_bias = nn.Parameter(torch.zeros(first_out))
        self.classifier = nn.Linear(hmax, classes) if hmax else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, 0, 0.01)
            nn.init.zeros_(self.classifier.bias)

    def first_layer(self, layer: Layer, cin: int, size: int, classes: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = "avg" if layer.pool == "avg" else f"flat{size}"
        n = layer.out or classes
        w = self.first[key][:n, :cin]
        return w.reshape(n, -1), self.first_bias[:n]

    def forward(self, x: torch.Tensor, layer: Layer) -> torch.Tensor:
        cin, size = int(x.shape[1]), int(x.shape[2] * x.shape[3])
        if layer.out and self.classifier is None:
            raise TinyNASError("this head has no hidden layer to choose")
        x = torch.flatten(x if layer.pool == "flatten" else F.adaptive_avg_pool2d(x, 1), 1)
        w, b = self.first_layer(layer, cin, size if layer.pool == "flatten" else 1,
                                self.classes)
        x = F.linear(x, w, b)
        if not layer.out:
            return x
        assert self.classifier is not None
        return F.linear(F.relu6(x), self.classifier.weight[:, :layer.out], self.classifier.bias)

    classes = 0


class Dense(BlockKind):
    name = "dense"
    can_residual = False

    def out_channels(self, layer: Layer, cin: int) -> int:
        return layer.out

    def validate(self, layer: Layer, cin: int, where: str) -> None:
        if layer.out < 0 or layer.pool not in POOLS or layer.residual:
            raise TinyNASError(f"{where} (dense): needs a hidden width >= 0 (0: none), pool "
                               f"one of {', '.join(POOLS)} and no shortcut, got out "
                               f"{layer.out}, pool {layer.pool!r}")

    def describe(self, layer: Layer) -> str:
        return f"{layer.pool}" + (f"-fc{layer.out}" if layer.out else "") + "-fc"

    def sample(self, slot: Slot, cin: int, rng: np.random.Generator, index: int) -> Layer:
        return Layer(self.name, pick(rng, slot.channels), 1, 1, pool=pick(rng, slot.pools),
                     slot=index)

    def mutate(self, layer: Layer, slot: Slot, cin: int, rng: np.random.Generator,
               prob: float) -> Layer:
        out = pick(rng, slot.channels) if rng.random() < prob else layer.out
        pool = pick(rng, slot.pools) if rng.random() < prob else layer.pool
        return Layer(self.name, out, 1, 1, pool=pool, slot=layer.slot)

    def crossover(self, a: Layer, b: Layer, slot: Slot, cin: int,
                  rng: np.random.Generator) -> Layer:
        return Layer(self.name, a.out if rng.random() < 0.5 else b.out, 1, 1,
                     pool=a.pool if rng.random() < 0.5 else b.pool, slot=a.slot)

    def elastic(self, slot: Slot, cin_max: int, dims: int, classes: int,
                sizes: tuple[int, ...]) -> nn.Module:
        head = ElasticHead(slot, cin_max, classes, sizes)
        head.classes = classes
        return head

    def standalone(self, layer: Layer, cin: int, dims: int, classes: int,
                   size: int) -> nn.Module:
        return HeadLayer(layer, cin, classes, size)

    @torch.no_grad()
    def copy_into(self, elastic: nn.Module, module: nn.Module, layer: Layer, cin: int) -> None:
        assert isinstance(elastic, ElasticHead) and isinstance(module, HeadLayer)
        first = module.hidden if module.hidden is not None else module.classifier
        size = first.weight.shape[1] // cin
        w, b = elastic.first_layer(layer, cin, size, elastic.classes)
        first.weight.copy_(w)
        first.bias.copy_(b)
        if module.hidden is not None:
            assert elastic.classifier is not None
            module.classifier.weight.copy_(elastic.classifier.weight[:, :layer.out])
            module.classifier.bias.copy_(elastic.classifier.bias)

    def emit(self, g: GraphBuilder, x: str, layer: Layer, name: str, dims: int,
             classes: int) -> str:
        """Pooling or flatten, [hidden dense], classifier; the caller adds the DEQUANTIZE."""
        _, h, w, c = g.shape(x)
        if layer.pool == "avg":
            x = g.op("pool", "AVERAGE_POOL_2D", [x], g.act("pool:out", (1, 1, 1, c)),
                     {"stride": (1, 1), "filter": (h, w), "padding": "VALID",
                      "activation": "NONE"})
            n = c
        else:
            n = h * w * c
        x = g.op("flatten", "RESHAPE", [x], g.act("flatten:out", (1, n)), {})
        if layer.out:
            x = g.dense("hidden", x, layer.out, "RELU6")
        return g.dense("classifier", x, classes, "NONE")
