"""Reports on a memory plan that people look at: a per-op table of live tensors for the terminal,
a PNG timeline of the arena, and the per-step figures report.json carries.

Everything here reads only a Graph and its MemoryPlan. Steps are positions in `plan.order` (the
execution order the plan was made for, which need not be the graph's list order), and every
arena buffer is a `plan.buffers` entry placed at `plan.offsets[b.name]`; a buffer that holds
several aliased tensors (an op running in place) is one entry, so sizes and offsets need no
special case, and `buffer_segments` recovers which tensor it holds when from the offsets and
lifetimes alone, for the table's "a -> b" and the timeline's boxes. Live bytes at a step
count aligned sizes exactly as `live_lower_bound` does (a buffer that an op widens in place
counts its size at that step, BufferInfo.size_at), so the table's largest figure is that
bound and the gap to `plan.arena_bytes` is the fragmentation the placement left.

Tensor names from converters are long ("model/activation/Relu;model/batch_normalization/...");
`short_names` keeps the last two path components of the first ';'-separated name, which is the
layer and its op in TensorFlow's naming, and makes the results unique within a plan.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TinyEngineError
from ..ir import Graph
from .plan import MemoryPlan, _aligned, live_lower_bound, scratch_name

SCRATCH_SUFFIX = scratch_name("")
NAME_LIMIT = 28  # characters of a tensor name in the table and in the timeline's labels


def human_bytes(n: int) -> str:
    """'512 B', '4.5 KB', '54 KB', '1.2 MB': one decimal at most, no trailing '.0'."""
    if n < 1024:
        return f"{n} B"
    value, unit = (n / 1024, "KB") if n < 1024 * 1024 else (n / (1024 * 1024), "MB")
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "~"


def _short(name: str, components: int, limit: int) -> str:
    if name.endswith(SCRATCH_SUFFIX):
        return _clip(name[:-len(SCRATCH_SUFFIX)], limit - len(SCRATCH_SUFFIX)) + SCRATCH_SUFFIX
    parts = [p for p in name.split(";")[0].split("/") if p] or [name]
    return _clip("/".join(parts[-components:]), limit)


def _layer(name: str) -> str:
    """'MobilenetV1/Conv2d_3_depthwise/Relu6' -> 'Conv2d_3_depthwise'."""
    parts = [p for p in name.split(";")[0].split("/") if p] or [name]
    return _clip(parts[-2] if len(parts) > 1 else parts[0], NAME_LIMIT)


def _fold(label: str) -> str:
    """Break a long label onto two lines after the '_' nearest its middle."""
    cuts = [i + 1 for i, c in enumerate(label) if c == "_" and 0 < i < len(label) - 1]
    if len(label) < 10 or not cuts:
        return label
    cut = min(cuts, key=lambda i: (abs(len(label) - 2 * i), i))
    return label[:cut] + "\n" + label[cut:]


def short_names(names: list[str], limit: int = NAME_LIMIT) -> dict[str, str]:
    """A readable, unique abbreviation of each name (at most `limit` characters, plus a '#k'
    suffix where two names would otherwise read the same)."""
    out: dict[str, str] = {}
    pending = list(dict.fromkeys(names))
    for components in (2, 3, 4):
        shorts = {n: _short(n, components, limit) for n in pending}
        counts: dict[str, int] = {}
        for s in shorts.values():
            counts[s] = counts.get(s, 0) + 1
        taken = set(out.values())
        for n in pending:
            if counts[shorts[n]] == 1 and shorts[n] not in taken:
                out[n] = shorts[n]
        pending = [n for n in pending if n not in out]
    seen: dict[str, int] = {}
    for n in pending:  # still ambiguous: number them in plan order
        s = _short(n, 2, limit)
        seen[s] = seen.get(s, 0) + 1
        out[n] = f"{s}#{seen[s]}"
    return out


@dataclass
class StepUsage:
    """What the arena holds while one op runs."""

    step: int
    op: str
    kind: str
    live: list[str]  # buffer names, lowest offset first
    live_bytes: int  # aligned sizes summed, as live_lower_bound counts them
    high_water: int  # top of the highest live buffer


def step_usage(graph: Graph, plan: MemoryPlan) -> list[StepUsage]:
    kinds = {op.name: op.kind for op in graph.ops}
    rows = []
    for step, op in enumerate(plan.order):
        live = sorted((b for b in plan.buffers if b.first <= step <= b.last),
                      key=lambda b: (plan.offsets[b.name], b.name))
        rows.append(StepUsage(
            step, op, kinds.get(op, "?"), [b.name for b in live],
            sum(_aligned(b.size_at(step)) for b in live),
            max((plan.offsets[b.name] + _aligned(b.size_at(step)) for b in live), default=0)))
    return rows


@dataclass(frozen=True)
class Segment:
    """One tensor's stay in a buffer: a buffer that ops run in place on holds several in turn."""

    tensor: str  # the tensor's name; the buffer's own name for scratch or unknown contents
    first: int
    last: int
    size: int
    offset: int = 0  # bytes from the buffer's start (a concatenation input in its slice)


