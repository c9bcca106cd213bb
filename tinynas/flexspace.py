"""The flexible search space (muNAS's, with once-for-all's weight sharing): per layer position
(slot) a block kind, a channel count (channel pruning: fractions of the slot's width), a kernel,
an expand ratio and an optional shortcut; optional slots give elastic depth; the head chooses
global pooling or flattening and a hidden width. A width multiplier and an input resolution
(image side or sequence length) are stage one's grid, as in MCUNet.

Presets:
- "mnist1d": sequences of 40 samples (MNIST-1D), 1-D blocks; three stride-2 positions where
  pooling competes with strided blocks, an optional stride-1 position after each, a flatten or
  pooled head.
- "mnist1d-mbconv": the same positions with MBConv blocks only and a pooled head (MCUNet's
  space in 1-D: the baseline the flexible space must beat).
- "digits-flex": scikit-learn's 8x8 digits with the same choices in 2-D.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from .arch import MAX_FIELD, make_divisible, parse_json, read_text
from .blocks import HEAD, KINDS, Layer, Slot, get_kind
from .blocks.base import pick
from .blocks.graph import same_out
from .errors import TinyNASError
from .flexarch import FlexArch
from .space import SearchSpace

POOL_KINDS = ("maxpool", "avgpool")
# Seeded random subnets FlexSpace.any_fits draws before a budget is called impossible.
FIT_DRAWS = 200
FLEX_FORMAT = "tinynas-flexspace/1"


@dataclass(frozen=True)
class SlotSpec:
    """One position of the space before the width multiplier."""

    kinds: tuple[str, ...]
    channels: int  # the widest choice at width multiplier 1
    kernels: tuple[int, ...] = (3,)
    stride: int = 1
    expands: tuple[int, ...] = (2, 3, 4)
    optional: bool = False
    residual: bool = True


@dataclass(frozen=True)
class FlexSpace:
    name: str
    dims: int  # 1: sequences, 2: images
    in_channels: int
    num_classes: int
    resolutions: tuple[int, ...]
    width_mults: tuple[float, ...]
    slots: tuple[SlotSpec, ...]  # body positions; the head follows
    prune: tuple[float, ...] = (0.5, 0.75, 1.0)  # channel choices, as fractions of the widest
    head_hidden: tuple[int, ...] = (0,)  # hidden widths at w = 1 (0: none)
    head_pools: tuple[str, ...] = ("avg",)
    channel_divisor: int = 2

    def __post_init__(self) -> None:
        _check(self)

    # -- slots at a width ------------------------------------------------------------------------

    def slots_at(self, w: float) -> tuple[Slot, ...]:
        """Every body slot and the head slot, with channel choices at width multiplier w."""
        d = self.channel_divisor
        out = [Slot(s.kinds, tuple(sorted({make_divisible(s.channels * w * f, d)
                                           for f in self.prune})),
                    s.kernels, s.stride, s.expands, s.optional, s.residual)
               for s in self.slots]
        hidden = tuple(sorted({make_divisible(h * w, d) if h else 0 for h in self.head_hidden}))
        out.append(Slot((HEAD,), hidden, (1,), 1, (1,), False, False, self.head_pools))
        return tuple(out)

    def max_inputs(self, w: float) -> list[int]:
        """Per slot, the most channels its input can have (any earlier slot may feed it)."""
        cins, most = [], self.in_channels
        for s in self.slots_at(w):
            cins.append(most)
            if any(k not in POOL_KINDS for k in s.kinds) and s.kinds != (HEAD,):
                most = max(most, max(s.channels))
        return cins

    def head_sizes(self) -> tuple[int, ...]:
        """The spatial sizes (h * w) the head's input can have, over resolutions and over
        strided blocks or pooling at each stride-2 slot."""
        sizes: set[int] = set()
        for r in self.resolutions:
            hs = {r}
            for s in self.slots:
                if s.stride == 2:
                    nxt = set()
                    for h in hs:
                        if any(k not in POOL_KINDS for k in s.kinds):
                            nxt.add(same_out(h, 2))
                        if any(k in POOL_KINDS for k in s.kinds):
                            nxt.add((h - 2) // 2 + 1)
                    hs = nxt
            sizes |= {h * h if self.dims == 2 else h for h in hs}
        return tuple(sorted(sizes))

    # -- sampling and genetic operators ----------------------------------------------------------

    def _arch(self, w: float, r: int, layers: list[Layer], name: str = "") -> FlexArch:
        return FlexArch(r, self.in_channels, self.num_classes, tuple(layers), self.dims, w, name)

    def sample(self, rng: np.random.Generator, w: float | None = None,
               r: int | None = None) -> FlexArch:
        """Every choice independent and uniform; an optional slot is present with probability
        1/2."""
        w = pick(rng, self.width_mults) if w is None else w
        r = pick(rng, self.resolutions) if r is None else r
        layers, cin = [], self.in_channels
        for i, slot in enumerate(self.slots_at(w)):
            if slot.optional and rng.random() < 0.5:
                continue
            kind = get_kind(pick(rng, slot.kinds))
            layer = kind.sample(slot, cin, rng, i)
            layers.append(layer)
            cin = kind.out_channels(layer, cin)
        return self._arch(w, r, layers)

    def mutate(self, arch: FlexArch, rng: np.random.Generator, prob: float = 0.1,
               resolutions: tuple[int, ...] | None = None) -> FlexArch:
        """Each slot's presence (optional slots), kind and choices re-drawn with probability
        `prob`; the resolution from `resolutions` (default: kept)."""
        assert arch.width_mult is not None
        r = arch.resolution
        if resolutions and rng.random() < prob:
            r = pick(rng, resolutions)
        have = {x.slot: x for x in arch.layers}
        layers, cin = [], self.in_channels
        for i, slot in enumerate(self.slots_at(arch.width_mult)):
            present = i in have
            if slot.optional and rng.random() < prob:
                present = not present
            if not present:
                continue
            old = have.get(i)
            if old is None or rng.random() < prob:
                kind = get_kind(pick(rng, slot.kinds))
                layer = kind.sample(slot, cin, rng, i)
            else:
                kind = get_kind(old.kind)
                layer = kind.mutate(old, slot, cin, rng, prob)
            layers.append(layer)
            cin = kind.out_channels(layer, cin)
        return self._arch(arch.width_mult, r, layers)

    def crossover(self, a: FlexArch, b: FlexArch, rng: np.random.Generator) -> FlexArch:
        """Per slot, presence and layer from either parent with equal probability (the kind's
        own crossover where both parents chose the same kind)."""
        assert a.width_mult is not None and a.width_mult == b.width_mult
        la, lb = {x.slot: x for x in a.layers}, {x.slot: x for x in b.layers}
        layers, cin = [], self.in_channels
        for i, slot in enumerate(self.slots_at(a.width_mult)):
            x, y = la.get(i), lb.get(i)
            if x is not None and y is not None and x.kind == y.kind:
                kind = get_kind(x.kind)
                layer: Layer | None = kind.crossover(x, y, slot, cin, rng)
            else:
                layer = x if rng.random() < 0.5 else y
            if layer is None:
                continue
            kind = get_kind(layer.kind)
            layer = kind.fit(layer, slot, cin)
            layers.append(layer)
            cin = kind.out_channels(layer, cin)
        r = a.resolution if rng.random() < 0.5 else b.resolution
        return self._arch(a.width_mult, r, layers)

    def extreme(self, w: float, r: int | None, largest: bool) -> FlexArch:
        """Every choice at its largest (optional slots present, the slot's first kind) or its
        smallest (optional slots left out)."""
        r = (max(self.resolutions) if largest else min(self.resolutions)) if r is None else r
        f = max if largest else min
        layers, cin = [], self.in_channels
        for i, slot in enumerate(self.slots_at(w)):
            if slot.optional and not largest:
                continue
            kind = get_kind(slot.kinds[0])
            layer = kind.fit(Layer(kind.name, f(slot.channels), f(slot.kernels), slot.stride,
                                   f(slot.expands) if kind.uses_expand else 1,
                                   pool=slot.pools[0] if kind.name == HEAD else "", slot=i),
                             slot, cin)
            if kind.name in POOL_KINDS:
                layer = replace(layer, out=cin, kernel=2)
            layers.append(layer)
            cin = kind.out_channels(layer, cin)
        return self._arch(w, r, layers, "largest" if largest else "smallest")

    def smallest(self) -> FlexArch:
        return self.extreme(min(self.width_mults), min(self.resolutions), largest=False)

    def any_fits(self, fits: Callable[[FlexArch], bool], w: float | None = None,
                 resolutions: tuple[int, ...] | None = None) -> bool:
        """Whether one of FIT_DRAWS seeded random subnets (at width w, a resolution among
        `resolutions`; else any) fits. The smallest subnet takes each slot's first kind, and a
        convolution can outweigh a depthwise-separable layer or a pooling, so it is not always
        the cheapest: where it is over a budget, these draws decide whether anything fits."""
        rng = np.random.default_rng(0)
        for _ in range(FIT_DRAWS):
            r = None if resolutions is None else int(resolutions[rng.integers(len(resolutions))])
            if fits(self.sample(rng, w, r)):
                return True
        return False

    @property
    def configs(self) -> list[tuple[float, int]]:
        return [(w, r) for w in self.width_mults for r in self.resolutions]

    def contains(self, arch: FlexArch) -> bool:
        """Whether `arch` is one of this space's subnets."""
        if arch.dims != self.dims or arch.in_channels != self.in_channels or \
                arch.num_classes != self.num_classes or arch.width_mult not in self.width_mults \
                or arch.resolution not in self.resolutions:
            return False
        slots = self.slots_at(arch.width_mult)
        at = [x.slot for x in arch.layers]
        if at != sorted(set(at)) or not at or at[-1] != len(slots) - 1 or \
                any(not 0 <= i < len(slots) for i in at):
            return False
        if any(not s.optional and i not in at for i, s in enumerate(slots)):
            return False
        for step in arch.steps():
            x, slot = step.layer, slots[step.layer.slot]
            if x.kind not in slot.kinds:
                return False
            if x.kind in POOL_KINDS:
                continue
            if x.out not in slot.channels or (x.kind != HEAD and x.kernel not in slot.kernels):
                return False
            if get_kind(x.kind).uses_expand and x.expand not in slot.expands:
                return False
            if x.kind == HEAD and x.pool not in slot.pools:
                return False
            if x.residual and not slot.residual:
                return False
        return True

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"format": FLEX_FORMAT, **asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @staticmethod
    def from_dict(d: Any, source: str = "search space") -> FlexSpace:
        if not isinstance(d, dict):
            raise TinyNASError(f"{source}: a search space is a JSON object")
        d = {k: v for k, v in d.items() if k != "format"}
        names = {f.name for f in fields(FlexSpace)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TinyNASError(f"{source}: unknown field(s) {', '.join(unknown)}")
        try:
            kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in d.items() if k != "slots"}
            kw["slots"] = tuple(SlotSpec(**_slot_fields(s)) for s in d.get("slots", []))
            return FlexSpace(**kw)
        except (TypeError, AttributeError) as e:
            raise TinyNASError(f"{source}: {e}") from None

    @staticmethod
    def load(path: str | Path) -> FlexSpace:
        p = Path(path)
        return FlexSpace.from_dict(parse_json(read_text(p, "a search space JSON"), str(p)),
                                   str(p))


def _slot_fields(s: Any) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in s.items()}


