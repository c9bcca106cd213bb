"""Patch-based inference (MCUNetV2): run the memory-heavy first stage one spatial patch at a time.

The first layers of a CNN hold the largest activations. Computing the stage's output one patch
at a time, each from just the window of the input it depends on (its receptive field), means
only one patch's intermediates are ever live, while the stage output is assembled in place.
The price is recomputation where neighbouring windows overlap: the MAC overhead.

This is a graph -> graph pass. For a stage (a prefix of the op order whose only tensor read
later is its output S) and a grid over S, every patch becomes:
  SLICE of the input window -> the stage's ops on patch-sized tensors, with explicit geometry
  (attrs["window"]: padding only where the window meets the real image border) -> SLICE crops
  where one tensor feeds consumers that need different windows (residual adds) ->
  UPDATE_SLICE of the patch into S, in place.
The result is an ordinary graph: the reference executor, the planner and the code generator
run it unchanged, and the reference proves it equals whole-tensor execution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import TinyEngineError
from ..ir import Graph, Op, Tensor
from ..ops import get_op

Region = tuple[int, int, int, int]  # rows [y0, y1) x columns [x0, x1), half-open


class EmptyPatchError(TinyEngineError):
    """A patch of the grid reads no pixel of some stage tensor (it lies wholly in a PAD's
    padding): that grid cannot run."""


def _windowed(op: Op) -> bool:
    """A windowed op (its `patch` hook): an output region reads an input window."""
    return get_op(op.kind).patch == "windowed"


@dataclass
class PatchSchedule:
    stage_ops: list[str]  # names of the original ops run per patch, in order
    output: str  # the stage output, assembled patch by patch
    grid: tuple[int, int]  # patches along rows, columns
    patches: list[Region]  # each patch's region of `output`
    macs_whole: int = 0
    macs_patched: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mac_overhead(self) -> float:
        return self.macs_patched / self.macs_whole - 1.0 if self.macs_whole else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"stage_ops": self.stage_ops, "split_after": self.stage_ops[-1],
                "output": self.output, "grid": list(self.grid),
                "patches": [list(r) for r in self.patches], "macs_whole": self.macs_whole,
                "macs_patched": self.macs_patched, "mac_overhead": round(self.mac_overhead, 6),
                **self.extra}


def total_macs(graph: Graph) -> int:
    return sum(get_op(op.kind).macs(graph, op) for op in graph.ops)


def _act_inputs(graph: Graph, op: Op) -> list[int]:
    """Indices of the op's activation (non-constant) inputs."""
    return [k for k, n in enumerate(op.inputs) if n and graph.tensor(n).in_arena]


def _patchable(graph: Graph, op: Op) -> bool:
    out = graph.tensor(op.outputs[0])
    if len(out.shape) != 4 or len(op.outputs) != 1:
        return False
    mode = get_op(op.kind).patch
    if mode == "windowed":
        return get_op(op.kind).window(graph, op) is not None
    if mode == "elementwise":
        # Activation inputs have the output's shape (or, for a relayout such as TRANSPOSE, its
        # rows and columns on other axes); a constant may only broadcast along H and W (a
        # per-channel or scalar operand), so every patch reads the same constant.
        ins = [graph.tensor(n) for n in op.inputs if n]
        acts = [t for t in ins if not t.is_const]
        if acts and acts[0].shape != out.shape:
            return len(acts) == 1 and get_op(op.kind).spatial_axes(graph, op) is not None
        return all(t.shape == out.shape for t in acts) and \
            all(len(t.shape) <= 4 and ((1,) * 4 + t.shape)[-3:-1] == (1, 1)
                for t in ins if t.is_const)
    return False


def stage_blocker(graph: Graph, n_stage: int) -> str:
    """Why ops[:n_stage] is no patch stage, naming the op that stops it."""
    if len(graph.inputs) != 1 or len(graph.tensor(graph.inputs[0]).shape) != 4:
        return "patches need one 4-D graph input"
    longest = max(stage_candidates(graph) + [0])
    x_name = graph.inputs[0]
    produced: set[str] = set()
    for op in graph.ops[:n_stage]:
        where = f"op {op.name} ({op.kind})"
        if not _patchable(graph, op):
            return (f"{where} cannot run patch by patch (its configuration)"
                    if get_op(op.kind).patch != "none" else
                    f"{where} does not run patch by patch (only windowed and element-wise "
                    "ops do)")
        acts = [op.inputs[k] for k in _act_inputs(graph, op)]
        if any(t not in produced and t != x_name for t in acts):
            return f"{where} reads a tensor the stage does not produce"
        if get_op(op.kind).patch == "elementwise" and len(acts) == 1 and acts[0] != x_name \
                and graph.tensor(acts[0]).shape != graph.tensor(op.outputs[0]).shape:
            return f"{where} changes the layout inside the stage (only of the graph input)"
        produced.add(op.outputs[0])
    return (f"more than one tensor of the first {n_stage} ops is read after them (a skip "
            f"connection or a second output); the longest stage here is {longest} op(s)")


