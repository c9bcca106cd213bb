"""UNIDIRECTIONAL_SEQUENCE_LSTM (8x8->16 and 16x8), checked against TFLM and between layers.

1. The reference (tinyengine/ops/lstm.py) against TFLM over streams of invocations with the state
   carried, and again after reset: on micro_speech_lstm's LSTM, on the whole model, and on seeded
   random one-op graphs written with the TFLite writer (sizes, time steps, time-major and
   batch-major, cell clip off and on, several cell-state scales) for each variant.
2. csrc/te_lstm.c called straight through tests/ckernels.py with what emit() produces, state
   carried, against the reference; and generated projects (HostModel, the demo under ASan/UBSan).
3. Where the 16x8 path differs from the int8 one (the int64 rescale), a test fails if the int8
   rule is used; refusals name the op and the input.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine import quant
from tinyengine.errors import UnsupportedError
from tinyengine.frontend.tflite_writer import write_tflite
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.ops import get_op, lstm_params
from tinyengine.reference import ReferenceSession

from . import ckernels
from .conftest import MODELS, require

LSTM = "UNIDIRECTIONAL_SEQUENCE_LSTM"
MODEL = "tflm_micro_speech_lstm.tflite"
TE_OK, TE_ERR_ARG = 0, 1


def qp(scale: float, zp: int = 0) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


# ---------------------------------------------------------------------------------------------
# Seeded random one-op LSTM graphs
# ---------------------------------------------------------------------------------------------

def add_lstm(tensors: dict[str, Tensor], rng: np.random.Generator, dtype: str, tag: str,
             batches: int, steps: int, n_in: int, n_state: int, time_major: bool = False,
             cell_clip: float = 0.0, cell_power: int = -11) -> Op:
    """Adds one LSTM's tensors (input `tag`x, output `tag`y, state, weights) to `tensors` and
    returns the op. Scales are drawn so that gate pre-activations spread over a few units, as a
    trained model's do, rather than saturating every sigmoid."""
    wide = dtype == "int16"
    typical = 18900.0 if wide else 74.0  # E|x - zp| of uniform inputs
    s_x = float(rng.uniform(1e-4, 5e-4) if wide else rng.uniform(0.02, 0.1))
    zp_x = 0 if wide else int(rng.integers(-20, 21))
    s_h = float(rng.uniform(2e-5, 6e-5) if wide else rng.uniform(0.004, 0.01))
    zp_h = 0 if wide else int(rng.integers(-5, 6))
    bias_dtype = np.int64 if wide else np.int32
    x_shape = (steps, batches, n_in) if time_major else (batches, steps, n_in)
    y_shape = x_shape[:2] + (n_state,)
    names = [""] * 24
    names[0] = f"{tag}x"
    tensors[names[0]] = Tensor(names[0], x_shape, dtype, qp(s_x, zp_x))
    for g in range(4):
        s_w = float(rng.uniform(1.0, 4.0) / (s_x * typical * 73.0 * np.sqrt(n_in)))
        w = rng.integers(-127, 128, (n_state, n_in)).astype(np.int8)
        names[1 + g] = f"{tag}w{g}"
        tensors[names[1 + g]] = Tensor(names[1 + g], w.shape, "int8", qp(s_w), w)
        s_r = float(rng.uniform(0.5, 2.0) / (36.0 * np.sqrt(n_state)))
        r = rng.integers(-127, 128, (n_state, n_state)).astype(np.int8)
        names[5 + g] = f"{tag}r{g}"
        tensors[names[5 + g]] = Tensor(names[5 + g], r.shape, "int8", qp(s_r), r)
        limit = int(1.0 / (s_x * s_w))
        b = rng.integers(-limit, limit + 1, n_state).astype(bias_dtype)
        names[12 + g] = f"{tag}b{g}"
        tensors[names[12 + g]] = Tensor(names[12 + g], b.shape, str(np.dtype(bias_dtype)),
                                        qp(s_x * s_w), b)
    names[18], names[19] = f"{tag}h", f"{tag}c"
    tensors[names[18]] = Tensor(names[18], (batches, n_state), dtype, qp(s_h, zp_h),
                                variable=True)
    tensors[names[19]] = Tensor(names[19], (batches, n_state), "int16",
                                qp(2.0 ** cell_power), variable=True)
    tensors[f"{tag}y"] = Tensor(f"{tag}y", y_shape, dtype, qp(s_h, zp_h))
    return Op(f"{tag}lstm", LSTM, names, [f"{tag}y"],
              {"activation": "TANH", "cell_clip": float(np.float32(cell_clip)), "proj_clip": 0.0,
               "time_major": time_major})


