"""CONCATENATION along an outer axis costs no copy and no extra arena: each producer writes
straight into its slice of the joined buffer (a planner feature TFLM does not have)."""

from __future__ import annotations

import numpy as np

from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.memory.inplace import alias_layout
from tinyengine.memory.schedule import schedule
from tinyengine.verify import verify_graph


def _qp(scale, zp, axis=0):
    return QuantParams(np.atleast_1d(np.asarray(scale, np.float32)),
                       np.atleast_1d(np.asarray(zp, np.int64)), axis)


def two_branches(rng: np.random.Generator) -> Graph:
    """x -> conv a, x -> conv b, concat(a, b) along rows (axis 1), then a 1x1 conv."""
    q = _qp(0.05, 0)
    t: dict[str, Tensor] = {"x": Tensor("x", (1, 8, 8, 4), "int8", _qp(0.05, 2))}
    ops = []
    for name, ci, co, src in (("a", 4, 8, "x"), ("b", 4, 8, "x")):
        w = rng.integers(-127, 128, (co, 3, 3, ci), dtype=np.int8)
        t[f"w{name}"] = Tensor(f"w{name}", w.shape, "int8", _qp(np.full(co, 0.01), np.zeros(co)),
                               w)
        t[name] = Tensor(name, (1, 8, 8, co), "int8", q)
        ops.append(Op(f"conv_{name}", "CONV_2D", [src, f"w{name}", ""], [name],
                      {"stride": (1, 1), "padding": "SAME", "dilation": (1, 1),
                       "activation": "RELU"}))
    t["cat"] = Tensor("cat", (1, 16, 8, 8), "int8", q)
    ops.append(Op("concat", "CONCATENATION", ["a", "b"], ["cat"], {"axis": 1,
                                                                  "activation": "NONE"}))
    w = rng.integers(-127, 128, (4, 1, 1, 8), dtype=np.int8)
    t["wo"] = Tensor("wo", w.shape, "int8", _qp(np.full(4, 0.01), np.zeros(4)), w)
    t["y"] = Tensor("y", (1, 16, 8, 4), "int8", _qp(0.1, -3))
    ops.append(Op("conv_out", "CONV_2D", ["cat", "wo", ""], ["y"],
                  {"stride": (1, 1), "padding": "VALID", "dilation": (1, 1),
                   "activation": "NONE"}))
    g = Graph(t, ops, ["x"], ["y"], name="branches")
    verify(g)
    return g


def test_concat_inputs_live_in_their_slices():
    from .test_schedule_invariants import check_schedule

    g = two_branches(np.random.default_rng(0))
    sched = schedule(g, patch="off")
    check_schedule(sched)
    concat = next(op for op in sched.graph.ops if op.kind == "CONCATENATION")
    assert concat.attrs.get("views") == [0, 512]
    plan = sched.plan
    # The producers write straight into the joined buffer: no copy is left to make.
    assert plan.offsets["a"] == plan.offsets["cat"]
    assert plan.offsets["b"] == plan.offsets["cat"] + 512
    layout = alias_layout(sched.graph)
    assert layout["a"][0] == layout["b"][0] == layout["cat"][0]
    # No extra arena: the joined buffer is the only home of a, b and cat, and the pointwise conv
    # after it runs in place, so the busiest step holds x (256 B) and the 1024 B joined buffer.
    assert plan.arena_bytes == 1024 + 256
    assert not any(b.name in ("a", "b") for b in plan.buffers)


def test_views_beat_separate_buffers():
    g = two_branches(np.random.default_rng(1))
    viewed = schedule(g, patch="off").plan.arena_bytes
    separate = schedule(g, patch="off", inplace=False).plan.arena_bytes
    # Without in-place and views: a and b (512 B each) and cat (1024 B) are live at once.
    assert separate == 2048 and viewed < separate


def test_views_are_bit_exact_with_tflm(tflm):
    g = two_branches(np.random.default_rng(2))
    verdicts, report = verify_graph(g, write_tflite(g), n_random=6, seed=3)
    assert all(v.exact for v in verdicts), [v.line(report["arena_bytes"]) for v in verdicts]
    assert report["arena_bytes"] == 1280


def test_channel_concat_is_not_a_view():
    """Concatenating channels interleaves the inputs (NHWC): no input is one byte range."""
    g = two_branches(np.random.default_rng(3))
    cat = next(op for op in g.ops if op.kind == "CONCATENATION")
    cat.attrs["axis"] = 3
    g.tensors["cat"] = Tensor("cat", (1, 8, 8, 16), "int8", g.tensor("cat").quant)
    g.tensors["y"] = Tensor("y", (1, 8, 8, 4), "int8", g.tensor("y").quant)
    g.tensors["wo"] = Tensor("wo", (4, 1, 1, 16), "int8", g.tensor("wo").quant,
                             np.ones((4, 1, 1, 16), np.int8))
    verify(g)
    sched = schedule(g, patch="off")
    concat = next(op for op in sched.graph.ops if op.kind == "CONCATENATION")
    assert "views" not in concat.attrs