def _check(s: FlexSpace) -> None:
    where = f"search space {s.name}"
    if s.dims not in (1, 2):
        raise TinyNASError(f"{where}: dims must be 1 (sequences) or 2 (images)")
    for f in ("in_channels", "num_classes", "channel_divisor"):
        v = getattr(s, f)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_FIELD:
            raise TinyNASError(f"{where}: {f} must be an integer from 1 to {MAX_FIELD:,}")
    for f in ("resolutions", "width_mults", "prune"):
        v = getattr(s, f)
        if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and
                            0 < x <= MAX_FIELD for x in v):
            raise TinyNASError(f"{where}: {f} must be a non-empty list of positive numbers")
    if not s.slots:
        raise TinyNASError(f"{where}: needs at least one slot")
    for i, slot in enumerate(s.slots):
        bad = [k for k in slot.kinds if k not in KINDS or k == HEAD]
        if not slot.kinds or bad:
            raise TinyNASError(f"{where}: slots[{i}] kinds must be some of "
                               f"{', '.join(k for k in KINDS if k != HEAD)}, got "
                               f"{list(slot.kinds)}")
        if slot.stride not in (1, 2) or (slot.optional and slot.stride != 1):
            raise TinyNASError(f"{where}: slots[{i}] stride must be 1 or 2, and an optional "
                               "slot stride 1")
        if any(k in POOL_KINDS for k in slot.kinds) and slot.stride != 2:
            raise TinyNASError(f"{where}: slots[{i}]: pooling only in a stride-2 slot")
        if any(k % 2 == 0 or k < 1 for k in slot.kernels) or not slot.kernels:
            raise TinyNASError(f"{where}: slots[{i}] kernels must be odd")
        if slot.channels < 1 or not slot.expands or min(slot.expands) < 1:
            raise TinyNASError(f"{where}: slots[{i}] needs channels >= 1 and expands >= 1")
    if any(p not in ("avg", "flatten") for p in s.head_pools) or not s.head_pools:
        raise TinyNASError(f"{where}: head_pools must be some of avg, flatten")
    if not s.head_hidden or min(s.head_hidden) < 0:
        raise TinyNASError(f"{where}: head_hidden must be widths >= 0 (0: no hidden layer)")


