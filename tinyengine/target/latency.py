"""Latency without an emulator run: per-op cycles from a table measured once per core.

The search (tinynas, issue 16 point 4) prices thousands of candidates, far too many for one QEMU
run each. So benchmarks/latency_table.py runs `bench` once per core on a set of models and fits,
per table key (the kernel the op would get and a shape class), a line through the per-op data:

    cycles = per_work * work + per_call + per_output * outputs + per_pixel * pixels
             + per_tap * taps

(work: the op's MACs, or for ops without MACs the elements it reads and writes; outputs: the
elements it writes; pixels: its output positions; taps: a convolution's MACs less those on the
padding), for the core's cycles at zero wait states and, the same way, for the code lines and
literal loads that meet the flash's wait states on a board. The last three terms are what a
line through MACs alone misses on small networks: a 1x1 convolution with 4 input channels
spends more on requantising each output than on its MACs, a depthwise convolution pays its
loop set-up per pixel, and a 5x5 filter on a 4x4 map skips most of its MACs. They are fitted
(non-negative least squares) where a key or kernel has enough samples; otherwise an entry is the
two-term line. The models measured are the shared ones and random subnets of the tinynas spaces
with weights of a trained network's scale (with_typical_weights; benchmarks/latency_table.py),
so the searched networks are priced from their own kind. An op whose exact shape was measured
(same key, work, outputs, pixels and taps: `ops` in the table) is priced at its measured
figures, as the lookup tables of OFA and MCUNet price their blocks; the search's spaces repeat a
few hundred op shapes, so most of a subnet's ops are found there and the lines price the rest.
The tables are JSON files in tinyengine/target/latency_tables/, one per core, with the models
and tool versions they came from. A key the table lacks falls back to the kernel's line over all
its shape classes, then to the core's cycles per unit of work overall: less exact, and counted
in the estimate's `fallbacks`.

The shape class is what changes a kernel's cycles per MAC at the same kernel: the filter size,
the stride, and for the channel loops whether the channel counts are multiples of 4 and of 16
(the SIMD kernels widen pairs and run four channels at a time). tests/test_cycles_latency.py holds
the estimate within 5% of `bench` on compiled models, tests/test_tinynas_latency.py on subnets
the tables never saw.
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
from ..ops.common import window_padding
from .boards import Board, resolve_board
from .cycles import flash_stall_per_access

TABLE_DIR = Path(__file__).resolve().parent / "latency_tables"
QUANTITIES = ("cycles", "lines16", "lines32", "literal")  # each fitted as in the docstring
# An entry's coefficients, in this order: (work, call, outputs, pixels, taps); the first two
# alone are the two-term line. Enough samples for the four-term fit: a few more than the terms.
MIN_SAMPLES_FOR_TERMS = 8


def _elements(graph: Graph, names: Sequence[str]) -> int:
    total = 0
    for n in names:
        if n and not graph.tensor(n).is_const:
            total += int(np.prod(graph.tensor(n).shape))
    return total


def _bucket(c: int) -> str:
    return "c16" if c % 16 == 0 else "c4" if c % 4 == 0 else "c1"


def _taps(op: Op, in_h: int, in_w: int, fh: int, fw: int) -> int:
    """Filter taps that land inside the input, summed over the output positions: a kernel
    skips the padding, so on the small maps of tiny networks (a 5x5 filter on 4x4) the MACs
    overstate its work several times."""
    oh, ow, ph, pw = window_padding(op, in_h, in_w, fh, fw)
    (sh, sw), (dh, dw) = op.attrs["stride"], op.attrs.get("dilation", (1, 1))

    def axis(n_out: int, stride: int, pad: int, k: int, dil: int, size: int) -> int:
        at = np.arange(n_out)[:, None] * stride - pad + np.arange(k)[None, :] * dil
        return int(((at >= 0) & (at < size)).sum())

    return axis(oh, sh, ph, fh, dh, in_h) * axis(ow, sw, pw, fw, dw, in_w)


def op_features(graph: Graph, op: Op) -> tuple[str, str, int]:
    """(kernel, table key, work) of one op of a scheduled graph."""
    kernel, key, work, _, _, _ = op_terms(graph, op)
    return kernel, key, work


def _fused_terms(graph: Graph, op: Op, kernel: str, work: int
                 ) -> tuple[str, str, int, int, int, int]:
    """op_terms of a fused inverted-residual block (csrc/te_fused_block.c). It calls its
    members' kernels row by row: the expansion once per input row a window reaches, the
    depthwise and the projection (and the add) once per output row. Each of those calls goes
    through a run-time dispatcher whose set-up walks the member's output channels (the
    requantisation domain check), so besides its MACs and outputs the block's cycles go with
    the member calls weighted by their channels, and with the expanded elements it computes
    and shifts through its window. Its terms are (MACs, outputs, member calls x channels,
    expanded elements) in the slots of (work, outputs, pixels, taps), and its class is its
    depthwise window and stride and whether it adds the residual. Measured on blocks of these
    classes (benchmarks/latency_table.py fuses one group of subnets whole); weighting the calls
    by channels took the lines' leave-one-out error on those blocks from 6.5% (108% at worst, on
    the smallest maps) to 1.9% (9% at worst) against counting output rows
    (benchmarks/fused_block_terms.py)."""
    from ..ops.fused_block import member_graph, members, ring_rows

    g = member_graph(graph, op)
    expand, dw, project, add = members(op)
    fw, stride = g.tensor(dw.inputs[1]).shape, dw.attrs.get("stride", (1, 1))
    x, e = g.tensor(expand.inputs[0]).shape, g.tensor(expand.outputs[0]).shape
    rows_out = g.tensor(dw.outputs[0]).shape[1]
    _, _, pad_h, _ = window_padding(dw, e[1], e[2], fw[1], fw[2])
    span = ring_rows(g, dw)
    # Expansion calls: the image rows the windows reach, each expanded once (kept rows move up).
    reached = {t * stride[0] - pad_h + j for t in range(rows_out) for j in range(span)}
    expansions = sum(1 for r in reached if 0 <= r < x[1])
    channel_calls = (expansions * e[3] + rows_out * e[3]
                     + rows_out * g.tensor(project.outputs[0]).shape[3]) * x[0]
    out = g.tensor(op.outputs[0]).shape
    key = "|".join([kernel, f"k{fw[1]}x{fw[2]}", f"s{stride[0]}x{stride[1]}"] +
                   (["add"] if add is not None else []))
    expanded = int(np.prod(e))
    return kernel, key, work, int(np.prod(out)), int(channel_calls), expanded


def op_terms(graph: Graph, op: Op) -> tuple[str, str, int, int, int, int]:
    """(kernel, table key, work, outputs, pixels, taps) of one op of a scheduled graph; taps:
    the MACs of a convolution without those on the padding (else the work)."""
    impl = get_op(op.kind)
    kernel = impl.kernel(graph, op)
    macs = impl.macs(graph, op)
    work = macs if macs else _elements(graph, op.inputs) + _elements(graph, op.outputs)
    if op.kind == "FUSED_BLOCK":
        return _fused_terms(graph, op, kernel, int(work))
    parts = [kernel]
    ins = [graph.tensor(n) for n in op.inputs if n]
    if macs and len(ins) >= 2 and ins[1].is_const and len(ins[1].shape) == 4:
        w = ins[1].shape  # OHWI (conv) or 1HWC (depthwise)
        stride = op.attrs.get("stride", (1, 1))
        parts += [f"k{w[1]}x{w[2]}", f"s{stride[0]}x{stride[1]}",
                  f"i{_bucket(ins[0].shape[-1])}", f"o{_bucket(w[0] if w[0] > 1 else w[3])}"]
    elif macs and len(ins) >= 2:
        parts += [f"i{_bucket(ins[0].shape[-1])}"]
    outs = _elements(graph, op.outputs)
    first = graph.tensor(op.outputs[0]).shape if op.outputs else ()
    pixels = outs // max(1, int(first[-1])) if len(first) >= 2 else outs
    taps = work
    if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) >= 2 and work:
        x, wt = ins[0].shape, ins[1].shape
        full = _taps(op, x[1], x[2], wt[1], wt[2])
        oh, ow, _, _ = window_padding(op, x[1], x[2], wt[1], wt[2])
        taps = round(work * full / max(1, oh * ow * wt[1] * wt[2]))
    return kernel, "|".join(parts), int(work), int(outs), int(pixels), int(taps)


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


def fit_terms(rows: Sequence[tuple[int, int, int, int]], values: Sequence[float]
              ) -> list[float]:
    """Non-negative least squares of values over (work, 1, outputs, pixels, taps): the
    coefficients in the table's order. Each row is weighted by 1/sqrt(value), between absolute
    and relative error: unweighted, a key's few large ops (person_detect's) set its line and the
    small ops of a tiny subnet come out tens of percent high. Columns are scaled to unit norm
    first so that the small per-call term is not lost beside millions of MACs."""
    from scipy.optimize import nnls

    r = np.array(rows, dtype=float)
    y = np.array(values, dtype=float)
    weight = 1.0 / np.sqrt(np.maximum(y, 1.0))
    a = np.stack([r[:, 0], np.ones(len(r)), r[:, 1], r[:, 2], r[:, 3]], axis=1) * weight[:, None]
    scale = np.linalg.norm(a, axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(a / scale, y * weight)
    return [float(c) for c in coef / scale]


def line_value(coef: Sequence[float], work: int, outs: int, pixels: int, taps: int) -> float:
    """An entry's value: the two-term line, plus the output, pixel and tap terms where fitted."""
    value = coef[0] * work + coef[1]
    if len(coef) > 2:
        value += coef[2] * outs + coef[3] * pixels + coef[4] * taps
    return value


