"""Every subnet of a supernet by number: how many there are, and the one at an index.

Random search draws subnets uniformly and keeps the admitted ones it has not seen. When the
budget admits few subnets, or the search has already seen most of them, random draws stop
finding new ones long before the space runs out; a search that then stopped would report fewer
evaluations than it was asked for without any reason in the space itself. Numbering the subnets
lets it walk the rest of the space in a seeded random order instead, so it stops short only when
no admitted subnet is left, and can say so.

A subnet of today's SearchSpace at one width multiplier is a resolution and, per stage, a depth
and a (kernel, expand ratio) per block. Its index is a mixed-radix number: the resolution is
the most significant digit, then stage 0, 1, ...; a stage's digit counts its options depth by
depth (all blocks of the shallowest depth first), each block's (kernel, expand) pair in the
order of the space's lists.
"""

from __future__ import annotations

from itertools import product
from typing import Any

from .arch import Arch
from .space import SearchSpace


def _stage_options(space: SearchSpace, stage: int) -> list[tuple[tuple[int, int], ...]]:
    """Every block list a stage can hold: one (kernel, expand) per block."""
    pairs = list(product(space.kernels, space.expands))
    return [blocks for d in space.depth_choices(stage) for blocks in product(pairs, repeat=d)]


def stage_option_counts(space: SearchSpace) -> list[int]:
    n = len(space.kernels) * len(space.expands)
    return [sum(n ** d for d in space.depth_choices(s)) for s in range(len(space.stage_bases))]


def subnet_count(space: Any, resolutions: tuple[int, ...]) -> int | None:
    """Subnets at one width multiplier over `resolutions`, or None for a space this module
    cannot number (a kind of space other than SearchSpace)."""
    if not isinstance(space, SearchSpace):
        return None
    count = len(resolutions)
    for c in stage_option_counts(space):
        count *= c
    return count


class SubnetIndex:
    """The subnets of `space` at width `w` and `resolutions`, addressable by index."""

    def __init__(self, space: SearchSpace, w: float, resolutions: tuple[int, ...]):
        self.space, self.w, self.resolutions = space, w, resolutions
        # Per-stage option lists are small (the digits space: 42, 42, 6); the product is not.
        self.options = [_stage_options(space, s) for s in range(len(space.stage_bases))]
        count = subnet_count(space, resolutions)
        assert count is not None
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Arch:
        if not 0 <= index < self.count:
            raise IndexError(f"subnet index {index} outside 0..{self.count - 1}")
        picks = []
        for opts in reversed(self.options):
            index, i = divmod(index, len(opts))
            picks.append(opts[i])
        picks.reverse()
        r = self.resolutions[index]
        return self.space.build(self.w, r, [len(p) for p in picks],
                                [[k for k, _ in p] for p in picks],
                                [[e for _, e in p] for p in picks])