_ANY = ("conv", "dwsep", "mbconv")
_DOWN = _ANY + POOL_KINDS

_MNIST1D = FlexSpace(
    "mnist1d", dims=1, in_channels=1, num_classes=10, resolutions=(24, 32, 40),
    width_mults=(0.5, 0.75, 1.0),
    slots=(SlotSpec(("conv",), 16, (3, 5, 7)),
           SlotSpec(_DOWN, 24, (3, 5), stride=2),
           SlotSpec(_ANY, 24, (3, 5), optional=True),
           SlotSpec(_DOWN, 32, (3, 5), stride=2),
           SlotSpec(_ANY, 32, (3, 5), optional=True),
           SlotSpec(_DOWN, 48, (3,), stride=2),
           SlotSpec(_ANY, 48, (3,), optional=True)),
    prune=(0.5, 0.75, 1.0), head_hidden=(0, 32), head_pools=("avg", "flatten"))

# mnist1d with an optional stride-1 slot after the stem: a network can work at full length
# before it first halves it, as the VGG-shaped hand design (tinynas/baselines.py) does, the
# strongest hand design at 2 KB / 8 KB. Measured over three seeds (benchmarks/RESULTS.md,
# session 11) it gains 0.07 points at 2 KB / 8 KB and loses 0.28 at 1 KB / 4 KB, so it is
# not the default.
_MNIST1D_DEEP = replace(_MNIST1D, name="mnist1d-deep", slots=_MNIST1D.slots[:1] + (
    SlotSpec(_ANY, 16, (3, 5), optional=True),) + _MNIST1D.slots[1:])

