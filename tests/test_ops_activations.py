"""RELU, RELU6, LEAKY_RELU, PRELU, HARD_SWISH, LOGISTIC and TANH: int8 activations.

1. Each op's numpy reference against TFLM on every int8 input value (the ops are element-wise,
   so 256 values cover the input domain) for seeded random quantisation parameters.
2. The generated C against the reference and TFLM (verify_graph), with the kernels running in
   place, and under ASan/UBSan.
3. A few rounding rules worked out by hand, the C kernels' argument checks, and the refusals
   (named by op and tensor) of what TFLite's kernels do not define.
4. ONNX: PyTorch activations compiled end to end; HardSigmoid's import as a 1x1 depthwise conv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinyengine.errors import UnsupportedError
from tinyengine.ir import Graph, Op, QuantParams, Tensor, verify
from tinyengine.reference import run_reference

from . import ckernels

TE_OK, TE_ERR_ARG = 0, 1
FIXED = {"LOGISTIC": (1.0 / 256.0, -128), "TANH": (1.0 / 128.0, 0)}
UNARY = ("RELU", "RELU6", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH")
ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


def qp(scale: float, zp: int) -> QuantParams:
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def unary_graph(kind: str, shape: tuple[int, ...], s_in: float, z_in: int, s_out: float,
                z_out: int, attrs: dict[str, Any] | None = None) -> Graph:
    t = {"x": Tensor("x", shape, "int8", qp(s_in, z_in)),
         "y": Tensor("y", shape, "int8", qp(s_out, z_out))}
    return Graph(t, [Op("act", kind, ["x"], ["y"], dict(attrs or {}))], ["x"], ["y"],
                 name=kind.lower())


def random_params(kind: str, rng: np.random.Generator) -> tuple[float, int, float, int,
                                                               dict[str, Any]]:
    """Quantisation parameters (and attrs) in the op's domain."""
    s_in, z_in = float(10 ** rng.uniform(-3.5, 0.5)), int(rng.integers(-128, 128))
    s_out, z_out = float(s_in * 10 ** rng.uniform(-1.5, 1.0)), int(rng.integers(-128, 128))
    attrs: dict[str, Any] = {}
    if kind == "RELU6":
        s_out, z_out = s_in, z_in
    elif kind in FIXED:
        s_out, z_out = FIXED[kind]
    elif kind == "HARD_SWISH":
        s_out = float(s_in * 10 ** rng.uniform(-2.0, 1.0))  # at least s_in / 128
    elif kind == "LEAKY_RELU":
        attrs["alpha"] = float(rng.choice([0.0, 0.01, rng.uniform(0, 1), rng.uniform(1, 3),
                                           rng.uniform(-2, 0)]))
    return s_in, z_in, s_out, z_out, attrs