def split_then_branches(rng: np.random.Generator) -> Graph:
    """x -> conv -> SPLIT along rows into two halves -> a 3x3 conv on each -> ADD."""
    q = _qp(0.05, 0)
    t: dict[str, Tensor] = {"x": Tensor("x", (1, 16, 8, 4), "int8", _qp(0.05, 2))}

    def conv(name: str, src: str, ci: int, co: int, k: int, shape: tuple[int, ...]) -> Op:
        w = rng.integers(-127, 128, (co, k, k, ci), dtype=np.int8)
        t[f"w{name}"] = Tensor(f"w{name}", w.shape, "int8",
                               _qp(np.full(co, 0.01), np.zeros(co)), w)
        t[name] = Tensor(name, shape, "int8", q)
        return Op(f"conv_{name}", "CONV_2D", [src, f"w{name}", ""], [name],
                  {"stride": (1, 1), "padding": "SAME", "dilation": (1, 1),
                   "activation": "RELU"})

    ops = [conv("c", "x", 4, 8, 3, (1, 16, 8, 8))]
    t["h0"] = Tensor("h0", (1, 8, 8, 8), "int8", q)
    t["h1"] = Tensor("h1", (1, 8, 8, 8), "int8", q)
    ops.append(Op("split", "SPLIT", ["c"], ["h0", "h1"], {"axis": 1}))
    ops.append(conv("u", "h0", 8, 8, 3, (1, 8, 8, 8)))
    ops.append(conv("v", "h1", 8, 8, 3, (1, 8, 8, 8)))
    t["y"] = Tensor("y", (1, 8, 8, 8), "int8", _qp(0.1, -3))
    ops.append(Op("add", "ADD", ["u", "v"], ["y"], {"activation": "NONE"}))
    g = Graph(t, ops, ["x"], ["y"], name="split_branches")
    verify(g)
    return g


def test_split_outputs_are_views_of_the_input(tflm):
    from .test_schedule_invariants import check_schedule

    g = split_then_branches(np.random.default_rng(5))
    sched = schedule(g, patch="off")
    check_schedule(sched)
    split = next(op for op in sched.graph.ops if op.kind == "SPLIT")
    assert split.attrs.get("output_views") == [0, 512]
    plan = sched.plan
    assert plan.offsets["h0"] == plan.offsets["c"]
    assert plan.offsets["h1"] == plan.offsets["c"] + 512
    assert not any(b.name in ("h0", "h1") for b in plan.buffers)
    verdicts, report = verify_graph(g, write_tflite(g), n_random=6, seed=4)
    assert all(v.exact for v in verdicts)
    assert report["arena_bytes"] == plan.arena_bytes


def test_split_input_read_later_is_no_view():
    """An output written in place later would overwrite the input, which another op still
    reads: no views then."""
    g = split_then_branches(np.random.default_rng(6))
    g.tensors["y"] = Tensor("y", (1, 16, 8, 8), "int8", g.tensor("y").quant)
    g.ops[-1] = Op("add", "ADD", ["c", "c"], ["y"], {"activation": "NONE"})  # c read after SPLIT
    verify(g)
    sched = schedule(g, patch="off")
    split = next(op for op in sched.graph.ops if op.kind == "SPLIT")
    assert "output_views" not in split.attrs


def test_report_shows_inputs_side_by_side():
    from tinyengine.memory.report import buffer_segments, live_table

    g = two_branches(np.random.default_rng(0))
    sched = schedule(g, patch="off")
    root = next(b.name for b in sched.plan.buffers
                if any(m.tensor == "cat" for m in buffer_segments(sched.graph, sched.plan)[b.name]))
    offsets = {m.tensor: m.offset for m in buffer_segments(sched.graph, sched.plan)[root]}
    assert offsets["a"] == 0 and offsets["b"] == 512 and offsets["cat"] == 0
    table = live_table(sched.graph, sched.plan)
    assert "[a | b]" in table and "side by side in one buffer" in table


def _conv_into(t: dict[str, Tensor], rng: np.random.Generator, x: str, out: str,
               shape: tuple[int, ...]) -> Op:
    w = rng.integers(-127, 128, (shape[3], 3, 3, t[x].shape[3]), dtype=np.int8)
    t[f"w_{out}"] = Tensor(f"w_{out}", w.shape, "int8",
                           _qp(np.full(shape[3], 0.01), np.zeros(shape[3])), w)
    t[out] = Tensor(out, shape, "int8", _qp(0.05, 0))
    return Op(f"conv_{out}", "CONV_2D", [x, f"w_{out}", ""], [out],
              {"stride": (1, 1), "padding": "SAME", "dilation": (1, 1), "activation": "NONE"})