def stage_candidates(graph: Graph) -> list[int]:
    """Prefix lengths n for which ops[:n] can run patch by patch: patchable ops reading only the
    graph's one 4-D input and each other, with exactly one tensor (4-D) read after the stage."""
    if len(graph.inputs) != 1 or len(graph.tensor(graph.inputs[0]).shape) != 4:
        return []
    readers: dict[str, set[int]] = {}
    for i, op in enumerate(graph.ops):
        for name in op.inputs:
            readers.setdefault(name, set()).add(i)
    out: list[int] = []
    produced: set[str] = set()
    x_name = graph.inputs[0]
    x_axes: set[tuple[int, int]] = set()
    for n, op in enumerate(graph.ops, start=1):
        if not _patchable(graph, op):
            break
        acts = [op.inputs[k] for k in _act_inputs(graph, op)]
        relayout = get_op(op.kind).patch == "elementwise" and len(acts) == 1 and \
            graph.tensor(acts[0]).shape != graph.tensor(op.outputs[0]).shape
        if relayout and acts[0] != x_name:
            break  # only the graph input may arrive in another layout
        if x_name in op.inputs:
            x_axes.add(_reads_as(graph, op, x_name))
            if len(x_axes) > 1:
                break  # the input read in two layouts
        if any(op.inputs[k] not in produced and op.inputs[k] not in graph.inputs
               for k in _act_inputs(graph, op)):
            break
        produced.add(op.outputs[0])
        escaping = [t for t in produced
                    if t in graph.outputs or any(i >= n for i in readers.get(t, ()))]
        if len(escaping) == 1 and escaping[0] not in graph.outputs:
            out.append(n)
    return out


def _input_region(graph: Graph, op: Op, r: Region) -> Region:
    """The window of the op's activation input that output region r reads."""
    if not _windowed(op):
        return r
    x = graph.tensor(op.inputs[0])
    geometry = get_op(op.kind).window(graph, op)
    assert geometry is not None  # _patchable admitted the op
    fh, fw, sh, sw, dh, dw, ph, pw = geometry
    y0, y1, x0, x1 = r
    return (max(0, y0 * sh - ph), min(x.shape[1], (y1 - 1) * sh - ph + (fh - 1) * dh + 1),
            max(0, x0 * sw - pw), min(x.shape[2], (x1 - 1) * sw - pw + (fw - 1) * dw + 1))


