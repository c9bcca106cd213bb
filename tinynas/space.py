"""The search space: which architectures a search may pick, with presets per dataset.

A space is MCUNet's (MobileNetV2 / ProxylessNAS style): a width multiplier w scales the base
channel counts (make_divisible), an input resolution r, and per stage a depth, per block a kernel
size and an expand ratio. Stage one chooses (w, r); stage two chooses depths, kernels and
expand ratios inside it. Every choice set is a field, so any dataset can have its own grid.

Presets:
- "imagenet": MCUNet's grid, r in {48, 64, ..., 224} x w in {0.2, ..., 1.0} (108 configurations),
  kernels {3, 5, 7}, expand ratios {3, 4, 5, 6} (the paper lists {3, 4, 6}; MCUNet's released
  models use 5 too, so the preset holds them), depths {2, 3, 4}, the last stage one block.
- "vww": 2 classes, and MCUNet's grid extended downwards so that 16-64 KB parts have a space
  too: resolutions from 32 (a 48x48 float image and its first activations do not fit 16 KB),
  width multipliers 0.1 and 0.15, stage depths from 1 (at w0.2 with depths 2-4, nearly every
  subnet needs more than 64 KB of flash). MCUNet's VWW models live in it.
- "digits": scikit-learn's 8x8 greyscale digits, 10 classes, for budgets of 1-2 KB SRAM and
  4-8 KB flash: three stages, a narrow stride-1 stem (an 8x8 image has no pixels to spare, and
  the stem's full-resolution output is the largest tensor), channels rounded to multiples of 4,
  width multipliers 0.25-0.75 (at 0.25 the narrowest layers already have 4 channels; 0.25-0.5
  serve 4-8 KB of flash, 0.625 and 0.75 budgets above 8 KB), depths from 1, and resolutions
  from the native 8 up to 16 (inputs resized to r x r).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .arch import MAX_BLOCKS, MAX_FIELD, Arch, Block, Stage, make_divisible, parse_json, read_text
from .errors import TinyNASError


@dataclass(frozen=True)
class SearchSpace:
    name: str
    in_channels: int
    num_classes: int
    resolutions: tuple[int, ...]
    width_mults: tuple[float, ...]
    kernels: tuple[int, ...]
    expands: tuple[int, ...]
    depths: tuple[int, ...]  # choices for every stage but the last
    last_depths: tuple[int, ...] = (1,)  # choices for the last stage
    stem_base: int = 32
    first_block_base: int = 16
    stage_bases: tuple[int, ...] = (24, 40, 80, 96, 192, 320)
    stage_strides: tuple[int, ...] = (2, 2, 2, 1, 2, 1)
    stem_stride: int = 2
    head_base: int = 0  # 1x1 feature-mix conv width before pooling; 0 = none (MCUNet drops it)
    channel_divisor: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TinyNASError(f"a search space's name must be a string, got {self.name!r}")
        for f in ("in_channels", "num_classes", "stem_base", "first_block_base", "stem_stride",
                  "head_base", "channel_divisor"):
            v = getattr(self, f)
            lo = 0 if f == "head_base" else 1
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= MAX_FIELD:
                raise TinyNASError(f"search space {self.name}: {f} must be an integer from {lo} "
                                   f"to {MAX_FIELD:,}, got {v!r}")
        for f in ("resolutions", "width_mults", "kernels", "expands", "depths", "last_depths",
                  "stage_bases", "stage_strides"):
            v = getattr(self, f)
            if not isinstance(v, tuple) or not v or not all(
                    isinstance(x, (int, float)) and not isinstance(x, bool) and
                    0 < x <= MAX_FIELD for x in v):  # also refuses NaN and infinity
                raise TinyNASError(f"search space {self.name}: {f} must be a non-empty list "
                                   f"of positive numbers up to {MAX_FIELD:,}, got {v!r}")
        deepest = 1 + max(self.depths) * (len(self.stage_bases) - 1) + max(self.last_depths)
        if deepest > MAX_BLOCKS:
            raise TinyNASError(f"search space {self.name}: its deepest subnet has {deepest:,} "
                               f"blocks, more than {MAX_BLOCKS:,}")
        if len(self.stage_bases) != len(self.stage_strides):
            raise TinyNASError(f"search space {self.name}: {len(self.stage_bases)} stage widths "
                               f"but {len(self.stage_strides)} stage strides")
        if min(self.depths + self.last_depths) < 1 or any(k % 2 == 0 for k in self.kernels):
            raise TinyNASError(f"search space {self.name}: depths must be >= 1 and kernels odd")

    @property
    def configs(self) -> list[tuple[float, int]]:
        """Every (width multiplier, resolution) pair: the grid stage one sweeps."""
        return [(w, r) for w in self.width_mults for r in self.resolutions]

    def channels(self, w: float) -> tuple[int, int, tuple[int, ...], int]:
        """(stem, first block, per-stage, head) channels at width multiplier w."""
        d = self.channel_divisor
        return (make_divisible(self.stem_base * w, d), make_divisible(self.first_block_base * w, d),
                tuple(make_divisible(c * w, d) for c in self.stage_bases),
                make_divisible(self.head_base * w, d) if self.head_base else 0)

    def depth_choices(self, stage: int) -> tuple[int, ...]:
        return self.last_depths if stage == len(self.stage_bases) - 1 else self.depths

    def build(self, w: float, r: int, depths: list[int], kernels: list[list[int]],
              expands: list[list[int]], name: str = "") -> Arch:
        """The architecture with these choices (kernels/expands per stage, one per block)."""
        stem, first, widths, head = self.channels(w)
        stages = tuple(Stage(c, s, tuple(Block(k, e) for k, e in zip(ks[:d], es[:d])))
                       for c, s, d, ks, es in zip(widths, self.stage_strides, depths, kernels,
                                                  expands))
        return Arch(resolution=r, stem_channels=stem, first_block_channels=first, stages=stages,
                    in_channels=self.in_channels, num_classes=self.num_classes,
                    stem_stride=self.stem_stride, head_channels=head,
                    channel_divisor=self.channel_divisor, width_mult=w, name=name)

    def sample(self, rng: np.random.Generator, w: float | None = None,
               r: int | None = None) -> Arch:
        """A uniformly random architecture (each choice independent and uniform), at the given
        (w, r) or at random ones. Draws all numbers in two vectorised calls: sampling is on the
        hot path of stage one."""
        w = self.width_mults[rng.integers(len(self.width_mults))] if w is None else w
        r = self.resolutions[rng.integers(len(self.resolutions))] if r is None else r
        n = len(self.stage_bases)
        choices = [self.depth_choices(s) for s in range(n)]
        picks = rng.integers(0, [len(c) for c in choices])
        depths = [int(c[i]) for c, i in zip(choices, picks)]
        blocks = rng.integers(0, [len(self.kernels), len(self.expands)], (sum(depths), 2))
        kernels, expands, at = [], [], 0
        for d in depths:
            kernels.append([self.kernels[i] for i in blocks[at:at + d, 0]])
            expands.append([self.expands[i] for i in blocks[at:at + d, 1]])
            at += d
        return self.build(w, r, depths, kernels, expands)

    # -- genetic operators for stage two (once-for-all's evolution) -----------------------------

    def mutate(self, arch: Arch, rng: np.random.Generator, prob: float = 0.1,
               resolutions: tuple[int, ...] | None = None) -> Arch:
        """Each depth, kernel and expand ratio re-drawn with probability `prob`; blocks a deeper
        stage gains are drawn at random. The width stays; the resolution is re-drawn from
        `resolutions` (default: kept)."""
        r = arch.resolution
        if resolutions and rng.random() < prob:
            r = resolutions[rng.integers(len(resolutions))]
        depths, kernels, expands = [], [], []
        for s, stage in enumerate(arch.stages):
            choices = self.depth_choices(s)
            d = int(choices[rng.integers(len(choices))]) if rng.random() < prob else stage.depth
            ks = [b.kernel for b in stage.blocks] + [0] * max(0, d - stage.depth)
            es = [b.expand for b in stage.blocks] + [0] * max(0, d - stage.depth)
            ks = [self.kernels[rng.integers(len(self.kernels))]
                  if k == 0 or rng.random() < prob else k for k in ks[:d]]
            es = [self.expands[rng.integers(len(self.expands))]
                  if e == 0 or rng.random() < prob else e for e in es[:d]]
            depths.append(d)
            kernels.append(ks)
            expands.append(es)
        assert arch.width_mult is not None
        return self.build(arch.width_mult, r, depths, kernels, expands)

    def crossover(self, a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
        """Each stage depth, block kernel/expand ratio and the resolution from either parent
        with equal probability (a block only one parent has comes from that parent)."""
        depths, kernels, expands = [], [], []
        for sa, sb in zip(a.stages, b.stages):
            d = sa.depth if rng.random() < 0.5 else sb.depth
            pick = [(x if y is None or (x is not None and rng.random() < 0.5) else y)
                    for x, y in zip(list(sa.blocks) + [None] * (d - sa.depth),
                                    list(sb.blocks) + [None] * (d - sb.depth))][:d]
            blocks = [blk for blk in pick if blk is not None]
            depths.append(d)
            kernels.append([blk.kernel for blk in blocks])
            expands.append([blk.expand for blk in blocks])
        assert a.width_mult is not None and a.width_mult == b.width_mult
        r = a.resolution if rng.random() < 0.5 else b.resolution
        return self.build(a.width_mult, r, depths, kernels, expands)

    def extreme(self, w: float, r: int, largest: bool) -> Arch:
        """The smallest (every choice at its minimum) or largest subnet at (w, r)."""
        pick = max if largest else min
        depths = [pick(self.depth_choices(s)) for s in range(len(self.stage_bases))]
        return self.build(w, r, depths, [[pick(self.kernels)] * d for d in depths],
                          [[pick(self.expands)] * d for d in depths],
                          name="largest" if largest else "smallest")

    def smallest(self) -> Arch:
        """The cheapest subnet of the whole space (lowest w and r, every choice at its minimum)."""
        return self.extreme(min(self.width_mults), min(self.resolutions), largest=False)

    def contains(self, arch: Arch) -> bool:
        """Whether `arch` is one of this space's subnets (at one of its (w, r) points)."""
        if arch.width_mult not in self.width_mults or arch.resolution not in self.resolutions:
            return False
        if len(arch.stages) != len(self.stage_bases):
            return False
        depths = [s.depth for s in arch.stages]
        ks = [[b.kernel for b in s.blocks] for s in arch.stages]
        es = [[b.expand for b in s.blocks] for s in arch.stages]
        if any(d not in self.depth_choices(i) for i, d in enumerate(depths)):
            return False
        if any(k not in self.kernels for row in ks for k in row) or \
                any(e not in self.expands for row in es for e in row):
            return False
        built = self.build(arch.width_mult, arch.resolution, depths, ks, es, name=arch.name)
        return built == arch

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: Any, source: str = "search space") -> SearchSpace:
        if not isinstance(d, dict):
            raise TinyNASError(f"{source}: a search space is a JSON object")
        names = {f.name for f in fields(SearchSpace)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise TinyNASError(f"{source}: unknown field(s) {', '.join(unknown)}")
        try:
            kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in d.items()}
            return SearchSpace(**kw)
        except TypeError as e:
            raise TinyNASError(f"{source}: {e}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @staticmethod
    def load(path: str | Path) -> SearchSpace:
        p = Path(path)
        return SearchSpace.from_dict(parse_json(read_text(p, "a search space JSON"), str(p)),
                                     str(p))


_W = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
_R = tuple(range(48, 225, 16))

PRESETS: dict[str, SearchSpace] = {
    "imagenet": SearchSpace("imagenet", 3, 1000, _R, _W, (3, 5, 7), (3, 4, 5, 6), (2, 3, 4)),
    "vww": SearchSpace("vww", 3, 2, (32,) + _R, (0.1, 0.15) + _W, (3, 5, 7), (3, 4, 5, 6),
                       (1, 2, 3, 4)),
    "digits": SearchSpace(
        "digits", in_channels=1, num_classes=10, resolutions=(8, 10, 12, 14, 16),
        width_mults=(0.25, 0.375, 0.5, 0.625, 0.75), kernels=(3, 5), expands=(2, 3, 4),
        depths=(1, 2), last_depths=(1,), stem_base=16, stage_bases=(16, 32, 64),
        stage_strides=(2, 2, 1), stem_stride=1, channel_divisor=4),
}


def get_space(name: str) -> SearchSpace:
    if name not in PRESETS:
        raise TinyNASError(f"unknown dataset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
