"""What a network costs on the MCU, as the engine would really build it: peak SRAM (the arena
of the real planner, patches and in-place ops included), flash and MACs.

This is the one resource model: tinynas asks it, the code generator's report.json says the same,
and tests/test_cost.py holds the two to each other. A network description without weights
(constants marked `const=True` with no data, quantisation parameters optional) is priced with
placeholder values: none of the three figures depends on what the weights are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import DTYPES, Graph, Op, QuantParams, Tensor, verify
from .memory.fuse import fuse_blocks
from .memory.patch import PatchSchedule, total_macs
from .memory.schedule import DEFAULT_MAX_MAC_OVERHEAD, Schedule, schedule
from .ops import get_op


@dataclass
class Cost:
    peak_sram: int  # arena bytes: activations, inputs, outputs and scratch
    flash_bytes: int  # weights, biases and requantisation tables as laid out
    macs: int  # as executed, patch recomputation included
    patches: PatchSchedule | None = None
    # Persistent state (variable tensors of recurrent ops) beside the arena: SRAM too, kept
    # between invokes; the whole RAM of the model is peak_sram + persistent_bytes.
    persistent_bytes: int = 0



def _weight_axis(graph: Graph, op: Op) -> int | None:
    """Output-channel axis of the op's weights (input 1), quantised per channel as TFLite
    converters do; FULLY_CONNECTED weights are per tensor, TFLite's default."""
    rule = get_op(op.kind).quant_rule(graph, op)
    return None if rule.weights_per_tensor else rule.weights.get(1)


def _placeholder(t: Tensor, axis: int | None) -> Tensor:
    """A constant with zero values, and scales where the description gives none: distinct per
    channel, as a trained network's are, since channels that share one (multiplier, shift)
    store one pair (ops/common.compact_requant) and equal scales would price too little flash."""
    quant = t.quant
    if quant is None:
        n = t.shape[axis] if axis is not None else 1
        quant = QuantParams(np.linspace(1.0, 2.0, n, dtype=np.float32), np.zeros(n, np.int64),
                            axis or 0)
    return Tensor(t.name, t.shape, t.dtype, quant, np.zeros(t.shape, DTYPES[t.dtype]))


def with_placeholders(graph: Graph) -> Graph:
    """The graph with placeholder values for constants described without data."""
    missing = {n for n, t in graph.tensors.items() if t.const and t.data is None}
    if not missing:
        return graph
    axes = {op.inputs[1]: _weight_axis(graph, op) for op in graph.ops if len(op.inputs) > 1}
    tensors = {n: _placeholder(t, axes.get(n)) if n in missing else t
               for n, t in graph.tensors.items()}
    return Graph(tensors, graph.ops, graph.inputs, graph.outputs, graph.name)


def flash_bytes(graph: Graph) -> int:
    """Bytes of the constant arrays the code generator emits for `graph` (unpatched); a table
    shared by several ops (ConstArray.shared) once, as the code generator emits it."""
    total = 0
    shared: dict[tuple[str, str, bytes], int] = {}
    for op in graph.ops:
        for c in get_op(op.kind).emit(graph, op).consts:
            if c.shared:
                shared[(c.name, c.ctype, c.values.tobytes())] = int(c.values.nbytes)
            else:
                total += int(c.values.nbytes)
    return total + sum(shared.values())


def arena_lower_bound(graph: Graph) -> int:
    """Bytes every whole-tensor plan of `graph` holds at once at least: its largest activation
    once every fusable inverted-residual block is fused (a fused block never holds its
    expanded tensor whole; memory/fuse.py), so no plan, fused or not, is below it. Cheap: no
    planning. Patches can go lower still."""
    return max(t.nbytes for t in fuse_blocks(graph).activations())


def estimate(graph: Graph, patch: str = "off",
             max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD, planner: str = "auto") -> Cost:
    """Peak SRAM, flash and MACs of `graph` as `tinyengine compile` would build it."""
    return estimate_schedule(graph, patch, max_mac_overhead, planner)[0]


def estimate_schedule(graph: Graph, patch: str = "off",
                      max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD,
                      planner: str = "auto") -> tuple[Cost, Schedule]:
    """`estimate`, with the schedule it priced (its graph, order and plan: what a latency
    estimate reads)."""
    graph = with_placeholders(graph)
    verify(graph)
    sched = schedule(graph, patch, planner=planner, max_mac_overhead=max_mac_overhead)
    return Cost(sched.plan.arena_bytes, flash_bytes(graph), total_macs(sched.graph),
                sched.patches, sched.plan.state_bytes), sched