def _union(a: Region | None, b: Region) -> Region:
    if a is None:
        return b
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _split(size: int, parts: int) -> list[tuple[int, int]]:
    cuts = [i * size // parts for i in range(parts + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(parts)]


def _window_tensor(t: Tensor, name: str, r: Region, axes: tuple[int, int] = (1, 2)) -> Tensor:
    """The window r of t, whose rows and columns are axes `axes` (NHWC: 1, 2)."""
    shape = list(t.shape)
    shape[axes[0]], shape[axes[1]] = r[1] - r[0], r[3] - r[2]
    return Tensor(name, tuple(shape), t.dtype, t.quant)


def _window_begin(r: Region, axes: tuple[int, int] = (1, 2)) -> tuple[int, ...]:
    begin = [0, 0, 0, 0]
    begin[axes[0]], begin[axes[1]] = r[0], r[2]
    return tuple(begin)


def _reads_as(graph: Graph, op: Op, x_name: str) -> tuple[int, int]:
    """The axes of x that `op` reads as rows and columns: (1, 2), or a relayout's own."""
    if get_op(op.kind).patch == "elementwise" and \
            graph.tensor(x_name).shape != graph.tensor(op.outputs[0]).shape:
        axes = get_op(op.kind).spatial_axes(graph, op)
        assert axes is not None
        return axes
    return 1, 2


def _input_axes(graph: Graph, stage: list[Op], x_name: str) -> tuple[int, int]:
    """Where the graph input holds its rows and columns: NHWC's (1, 2), unless the stage reads
    it through a relayout (TRANSPOSE of an NCHW input)."""
    for op in stage:
        if x_name in op.inputs:
            return _reads_as(graph, op, x_name)
    return 1, 2


def patch_graph(graph: Graph, n_stage: int, grid: tuple[int, int], checked: bool = False,
                macs_whole: int | None = None) -> tuple[Graph, PatchSchedule]:
    """Rewrite `graph` so that its first `n_stage` ops run patch by patch over a grid of their
    output. Raises TinyEngineError if that stage cannot be patched or the grid does not fit
    (`checked`: the caller took n_stage from stage_candidates)."""
    if not checked and n_stage not in stage_candidates(graph):
        raise TinyEngineError(f"the first {n_stage} ops cannot run as a patch stage "
                              f"({stage_blocker(graph, n_stage)}); possible splits: "
                              f"{stage_candidates(graph)}")
    stage = graph.ops[:n_stage]
    produced = {op.outputs[0] for op in stage}
    later = {n for op in graph.ops[n_stage:] for n in op.inputs} | set(graph.outputs)
    s_name = next(t for t in produced if t in later)
    s = graph.tensor(s_name)
    gh, gw = grid
    if not (1 <= gh <= s.shape[1] and 1 <= gw <= s.shape[2]) or gh * gw < 2:
        raise TinyEngineError(f"a {gh}x{gw} grid does not fit the {s.shape[1]}x{s.shape[2]} "
                              f"stage output {s_name}")
    x_name = graph.inputs[0]
    x_axes = _input_axes(graph, stage, x_name)
    tensors = {n: t for n, t in graph.tensors.items() if n not in produced or n == s_name}
    ops: list[Op] = []
    patches = [(y0, y1, x0, x1) for y0, y1 in _split(s.shape[1], gh)
               for x0, x1 in _split(s.shape[2], gw)]

    def add_tensor(t: Tensor) -> str:
        tensors[t.name] = t
        return t.name

    canvas = ""
    for k, region in enumerate(patches):
        # Backward: the window of every stage tensor this patch needs, and per use.
        need: dict[str, Region] = {s_name: region}
        use: dict[tuple[str, int], Region] = {}
        for op in reversed(stage):
            if op.outputs[0] not in need:
                continue
            r_in = _input_region(graph, op, need[op.outputs[0]])
            if r_in[1] <= r_in[0] or r_in[3] <= r_in[2]:
                raise EmptyPatchError(f"patch {k} of a {gh}x{gw} grid lies wholly in the padding "
                                      f"of op {op.name} ({op.kind}); use a coarser grid")
            for i in _act_inputs(graph, op):
                use[(op.name, i)] = r_in
                need[op.inputs[i]] = _union(need.get(op.inputs[i]), r_in)
        # Forward: the input window, then the stage's ops on patch tensors.
        local = {x_name: add_tensor(_window_tensor(graph.tensor(x_name), f"{x_name}@p{k}",
                                                   need[x_name], x_axes))}
        ops.append(Op(f"slice_input@p{k}", "SLICE", [x_name], [local[x_name]],
                      {"begin": _window_begin(need[x_name], x_axes)}))
        for op in stage:
            out = op.outputs[0]
            if out not in need:
                continue
            inputs = list(op.inputs)
            for i in _act_inputs(graph, op):
                t, r = op.inputs[i], use[(op.name, i)]
                inputs[i] = local[t]
                if r != need[t]:  # this consumer reads a smaller window: crop it
                    axes = x_axes if t == x_name else (1, 2)
                    crop = add_tensor(_window_tensor(graph.tensor(t), f"{t}@p{k}>{op.name}", r,
                                                     axes))
                    rel = (r[0] - need[t][0], 0, r[2] - need[t][2], 0)
                    ops.append(Op(f"crop_{t}@p{k}>{op.name}", "SLICE", [local[t]], [crop],
                                  {"begin": _window_begin(rel, axes)}))
                    inputs[i] = crop
            r = need[out]
            local[out] = add_tensor(_window_tensor(graph.tensor(out), f"{out}@p{k}", r))
            attrs = dict(op.attrs, origin=op.name)
            if _windowed(op):
                opdef = get_op(op.kind)
                geometry = opdef.window(graph, op)
                assert geometry is not None
                _, _, sh, sw, _, _, ph, pw = geometry
                window = (r[1] - r[0], r[3] - r[2], max(0, ph - r[0] * sh),
                          max(0, pw - r[2] * sw))
                attrs.update(opdef.patch_attrs(op, window, tensors[inputs[0]].shape))
            ops.append(Op(f"{op.name}@p{k}", op.kind, inputs, [local[out]], attrs))
        last = k == len(patches) - 1
        nxt = s_name if last else add_tensor(Tensor(f"{s_name}@canvas{k}", s.shape, s.dtype,
                                                    s.quant))
        ops.append(Op(f"assemble@p{k}", "UPDATE_SLICE", [canvas, local[s_name]], [nxt],
                      {"begin": (0, region[0], region[2], 0), "shape": s.shape}))
        canvas = nxt
    ops.extend(graph.ops[n_stage:])
    patched = Graph(tensors, ops, list(graph.inputs), list(graph.outputs), graph.name)
    # Only the stage's MACs change: count the rest once.
    stage_macs = sum(get_op(op.kind).macs(graph, op) for op in stage)
    patched_macs = sum(get_op(op.kind).macs(patched, op) for op in ops[:len(ops) - len(graph.ops)
                                                                      + n_stage])
    whole = total_macs(graph) if macs_whole is None else macs_whole
    schedule = PatchSchedule([op.name for op in stage], s_name, grid, patches,
                             whole, whole - stage_macs + patched_macs)
    return patched, schedule


def parse_patch_spec(spec: str) -> tuple[tuple[int, int], int] | None:
    """'off' -> None; 'GxG@N' (grid rows x columns, split after N ops) -> ((G, G), N)."""
    try:
        grid, n = spec.lower().split("@")
        gh, gw = grid.split("x")
        return (int(gh), int(gw)), int(n)
    except ValueError:
        raise TinyEngineError(f"--patch {spec!r}: expected off, auto or RxC@N (e.g. 3x3@6: a "
                              "3x3 grid over the output of the first 6 ops)") from None


def grids_for(height: int, width: int, max_side: int = 8) -> list[tuple[int, int]]:
    """Candidate grids, fewest patches first: near-square ones (|rows - columns| <= 1) that fit
    the stage output."""
    grids = [(gh, gw) for gh in range(1, max_side + 1) for gw in range(1, max_side + 1)
             if abs(gh - gw) <= 1 and gh * gw >= 2 and gh <= height and gw <= width]
    return sorted(grids, key=lambda g: (g[0] * g[1], g))


def search_patches(graph: Graph, lower_bound_of: Callable[[Graph], int],
                   arena_of: Callable[[Graph], int], max_mac_overhead: float = 0.2
                   ) -> tuple[Graph, PatchSchedule] | None:
    """The split point and grid with the smallest arena within the MAC budget, or None when no
    patching beats whole-tensor execution.

    Every candidate within budget gets the cheap live-set lower bound; the real planner
    (`arena_of`) then runs on candidates in order of that bound and stops once the best arena
    found is no larger than the next bound: no unplanned candidate can beat it. For one split
    the overhead grows with the number of patches, so the grid loop stops at the first grid
    over budget. Ties go to fewer MACs, then fewer patches, then the earlier split.
    """
    candidates: list[tuple[tuple[int, int, int, int], Graph, PatchSchedule]] = []
    macs_whole = total_macs(graph)
    for n in stage_candidates(graph):
        s = graph.tensor(graph.ops[n - 1].outputs[0])
        for grid in grids_for(s.shape[1], s.shape[2]):
            try:
                patched, sched = patch_graph(graph, n, grid, checked=True,
                                             macs_whole=macs_whole)
            except EmptyPatchError:
                continue
            if sched.mac_overhead > max_mac_overhead:
                break
            key = (lower_bound_of(patched), sched.macs_patched, grid[0] * grid[1], n)
            candidates.append((key, patched, sched))
    candidates.sort(key=lambda c: c[0])
    best_arena = arena_of(graph)
    best: tuple[Graph, PatchSchedule] | None = None
    for (bound, *_), patched, sched in candidates:
        if bound >= best_arena:
            break
        arena = arena_of(patched)
        if arena < best_arena:
            best_arena, best = arena, (patched, sched)
    return best
