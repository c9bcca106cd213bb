"""FUSED_BLOCK on the emulated target (bit-exact under QEMU, SIMD and portable) and on the
models: mcunet-in3 with patches within the issue's 148,000 B, `tinynas cost` naming a fused
block at its peak, and fusion never growing a shared model's arena."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.cost import estimate_schedule
from tinyengine.frontend import load_model
from tinyengine.ir import Graph, Op
from tinyengine.memory.fuse import fuse_blocks
from tinyengine.memory.schedule import choose_order, plan_fused, plan_graph
from tinyengine.reference import run_reference
from tinyengine.target import run_records

from .conftest import MODEL_FILES, MODELS, require
from .test_fused_block import _inputs, block_graph

ROOT = Path(__file__).resolve().parent.parent
MCUNET = ROOT / "examples" / "mcunet"


def _two_blocks() -> Graph:
    """A 7x7 residual block then a 5x5 stride-2 block without add, chained."""
    a = block_graph(h=12, w=9, cin=6, expand=4, k=7, seed=11)
    b = block_graph(h=12, w=9, cin=6, expand=3, cout=7, k=5, stride=2, residual=False,
                    seed=12)
    ren = {n: f"b_{n}" for n in b.tensors if n != "x"}
    ren["x"] = a.outputs[0]
    tensors = dict(a.tensors)
    tensors.update({ren[n]: t.__class__(ren[n], t.shape, t.dtype, t.quant, t.data)
                    for n, t in b.tensors.items() if n != "x"})
    # b's input takes a's output quantisation: the block reads it as it is.
    ops = list(a.ops) + [Op(f"b_{op.name}", op.kind, [ren.get(n, n) for n in op.inputs],
                            [ren[n] for n in op.outputs], dict(op.attrs)) for op in b.ops]
    return Graph(tensors, ops, ["x"], [ren[b.outputs[0]]], name="two_blocks")


@pytest.mark.parametrize("simd", [True, False])
def test_fused_blocks_on_qemu_equal_the_reference(simd, tmp_path):
    require(shutil.which("arm-none-eabi-gcc") is not None and
            shutil.which("qemu-system-arm") is not None,
            "arm-none-eabi-gcc and qemu-system-arm are needed (apt-get install "
            "--no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
    graph = _two_blocks()
    # Both blocks fused, the first in place over its input (marks by hand: the planner fuses
    # only the block its arena needs, and compile_graph(inplace=False) keeps the marks).
    fused = fuse_blocks(graph)
    fused.ops[0].attrs["inplace"] = 0
    report = compile_graph(fused, tmp_path / "p", prefix="fb", patch="off", inplace=False)
    assert [o["kernel"] for o in report["ops"]] == ["te_fused_block_s8"] * 2
    records = _inputs(graph, 2, seed=4)
    run = run_records(tmp_path / "p", records, "cortex-m4", simd=simd)
    for x, got in zip(records, run.outputs):
        np.testing.assert_array_equal(got[0], run_reference(graph, x)[0])


def _mcunet(name: str) -> Graph:
    from tinynas.arch import Arch
    from tinynas.resources import build_graph

    return build_graph(Arch.load(MCUNET / f"{name}.json"), int8_input=True)


def test_planner_fuses_blocks_with_and_without_the_add():
    """Where the arena needs it, both kinds of block are fused (mcunet-vww1's plan)."""
    from tinyengine.memory.schedule import schedule

    fused = [o.name for o in schedule(_mcunet("mcunet-vww1"), "off").graph.ops
             if o.kind == "FUSED_BLOCK"]
    assert any(n.endswith(".add") for n in fused) and not all(n.endswith(".add") for n in fused)


def test_mcunet_in0_runs_fused_bit_exact(tmp_path):
    """A released MCUNet network as the planner schedules it: every block fused (strides 1 and
    2, kernels 3 to 7, with and without the add), on host and under QEMU."""
    from tinyengine.inputs import random_inputs
    from tinyengine.runtime import HostModel
    from tinyengine.target.latency import with_typical_weights

    graph = with_typical_weights(_mcunet("mcunet-in0"))
    report = compile_graph(graph, tmp_path / "p", prefix="m", patch="off")
    fused = [o["name"] for o in report["ops"] if o["kernel"] == "te_fused_block_s8"]
    assert fused  # fused only where the arena needs it (which blocks: the test below)
    records = [random_inputs(graph, np.random.default_rng(s)) for s in range(2)]
    want = [run_reference(graph, x)[0] for x in records]
    host = HostModel(tmp_path / "p")
    for x, y in zip(records, want):
        np.testing.assert_array_equal(host.invoke(x)[0], y)
    require(shutil.which("arm-none-eabi-gcc") is not None and
            shutil.which("qemu-system-arm") is not None,
            "arm-none-eabi-gcc and qemu-system-arm are needed")
    for got, y in zip(run_records(tmp_path / "p", records, "cortex-m4").outputs, want):
        np.testing.assert_array_equal(got[0], y)


def test_mcunet_in3_with_patches_fits_the_issue_figure():
    cost, sched = estimate_schedule(_mcunet("mcunet-in3"), "auto")
    assert cost.peak_sram <= 148_000  # issue 15: TinyEngine's 247,808 B, and patches
    fused = [op.name for op in sched.graph.ops if op.kind == "FUSED_BLOCK"]
    assert "b2.expand+b2.dw+b2.project+b2.add" in fused  # the unfused peak of 185,856 B live


def test_tinynas_cost_names_a_fused_peak(capsys):
    from tinynas.cli import main

    # mcunet-in0 without patches peaks inside a fused block: the report says which ops it holds.
    assert main(["cost", str(MCUNET / "mcunet-in0.json"), "--int8-input"]) == 0
    peak = capsys.readouterr().out.splitlines()[-1]
    assert "b1.expand+b1.dw+b1.project (FUSED_BLOCK)" in peak


@pytest.mark.parametrize("name", MODEL_FILES)
def test_fusion_never_grows_a_shared_model(name):
    require((MODELS / name).is_file(), f"{MODELS / name} is missing (../shared/models)")
    graph = choose_order(load_model(MODELS / name))
    assert plan_fused(graph)[1].arena_bytes <= plan_graph(graph)[1].arena_bytes


@pytest.mark.parametrize("seed", range(6))
def test_fusion_never_grows_an_arena(seed):
    # Blocks from tiny (fusing gains nothing) to wide: the planner's choice is never worse.
    rng = np.random.default_rng(seed)
    graph = block_graph(h=int(rng.integers(2, 14)), w=int(rng.integers(2, 14)),
                        cin=int(rng.integers(1, 9)), expand=int(rng.integers(1, 7)),
                        k=int(rng.choice([3, 5, 7])), residual=bool(seed % 2), seed=seed)
    assert plan_fused(graph)[1].arena_bytes <= plan_graph(graph)[1].arena_bytes
