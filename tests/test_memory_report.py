"""Memory reports: the per-op live table, the PNG timeline and the per-step JSON figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyengine.errors import TinyEngineError
from tinyengine.frontend import load_tflite
from tinyengine.ir import Graph, Op, QuantParams, Tensor
from tinyengine.memory import BufferInfo, MemoryPlan, plan_memory
from tinyengine.memory.inplace import mark_inplace
from tinyengine.memory.plan import live_lower_bound
from tinyengine.memory.report import (
    buffer_segments,
    live_table,
    plan_json,
    plot_timeline,
    short_names,
    step_usage,
)

from .conftest import MODEL_FILES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LONG = "model/block_1/activation/Relu;model/block_1/batch_normalization/FusedBatchNormV3"


def _act(name: str, shape: tuple[int, ...]) -> Tensor:
    q = QuantParams(np.array([0.05], np.float32), np.array([0], np.int64))
    return Tensor(name, shape, "int8", q)


def chain_graph(n_ops: int, name: str = "chain") -> Graph:
    """input -> op0 -> t0 -> op1 -> ... with a skip from t0 into the last op (an ADD)."""
    tensors = {"input": _act("input", (1, 8, 8, 4))}
    ops, prev = [], "input"
    for i in range(n_ops):
        out = f"t{i}" if i else LONG
        tensors[out] = _act(out, (1, 8, 8, 4 + 4 * (i % 3)))
        inputs = [prev, LONG] if i == n_ops - 1 and i > 0 else [prev]
        ops.append(Op(f"op_{i}", "ADD" if len(inputs) == 2 else "CONV_2D", inputs, [out]))
        prev = out
    return Graph(tensors, ops, ["input"], [prev], name)


def tiny_plan() -> tuple[Graph, MemoryPlan]:
    graph = chain_graph(3, "tiny")
    return graph, plan_memory(graph, scratch={"op_1": 300})


def table_rows(table: str, n_ops: int) -> list[list[str]]:
    lines = table.splitlines()
    rows = [line.split() for line in lines[3:3 + n_ops]]  # header, column names, rule
    assert [r[0] for r in rows] == [str(i) for i in range(n_ops)]
    return rows


def real_plans(models: Path, inplace: bool = False) -> list[tuple[Graph, MemoryPlan]]:
    """The shared models planned as compile_graph plans them (scratch counted)."""
    from tinyengine.ops import get_op

    out = []
    for f in MODEL_FILES:
        graph = load_tflite(models / f)
        if inplace:
            graph = mark_inplace(graph)
        scratch = {op.name: get_op(op.kind).emit(graph, op).scratch_bytes for op in graph.ops}
        out.append((graph, plan_memory(graph, scratch)))
    return out


def check_table(graph: Graph, plan: MemoryPlan) -> None:
    table = live_table(graph, plan)
    rows = table_rows(table, len(plan.order))
    assert [r[1] for r in rows] == plan.order  # every op once, in execution order
    for op in plan.order:
        assert sum(r[1] == op for r in rows) == 1
    live = [int(r[3].replace(",", "")) for r in rows]
    bound = live_lower_bound(plan.buffers)
    assert max(live) == bound
    assert f"arena {plan.arena_bytes:,} B" in table.splitlines()[0]
    assert f"live lower bound {bound:,} B" in table.splitlines()[0]
    assert plan.algorithm in table.splitlines()[0]
    peak_rows = [r for r in rows if "*" in r[5]]
    assert peak_rows and all(int(r[3].replace(",", "")) == bound for r in peak_rows)
    high_water = [int(r[4].replace(",", "")) for r in rows]
    assert max(high_water) == plan.arena_bytes
    assert all(h >= v for h, v in zip(high_water, live))


def check_png(path: Path) -> None:
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(path) as img:
        assert img.size == (1200, 600)


def test_table_on_real_models(shared_models):
    for graph, plan in real_plans(shared_models):
        check_table(graph, plan)


def test_table_on_real_models_in_place(shared_models):
    plans = real_plans(shared_models, inplace=True)
    for graph, plan in plans:
        check_table(graph, plan)
    # person_detect runs its depthwise convolutions in place: the table shows the handover.
    graph, plan = plans[MODEL_FILES.index("tflm_person_detect.tflite")]
    row = table_rows(live_table(graph, plan), len(plan.order))[1]
    assert row[1] == "depthwise_conv_2d_1" and "->" in row and "scratch" in row


def test_segments_cover_every_tensor_once(shared_models):
    for graph, plan in real_plans(shared_models, inplace=True):
        segments = buffer_segments(graph, plan)
        held = [m.tensor for ms in segments.values() for m in ms]
        tensors = {t.name for t in graph.activations()}
        assert sorted(t for t in held if t in tensors) == sorted(tensors), graph.name
        for b in plan.buffers:
            assert all(b.first <= m.first and m.last <= b.last and m.size <= b.size
                       for m in segments[b.name])


def test_table_on_tiny_graph():
    graph, plan = tiny_plan()
    check_table(graph, plan)
    table = live_table(graph, plan)
    rows = table_rows(table, 3)
    assert "scratch 300 B" in " ".join(rows[1])  # the op's own scratch, at its step
    assert LONG not in table and "activation/Relu" in table  # long names are abbreviated
    assert table == live_table(graph, plan)


def test_step_usage_counts_aligned_sizes():
    graph, plan = tiny_plan()
    rows = step_usage(graph, plan)
    # op_1 reads LONG (256 B), writes t1 (512 B, 8 channels) and uses 300 B of scratch.
    assert rows[1].live_bytes == 256 + 512 + 300
    assert rows[1].kind == "CONV_2D"


def test_png_real_models(shared_models, tmp_path):
    picked = ["tflm_person_detect", "tiny_pretrainedResnet_quant"]
    for inplace in (False, True):
        for graph, plan in real_plans(shared_models, inplace):
            if graph.name in picked:
                check_png(plot_timeline(graph, plan, tmp_path / f"{graph.name}_{inplace}.png"))


def test_png_is_deterministic(shared_models, tmp_path):
    # person_detect in place has everything: scratch, in-place groups, 31 ops.
    graph, plan = real_plans(shared_models, inplace=True)[
        MODEL_FILES.index("tflm_person_detect.tflite")]
    a = plot_timeline(graph, plan, tmp_path / "a.png")
    b = plot_timeline(graph, plan, tmp_path / "b.png", title="")
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("n_ops", [1, 3, 40, 150])
def test_png_tiny_and_long_graphs(tmp_path, n_ops):
    graph = chain_graph(n_ops)
    plan = plan_memory(graph, scratch={"op_0": 64, f"op_{n_ops - 1}": 1000})
    a = plot_timeline(graph, plan, str(tmp_path / "a.png"), title="a chain")
    check_png(a)
    if n_ops <= 3:
        again = plot_timeline(graph, plan, tmp_path / "b.png", title="a chain")
        assert a.read_bytes() == again.read_bytes()


def test_png_unwritable_path_is_a_user_error(tmp_path):
    graph, plan = tiny_plan()
    with pytest.raises(TinyEngineError, match="memory timeline"):
        plot_timeline(graph, plan, tmp_path / "missing" / "dir" / "t.png")


def test_plan_json(shared_models):
    for graph, plan in [tiny_plan(), *real_plans(shared_models)]:
        info = plan_json(graph, plan)
        assert json.loads(json.dumps(info)) == info
        assert len(info["live_bytes"]) == len(plan.order)
        assert info["live_lower_bound"] == live_lower_bound(plan.buffers) == max(info["live_bytes"])
        assert info["live_bytes"][info["peak_step"]] == info["live_lower_bound"]
        assert info["peak_op"] == plan.order[info["peak_step"]]
        assert max(info["high_water_bytes"]) == plan.arena_bytes
        assert set(info["peak_buffers"]) <= {b.name for b in plan.buffers}


def test_aliased_buffers_read_through_plan_buffers(tmp_path):
    # An in-place plan: one buffer (a group key) holds two tensors; offsets name all three.
    graph = chain_graph(2, "inplace")
    buffers = [BufferInfo("input", 256, 0, 0), BufferInfo(f"{LONG}+t1", 512, 0, 2)]
    plan = MemoryPlan("inplace", 768, {"input": 512, f"{LONG}+t1": 0, LONG: 0, "t1": 0},
                      buffers, ["op_0", "op_1"])
    check_table(graph, plan)
    assert plan_json(graph, plan)["live_bytes"] == [768, 512]
    assert [m.tensor for m in buffer_segments(graph, plan)[f"{LONG}+t1"]] == [LONG, "t1"]
    rows = table_rows(live_table(graph, plan), 2)
    assert "activation/Relu -> t1 512 B" in " ".join(rows[1])
    check_png(plot_timeline(graph, plan, tmp_path / "alias.png"))


def test_short_names_are_unique_and_short():
    names = [LONG, "a/b/conv/Relu", "c/d/conv/Relu", "x/conv/Relu", "input", "op_3:scratch",
             "m/" + "very_long_layer_name_" * 4 + "/Relu"]
    short = short_names(names)
    assert len(set(short.values())) == len(names)
    assert short["input"] == "input" and short["op_3:scratch"] == "op_3:scratch"
    assert short[LONG] == "activation/Relu"
    assert all(len(s) <= 30 for s in short.values())
