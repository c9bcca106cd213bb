"""Block kinds of the flexible search space, by name. A kind is one file here; registering it
in KINDS is all it takes for the space, the supernet, the deploy and the cost to know it."""

from __future__ import annotations

from ..errors import TinyNASError
from .base import BlockKind, Layer, Slot
from .conv import Conv
from .dwsep import DWSep
from .head import Dense
from .mbconv import MBConv
from .pool import Pool

KINDS: dict[str, BlockKind] = {k.name: k for k in (Conv(), DWSep(), MBConv(), Pool("maxpool"),
                                                   Pool("avgpool"), Dense())}
HEAD = "dense"


def get_kind(name: str) -> BlockKind:
    if name not in KINDS:
        raise TinyNASError(f"unknown block kind {name!r}: choose one of {', '.join(KINDS)}")
    return KINDS[name]


__all__ = ["BlockKind", "HEAD", "KINDS", "Layer", "Slot", "get_kind"]
