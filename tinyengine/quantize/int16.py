"""TFLite's 16x8 rules (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8) where they
differ from the int8 ones, and which ops can take them.

- Activations: symmetric int16, zero point 0, scale = max(|lo|, |hi|) / 32767 over the calibrated
  range (the converter's GetSymmetricQuantizationParams with a half range of 32767), computed in
  float64 and stored as float32. An all-zero range gets scale 1.0, as int8's special case.
- Weights: int8, symmetric, per channel, exactly as in int8 mode.
- Biases of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and TRANSPOSE_CONV: int64 at scale
  s_in * s_w. TFLM accumulates in int64 and its MultiplyByQuantizedMultiplier(int64) requires
  |acc| < 2^47, so a bias is kept within 2^46 steps (weight scales raised where it would not be,
  as int8 keeps its bias within 2^30).
- Outputs the kernels fix (LOGISTIC, TANH, SOFTMAX: 2^-15 and zero point 0 in int16) and output
  scale floors (ADD, SUB: 15 bits of headroom in int16, 20 in int8) are the ops' own
  `quant_rule`s, asked of the op as it runs on int16 (ptq.typed_rule).

Whether an op has an int16 path at all is its `dtypes` attribute (ops/base.py): the only thing
the quantiser asks of an op beyond its quant_rule.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..errors import UnsupportedError
from ..ir import QuantParams
from ..ops import get_op

ACTIVATION_TYPES = ("int8", "int16", "mixed")
INT16_QMAX = 32767
BIAS_LIMIT_INT64 = 1 << 46

def symmetric_qparams(lo: float, hi: float) -> QuantParams:
    """Symmetric int16 parameters for the real range [lo, hi]."""
    peak = max(abs(float(lo)), abs(float(hi)))
    scale = peak / INT16_QMAX if peak > np.finfo(np.float64).eps else 1.0
    return QuantParams(np.array([scale], np.float32), np.array([0], np.int64))


def has_int16(kind: str) -> bool:
    return "int16" in get_op(kind).dtypes


def check_activations(activations: str) -> None:
    from ..errors import TinyEngineError

    if activations not in ACTIVATION_TYPES:
        raise TinyEngineError(f"activations {activations!r}: choose one of "
                              f"{', '.join(ACTIVATION_TYPES)}")


def refuse_without_int16(ops: Iterable[tuple[str, str]]) -> None:
    """Raise for the first (op name, kind) whose kind has no int16 path: one line that names the
    op, its kind and the type, and says what to do."""
    for name, kind in ops:
        if not has_int16(kind):
            dtypes = " or ".join(get_op(kind).dtypes) or "no quantised"
            raise UnsupportedError(
                f"op {name} ({kind}) has no int16 path (the engine runs {kind} on {dtypes} "
                "activations); quantise with --activations int8, or mixed to keep such ops "
                "int8")
