"""Python values -> C initialiser text, for the templates' `c` filter and array bodies."""

from __future__ import annotations

import numpy as np

from ..ops.base import CValue

CTYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
          "float32": "float"}


def _int_text(v: int) -> str:
    """An integer literal that means `v` in C whatever its width: beyond int32 it gets LL, and
    INT64_MIN (whose magnitude no literal holds) is written as an expression."""
    if -(1 << 31) <= v < (1 << 31):
        return str(v)
    if v == -(1 << 63):
        return "(-9223372036854775807LL - 1)"
    return f"{v}LL"


def c_literal(value: CValue | np.generic | bool, symbols: dict[str, str]) -> str:
    """Render one initialiser: ints as ints, floats as exact hex literals, lists as braces,
    "@name" as the symbol of the op's constant array `name`, other strings as given."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return _int_text(int(value))
    if isinstance(value, (float, np.floating)):
        return float(value).hex()  # C99 hex-float: exact, no decimal round trip
    if isinstance(value, str):
        return symbols[value[1:]] if value.startswith("@") else value
    return "{" + ", ".join(c_literal(v, symbols) for v in value) + "}"  # type: ignore[union-attr]


def array_lines(values: np.ndarray, per_line: int = 16) -> list[str]:
    """The body of a constant array, `per_line` values to a line."""
    flat = values.ravel()
    if flat.dtype.kind == "f":
        items = [float(v).hex() for v in flat]
    else:
        items = [_int_text(int(v)) for v in flat]
    return [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]


def c_comment(text: str) -> str:
    """`text` made safe inside a C block comment, on one line, printable ASCII only.

    Model paths and tensor names are free text: `*/` would end the comment (and what follows
    would be compiled), `/*` and a trigraph-spliced line trip -Wcomment / -Wtrigraphs under
    -Werror, and bidirectional controls trip -Wbidi-chars. So backslashes are doubled, every
    character outside printable ASCII becomes a \\x / \\u escape, and a backslash is put between
    the two characters of `*/`, `/*` and `??`. The original text stays in report.json."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    s = "".join(out)
    # Each replacement only inserts a backslash, which can create none of the other pairs.
    for pair in ("*/", "/*", "??"):
        while pair in s:  # "???" needs two rounds
            s = s.replace(pair, pair[0] + "\\" + pair[1])
    return s
