"""Property tests on seeded random int16 graphs (TFLite's 16x8 mode): every op kind of
random_graphs_int16.CANDIDATE_KINDS whose int16 path exists when the tests are collected
(`int16_kinds()`), mixed in chains with splits, joins, detours through other ranks and through
int8 or int32, some read from a float32 input and given as a float32 output (QUANTIZE,
DEQUANTIZE), so that the int16 kernels, the planner (in-place marks, concatenation and split
views at byte offsets of 2-byte elements, patches), the code generator and the TFLite writer
meet shapes nobody wrote by hand:
- generated C == numpy reference == TFLM, with the default patch search and with patches off;
- the final memory schedules keep their invariants (tests/test_schedule_invariants.py), and
  every int16 buffer starts on a 2-byte boundary;
- one project builds and runs clean under ASan/UBSan;
- across the seeds every included kind occurs (QUANTIZE with each of its float32 -> int16,
  int8 <-> int16, int16 <-> int32 and int16 -> int16 pairs, TRANSPOSE_CONV with an int64
  bias), graph inputs are float32 and int16, both kinds of views are taken (a join's inputs, a
  split's or slice's outputs) and patch-based inference takes a stage.

Graph i is random_graph_int16(default_rng(SEED_BASE + i), focus=KINDS[i::N_SEEDS]). The slow
sweep runs SWEEP_SEEDS more graphs, each focused on one kind in turn.
"""

from __future__ import annotations

import shutil
from functools import cache

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.inputs import random_inputs
from tinyengine.ir import Graph
from tinyengine.memory.schedule import Schedule, schedule
from tinyengine.verify import verify_graph

from .conftest import require
from .random_graphs_int16 import MOVEMENT_KINDS, float_io, int16_kinds, random_graph_int16
from .sanitized import check_sanitized_demo
from .test_schedule_invariants import check_schedule

KINDS = int16_kinds()  # the kinds with an int16 path now; the data movers always among them
N_SEEDS = 12
SWEEP_SEEDS = 48
MAX_OPS = 5
SEED_BASE = 4000
# The graph built under the sanitizers: the one seed of 0..599 whose schedule (--patch auto)
# holds a concatenation view, split output views and a patch stage at once (outside the sweep's
# seeds): 21 ops of 13 kinds on int16, its input float32 (QUANTIZE float32 -> int16), a
# TRANSPOSE_CONV with an int64 bias and an int8 detour.
SANITIZED_SEED = 249
# QUANTIZE's (input, output) types the seeds must hold: the generator's detours and joins, and
# the float32 input where QUANTIZE takes one.
QUANTIZE_PAIRS = {("int16", "int8"), ("int8", "int16"), ("int16", "int32"), ("int32", "int16"),
                  ("int16", "int16")} | ({("float32", "int16")} if float_io(KINDS)[0] else set())


@cache
def graph(seed: int) -> Graph:
    focus = KINDS[seed::N_SEEDS] if seed < N_SEEDS else (KINDS[seed % len(KINDS)],)
    return random_graph_int16(np.random.default_rng(SEED_BASE + seed), max_ops=MAX_OPS,
                              focus=focus, kinds=KINDS)


@cache
def scheduled(seed: int, patch: str) -> Schedule:
    return schedule(graph(seed), patch)


def describe(g: Graph) -> str:
    """One line per op with its attrs and input shapes, for failure messages."""
    return "\n".join(f"  {op.name}: {op.attrs} inputs {[g.tensor(n).shape for n in op.inputs if n]}"
                     for op in g.ops)


def check_c_reference_tflm(seed: int, compile_options: dict[str, str] | None) -> None:
    g = graph(seed)
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=3, seed=seed,
                               compile_options=compile_options)
    bad = [v.line(0) for v in verdicts if not v.exact]
    assert not bad, "\n".join(bad) + "\n" + describe(g)


def check_int16_schedule(sched: Schedule) -> None:
    """The planner's invariants, and 2-byte alignment of every 16-bit buffer (views too)."""
    check_schedule(sched)
    offsets = sched.plan.offsets
    odd = [n for n, t in sched.graph.tensors.items()
           if t.dtype == "int16" and n in offsets and offsets[n] % 2]
    assert not odd, odd