FLEX_PRESETS: dict[str, FlexSpace] = {
    "mnist1d": _MNIST1D,
    "mnist1d-deep": _MNIST1D_DEEP,
    # MCUNet's block in the same positions (no other kind, no pooling, pooled head): the
    # "best subnet of an MBConv-only space" baseline of benchmarks/nas_baselines.py.
    "mnist1d-mbconv": FlexSpace(
        "mnist1d-mbconv", dims=1, in_channels=1, num_classes=10, resolutions=(24, 32, 40),
        width_mults=(0.5, 0.75, 1.0),
        slots=(SlotSpec(("conv",), 16, (3, 5, 7)),
               SlotSpec(("mbconv",), 24, (3, 5), stride=2),
               SlotSpec(("mbconv",), 24, (3, 5), optional=True),
               SlotSpec(("mbconv",), 32, (3, 5), stride=2),
               SlotSpec(("mbconv",), 32, (3, 5), optional=True),
               SlotSpec(("mbconv",), 48, (3,), stride=2),
               SlotSpec(("mbconv",), 48, (3,), optional=True)),
        prune=(0.5, 0.75, 1.0), head_hidden=(0,), head_pools=("avg",)),
    "digits-flex": FlexSpace(
        "digits-flex", dims=2, in_channels=1, num_classes=10, resolutions=(8, 10, 12),
        width_mults=(0.5, 0.75, 1.0),
        slots=(SlotSpec(("conv",), 16, (3,)),
               SlotSpec(_ANY, 16, (3,), optional=True),
               SlotSpec(_DOWN, 32, (3,), stride=2),
               SlotSpec(_ANY, 32, (3,), optional=True),
               SlotSpec(_DOWN, 48, (3,), stride=2),
               SlotSpec(_ANY, 48, (3,), optional=True)),
        prune=(0.5, 0.75, 1.0), head_hidden=(0, 32), head_pools=("avg", "flatten")),
}

# Either kind of space: MCUNet's MBConv space (tinynas/space.py) or the flexible one.
AnySpace = SearchSpace | FlexSpace