def lstm_graph(seed: int, dtype: str, **shape: Any) -> Graph:
    rng = np.random.default_rng(seed)
    tensors: dict[str, Tensor] = {}
    op = add_lstm(tensors, rng, dtype, "", **shape)
    g = Graph(tensors, [op], [op.inputs[0]], op.outputs, name=f"lstm_{dtype}_{seed}")
    verify(g)
    return g


def random_input(rng: np.random.Generator, t: Tensor) -> np.ndarray:
    info = np.iinfo(t.dtype)
    return rng.integers(info.min, info.max + 1, t.shape).astype(t.dtype)


def random_case(seed: int, dtype: str) -> Graph:
    """A seeded configuration: sizes, layout, clip and cell scale drawn from the seed."""
    rng = np.random.default_rng(1000 + seed)
    return lstm_graph(seed, dtype, batches=int(rng.integers(1, 4)),
                      steps=int(rng.integers(1, 6)), n_in=int(rng.integers(1, 24)),
                      n_state=int(rng.integers(1, 17)), time_major=bool(seed % 2),
                      cell_clip=[0.0, 0.0, 0.4, 1.5, 6.0][seed % 5],
                      cell_power=[-11, -12, -10, -13, -15, -8][seed % 6])


def streams(seed: int, graph: Graph, n: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[random_input(rng, graph.tensor(name)) for name in graph.inputs] for _ in range(n)]


def run_stream(session: Any, cases: list[list[np.ndarray]], reset_after: int) -> list[np.ndarray]:
    """Invoke `session` on every case, state carried, resetting once after `reset_after`."""
    outs = []
    for k, case in enumerate(cases):
        if k == reset_after:
            session.reset()
        outs.extend(session.invoke(case))
    return outs