@pytest.fixture(autouse=True)
def _needs_tflm(tflm: object) -> None:
    """The TFLM oracle is needed: skip without it locally, fail under CI=true."""


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_c_equals_reference_and_tflm(seed: int) -> None:
    check_c_reference_tflm(seed, None)  # the default: --patch auto


@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_c_equals_reference_and_tflm_without_patches(seed: int) -> None:
    check_c_reference_tflm(seed, {"patch": "off"})


@pytest.mark.parametrize("patch", ["off", "auto"])
@pytest.mark.parametrize("seed", range(N_SEEDS))
def test_schedule_invariants(seed: int, patch: str) -> None:
    check_int16_schedule(scheduled(seed, patch))


def test_sanitized_build(tmp_path) -> None:
    require(shutil.which("make") is not None and shutil.which("cc") is not None,
            "make and cc are needed")
    g = graph(SANITIZED_SEED)
    sched = scheduled(SANITIZED_SEED, "auto")
    assert sched.patches is not None
    assert any(op.attrs.get("views") for op in sched.graph.ops)
    assert any(op.attrs.get("output_views") for op in sched.graph.ops)
    compile_graph(g, tmp_path / "p", prefix="mix16")
    rng = np.random.default_rng(SANITIZED_SEED)
    check_sanitized_demo(tmp_path / "p", "mix16", g, [random_inputs(g, rng) for _ in range(3)])


def test_seeds_cover_every_int16_kind_views_and_patches() -> None:
    assert set(MOVEMENT_KINDS) <= set(KINDS)
    seen = {op.kind for seed in range(N_SEEDS) for op in graph(seed).ops}
    assert not [k for k in KINDS if k not in seen]
    graphs = [graph(seed) for seed in range(N_SEEDS)]
    pairs = {(g.tensor(op.inputs[0]).dtype, g.tensor(op.outputs[0]).dtype)
             for g in graphs for op in g.ops if op.kind == "QUANTIZE"}
    assert "QUANTIZE" not in KINDS or QUANTIZE_PAIRS <= pairs, QUANTIZE_PAIRS - pairs
    assert "TRANSPOSE_CONV" not in KINDS or any(
        op.kind == "TRANSPOSE_CONV" and len(op.inputs) > 2 and op.inputs[2]
        and g.tensor(op.inputs[2]).dtype == "int64" for g in graphs for op in g.ops)
    # Inputs: int16, and float32 (through QUANTIZE) where QUANTIZE reads float32; outputs
    # float32 (through DEQUANTIZE) where DEQUANTIZE is included.
    inputs = {g.tensor(g.inputs[0]).dtype for g in graphs}
    assert inputs == ({"int16", "float32"} if float_io(KINDS)[0] else {"int16"})
    outputs = {g.tensor(g.outputs[0]).dtype for g in graphs}
    assert outputs == ({"int16", "float32"} if float_io(KINDS)[1] else {"int16"})
    ops = [op for seed in range(N_SEEDS) for patch in ("off", "auto")
           for op in scheduled(seed, patch).graph.ops]
    assert any(op.kind == "CONCATENATION" and op.attrs.get("views") for op in ops)
    # Output views of a split or slice (the planner keeps views only where they do not grow the
    # arena; tests/test_ops_16x8_movement.py pins a SPLIT_V's at its byte offsets).
    assert any(op.attrs.get("output_views") for op in ops)
    # Patch-based inference took a stage of int16 ops in some graph.
    assert any(scheduled(seed, "auto").patches is not None for seed in range(N_SEEDS))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(N_SEEDS, N_SEEDS + SWEEP_SEEDS))
def test_sweep(seed: int) -> None:
    check_c_reference_tflm(seed, None)
    check_c_reference_tflm(seed, {"patch": "off"})
    for patch in ("off", "auto"):
        check_int16_schedule(scheduled(seed, patch))