def tensor_lifetimes(graph: Graph, plan: MemoryPlan) -> dict[str, tuple[int, int]]:
    """First and last step of every activation tensor, counted as buffer_infos counts them."""
    step = {name: i for i, name in enumerate(plan.order)}
    span: dict[str, tuple[int, int]] = {n: (0, 0) for n in graph.inputs}
    for op in sorted((op for op in graph.ops if op.name in step), key=lambda op: step[op.name]):
        i = step[op.name]
        for n in op.outputs:
            f, la = span.get(n, (i, i))
            span[n] = (f, max(la, i))
        for n in op.inputs:
            if n and n in graph.tensors and graph.tensors[n].in_arena and n in span:
                span[n] = (span[n][0], max(span[n][1], i))
    for n in graph.outputs:
        if n in span:
            span[n] = (span[n][0], len(plan.order))
    return span


def buffer_segments(graph: Graph, plan: MemoryPlan) -> dict[str, list[Segment]]:
    """The tensors each buffer holds, in order of birth.

    Read from the plan alone: a tensor placed inside the bytes a buffer holds at every step of
    the tensor's life (BufferInfo.size_at: a buffer that an op widens in place holds fewer
    before) must be in that buffer, since any other buffer there would overlap it in both time
    and space. So in-place groups and views at an offset (concatenation inputs in their slices)
    need no knowledge of how they were formed.
    """
    spans = tensor_lifetimes(graph, plan)
    placed = sorted((plan.offsets[t], t) for t in spans if t in plan.offsets)
    starts = [o for o, _ in placed]
    out: dict[str, list[Segment]] = {}
    for b in plan.buffers:
        base = plan.offsets[b.name]
        lo, hi = bisect_left(starts, base), bisect_left(starts, base + max(b.size, 1))
        members = [Segment(t, *spans[t], graph.tensors[t].nbytes, off - base)
                   for off, t in placed[lo:hi]
                   if b.first <= spans[t][0] and spans[t][1] <= b.last
                   and all(off - base + graph.tensors[t].nbytes <= max(b.size_at(s), 1)
                           for s in range(spans[t][0], spans[t][1] + 1))]
        members.sort(key=lambda m: (m.first, m.offset, m.last, m.tensor))
        out[b.name] = members or [Segment(b.name, b.first, b.last, b.size)]
    return out


@dataclass(frozen=True)
class PeakStep:
    """The busiest step of a plan: the op running, what the arena holds then, and how the
    arena compares with the live-set lower bound of this op order."""

    step: int
    op: str
    kind: str
    # Per live buffer, lowest offset first: the tensors it holds at this step (several where an
    # op runs in place: its input and its output) and the bytes it takes then.
    live: list[tuple[list[str], int]]
    live_bytes: int
    bound: int  # live_lower_bound: the largest live_bytes of any step
    arena: int

    def line(self) -> str:
        held = ", ".join(f"{' -> '.join(ts)} {b:,}" for ts, b in self.live)
        return (f"peak step {self.step} {self.op} ({self.kind}): {self.live_bytes:,} B live "
                f"[{held}]; live lower bound of this order {self.bound:,} B, arena "
                f"{self.arena:,} B")

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "op": self.op, "kind": self.kind,
                "live": [{"tensors": ts, "bytes": b} for ts, b in self.live],
                "live_bytes": self.live_bytes, "live_lower_bound": self.bound}