def assert_streams_equal(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_array_equal(a, b, err_msg=f"invocation {k}")


# ---------------------------------------------------------------------------------------------
# micro_speech_lstm
# ---------------------------------------------------------------------------------------------

def _model(shared_models: Path) -> tuple[bytes, Graph]:
    from tinyengine.frontend.tflite_reader import load_tflite

    path = shared_models / MODEL
    require(path.is_file(), f"{path} is absent")
    return path.read_bytes(), load_tflite(path)


def _prefix_graph(g: Graph, n_ops: int) -> Graph:
    """The model's first n_ops ops, with the last one's output as the graph output."""
    ops = g.ops[:n_ops]
    used = {n for op in ops for n in op.inputs + op.outputs if n}
    return Graph({n: t for n, t in g.tensors.items() if n in used}, ops, list(g.inputs),
                 list(ops[-1].outputs), name=f"{g.name}_{n_ops}")


def test_micro_speech_lstm_reads_as_the_standard_lstm(shared_models):
    _, g = _model(shared_models)
    op = g.ops[0]
    assert op.kind == LSTM and len(op.inputs) == 24
    assert [k for k, n in enumerate(op.inputs) if not n] == [9, 10, 11, 16, 17, 20, 21, 22, 23]
    assert op.attrs == {"activation": "TANH", "cell_clip": 10.0, "proj_clip": 0.0,
                        "time_major": False}
    opdef = get_op(LSTM)
    assert opdef.state_inputs(g, op) == [18, 19]
    assert opdef.kernel(g, op) == "te_lstm_s8"
    p = lstm_params.lstm_params(g, op)
    # cell scale 2^-11: tanh's input scaling 3 << 1; clip 10.0 / 2^-11 = 20480.
    assert (p.tanh_mult, p.tanh_shift, p.cell_clip) == (6, 0, 20480)
    assert p.forget_mul == (1 << 30, -14)
    assert opdef.macs(g, op) == 49 * 4 * 80 * (257 + 80)


@pytest.mark.parametrize("n_ops", [1, 3, 4], ids=["lstm", "logits", "model"])
def test_micro_speech_lstm_streams_match_tflm(shared_models, tflm, n_ops):
    """The LSTM alone (its [1, 49, 80] output), up to the logits, and the whole model: 10
    invocations with state carried, reset, 3 more; reference == TFLM at every one."""
    model, g = _model(shared_models)
    sub = g if n_ops == len(g.ops) else _prefix_graph(g, n_ops)
    data = model if sub is g else write_tflite(sub)
    rng = np.random.default_rng(n_ops)
    # Spectrogram-like inputs: mostly quiet (near the zero point -128) with louder bands.
    cases = [[np.clip(rng.integers(-128, -40, (1, 49, 257)) + rng.integers(0, 2, (1, 1, 257))
                      * rng.integers(0, 120, (1, 49, 257)), -128, 127).astype(np.int8)]
             for _ in range(13)]
    want = run_stream(tflm.TflmSession(data), cases, reset_after=10)
    got = run_stream(ReferenceSession(sub), cases, reset_after=10)
    assert_streams_equal(got, want)
    if n_ops == 1:  # the state matters: a fresh start on the second input differs from it
        assert not np.array_equal(ReferenceSession(sub).invoke(cases[1])[0], want[1])
        np.testing.assert_array_equal(got[10], ReferenceSession(sub).invoke(cases[10])[0])


# ---------------------------------------------------------------------------------------------
# Random one-op graphs against TFLM
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("seed", range(10))
def test_random_lstm_matches_tflm(tflm, dtype, seed):
    g = random_case(seed, dtype)
    cases = streams(seed, g, 4)
    want = run_stream(tflm.TflmSession(write_tflite(g)), cases, reset_after=3)
    got = run_stream(ReferenceSession(g), cases, reset_after=3)
    assert_streams_equal(got, want)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_cell_clip_changes_the_result_and_matches_tflm(tflm, dtype):
    """A clip tight enough to bind: the outputs differ from the unclipped LSTM's, and equal
    TFLM's (so the clip test above cannot pass with the clip ignored)."""
    results = {}
    for clip in (0.0, 0.3):
        g = lstm_graph(77, dtype, batches=2, steps=5, n_in=9, n_state=12, cell_clip=clip,
                       cell_power=-12)
        x = streams(3, g, 2)
        want = run_stream(tflm.TflmSession(write_tflite(g)), x, reset_after=2)
        got = run_stream(ReferenceSession(g), x, reset_after=2)
        assert_streams_equal(got, want)
        results[clip] = got
    assert any(not np.array_equal(a, b) for a, b in zip(results[0.0], results[0.3]))


def test_16x8_uses_the_int64_rescale(tflm, monkeypatch):
    """TFLM rescales the 16x8 gate products with the int64 MultiplyByQuantizedMultiplier
    (multiplier rounded to Q15, one rounding); the int32 rule, the 8x8 path's, gives other
    outputs on the same graph."""
    # 5 * 0.7071 / 8 = 0.44: the int32 rule rounds twice (5 * 0.7071 -> 4, 4 / 8 -> 1); the
    # int64 rule once, (5 * 23170 + 2^17) >> 18 = 0.
    m = 1518500250  # 0.7071 in Q31; in Q15 (m + 2^15) >> 16 = 23170
    assert quant.multiply_by_quantized_multiplier(np.array([5]), m, -3).item() == 1
    assert lstm_params.mbqm64(np.array([5]), m, -3).item() == 0
    g = lstm_graph(3, "int16", batches=1, steps=4, n_in=16, n_state=8)
    cases = streams(9, g, 2)
    want = run_stream(tflm.TflmSession(write_tflite(g)), cases, reset_after=2)
    assert_streams_equal(run_stream(ReferenceSession(g), cases, reset_after=2), want)
    monkeypatch.setattr(lstm_params, "mbqm64", lambda acc, m, s: np.clip(
        quant.multiply_by_quantized_multiplier(acc, m, s), -(1 << 31), (1 << 31) - 1))
    wrong = run_stream(ReferenceSession(g), cases, reset_after=2)
    assert any(not np.array_equal(a, b) for a, b in zip(wrong, want))


def test_gate_multipliers_multiply_the_scales_in_double(tflm, monkeypatch):
    """Each gate FC's multiplier is double(s_x) * double(s_w) / 2^-12, as for FULLY_CONNECTED
    (fully_connected.py): on this graph the float32 product of the TFLM source text gives other
    multipliers and other outputs, and TFLM agrees with the double product."""
    g = random_case(241, "int16")
    cases = streams(241, g, 3)
    want = run_stream(tflm.TflmSession(write_tflite(g)), cases, reset_after=3)
    assert_streams_equal(run_stream(ReferenceSession(g), cases, reset_after=3), want)

    def float_product(a: Tensor, w: Tensor) -> tuple[int, int]:
        product = np.float32(np.float32(a.scale) * np.float32(w.scale))
        return quant.quantize_multiplier(float(product) / lstm_params.GATE_INPUT_SCALE)

    monkeypatch.setattr(lstm_params, "fc_multiplier", float_product)
    wrong = run_stream(ReferenceSession(g), cases, reset_after=3)
    assert any(not np.array_equal(a, b) for a, b in zip(wrong, want))


def test_fixed_point_nonlinearities_pinned():
    """sigmoid16 / tanh16 at hand-worked points. sigmoid: 0 -> 1/2; x = 1000: v = 3000,
    uh = 5, ut = 440 between table entries 36169 and 36843; x = 32767: v = 98301, uh = 191,
    ut = 509 between 65513 and 65514 (the LSTM's sigmoid never reaches the saturation branch);
    negative inputs by symmetry, 1 - sigmoid. tanh: |v| >> 8 >= 255 saturates to +-32767."""
    def interp(ua: int, ub: int, ut: int) -> int:
        return (ua << 9) + ut * (ub - ua)

    s = lstm_params.sigmoid16(np.array([0, 1000, -1000, 32767, -32768]))
    assert s.tolist() == [16384, (interp(36169, 36843, 440) + 512) >> 10,
                          ((1 << 25) - interp(36169, 36843, 440) + 511) >> 10,
                          (interp(65513, 65514, 509) + 512) >> 10,
                          ((1 << 25) - (65514 << 9) + 511) >> 10]  # v = -98304: uh 192, ut 0
    t = lstm_params.tanh16(np.array([0, 32767, -32768]), 3, 0)
    assert t.tolist() == [0, 32767, -32767]
    assert lstm_params.tanh_scaling(-12) == (3, 0)
    assert lstm_params.tanh_scaling(-11) == (6, 0)
    assert lstm_params.tanh_scaling(-15) == (3, 3)


# ---------------------------------------------------------------------------------------------
# The C kernels
# ---------------------------------------------------------------------------------------------

_CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct {
    int32_t batches, time_steps, n_input, n_state, time_major, input_offset, hidden_offset,
        hidden_zero_point, hidden_min, hidden_max;
    int32_t input_mult[4], input_shift[4], recurrent_mult[4], recurrent_shift[4];
    int32_t forget_mult, forget_shift, update_mult, update_shift, hidden_mult, hidden_shift,
        cell_clip, tanh_mult, tanh_shift;
} te_lstm_params_t;
te_status_t te_lstm_s8(const te_lstm_params_t *p, const int8_t *input,
    const int8_t *input_weights, const int8_t *recurrent_weights, const int32_t *bias,
    int8_t *hidden_state, int16_t *cell_state, int8_t *output);
te_status_t te_lstm_s16(const te_lstm_params_t *p, const int16_t *input,
    const int8_t *input_weights, const int8_t *recurrent_weights, const int64_t *bias,
    int16_t *hidden_state, int16_t *cell_state, int16_t *output);
"""


@pytest.fixture(scope="module")
def lib() -> tuple[Any, Any]:
    return ckernels.build(["te_requant16.h", "te_lstm.h"], ["te_lstm.c"], _CDEF)


def _c_invoke(lib: tuple[Any, Any], g: Graph, params: dict[str, Any], x: np.ndarray,
              h: np.ndarray, c: np.ndarray) -> tuple[int, np.ndarray]:
    ffi, c_lib = lib
    op = g.ops[0]
    em = get_op(LSTM).emit(g, op)
    consts = {k.name: np.ascontiguousarray(k.values) for k in em.consts}
    y = np.zeros(g.tensor(op.outputs[0]).shape, g.tensor(op.outputs[0]).dtype)
    fn = c_lib.te_lstm_s16 if em.kernel == "te_lstm_s16" else c_lib.te_lstm_s8
    act = "int16_t" if x.dtype == np.int16 else "int8_t"
    bias = "int64_t" if x.dtype == np.int16 else "int32_t"
    status = fn(ffi.new("te_lstm_params_t *", params),
                ffi.from_buffer(f"{act}[]", np.ascontiguousarray(x)),
                ffi.from_buffer("int8_t[]", consts["input_weights"]),
                ffi.from_buffer("int8_t[]", consts["recurrent_weights"]),
                ffi.from_buffer(f"{bias}[]", consts["bias"]),
                ffi.from_buffer(f"{act}[]", h), ffi.from_buffer("int16_t[]", c),
                ffi.from_buffer(f"{act}[]", y))
    return status, y


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("seed", range(12))
def test_c_kernel_matches_reference(lib, dtype, seed):
    """Output and both state arrays after each of 3 chained invocations."""
    g = random_case(100 + seed, dtype)
    op = g.ops[0]
    em = get_op(LSTM).emit(g, op)
    assert em.kernel == ("te_lstm_s16" if dtype == "int16" else "te_lstm_s8")
    h_t, c_t = g.tensor(op.inputs[18]), g.tensor(op.inputs[19])
    h_ref = np.full(h_t.shape, h_t.reset_value, h_t.dtype)
    c_ref = np.zeros(c_t.shape, np.int16)
    h_c, c_c = h_ref.copy(), c_ref.copy()
    for (x,) in streams(seed, g, 3):
        ins = [x] + [g.tensor(n).data if n and g.tensor(n).data is not None else None
                     for n in op.inputs[1:]]
        ins[18], ins[19] = h_ref, c_ref
        (want,) = get_op(LSTM).reference(g, op, ins)  # type: ignore[arg-type]
        status, got = _c_invoke(lib, g, em.params, x, h_c, c_c)
        assert status == TE_OK
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(h_c, h_ref)
        np.testing.assert_array_equal(c_c, c_ref)


def test_c_kernel_refuses_outside_its_domain(lib):
    g = random_case(1, "int16")
    op = g.ops[0]
    params = get_op(LSTM).emit(g, op).params
    x = np.zeros(g.tensor(op.inputs[0]).shape, np.int16)
    h = np.zeros(g.tensor(op.inputs[18]).shape, np.int16)
    c = np.zeros(g.tensor(op.inputs[19]).shape, np.int16)
    bad = [("n_state", 0), ("input_shift", [8, 0, 0, 0]), ("tanh_shift", 32),
           ("hidden_offset", 1), ("cell_clip", -1), ("tanh_mult", 0)]
    for field, value in bad:
        status, _ = _c_invoke(lib, g, {**params, field: value}, x, h, c)
        assert status == TE_ERR_ARG, field


# ---------------------------------------------------------------------------------------------
# Generated projects: HostModel streams, ASan/UBSan, micro_speech_lstm's figures
# ---------------------------------------------------------------------------------------------

def two_lstm_graph() -> Graph:
    """An int8 and a 16x8 LSTM side by side: both kernels, four state tensors, one project."""
    rng = np.random.default_rng(42)
    tensors: dict[str, Tensor] = {}
    a = add_lstm(tensors, rng, "int8", "a_", batches=2, steps=3, n_in=7, n_state=5,
                 cell_clip=1.0)
    b = add_lstm(tensors, rng, "int16", "b_", batches=2, steps=2, n_in=5, n_state=6,
                 time_major=True, cell_power=-12)
    g = Graph(tensors, [a, b], [a.inputs[0], b.inputs[0]], a.outputs + b.outputs, name="two")
    verify(g)
    return g


def test_compiled_project_streams_match_reference_and_tflm(tmp_path, tflm):
    from tinyengine.api import compile_model
    from tinyengine.runtime.host import HostModel

    g = two_lstm_graph()
    compile_model(g, tmp_path / "proj")
    cases = streams(8, g, 10)
    want = run_stream(tflm.TflmSession(write_tflite(g)), cases, reset_after=7)
    assert_streams_equal(run_stream(ReferenceSession(g), cases, reset_after=7), want)
    assert_streams_equal(run_stream(HostModel(tmp_path / "proj"), cases, reset_after=7), want)


def test_compiled_project_is_sanitizer_clean(tmp_path):
    """The demo program carries state from record to record: its outputs equal a reference
    session's over the same stream, with no ASan/UBSan report."""
    from tinyengine.api import compile_model

    g = two_lstm_graph()
    project = tmp_path / "proj"
    compile_model(g, project)
    san = "-fsanitize=address,undefined -fno-sanitize-recover=all"
    subprocess.run(["make", "-s", "-C", str(project),
                    f"CFLAGS=-std=c99 -O1 -g -Wall -Wextra -Werror {san}", f"LDFLAGS={san}"],
                   check=True, capture_output=True, text=True)
    cases = streams(11, g, 5)
    data_in, data_out = project / "in.bin", project / "out.bin"
    data_in.write_bytes(b"".join(x.tobytes() for case in cases for x in case))
    run = subprocess.run([str(project / "model_demo"), str(data_in), str(data_out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "runtime error" not in run.stderr and "AddressSanitizer" not in run.stderr
    session = ReferenceSession(g)
    want = b"".join(y.tobytes() for case in cases for y in session.invoke(case))
    assert data_out.read_bytes() == want


def test_micro_speech_lstm_compiles_and_streams_match(shared_models, tflm, tmp_path):
    """The acceptance check: C == reference == TFLM on 20 random inputs as one stream, then
    after reset; arena + state within TFLM's head + its variable bytes."""
    from tinyengine.api import compile_model
    from tinyengine.runtime.host import HostModel

    model, g = _model(shared_models)
    compile_model(MODELS / MODEL, tmp_path / "proj")
    host = HostModel(tmp_path / "proj")
    rng = np.random.default_rng(20)
    cases = [[rng.integers(-128, 128, (1, 49, 257)).astype(np.int8)] for _ in range(25)]
    want = run_stream(tflm.TflmSession(model), cases, reset_after=20)
    assert_streams_equal(run_stream(ReferenceSession(g), cases, reset_after=20), want)
    assert_streams_equal(run_stream(host, cases, reset_after=20), want)
    figures = tflm.tflm_arena(model)
    report = host.report
    assert report["persistent_bytes"] == figures["variable"] == 240
    assert report["arena_bytes"] + report["persistent_bytes"] <= \
        figures["head"] + figures["variable"]


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------

def _variant(mutate: Any) -> Graph:
    g = lstm_graph(4, "int8", batches=1, steps=2, n_in=4, n_state=3)
    mutate(g, g.ops[0])
    return g


def _add_vector(g: Graph, op: Op, k: int, name: str, dtype: str = "int16") -> None:
    n = g.tensor(op.inputs[19]).shape[1]
    g.tensors[name] = Tensor(name, (n,), dtype, qp(0.01), np.ones(n, dtype))
    op.inputs[k] = name


def _per_channel(g: Graph, op: Op) -> None:
    w = g.tensor(op.inputs[2])
    w.quant = QuantParams(np.full(w.shape[0], 0.01, np.float32), np.zeros(w.shape[0], np.int64))


def _not_variable(g: Graph, op: Op) -> None:
    g.tensor(op.inputs[19]).variable = False
    g.inputs.append(op.inputs[19])


def _cifg(g: Graph, op: Op) -> None:
    for k in (1, 5, 12):
        op.inputs[k] = ""


REFUSALS = {
    "peephole": (lambda g, op: _add_vector(g, op, 10, "peep"), r"input 10 \(peep\).*peephole"),
    "projection": (lambda g, op: _add_vector(g, op, 17, "proj", "int32"),
                   r"input 17 \(proj\).*projection"),
    "layer_norm": (lambda g, op: _add_vector(g, op, 21, "ln"), r"input 21 \(ln\).*layer-norm"),
    "cifg": (_cifg, r"CIFG"),
    "missing_forget": (lambda g, op: op.inputs.__setitem__(6, ""),
                       r"recurrent-to-forget weights \(input 6\) is absent"),
    "activation": (lambda g, op: op.attrs.__setitem__("activation", "RELU"), r"RELU.*TANH"),
    "per_channel": (_per_channel, r"input-to-forget weights .* per channel"),
    "weights_zero_point": (lambda g, op: setattr(g.tensor(op.inputs[3]), "quant", qp(0.01, 3)),
                           r"input-to-cell weights .* zero point 3"),
    "cell_scale": (lambda g, op: setattr(g.tensor(op.inputs[19]), "quant", qp(0.0003)),
                   r"cell state .* not a power of two"),
    "cell_int8": (lambda g, op: setattr(g.tensor(op.inputs[19]), "dtype", "int8"),
                  r"cell state .* must be int16"),
    "not_variable": (_not_variable, r"cell state c \(input 19\) must be a variable"),
    "bias_type": (lambda g, op: setattr(g.tensor(op.inputs[13]), "dtype", "int64"),
                  r"forget gate bias .* must be a constant int32"),
    "inputs": (lambda g, op: op.inputs.pop(), r"takes TFLite's 24 inputs"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_name_the_op_and_input(case):
    mutate, pattern = REFUSALS[case]
    g = _variant(mutate)
    if case == "bias_type":
        b = g.tensor(g.ops[0].inputs[13])
        b.data = b.data.astype(np.int64)  # type: ignore[union-attr]
    if case == "cell_int8":
        g.tensor(g.ops[0].inputs[19]).quant = qp(2.0 ** -7)
    with pytest.raises(UnsupportedError, match=r"op lstm \(UNIDIRECTIONAL_SEQUENCE_LSTM\)"):
        get_op(LSTM).check(g, g.ops[0])
    with pytest.raises(UnsupportedError, match=pattern):
        get_op(LSTM).check(g, g.ops[0])


def test_accumulator_and_rescale_domains_refused():
    g = lstm_graph(6, "int8", batches=1, steps=1, n_in=4, n_state=3)
    b = g.tensor(g.ops[0].inputs[12])
    b.data = np.full(b.shape, (1 << 31) - 100, np.int32)
    with pytest.raises(UnsupportedError, match="input gate's product .* int32 accumulator"):
        get_op(LSTM).check(g, g.ops[0])
    g = lstm_graph(6, "int16", batches=1, steps=1, n_in=4, n_state=3)
    x = g.tensor(g.ops[0].inputs[0])
    x.quant = qp(40.0)  # 40 * s_w / 2^-12 needs a left shift beyond the int64 rule's 7
    with pytest.raises(UnsupportedError, match="int64 rescale takes shifts up to 7"):
        get_op(LSTM).check(g, g.ops[0])


def test_tflite_round_trip_keeps_absent_inputs_and_options():
    from tinyengine.frontend.tflite_reader import parse_tflite

    g = lstm_graph(8, "int16", batches=2, steps=3, n_in=4, n_state=5, time_major=True,
                   cell_clip=2.5)
    back = parse_tflite(write_tflite(g))
    op = back.ops[0]
    assert op.inputs == g.ops[0].inputs
    assert op.attrs == g.ops[0].attrs
    assert back.tensor(op.inputs[18]).variable and back.tensor(op.inputs[19]).variable
    with pytest.raises(UnsupportedError, match="24 inputs, got 23"):
        get_op(LSTM).from_tflite(None, [None] * 23)