def test_split_of_a_view_whose_source_is_read_later_is_no_view():
    """c -> RESHAPE r -> SPLIT(r): r shares c's buffer, and c is read after the split, so an op
    running in place over a split output must not be able to write into c (review finding)."""
    from .test_schedule_invariants import check_schedule

    rng = np.random.default_rng(0)
    q = _qp(0.05, 0)
    t = {"x": Tensor("x", (1, 16, 8, 4), "int8", _qp(0.05, 2))}
    ops = [_conv_into(t, rng, "x", "c", (1, 16, 8, 8))]
    for name, shape in (("r", (1, 16, 64, 1)), ("h0", (1, 8, 64, 1)), ("h1", (1, 8, 64, 1)),
                        ("k0", (1, 8, 64, 1)), ("cat", (1, 16, 64, 1)), ("cr", (1, 16, 8, 8))):
        t[name] = Tensor(name, shape, "int8", q)
    t["y"] = Tensor("y", (1, 16, 8, 8), "int8", _qp(0.1, 0))
    ops += [Op("reshape", "RESHAPE", ["c"], ["r"]),
            Op("split", "SPLIT", ["r"], ["h0", "h1"], {"axis": 1}),
            Op("relu", "RELU", ["h0"], ["k0"]),
            Op("concat", "CONCATENATION", ["k0", "h1"], ["cat"], {"axis": 1,
                                                                  "activation": "NONE"}),
            Op("reshape2", "RESHAPE", ["cat"], ["cr"]),
            Op("add", "ADD", ["cr", "c"], ["y"], {"activation": "NONE"})]
    g = Graph(t, ops, ["x"], ["y"], name="split_alias")
    verify(g)
    sched = schedule(g, patch="off")
    split = next(op for op in sched.graph.ops if op.kind == "SPLIT")
    assert "output_views" not in split.attrs
    check_schedule(sched)
    verdicts, _ = verify_graph(g, None, n_random=3, seed=1)
    assert all(v.exact for v in verdicts)


def test_two_inputs_in_one_buffer_take_no_views():
    """concat(a, reshape(a)): both inputs are one buffer, which cannot sit in two slices."""
    rng = np.random.default_rng(0)
    t = {"x": Tensor("x", (1, 8, 8, 4), "int8", _qp(0.05, 2))}
    ops = [_conv_into(t, rng, "x", "a", (1, 8, 8, 8))]
    t["b"] = Tensor("b", (1, 8, 8, 8), "int8", t["a"].quant)
    t["cat"] = Tensor("cat", (1, 16, 8, 8), "int8", t["a"].quant)
    t["y"] = Tensor("y", (1, 16, 8, 8), "int8", _qp(0.1, 0))
    ops += [Op("reshape", "RESHAPE", ["a"], ["b"]),
            Op("concat", "CONCATENATION", ["a", "b"], ["cat"], {"axis": 1,
                                                                "activation": "NONE"}),
            Op("relu", "RELU", ["cat"], ["y"])]
    g = Graph(t, ops, ["x"], ["y"], name="dup")
    verify(g)
    sched = schedule(g, patch="off")
    assert "views" not in next(op for op in sched.graph.ops if op.kind == "CONCATENATION").attrs
    verdicts, _ = verify_graph(g, None, n_random=3, seed=1)
    assert all(v.exact for v in verdicts)


def test_slice_along_rows_is_a_view(tflm):
    """SLICE of rows 4..11 of a (1, 16, 8, 8) tensor: one contiguous range, so a view."""
    from .test_schedule_invariants import check_schedule

    rng = np.random.default_rng(12)
    t = {"x": Tensor("x", (1, 16, 8, 4), "int8", _qp(0.05, 2))}
    ops = [_conv_into(t, rng, "x", "c", (1, 16, 8, 8))]
    t["s"] = Tensor("s", (1, 8, 8, 8), "int8", t["c"].quant)
    ops.append(Op("slice", "SLICE", ["c"], ["s"], {"begin": (0, 4, 0, 0)}))
    ops.append(_conv_into(t, rng, "s", "y", (1, 8, 8, 4)))
    g = Graph(t, ops, ["x"], ["y"], name="slice_view")
    verify(g)
    sched = schedule(g, patch="off")
    check_schedule(sched)
    op = next(o for o in sched.graph.ops if o.kind == "SLICE")
    assert op.attrs.get("output_views") == [4 * 8 * 8]
    assert sched.plan.offsets["s"] == sched.plan.offsets["c"] + 256
    verdicts, _ = verify_graph(g, write_tflite(g), n_random=4, seed=2)
    assert all(v.exact for v in verdicts)
    # A box that is not one range (columns 2..5 of every row) stays a copy.
    g.tensors["s"] = Tensor("s", (1, 16, 4, 8), "int8", t["c"].quant)
    g.ops[1] = Op("slice", "SLICE", ["c"], ["s"], {"begin": (0, 0, 2, 0)})
    g.tensors["y"] = Tensor("y", (1, 16, 4, 4), "int8", t["y"].quant)
    verify(g)
    op = next(o for o in schedule(g, patch="off").graph.ops if o.kind == "SLICE")
    assert "output_views" not in op.attrs