def peak_summary(graph: Graph, plan: MemoryPlan) -> PeakStep:
    """The step with the most live bytes (the first, on a tie) and the tensors live there."""
    rows = step_usage(graph, plan)
    if not rows:
        return PeakStep(0, "", "", [], 0, live_lower_bound(plan.buffers), plan.arena_bytes)
    row = max(rows, key=lambda r: (r.live_bytes, -r.step))
    segments = buffer_segments(graph, plan)
    buffers = {b.name: b for b in plan.buffers}
    live = []
    for name in row.live:
        held = [m.tensor for m in segments[name] if m.first <= row.step <= m.last]
        live.append((held or [name], _aligned(buffers[name].size_at(row.step))))
    return PeakStep(row.step, row.op, row.kind, live, row.live_bytes,
                    live_lower_bound(plan.buffers), plan.arena_bytes)


def plan_json(graph: Graph, plan: MemoryPlan) -> dict[str, Any]:
    """Per-step figures for report.json, beside MemoryPlan.to_json()."""
    rows = step_usage(graph, plan)
    live = [r.live_bytes for r in rows]
    peak = live.index(max(live)) if live else None
    return {"live_bytes": live,
            "high_water_bytes": [r.high_water for r in rows],
            "live_lower_bound": live_lower_bound(plan.buffers),
            "peak_step": peak,
            "peak_op": rows[peak].op if peak is not None else None,
            "peak_buffers": rows[peak].live if peak is not None else []}


def live_table(graph: Graph, plan: MemoryPlan) -> str:
    """A per-op table of the tensors live in the arena, for a terminal."""
    rows = step_usage(graph, plan)
    bound = live_lower_bound(plan.buffers)
    peak_live = max((r.live_bytes for r in rows), default=0)
    segments = buffer_segments(graph, plan)
    names = short_names([m.tensor for ms in segments.values() for m in ms])
    sizes = {b.name: b for b in plan.buffers}

    def held(buffer: str, step: int) -> str:
        """"a -> b" where an op runs in place at `step`; "[a | b]" for tensors side by side in
        one buffer (a concatenation's inputs in their slices)."""
        if buffer == scratch_name(plan.order[step]):
            return "scratch"  # the row's own op's
        lanes: dict[int, list[str]] = {}
        for m in segments[buffer]:
            if m.first <= step <= m.last:
                lanes.setdefault(m.offset, []).append(names[m.tensor])
        if not lanes:
            return _short(buffer, 2, NAME_LIMIT)
        parts = [" -> ".join(ts) for _, ts in sorted(lanes.items())]
        return parts[0] if len(parts) == 1 else "[" + " | ".join(parts) + "]"

    header = ["step", "op", "kind", "live bytes", "high water", "", "live tensors (by offset)"]
    table = []
    for r in rows:
        mark = ("*" if r.live_bytes == peak_live else "") + \
               ("^" if r.high_water == plan.arena_bytes else "")
        tensors = ", ".join(f"{held(n, r.step)} {human_bytes(sizes[n].size_at(r.step))}"
                            for n in r.live)
        table.append([str(r.step), r.op, r.kind, f"{r.live_bytes:,}", f"{r.high_water:,}", mark,
                      tensors])
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    right = {0, 3, 4}  # numbers align right

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [f"{graph.name}: arena {plan.arena_bytes:,} B ({human_bytes(plan.arena_bytes)}), "
             f"live lower bound {bound:,} B ({human_bytes(bound)}), "
             f"algorithm {plan.algorithm}, {len(rows)} ops",
             line(header), line(["-" * w for w in widths[:-1]] + ["-" * widths[-1]])]
    lines += [line(row) for row in table]
    legend = "* peak live bytes (the live lower bound)   ^ high water reaches the arena size"
    if any(len(ms) > 1 for ms in segments.values()):
        legend += "   a -> b: b overwrites a in place"
    if any(m.offset for ms in segments.values() for m in ms):
        legend += "   [a | b]: side by side in one buffer"
    lines.append(legend)
    return "\n".join(lines) + "\n"


# Timeline ------------------------------------------------------------------------------------

FIGSIZE = (12.0, 6.0)  # inches
DPI = 100
MAX_TICK_LABELS = 48  # op names on the x axis before they are thinned out
# tab20, dark shades first: buffers next to each other in time get clearly different hues.
_PALETTE_ORDER = list(range(0, 20, 2)) + list(range(1, 20, 2))


