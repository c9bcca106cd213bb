"""The exact domain of the SIMD kernels' fast requantisation, in Python: the twins of
te_simd_rq_ok and te_simd_rq_channel_ok (csrc/te_simd.h).

A SIMD kernel takes its fast path only where te_simd_requant is exact: every multiplier >= 0,
every shift in [-22, -1], and |acc| < 2^30 for every accumulator, which holds when
|bias| + products * max_product < 2^30. The values are the ones the generated code stores
(after compact_requant), so the code generator can pick the path the C dispatcher would, at
compile time, and call that path alone (issue 16: only the paths a model uses are linked).
"""

from __future__ import annotations

import numpy as np

_LIMIT = 1 << 30


def rq_channels_ok(mult: np.ndarray, shift: np.ndarray, bias: np.ndarray | None, channels: int,
                   products: int, max_product: int) -> np.ndarray:
    """Per output channel, te_simd_rq_channel_ok: whether that channel alone is inside the
    domain. mult and shift as stored: one pair (per tensor) or one per channel."""
    m = np.broadcast_to(np.asarray(mult, np.int64).ravel(), (channels,))
    s = np.broadcast_to(np.asarray(shift, np.int64).ravel(), (channels,))
    b = np.zeros(channels, np.int64) if bias is None else np.asarray(bias, np.int64).ravel()
    if products < 0 or max_product <= 0 or products > (_LIMIT - 1) // max_product:
        return np.zeros(channels, bool)
    ok: np.ndarray = (m >= 0) & (s <= -1) & (s >= -22) & (np.abs(b) < _LIMIT - products *
                                                           max_product)
    return ok


def rq_all_ok(mult: np.ndarray, shift: np.ndarray, bias: np.ndarray | None, channels: int,
              products: int, max_product: int) -> bool:
    """te_simd_rq_ok: every channel inside the domain (the stored pairs all valid and the
    largest |bias| below the bound; the same as every channel passing rq_channels_ok)."""
    return bool(rq_channels_ok(mult, shift, bias, channels, products, max_product).all())
