"""Arena planners, checked by invariants on seeded random lifetimes and on the real models."""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.frontend import load_tflite
from tinyengine.memory import PLANNERS, BufferInfo, buffer_infos, plan_memory
from tinyengine.memory.plan import _aligned, arena_size, live_lower_bound

from .conftest import MODEL_FILES, MODELS


def random_buffers(rng: np.random.Generator, n: int) -> list[BufferInfo]:
    out = []
    for i in range(n):
        first = int(rng.integers(0, 20))
        out.append(BufferInfo(f"b{i}", int(rng.integers(1, 5000)), first,
                              first + int(rng.integers(0, 6))))
    return out


def assert_no_overlap(buffers: list[BufferInfo], offsets: dict[str, int]) -> None:
    for i, a in enumerate(buffers):
        assert offsets[a.name] % 4 == 0
        for b in buffers[i + 1:]:
            if a.overlaps_in_time(b):
                a0, b0 = offsets[a.name], offsets[b.name]
                assert a0 + _aligned(a.size) <= b0 or b0 + _aligned(b.size) <= a0, (a, b)


@pytest.mark.parametrize("seed", range(30))
def test_planner_invariants(seed):
    buffers = random_buffers(np.random.default_rng(seed), 3 + seed)
    bound = live_lower_bound(buffers)
    sizes = {}
    for name, planner in PLANNERS.items():
        offsets = planner(buffers)
        assert set(offsets) == {b.name for b in buffers}
        assert_no_overlap(buffers, offsets)
        sizes[name] = arena_size(buffers, offsets)
        assert sizes[name] >= bound
    assert sizes["linear"] == sum(_aligned(b.size) for b in buffers)


def test_auto_takes_the_smallest_and_is_deterministic():
    graph = load_tflite(MODELS / "tiny_pretrainedResnet_quant.tflite") if MODELS.is_dir() \
        else pytest.skip("shared models absent")
    plans = [plan_memory(graph) for _ in range(2)]
    assert plans[0].offsets == plans[1].offsets
    for name in PLANNERS:
        assert plans[0].arena_bytes <= plan_memory(graph, algorithm=name).arena_bytes


def test_exact_small_case():
    # a -> b -> c chain: a and c never live together, so they share offset 0.
    buffers = [BufferInfo("a", 100, 0, 1), BufferInfo("b", 40, 1, 2), BufferInfo("c", 100, 2, 3)]
    offsets = PLANNERS["greedy_by_size"](buffers)
    assert offsets == {"a": 0, "c": 0, "b": 100}
    assert arena_size(buffers, offsets) == 140 == live_lower_bound(buffers)


@pytest.mark.parametrize("name", MODEL_FILES)
def test_real_models_reach_the_live_lower_bound(name, shared_models):
    graph = load_tflite(shared_models / name)
    plan = plan_memory(graph)
    assert plan.arena_bytes == live_lower_bound(buffer_infos(graph))
    assert_no_overlap(plan.buffers, plan.offsets)