def tflm_answer(tflm: Any, graph: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    from tinyengine.frontend.tflite_writer import write_tflite

    return tflm.run_tflm(write_tflite(graph), inputs)[0]


# ---------------------------------------------------------------------------------------------
# 1. reference == TFLM on every int8 input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", UNARY)
def test_reference_matches_tflm_on_every_input(tflm, kind):
    rng = np.random.default_rng(sum(map(ord, kind)))
    shapes = [(256,), (16, 16), (1, 4, 8, 8), (2, 2, 64)]
    for trial in range(24):
        shape = shapes[trial % len(shapes)]
        s_in, z_in, s_out, z_out, attrs = random_params(kind, rng)
        graph = unary_graph(kind, shape, s_in, z_in, s_out, z_out, attrs)
        verify(graph)
        x = rng.permutation(ALL_INT8).reshape(shape)
        want = tflm_answer(tflm, graph, [x]).reshape(shape)
        got = run_reference(graph, [x])[0]
        assert got.dtype == np.int8 and got.shape == shape
        np.testing.assert_array_equal(got, want, err_msg=f"{kind} {s_in} {z_in} {s_out} "
                                                         f"{z_out} {attrs}")


@pytest.mark.parametrize("s_in, s_out", [
    (0.02, 0.02 / 100),   # HARD_SWISH output exponent 0: the int16 accumulator can wrap
    (0.02, 0.05),         # reluish exponent > 0 (s_in > 3/256)
    (0.001, 0.0005),      # reluish exponent < 0
    (3.0 / 256, 0.01),    # reluish multiplier exactly 1
])
def test_hard_swish_edges_match_tflm(tflm, s_in, s_out):
    for z_in, z_out in ((-128, 127), (0, -128), (127, 0)):
        graph = unary_graph("HARD_SWISH", (256,), s_in, z_in, s_out, z_out)
        np.testing.assert_array_equal(run_reference(graph, [ALL_INT8])[0],
                                      tflm_answer(tflm, graph, [ALL_INT8]))


@pytest.mark.parametrize("s_in, z_in, s_out, z_out, at, want", [
    (0.027077799809251474, -72, 0.01746385756782071, -110, 27, 44),
    (0.0015109666437021821, 109, 0.00016433474280584011, -128, 127, 37),
])
def test_relu_rescale_is_a_double_quotient(tflm, s_in, z_in, s_out, z_out, at, want):
    """TFLM's RELU multiplier is double(s_in) / double(s_out) (the installed build; its source
    reads as a float32 quotient): with these scales the float32 quotient gives one output off by
    one (43 and 38)."""
    graph = unary_graph("RELU", (256,), s_in, z_in, s_out, z_out)
    ours = run_reference(graph, [ALL_INT8])[0]
    assert int(ours[at + 128]) == want
    np.testing.assert_array_equal(ours, tflm_answer(tflm, graph, [ALL_INT8]))


def prelu_graph(rng: np.random.Generator, shape: tuple[int, ...], a_shape: tuple[int, ...],
                const: bool) -> Graph:
    s_in, z_in = float(10 ** rng.uniform(-3, 0)), int(rng.integers(-128, 128))
    s_out, z_out = float(s_in * 10 ** rng.uniform(-1, 1)), int(rng.integers(-128, 128))
    s_a, z_a = float(10 ** rng.uniform(-3, 0)), int(rng.integers(-128, 128))
    data = rng.integers(-128, 128, a_shape).astype(np.int8) if const else None
    t = {"x": Tensor("x", shape, "int8", qp(s_in, z_in)),
         "alpha": Tensor("alpha", a_shape, "int8", qp(s_a, z_a), data),
         "y": Tensor("y", shape, "int8", qp(s_out, z_out))}
    inputs = ["x"] if const else ["x", "alpha"]
    return Graph(t, [Op("prelu", "PRELU", ["x", "alpha"], ["y"])], inputs, ["y"], name="prelu")


PRELU_SHAPES = [((1, 4, 5, 6), (6,)), ((1, 4, 5, 6), (1, 1, 6)), ((1, 4, 5, 6), (5, 1)),
                ((1, 4, 5, 6), (1,)), ((2, 3, 7), (3, 7)), ((3, 9), (9,)),
                ((1, 2, 3, 4), (1, 2, 3, 4))]


def test_prelu_reference_matches_tflm(tflm):
    rng = np.random.default_rng(7)
    for trial in range(3 * len(PRELU_SHAPES)):
        shape, a_shape = PRELU_SHAPES[trial % len(PRELU_SHAPES)]
        graph = prelu_graph(rng, shape, a_shape, const=trial % 3 != 2)
        verify(graph)
        ins = [rng.integers(-128, 128, shape).astype(np.int8)]
        if len(graph.inputs) == 2:
            ins.append(rng.integers(-128, 128, a_shape).astype(np.int8))
        np.testing.assert_array_equal(run_reference(graph, ins)[0],
                                      tflm_answer(tflm, graph, ins).reshape(shape))


# ---------------------------------------------------------------------------------------------
# 2. C == reference == TFLM, in place, and under the sanitizers
# ---------------------------------------------------------------------------------------------

def chain_graph(rng: np.random.Generator) -> Graph:
    """x -> RELU -> LEAKY_RELU -> HARD_SWISH -> PRELU -> RELU6 -> LOGISTIC -> TANH."""
    shape = (1, 5, 6, 8)
    kinds = ["RELU", "LEAKY_RELU", "HARD_SWISH", "PRELU", "RELU6", "LOGISTIC", "TANH"]
    t = {"x": Tensor("x", shape, "int8", qp(0.05, 3))}
    ops, prev, scale = [], "x", 0.05
    for i, kind in enumerate(kinds):
        name = f"t{i}"
        s, z = float(scale * rng.uniform(0.4, 1.5)), int(rng.integers(-100, 100))
        if kind == "RELU6":
            s, z = t[prev].scale, t[prev].zero_point
        s, z = FIXED.get(kind, (s, z))
        t[name] = Tensor(name, shape, "int8", qp(s, z))
        inputs, attrs = [prev], {}
        if kind == "LEAKY_RELU":
            attrs["alpha"] = -0.3
        if kind == "PRELU":
            t["slope"] = Tensor("slope", (8,), "int8", qp(0.01, -5),
                                rng.integers(-128, 128, (8,)).astype(np.int8))
            inputs.append("slope")
        ops.append(Op(kind.lower(), kind, inputs, [name], attrs))
        prev, scale = name, s
    return Graph(t, ops, ["x"], [prev], name="activations")


def test_c_matches_reference_and_tflm(tflm, tmp_path):
    from tinyengine.frontend.tflite_writer import write_tflite
    from tinyengine.verify import verify_graph

    graph = chain_graph(np.random.default_rng(11))
    verify(graph)
    # Every int8 value reaches the first op in one of the inputs.
    given = [[np.resize(np.random.default_rng(12).permutation(ALL_INT8), (1, 5, 6, 8))]]
    verdicts, _ = verify_graph(graph, write_tflite(graph), given=given, n_random=4, seed=13)
    assert all(v.exact for v in verdicts), [v.line(0) for v in verdicts]


def test_in_place_and_sanitized(tmp_path: Path):
    from tinyengine.codegen import compile_graph
    from tinyengine.memory.inplace import alias_groups
    from tinyengine.runtime import HostModel

    from .sanitized import check_sanitized_demo

    graph = chain_graph(np.random.default_rng(21))
    for op in graph.ops:
        op.attrs["inplace"] = 0  # each output overwrites its input, which dies there
    groups = alias_groups(graph)
    assert len({groups[n] for n in ["x"] + [op.outputs[0] for op in graph.ops]}) == 1
    compile_graph(graph, tmp_path / "p", prefix="act", patch="off", inplace=False)
    rng = np.random.default_rng(22)
    cases = [[rng.integers(-128, 128, (1, 5, 6, 8)).astype(np.int8)] for _ in range(4)]
    host = HostModel(tmp_path / "p")
    for x in cases:
        np.testing.assert_array_equal(host.invoke(x)[0], run_reference(graph, x)[0])
    check_sanitized_demo(tmp_path / "p", "act", graph, cases)


# ---------------------------------------------------------------------------------------------
# 3. Hand-worked values, kernel argument checks, refusals
# ---------------------------------------------------------------------------------------------

def test_rounding_rules_by_hand():
    # RELU6's six = round(6 / scale) + zp rounds half away from zero: 6 / (6 / 10.5) = 10.5 -> 11
    # (half to even would give 10). 6/10.5 is not exact in float32; the quotient still lands on
    # 10.5 exactly, as checked here.
    s = float(np.float32(6.0 / 10.5))
    assert np.float32(6.0) / np.float32(s) == np.float32(10.5)
    graph = unary_graph("RELU6", (256,), s, 0, s, 0)
    y = run_reference(graph, [ALL_INT8])[0]
    assert y.min() == 0 and y.max() == 11
    # LOGISTIC(0) = 0.5 = 128/256 -> -128 + 128 = 0; TANH(0) = 0 -> 0. Far inputs saturate.
    for kind, mid in (("LOGISTIC", 0), ("TANH", 0)):
        g = unary_graph(kind, (256,), 0.1, 0, *FIXED[kind])
        y = run_reference(g, [ALL_INT8])[0]
        assert y[128] == mid and y[0] == -128 and y[-1] == 127
        assert np.all(np.diff(y.astype(int)) >= 0)
    # RELU with equal scales is a clamp at the output zero point: y = max(x - 7 + (-3), -3).
    g = unary_graph("RELU", (256,), 0.5, 7, 0.5, -3)
    y = run_reference(g, [ALL_INT8])[0].astype(int)
    np.testing.assert_array_equal(y, np.maximum(ALL_INT8.astype(int) - 10, -3).clip(-128, 127))
    # HARD_SWISH of real 0 is 0 (the output zero point); of -3 and below, also 0.
    g = unary_graph("HARD_SWISH", (256,), 0.05, 0, 0.05, 10)
    y = run_reference(g, [ALL_INT8])[0].astype(int)
    assert y[128] == 10 and np.all(y[:128 - 60] == 10)
    # LEAKY_RELU alpha -1 with equal scales: |x|.
    g = unary_graph("LEAKY_RELU", (256,), 0.1, 0, 0.1, 0, {"alpha": -1.0})
    y = run_reference(g, [ALL_INT8])[0].astype(int)
    np.testing.assert_array_equal(y, np.minimum(np.abs(ALL_INT8.astype(int)), 127))


CDEF = """
typedef enum { TE_OK = 0, TE_ERR_ARG = 1, TE_ERR_SCRATCH = 2 } te_status_t;
typedef struct { int32_t n; int32_t h; int32_t w; int32_t c; } te_dims_t;
typedef struct { int32_t size; int32_t input_zero_point; int32_t output_zero_point;
                 int32_t multiplier; int32_t shift; int32_t act_min; int32_t act_max;
               } te_relu_params_t;
typedef struct { int32_t size; int32_t lower; int32_t upper; } te_relu6_params_t;
typedef struct { int32_t size; int32_t input_zero_point; int32_t output_zero_point;
                 int32_t multiplier_identity; int32_t shift_identity;
                 int32_t multiplier_alpha; int32_t shift_alpha; } te_leaky_relu_params_t;
typedef struct { te_dims_t input; te_dims_t alpha; int32_t input_offset; int32_t alpha_offset;
                 int32_t output_offset; int32_t multiplier_identity; int32_t shift_identity;
                 int32_t multiplier_alpha; int32_t shift_alpha; } te_prelu_params_t;
typedef struct { int32_t size; int32_t input_zero_point; int32_t output_zero_point;
                 int32_t output_multiplier; int32_t output_exponent;
                 int32_t reluish_multiplier; int32_t reluish_exponent; } te_hard_swish_params_t;
typedef struct { int32_t size; } te_lut_params_t;
te_status_t te_relu_s8(const te_relu_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_relu6_s8(const te_relu6_params_t *p, const int8_t *input, int8_t *output);
te_status_t te_leaky_relu_s8(const te_leaky_relu_params_t *p, const int8_t *input,
                             int8_t *output);
te_status_t te_prelu_s8(const te_prelu_params_t *p, const int8_t *input, const int8_t *alpha,
                        int8_t *output);
te_status_t te_hard_swish_s8(const te_hard_swish_params_t *p, const int8_t *input,
                             int8_t *output);
te_status_t te_logistic_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                           int8_t *output);
te_status_t te_tanh_s8(const te_lut_params_t *p, const int8_t *input, const int8_t *table,
                       int8_t *output);
"""
HEADERS = ["te_activations.h", "te_leaky_relu.h", "te_prelu.h", "te_hard_swish.h",
           "te_logistic_tanh.h"]


@pytest.fixture(scope="module")
def kernels() -> tuple[Any, Any]:
    return ckernels.build(HEADERS, [h.replace(".h", ".c") for h in HEADERS], CDEF)


def test_kernels_refuse_arguments_outside_their_domain(kernels):
    ffi, lib = kernels
    x = np.zeros(4, np.int8)
    buf = ffi.from_buffer("int8_t[]", x)
    relu = {"size": 4, "input_zero_point": 0, "output_zero_point": 0, "multiplier": 1 << 30,
            "shift": 0, "act_min": 0, "act_max": 127}
    assert lib.te_relu_s8(ffi.new("te_relu_params_t *", relu), buf, buf) == TE_OK
    for bad in ({"shift": 31}, {"multiplier": -1}, {"act_min": 5, "act_max": 4}, {"size": 0}):
        p = ffi.new("te_relu_params_t *", {**relu, **bad})
        assert lib.te_relu_s8(p, buf, buf) == TE_ERR_ARG, bad
    assert lib.te_relu_s8(ffi.new("te_relu_params_t *", relu), ffi.NULL, buf) == TE_ERR_ARG
    assert lib.te_relu6_s8(ffi.new("te_relu6_params_t *", [4, 3, 2]), buf, buf) == TE_ERR_ARG
    leaky = {"size": 4, "input_zero_point": 0, "output_zero_point": 0,
             "multiplier_identity": 1 << 30, "shift_identity": 0,
             "multiplier_alpha": -(1 << 31), "shift_alpha": 0}
    assert lib.te_leaky_relu_s8(ffi.new("te_leaky_relu_params_t *", leaky), buf,
                                buf) == TE_ERR_ARG
    prelu = {"input": [1, 1, 1, 4], "alpha": [1, 1, 1, 3], "input_offset": 0,
             "alpha_offset": 0, "output_offset": 0, "multiplier_identity": 1 << 30,
             "shift_identity": 0, "multiplier_alpha": 1 << 30, "shift_alpha": 0}
    assert lib.te_prelu_s8(ffi.new("te_prelu_params_t *", prelu), buf, buf,
                           buf) == TE_ERR_ARG  # alpha's 3 channels do not broadcast into 4
    hs = {"size": 4, "input_zero_point": 0, "output_zero_point": 0, "output_multiplier": 20000,
          "output_exponent": 1, "reluish_multiplier": 20000, "reluish_exponent": 0}
    assert lib.te_hard_swish_s8(ffi.new("te_hard_swish_params_t *", hs), buf,
                                buf) == TE_ERR_ARG
    assert lib.te_tanh_s8(ffi.new("te_lut_params_t *", [4]), buf, ffi.NULL, buf) == TE_ERR_ARG


def test_kernels_in_place_equal_reference(kernels):
    ffi, lib = kernels
    from tinyengine.ops import get_op

    rng = np.random.default_rng(31)
    for kind in UNARY:
        s_in, z_in, s_out, z_out, attrs = random_params(kind, rng)
        graph = unary_graph(kind, (256,), s_in, z_in, s_out, z_out, attrs)
        op = graph.ops[0]
        em = get_op(kind).emit(graph, op)
        want = run_reference(graph, [ALL_INT8])[0]
        x = ALL_INT8.copy()
        buf = ffi.from_buffer("int8_t[]", x)
        p = ffi.new(f"{em.params_type} *", em.params)
        if em.consts:
            table = ffi.from_buffer("int8_t[]", em.consts[0].values.astype(np.int8))
            status = getattr(lib, em.kernel)(p, buf, table, buf)
        else:
            status = getattr(lib, em.kernel)(p, buf, buf)
        assert status == TE_OK
        np.testing.assert_array_equal(x, want, err_msg=kind)


def _refused(graph: Graph, *needles: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        verify(graph)
    for n in needles:
        assert n in str(e.value), (n, str(e.value))


def test_invalid_configurations_are_refused():
    # Fixed output parameters.
    _refused(unary_graph("LOGISTIC", (4,), 0.1, 0, 1 / 128, -128), "op act (LOGISTIC)",
             "output y", "0.00390625", "-128")
    _refused(unary_graph("LOGISTIC", (4,), 0.1, 0, 1 / 256, 0), "op act (LOGISTIC)", "y")
    _refused(unary_graph("TANH", (4,), 0.1, 0, 1 / 256, 0), "op act (TANH)", "output y",
             "0.0078125")
    # Non-int8 tensors.
    g = unary_graph("RELU", (4,), 0.1, 0, 0.1, 0)
    g.tensors["x"] = Tensor("x", (4,), "float32")
    _refused(g, "op act (RELU)", "tensor x is float32", "int8")
    g = unary_graph("HARD_SWISH", (4,), 0.1, 0, 0.1, 0)
    g.tensors["y"] = Tensor("y", (4,), "int16", qp(0.1, 0))
    _refused(g, "op act (HARD_SWISH)", "tensor y is int16")
    # RELU6 does not requantise; HARD_SWISH's output scale floor; scales too far apart.
    _refused(unary_graph("RELU6", (4,), 0.1, 0, 0.05, 0), "op act (RELU6)", "input x",
             "output y", "share")
    _refused(unary_graph("HARD_SWISH", (4,), 0.1, 0, 0.1 / 200, 0), "op act (HARD_SWISH)",
             "output scale")
    # The rescale 1e12 needs a left shift of 40: refused by the IR's multiplier rule.
    _refused(unary_graph("RELU", (4,), 1.0, 0, 1e-12, 0), "op act (RELU)", "multiplier")
    _refused(unary_graph("LOGISTIC", (4,), 1e-10, 0, 1 / 256, -128), "op act (LOGISTIC)",
             "input scale")
    # PRELU: alpha must broadcast into the input, and be int8 per tensor.
    rng = np.random.default_rng(41)
    g = prelu_graph(rng, (1, 4, 5, 6), (5,), const=True)
    _refused(g, "op prelu (PRELU)", "alpha alpha (5,)", "input x (1, 4, 5, 6)")
    g = prelu_graph(rng, (3, 4), (2, 3, 4), const=True)
    _refused(g, "op prelu (PRELU)", "does not broadcast")
    g = prelu_graph(rng, (1, 2, 2, 3), (3,), const=True)
    a = g.tensors["alpha"]
    g.tensors["alpha"] = Tensor("alpha", (3,), "int8", QuantParams(
        np.array([0.1, 0.2, 0.3], np.float32), np.zeros(3, np.int64)), a.data)
    _refused(g, "op prelu (PRELU)", "alpha alpha", "per channel")
    g = prelu_graph(rng, (1, 2, 2, 3), (3,), const=True)
    g.tensors["alpha"] = Tensor("alpha", (3,), "float32", None, np.ones(3, np.float32))
    _refused(g, "op prelu (PRELU)", "alpha alpha is float32")


def test_tflite_round_trip():
    from tinyengine.frontend.tflite_reader import parse_tflite
    from tinyengine.frontend.tflite_writer import write_tflite

    graph = chain_graph(np.random.default_rng(51))
    back = parse_tflite(write_tflite(graph))
    assert [op.kind for op in back.ops] == [op.kind for op in graph.ops]
    leaky = next(op for op in back.ops if op.kind == "LEAKY_RELU")
    assert leaky.attrs["alpha"] == pytest.approx(-0.3)
    prelu = next(op for op in back.ops if op.kind == "PRELU")
    assert back.tensor(prelu.inputs[1]).data is not None
    x = np.random.default_rng(52).integers(-128, 128, (1, 5, 6, 8)).astype(np.int8)
    np.testing.assert_array_equal(run_reference(back, [x])[0], run_reference(graph, [x])[0])


# ---------------------------------------------------------------------------------------------
# 4. ONNX
# ---------------------------------------------------------------------------------------------

def compile_module(module: Any, shape: tuple[int, ...], tmp_path: Path,
                   calib_scale: float = 2.0) -> tuple[Graph, float]:
    """Quantise and compile the module, export its QDQ model; check C == reference on held-out
    inputs and return the graph and the worst error against onnxruntime's float run, relative
    to the output range."""
    import onnxruntime as ort
    import torch

    from tinyengine.codegen import compile_graph
    from tinyengine.convert import export_torch, quantize_onnx, source_model_info
    from tinyengine.quantize import export_qdq
    from tinyengine.runtime import HostModel
    from tinyengine.source_forms import source_input_batches, source_outputs

    torch.manual_seed(0)
    rng = np.random.default_rng(61)
    calib = rng.normal(0, calib_scale, (32,) + shape[1:]).astype(np.float32)
    test = rng.normal(0, calib_scale, (4,) + shape[1:]).astype(np.float32)
    path = export_torch(module, torch.from_numpy(calib[:1]), tmp_path / "m.onnx")
    model, graph = quantize_onnx(path, calib)
    export_qdq(graph, model, tmp_path / "q.onnx")  # onnx.checker runs on the export
    report = compile_graph(graph, tmp_path / "p", source_model=source_model_info(model, graph))
    host = HostModel(tmp_path / "p")
    (batch,), _ = source_input_batches(report, [test], ["test"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x, b in zip(test, batch):
        c = host.invoke([b])[0]
        np.testing.assert_array_equal(c, run_reference(graph, [b])[0])
        want = session.run(None, {session.get_inputs()[0].name: x[None]})[0]
        (got,) = source_outputs(report, [c[None]], raw=False)
        worst = max(worst, float(np.abs(got.reshape(want.shape) - want).max()
                                 / (np.ptp(want) + 1e-9)))
    return graph, worst


def test_onnx_activations(tmp_path):
    nn = pytest.importorskip("torch.nn")
    import torch

    class Acts(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.prelu = nn.PReLU(4)
            with torch.no_grad():
                self.prelu.weight.copy_(torch.tensor([0.1, -0.2, 0.3, 0.5]))

        def forward(self, x: Any) -> Any:
            a = torch.relu(x)
            b = nn.functional.leaky_relu(x, 0.2)
            c = nn.functional.hardswish(b)
            d = self.prelu(x)
            e = torch.clamp(d, 0.0, 6.0)
            f = torch.sigmoid(x) + torch.tanh(c)
            return a + e + f

    graph, err = compile_module(Acts(), (1, 4, 5, 5), tmp_path)
    kinds = [op.kind for op in graph.ops]
    for kind in ("RELU", "LEAKY_RELU", "HARD_SWISH", "PRELU", "RELU6", "LOGISTIC", "TANH"):
        assert kind in kinds, (kind, kinds)
    for op in graph.ops:
        if op.kind in FIXED:
            out = graph.tensor(op.outputs[0])
            assert (np.float32(out.scale), out.zero_point) == \
                (np.float32(FIXED[op.kind][0]), FIXED[op.kind][1])
        if op.kind == "RELU6":
            x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
            assert (x.scale, x.zero_point) == (y.scale, y.zero_point)
    assert err < 0.05, err


@pytest.mark.parametrize("shape", [(1, 6, 4, 4), (1, 6)])
def test_onnx_hard_sigmoid(tmp_path, shape):
    nn = pytest.importorskip("torch.nn")

    graph, err = compile_module(nn.Hardsigmoid(), shape, tmp_path, calib_scale=3.0)
    dw = [op for op in graph.ops if op.kind == "DEPTHWISE_CONV_2D"]
    assert len(dw) == 1 and dw[0].attrs["activation"] == "RELU"
    assert [op.kind for op in graph.ops].count("RESHAPE") == (0 if len(shape) == 4 else 2)
    # The output's range never goes beyond HardSigmoid's [0, 1].
    out = graph.tensor(dw[0].outputs[0])
    assert out.zero_point == -128 and 255 * out.scale <= 1.0 + 1e-6
    assert err < 0.02, err


def test_onnx_refusals(tmp_path):
    nn = pytest.importorskip("torch.nn")
    import torch

    from tinyengine.convert import export_torch
    from tinyengine.frontend.onnx_reader import load_onnx

    class Clamp(nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.clamp(x, -1.0, 1.0)

    path = export_torch(Clamp(), torch.zeros(1, 3, 4, 4), tmp_path / "clip.onnx")
    with pytest.raises(UnsupportedError, match=r"Clip\(-1, 1\)"):
        load_onnx(path)
