"""Persistent state (variable tensors): the executor, the plan, the generated C and its reset.

Checked with a test-only stateful op (tests/state_op/running_max.py: state := max(state, x),
y := state), loaded the way a user's op is, so these tests do not depend on SVDF or LSTM:
- the state lives in a region of its own (report.json persistent_bytes, no arena buffer);
- C == reference over a stream of invocations with state carried, and again after reset();
- the stream's outputs differ from independent invocations (the check can fail);
- a fresh and a reset engine start int8 state at its zero point, as TFLM's ResetVariableTensors;
- ops that share a state tensor keep their order;
- the IR refuses state used where no op keeps it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinyengine.codegen.project import compile_graph
from tinyengine.errors import TinyEngineError, UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.memory.order import order_problem
from tinyengine.ops import load_op_library
from tinyengine.reference import ReferenceSession, run_reference
from tinyengine.runtime.host import HostModel

STATE_OP = Path(__file__).with_name("state_op") / "running_max.py"
SHAPE = (1, 4, 4, 3)


@pytest.fixture(scope="module", autouse=True)
def running_max() -> None:
    load_op_library(STATE_OP)


def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def state_graph(zp: int = -5) -> Graph:
    """x -> RUNNING_MAX(s1) -> a -> ADD(a, x) -> b -> RUNNING_MAX(s2) -> y."""
    q = qp(0.1, zp)
    t = {n: Tensor(n, SHAPE, "int8", q) for n in ("x", "a", "y")}
    t["b"] = Tensor("b", SHAPE, "int8", qp(0.2, zp))
    t["y"] = Tensor("y", SHAPE, "int8", qp(0.2, zp))
    t["s1"] = Tensor("s1", SHAPE, "int8", q, variable=True)
    t["s2"] = Tensor("s2", SHAPE, "int8", qp(0.2, zp), variable=True)
    ops = [Op("rm1", "TEST_RUNNING_MAX", ["x", "s1"], ["a"]),
           Op("add", "ADD", ["a", "x"], ["b"], {"activation": "NONE"}),
           Op("rm2", "TEST_RUNNING_MAX", ["b", "s2"], ["y"])]
    g = Graph(t, ops, ["x"], ["y"], name="stateful")
    verify(g)
    return g


def stream(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    return [rng.integers(-128, 128, SHAPE).astype(np.int8) for _ in range(n)]


def test_state_has_its_own_region(tmp_path: Path) -> None:
    g = state_graph()
    report = compile_graph(g, tmp_path / "p", prefix="st")
    assert report["persistent_bytes"] == 2 * int(np.prod(SHAPE))
    plan = report["memory_plan"]
    assert set(plan["state_offsets"]) == {"s1", "s2"}
    assert not {"s1", "s2"} & {b["name"] for b in plan["buffers"]}
    header = (tmp_path / "p" / "st_model.h").read_text()
    assert f"#define ST_STATE_BYTES {report['persistent_bytes']}" in header
    assert "void st_reset(void);" in header


def test_stream_with_state_carried_then_reset(tmp_path: Path) -> None:
    g = state_graph()
    compile_graph(g, tmp_path / "p", prefix="st")
    host = HostModel(tmp_path / "p")
    ref = ReferenceSession(g)
    xs = stream(np.random.default_rng(0), 10)
    carried = False
    for x in xs:
        c = host.invoke([x])[0]
        r = ref.invoke([x])[0]
        np.testing.assert_array_equal(c, r)
        carried |= not np.array_equal(r, run_reference(g, [x])[0])
    assert carried, "the stream never differed from independent runs: state not exercised"
    host.reset()
    fresh = ReferenceSession(g)  # after reset the engine is a new one
    for x in xs[:3]:
        np.testing.assert_array_equal(host.invoke([x])[0], fresh.invoke([x])[0])


@pytest.mark.parametrize("zp", [-5, 0, 17])
def test_int8_state_starts_at_its_zero_point(tmp_path: Path, zp: int) -> None:
    g = state_graph(zp)
    compile_graph(g, tmp_path / "p", prefix="st")
    host = HostModel(tmp_path / "p")
    low = np.full(SHAPE, -128, np.int8)  # below any zero point: the output is the reset state
    for engine in ("fresh", "reset"):
        if engine == "reset":
            host.invoke([np.full(SHAPE, 127, np.int8)])
            host.reset()
        y = host.invoke([low])[0]
        np.testing.assert_array_equal(y, run_reference(g, [low])[0])
        assert ReferenceSession(g).state["s1"].flat[0] == zp


def test_ops_sharing_state_keep_their_order() -> None:
    g = state_graph()
    # A second op on s1 that does not depend on rm1's output: only the shared state orders it.
    g.tensors["z"] = Tensor("z", SHAPE, "int8", qp(0.1, -5))
    g.ops.append(Op("rm3", "TEST_RUNNING_MAX", ["x", "s1"], ["z"]))
    g.outputs.append("z")
    verify(g)
    p = order_problem(g)
    assert p.preds[3] >> 0 & 1, "rm3 must follow rm1, which updates the same state first"


def test_state_misuse_is_refused() -> None:
    g = state_graph()
    g.ops[1].inputs = ["a", "s1"]  # ADD does not keep state
    with pytest.raises(UnsupportedError, match=r"add \(ADD\): input 1 \(s1\) is a variable"):
        verify(g)
    g = state_graph()
    g.outputs = ["s1"]
    with pytest.raises(UnsupportedError, match="s1 is a variable"):
        verify(g)
    g = state_graph()
    g.ops[0].outputs = ["s2"]
    with pytest.raises((UnsupportedError, TinyEngineError), match="variable"):
        verify(g)


def test_two_engines_of_equal_sources_keep_their_own_state(tmp_path: Path) -> None:
    """Two projects with the same sources (as whole-tensor and patch builds that came out the
    same) are two engines: one's stream must not move the other's state."""
    g = state_graph()
    for d in ("a", "b"):
        compile_graph(g, tmp_path / d, prefix="st")
    a, b = HostModel(tmp_path / "a"), HostModel(tmp_path / "b")
    xs = stream(np.random.default_rng(3), 4)
    for x in xs:
        a.invoke([x])
    fresh = ReferenceSession(g)
    for x in xs:
        np.testing.assert_array_equal(b.invoke([x])[0], fresh.invoke([x])[0])