def build_table(records: Sequence[dict[str, Any]], core: str,
                meta: dict[str, Any]) -> dict[str, Any]:
    """The table from per-op records {"kernel", "key", "work", "cycles", "lines16", ...}."""
    def fit(group: list[dict[str, Any]]) -> dict[str, list[float]]:
        if len(group) >= MIN_SAMPLES_FOR_TERMS and all("taps" in r for r in group):
            rows = [(r["work"], r["outputs"], r["pixels"], r["taps"]) for r in group]
            return {q: fit_terms(rows, [r[q] for r in group]) for q in QUANTITIES}
        return {q: list(fit_lines([(r["work"], r[q]) for r in group])) for q in QUANTITIES}

    by_key: dict[str, list[dict[str, Any]]] = {}
    by_kernel: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_key.setdefault(r["key"], []).append(r)
        by_kernel.setdefault(r["kernel"], []).append(r)
    total_work = sum(r["work"] for r in records) or 1
    overall = {q: [sum(r[q] for r in records) / total_work, 0.0] for q in QUANTITIES}
    by_op: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if "taps" in r:
            by_op.setdefault(op_signature(r["key"], r["work"], r["outputs"], r["pixels"],
                                          r["taps"]), []).append(r)
    ops = {s: {q: float(np.mean([r[q] for r in v])) for q in QUANTITIES}
           for s, v in sorted(by_op.items())}
    return {"core": core, **meta, "ops": ops,
            "keys": {k: fit(v) for k, v in sorted(by_key.items())},
            "kernels": {k: fit(v) for k, v in sorted(by_kernel.items())}, "overall": overall}


