"""Measured speed of the in-place kernels against their out-of-place twins, per shape class.

benchmarks/inplace_speed.py compiles layers of each class both ways, counts the layer's
instructions under QEMU (cortex-m4, -O2, SIMD) and writes the largest ratio (in place / out of
place) per class to inplace_speed.json beside this file. The ops' `inplace_class` hooks name
the class of a layer; memory/ takes a slower in-place kernel only where the arena needs it. A
class missing from the table counts as equally fast.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent / "inplace_speed.json"
# benchmarks/inplace_speed.py switches the table off while it measures it: with the table on,
# the planner would not take a kernel recorded as slower where the arena does not need it.
ENABLED = True


@lru_cache(maxsize=1)
def _table() -> dict[str, float]:
    if not TABLE_PATH.is_file():
        return {}
    return {str(k): float(v) for k, v in json.loads(TABLE_PATH.read_text())["ratio"].items()}


def inplace_ratio(key: str) -> float:
    """Instructions in place over out of place for `kind/class`; 1.0 where not measured."""
    return _table().get(key, 1.0) if ENABLED else 1.0