def _y_step(top: int) -> tuple[float, float, str]:
    """Tick spacing in bytes, the unit divisor and its name, for about 5-10 ticks up to `top`."""
    unit, label = (1024.0, "KB") if top >= 2048 else (1.0, "bytes")
    step = 1.0 / 64 if unit > 1 else 1.0
    while top / (step * unit) > 10:
        step *= 2
    return step * unit, unit, label


def _may_fit(text: str, points: float, room_w: float, room_h: float, rotation: int) -> bool:
    """False where `text` cannot fit even if every glyph were as narrow as DejaVu's narrowest
    common ones (0.3 em) and lines were 1 em high; True means 'measure it'."""
    em = points * DPI / 72
    lines = text.split("\n")
    w, h = 0.3 * em * max(len(line) for line in lines), em * len(lines)
    return (w <= room_w and h <= room_h) if rotation == 0 else (h <= room_w and w <= room_h)


def plot_timeline(graph: Graph, plan: MemoryPlan, path: str | Path, title: str = "") -> Path:
    """Write a PNG of the arena over time (x = op step, y = offset): one box per tensor's stay in
    its buffer, scratch hatched, the arena size dashed, the peak ops marked in red."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    rows = step_usage(graph, plan)
    n = len(rows)
    end = max([n] + [b.last + 1 for b in plan.buffers])  # graph outputs live one step past
    top = max(plan.arena_bytes, 1)
    bound = live_lower_bound(plan.buffers)
    segments = buffer_segments(graph, plan)
    names = short_names([m.tensor for ms in segments.values() for m in ms])
    cmap = matplotlib.colormaps["tab20"]

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # One box per tensor's stay in its buffer; the tensors of one in-place buffer share its
    # colour and follow each other at its offset, each from the op that writes it.
    boxes: list[tuple[Segment, int, int, int, Any]] = []  # segment, x0, x1, offset, colour
    for i, b in enumerate(plan.buffers):
        color = cmap(_PALETTE_ORDER[i % len(_PALETTE_ORDER)])
        scratch = b.name.endswith(SCRATCH_SUFFIX)
        # Members at one offset follow each other (in place); members at other offsets are
        # views into the buffer (a concatenation's inputs in their slices).
        lanes: dict[int, list[Segment]] = {}
        for m in segments[b.name]:
            lanes.setdefault(m.offset, []).append(m)
        for lane, members in sorted(lanes.items()):
            first, stop = (b.first, b.last + 1) if lane == 0 else \
                (members[0].first, members[-1].last + 1)
            starts = [first] + [m.first for m in members[1:]] + [stop]
            for m, x0, x1 in zip(members, starts, starts[1:]):
                if x1 <= x0:
                    continue
                y = plan.offsets[b.name] + lane
                ax.add_patch(Rectangle((x0, y), x1 - x0, m.size,
                                       facecolor=color, edgecolor="#333333", linewidth=0.6,
                                       hatch="///" if scratch else None,
                                       alpha=0.75 if scratch else 1.0))
                boxes.append((m, x0, x1, y, color))
    peak_live = max((r.live_bytes for r in rows), default=-1)
    peak_steps = {r.step for r in rows if r.live_bytes == peak_live}
    for step in sorted(peak_steps):  # a faint band behind the boxes marks the peak ops
        ax.axvspan(step, step + 1, color="#b00000", alpha=0.08, linewidth=0, zorder=0)
    ax.axhline(plan.arena_bytes, color="black", linestyle="--", linewidth=1.0, zorder=3)
    if bound < plan.arena_bytes:
        ax.axhline(bound, color="#b00000", linestyle=":", linewidth=1.2, zorder=3)

    ax.set_xlim(0, max(end, 1))
    ax.set_ylim(0, top * 1.08)
    y_step, unit, unit_name = _y_step(top)
    ax.yaxis.set_major_locator(MultipleLocator(y_step))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / unit:g}"))
    ax.set_ylabel(f"arena offset ({unit_name})")
    ax.set_xlabel("op, in execution order")
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)

    labels = [_clip(r.op, 24) for r in rows] + (["(outputs)"] if end > n else [])
    every = -(-len(labels) // MAX_TICK_LABELS) if labels else 1
    ax.set_xticks([i + 0.5 for i in range(len(labels))], minor=True)
    ax.set_xticks([i + 0.5 for i in range(0, len(labels), every)],
                  [labels[i] for i in range(0, len(labels), every)])
    ax.tick_params(axis="x", which="minor", length=2)
    ax.tick_params(axis="x", which="major", labelsize=8 if len(labels) <= 24 else 7)
    longest = max((len(label) for label in labels), default=0)
    flat = longest * 5.5 * len(labels) < 0.8 * FIGSIZE[0] * DPI  # about 5.5 px a character
    for tick in ax.get_xticklabels():
        tick.set_rotation(0 if flat else 35 if len(labels) <= 12 else 60)
        tick.set_horizontalalignment("center" if flat else "right")
        tick.set_rotation_mode("anchor")
    for i, tick in zip(range(0, len(labels), every), ax.get_xticklabels()):
        if i in peak_steps:
            tick.set_color("#b00000")
            tick.set_fontweight("bold")

    ax.set_title(title or f"{graph.name}: arena {human_bytes(plan.arena_bytes)} "
                 f"({plan.algorithm}), {n} ops", loc="left", fontsize=11)
    handles = [Line2D([], [], color="black", linestyle="--",
                      label=f"arena {human_bytes(plan.arena_bytes)}"),
               Patch(facecolor="#b00000", alpha=0.15,
                     label=f"peak ops ({human_bytes(bound)} live)")]
    if bound < plan.arena_bytes:
        handles.append(Line2D([], [], color="#b00000", linestyle=":", linewidth=1.2,
                              label=f"live lower bound {human_bytes(bound)}"))
    if any(b.name.endswith(SCRATCH_SUFFIX) for b in plan.buffers):
        handles.append(Patch(facecolor="white", edgecolor="#333333", hatch="///",
                             label="scratch"))
    if any(len(ms) > 1 for ms in segments.values()):
        handles.append(Patch(facecolor="#bbbbbb", edgecolor="#333333",
                             label="one colour in a row: one buffer, overwritten in place"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False,
               fontsize=8)

    # Labels go in only once the layout is fixed, so their fit can be measured in pixels.
    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for m, first, end_, offset, color in boxes:
        r, g, bl = to_rgb(color)
        ink = "white" if 0.299 * r + 0.587 * g + 0.114 * bl < 0.5 else "black"
        x0, y0 = ax.transData.transform((first, offset))
        x1, y1 = ax.transData.transform((end_, offset + m.size))
        room_w, room_h = x1 - x0 - 4, y1 - y0 - 3
        if min(room_w, room_h) < 8 or max(room_w, room_h) < 24:  # no label can fit
            continue
        name, size = names[m.tensor], human_bytes(m.size)
        if m.tensor == scratch_name(plan.order[first] if first < n else ""):
            name = "scratch"  # its op is the one below it
        layer = _layer(m.tensor) if "/" in name else name  # the layer, without its op's name
        folded = _fold(layer)
        candidates = [(f"{name}\n{size}", 8.0), (name, 8.0), (f"{layer}\n{size}", 8.0),
                      (layer, 8.0), (f"{folded}\n{size}", 8.0), (folded, 8.0), (name, 6.5),
                      (layer, 6.5), (folded, 6.5)]
        if name.endswith("~"):  # clipped: the layer alone reads better
            candidates = [c for c in candidates if c[0].split("\n")[0] != name]
        cx, cy = (first + end_) / 2, offset + m.size / 2
        for text, points in candidates:
            placed = None
            for rotation in (0, 90):
                if not _may_fit(text, points, room_w, room_h, rotation):
                    continue  # measuring is slow: skip what cannot fit even in narrow glyphs
                t = ax.text(cx, cy, text, ha="center", va="center", fontsize=points, color=ink,
                            rotation=rotation, clip_on=True, linespacing=1.1, zorder=2)
                box = t.get_window_extent(renderer)
                if box.width <= room_w and box.height <= room_h:
                    placed = t
                    break
                t.remove()
            if placed is not None:
                break

    out = Path(path)
    try:
        fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    except OSError as e:
        raise TinyEngineError(f"cannot write the memory timeline to {out}: {e.strerror}") \
            from None
    return out
