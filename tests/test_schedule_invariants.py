"""Invariants of the final memory schedule on seeded random graphs, whole and patched, checked on
the tensors' final offsets with in-place aliases included:
- two tensors live at the same step never share a byte, unless one overwrites the other in
  place at the step it is born, or is a view (RESHAPE) of the other;
- scratch shares no byte with anything live at its step;
- the arena is at least the live-set lower bound of the chosen order, and the chosen placement
  is no worse than the linear baseline or greedy-by-size on the same buffers."""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.memory.inplace import alias_groups, tensor_lifetimes
from tinyengine.memory.plan import PLANNERS, _aligned, arena_size, buffer_infos, live_lower_bound
from tinyengine.memory.schedule import schedule, scratch_sizes
from tinyengine.ops import get_op

from .random_graphs import ALL_KINDS, random_graph


def check_schedule(sched) -> None:
    graph, plan = sched.graph, sched.plan
    first, last = tensor_lifetimes(graph)
    groups = alias_groups(graph)
    producer = {op.outputs[0]: op for op in graph.ops}
    spans = {n: (first[n], last[n], plan.offsets[n], graph.tensor(n).nbytes) for n in first}
    scratch = scratch_sizes(graph)
    for i, op in enumerate(graph.ops):
        if scratch[op.name]:
            spans[f"{op.name}:scratch"] = (i, i, plan.offsets[f"{op.name}:scratch"],
                                           scratch[op.name])
    names = sorted(spans, key=lambda n: (spans[n][0], n))
    for ai, a in enumerate(names):
        fa, la, oa, sa = spans[a]
        for b in names[ai + 1:]:
            fb, lb, ob, sb = spans[b]
            if fb > la:
                break
            if oa + sa <= ob or ob + sb <= oa:
                continue
            # Overlapping bytes at overlapping times: only an in-place handover is allowed.
            same = a in groups and b in groups and groups[a] == groups[b]
            op = producer.get(b)
            view = op is not None and get_op(op.kind).is_view
            assert same and (view or min(la, lb) == fb), (a, b, spans[a], spans[b])
    buffers = buffer_infos(graph, scratch, frozenset(plan.external))
    assert plan.arena_bytes == arena_size(buffers, plan.offsets)
    assert plan.arena_bytes >= live_lower_bound(buffers)
    for baseline in ("linear", "greedy_by_size"):
        assert plan.arena_bytes <= arena_size(buffers, PLANNERS[baseline](buffers))
    for b in buffers:
        assert plan.offsets[b.name] % 4 == 0 and _aligned(b.size) >= b.size


@pytest.mark.parametrize("patch", ["off", "auto"])
@pytest.mark.parametrize("seed", range(30))
def test_random_graph_schedules(seed, patch):
    graph = random_graph(np.random.default_rng(500 + seed), kinds=ALL_KINDS, max_ops=6)
    check_schedule(schedule(graph, patch))


@pytest.mark.parametrize("name", ["tflm_person_detect.tflite", "tiny_kws_ref_model.tflite",
                                  "tiny_pretrainedResnet_quant.tflite"])
@pytest.mark.parametrize("patch", ["off", "auto"])
def test_real_model_schedules(name, patch, shared_models):
    from tinyengine.frontend import load_tflite

    check_schedule(schedule(load_tflite(shared_models / name), patch))
