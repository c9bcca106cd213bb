"""Latency without an emulator run: per-op cycles from a table measured once per core.

The search (tinynas, issue 16 point 4) prices thousands of candidates, far too many for one QEMU
run each. So benchmarks/latency_table.py runs `bench` once per core on a set of models and fits,
per table key (the kernel the op would get and a shape class), a line through the per-op data:

    cycles = per_work * work + per_call        (work: the op's MACs; for ops without MACs, the
                                               elements it reads and writes)

for the core's cycles at zero wait states and, the same way, for the code lines and literal
loads that meet the flash's wait states on a board. The tables are JSON files in
tinyengine/target/latency_tables/, one per core, with the models and tool versions they came
from. A key the table lacks falls back to the kernel's line over all its shape classes, then to
the core's cycles per unit of work overall: less exact, and counted in the estimate's `fallbacks`.

The shape class is what changes a kernel's cycles per MAC at the same kernel: the filter size,
the stride, and for the channel loops whether the channel counts are multiples of 4 and of 16
(the SIMD kernels widen pairs and run four channels at a time). tests/test_cycles_latency.py holds
the estimate within 5% of `bench` on compiled models.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TinyEngineError
from ..ir import Graph, Op
from ..ops import get_op
from .boards import Board, resolve_board
from .cycles import flash_stall_per_access

TABLE_DIR = Path(__file__).resolve().parent / "latency_tables"
QUANTITIES = ("cycles", "lines16", "lines32", "literal")  # each fitted as a * work + b


def _elements(graph: Graph, names: Sequence[str]) -> int:
    total = 0
    for n in names:
        if n and not graph.tensor(n).is_const:
            total += int(np.prod(graph.tensor(n).shape))
    return total


def _bucket(c: int) -> str:
    return "c16" if c % 16 == 0 else "c4" if c % 4 == 0 else "c1"


def op_features(graph: Graph, op: Op) -> tuple[str, str, int]:
    """(kernel, table key, work) of one op of a scheduled graph."""
    impl = get_op(op.kind)
    kernel = impl.kernel(graph, op)
    macs = impl.macs(graph, op)
    work = macs if macs else _elements(graph, op.inputs) + _elements(graph, op.outputs)
    parts = [kernel]
    ins = [graph.tensor(n) for n in op.inputs if n]
    if macs and len(ins) >= 2 and ins[1].is_const and len(ins[1].shape) == 4:
        w = ins[1].shape  # OHWI (conv) or 1HWC (depthwise)
        stride = op.attrs.get("stride", (1, 1))
        parts += [f"k{w[1]}x{w[2]}", f"s{stride[0]}x{stride[1]}",
                  f"i{_bucket(ins[0].shape[-1])}", f"o{_bucket(w[0] if w[0] > 1 else w[3])}"]
    elif macs and len(ins) >= 2:
        parts += [f"i{_bucket(ins[0].shape[-1])}"]
    return kernel, "|".join(parts), int(work)


def fit_lines(samples: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """Least squares a * work + b through (work, value), with a, b >= 0; one sample or one
    distinct work size: the line through the origin."""
    x = np.array([s[0] for s in samples], dtype=float)
    y = np.array([s[1] for s in samples], dtype=float)
    if len(set(x.tolist())) < 2:
        a = float(y.sum() / x.sum()) if x.sum() > 0 else 0.0
        return (a, 0.0) if x.sum() > 0 else (0.0, float(y.mean()))
    a, b = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)[0]
    if b < 0:
        return float((x * y).sum() / (x * x).sum()), 0.0
    if a < 0:
        return 0.0, float(y.mean())
    return float(a), float(b)


def build_table(records: Sequence[dict[str, Any]], core: str,
                meta: dict[str, Any]) -> dict[str, Any]:
    """The table from per-op records {"kernel", "key", "work", "cycles", "lines16", ...}."""
    def fit(group: list[dict[str, Any]]) -> dict[str, list[float]]:
        return {q: list(fit_lines([(r["work"], r[q]) for r in group])) for q in QUANTITIES}

    by_key: dict[str, list[dict[str, Any]]] = {}
    by_kernel: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_key.setdefault(r["key"], []).append(r)
        by_kernel.setdefault(r["kernel"], []).append(r)
    total_work = sum(r["work"] for r in records) or 1
    overall = {q: [sum(r[q] for r in records) / total_work, 0.0] for q in QUANTITIES}
    return {"core": core, **meta, "keys": {k: fit(v) for k, v in sorted(by_key.items())},
            "kernels": {k: fit(v) for k, v in sorted(by_kernel.items())}, "overall": overall}


@cache
def load_table(core: str) -> dict[str, Any]:
    path = TABLE_DIR / f"{core}.json"
    if not path.is_file():
        have = sorted(p.stem for p in TABLE_DIR.glob("*.json"))
        raise TinyEngineError(f"no latency table for core {core!r} (have: {', '.join(have)}); "
                              f"measure one with benchmarks/latency_table.py --core {core}")
    return json.loads(path.read_text())


@dataclass
class LatencyEstimate:
    core: str
    board: str | None
    clock_hz: int | None
    per_op: list[tuple[str, str, float]]  # (op name, kernel, cycles with the flash stalls)
    total_cycles: float
    fallbacks: list[str] = field(default_factory=list)  # ops priced without their own key

    @property
    def ms(self) -> float | None:
        return 1000.0 * self.total_cycles / self.clock_hz if self.clock_hz else None


def estimate_scheduled(graph: Graph, target: str | Board) -> LatencyEstimate:
    """Cycles (and ms, for a board with a clock) of a graph as scheduled for code generation."""
    board = resolve_board(target)
    table = load_table(board.core)
    stall = flash_stall_per_access(board)
    lines = "lines32" if board.flash_line_bytes >= 32 else "lines16"
    per_op, fallbacks = [], []
    for op in graph.ops:
        kernel, key, work = op_features(graph, op)
        entry = table["keys"].get(key) or table["kernels"].get(kernel)
        if key not in table["keys"]:
            fallbacks.append(op.name)
        line = entry or table["overall"]
        value = {q: line[q][0] * work + line[q][1] for q in ("cycles", lines, "literal")}
        per_op.append((op.name, kernel,
                       value["cycles"] + stall * (value[lines] + value["literal"])))
    return LatencyEstimate(board.core, board.name if board.clock_hz else None, board.clock_hz,
                           per_op, sum(c for _, _, c in per_op), fallbacks)


def estimate_latency(graph: Graph, target: str | Board, patch: str = "auto",
                     inplace: bool = True, planner: str = "auto") -> LatencyEstimate:
    """Latency of `graph` as `tinyengine compile` (same patch/in-place defaults) would build
    it, on a core or board; graphs without weights are priced with placeholders."""
    from ..cost import with_placeholders
    from ..ir import verify
    from ..memory.schedule import schedule

    graph = with_placeholders(graph)
    verify(graph)
    return estimate_scheduled(schedule(graph, patch, inplace, planner).graph, target)