def op_signature(key: str, work: int, outs: int, pixels: int, taps: int) -> str:
    """An op's shape as far as its cycles go: the kernel and shape class with the sizes of the
    terms (which with the class fix the channels, the map and the padding)."""
    return f"{key}|{work}|{outs}|{pixels}|{taps}"


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


OpTerms = tuple[str, str, int, int, int, int]  # op_terms: (kernel, key, work, outs, pixels, taps)


def price_terms(terms: Sequence[OpTerms], target: str | Board
                ) -> tuple[float, list[tuple[float, bool]]]:
    """Total cycles, and per op (cycles with the flash stalls, priced without its own key), of
    ops given by their features: what the search keeps per candidate instead of the graph."""
    board = resolve_board(target)
    table = load_table(board.core)
    stall = flash_stall_per_access(board)
    lines = "lines32" if board.flash_line_bytes >= 32 else "lines16"
    per_op = []
    for kernel, key, work, outs, pixels, taps in terms:
        measured = table.get("ops", {}).get(op_signature(key, work, outs, pixels, taps))
        line = table["keys"].get(key) or table["kernels"].get(kernel) or table["overall"]
        value = measured or {q: line_value(line[q], work, outs, pixels, taps)
                             for q in ("cycles", lines, "literal")}
        per_op.append((value["cycles"] + stall * (value[lines] + value["literal"]),
                       key not in table["keys"]))
    return sum(c for c, _ in per_op), per_op


def estimate_scheduled(graph: Graph, target: str | Board) -> LatencyEstimate:
    """Cycles (and ms, for a board with a clock) of a graph as scheduled for code generation."""
    board = resolve_board(target)
    terms = [op_terms(graph, op) for op in graph.ops]
    total, priced = price_terms(terms, board)
    per_op = [(op.name, t[0], c) for op, t, (c, _) in zip(graph.ops, terms, priced, strict=True)]
    fallbacks = [op.name for op, (_, fell) in zip(graph.ops, priced, strict=True) if fell]
    return LatencyEstimate(board.core, board.name if board.clock_hz else None, board.clock_hz,
                           per_op, total, fallbacks)


def with_typical_weights(graph: Graph, seed: int = 0) -> Graph:
    """The graph with random weights and biases of a trained network's scale in place of the
    constants described without data: what the search's networks are measured with.

    Placeholder weights (tinyengine.cost.with_placeholders: zeros at unit scale) give every
    convolution a requantisation multiplier of about 1, outside the domain of the SIMD requantise
    (te_simd_rq_ok: shifts in [-22, -1]), so the kernels take their portable paths, 3-5 times
    slower than on the same network once trained (per-channel weight scales of 0.002-0.01 against
    activation scales near 0.05, as post-training quantisation gives). Nothing else in the cycles
    depends on the values beyond a clamp's branch."""
    from ..cost import with_placeholders
    from ..ir import QuantParams, Tensor

    missing = {n for n, t in graph.tensors.items() if t.is_const and t.data is None}
    graph = with_placeholders(graph)
    rng = np.random.default_rng(seed)
    tensors = dict(graph.tensors)
    for name in sorted(missing):
        t = tensors[name]
        if t.dtype == "int8" and t.quant is not None:
            scale = rng.uniform(0.002, 0.01, len(t.quant.scale)).astype(np.float32)
            quant = QuantParams(scale, t.quant.zero_point, t.quant.axis)
            tensors[name] = Tensor(t.name, t.shape, t.dtype, quant,
                                   rng.integers(-127, 128, t.shape).astype(np.int8))
        elif t.dtype == "int32":
            tensors[name] = Tensor(t.name, t.shape, t.dtype, t.quant,
                                   rng.integers(-2000, 2001, t.shape).astype(np.int32))
    return Graph(tensors, graph.ops, graph.inputs, graph.outputs, graph.name)


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
