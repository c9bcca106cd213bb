"""SVDF: a rank-decomposed 1-D convolution over time, with its memory as persistent state.

Inputs (TFLite's order): input int8 [batches, input_size]; weights_feature int8 [filters,
input_size]; weights_time int16 (or int8) [filters, memory]; bias int32 [units]; activation_state
int16 (or int8, the type of weights_time) [batches, filters * memory], a variable tensor that
lives from one invocation to the next. filters = units * rank; output int8 [batches, units].

Reference semantics: TFLM's svdf_common.cc, EvalIntegerSvdfReference<T> with T = int16_t
(EvalInt16SvdfReference: int16 time weights and state) or T = int8_t (EvalInt8SvdfReference).
Per invocation and batch row:
  1. the whole state buffer moves left by one element (state[i] = state[i + 1]): each filter's
     memory forgets its oldest step; the last slot of each filter is rewritten in step 2, so this
     is the same as shifting each filter's row on its own;
  2. feature: for each filter f, dot = sum_i wf[f, i] * (x[i] - zp_in) (int32, wrapping), then
     MultiplyByQuantizedMultiplier(dot, M1, s1), clamped to T's range, plus the state's zero
     point, stored as T (C's conversion wraps it when the zero point pushes it out of range) into
     state[f, memory - 1];
  3. time: t[f] = sum_j wt[f, j] * (state[f, j] - zp_state) (int32, wrapping);
  4. acc[u] = bias[u] + sum_r t[u * rank + r] (int32, wrapping), out = clamp(MBQM(acc, M2, s2) +
     zp_out, -128, 127).
The fused activation of the options is NOT applied on this path: TFLM's integer SVDF clamps to
the int8 range only (tests/test_ops_svdf.py pins it with RELU and a non-minimal output zero
point). The int32 sums can overflow in TFLM (C's signed overflow; every compiler wraps there);
the reference wraps them to int32 and the C kernel sums in uint32, so all three agree.

Multipliers (PrepareSvdf): M1 = QuantizeMultiplier(s_in * s_wf / s_state) and M2 =
QuantizeMultiplier(s_state * s_wt / s_out). svdf_common.cc up to August 2026 computes them in
float32 (float products and quotient, then converted to double), but the TFLM we are measured
against (tflite-micro 0.dev20261023) converts each scale to double first, as it does for
FULLY_CONNECTED (fully_connected.py); tests/test_ops_svdf.py pins the double rule on inputs where
the float32 one stores another state and gives another output. PrepareSvdf also requires
|s_bias - s_state * s_wt| < 1e-5 and the bias present (it reads the bias's scale
unconditionally).

TFLM has no int16-input SVDF (PrepareSvdf takes float32 or int8 input) and the engine has no
float path, so the op runs on int8 activations with int16 or int8 state. The state needs no
arena: the kernel writes each step's feature value straight into the state and sums each unit's
rank filters into one int32 accumulator, where TFLM keeps two int32 scratch buffers
(batches * filters and batches * units values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import quant
from ..errors import UnsupportedError
from ..ir import Graph, Op, Tensor
from .base import (
    Arg,
    ConstArray,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    register,
)
from .common import (
    TFLITE_ACTIVATION,
    fb_activation,
    qrange,
    tflite_import,
    tflite_options,
    where,
)

if TYPE_CHECKING:
    from types import ModuleType

SOURCES = ["te_common.h", "te_svdf.h", "te_svdf.c"]
ROLES = ("input", "weights_feature", "weights_time", "bias", "activation_state")
STATE = 4  # position of the activation state among the inputs
KERNELS = {"int16": "te_svdf_s8", "int8": "te_svdf_s8_state_s8"}
# PrepareSvdf's tolerance on the bias scale (TF_LITE_ENSURE on an absolute difference).
BIAS_SCALE_TOLERANCE = 1e-5


def svdf_geometry(graph: Graph, op: Op) -> tuple[int, int, int, int, int]:
    """(batches, input_size, filters, memory, units)."""
    x, wf, wt = (graph.tensor(n) for n in op.inputs[:3])
    rank = int(op.attrs["rank"])
    return (int(x.shape[0]), int(x.shape[1]), int(wf.shape[0]), int(wt.shape[1]),
            int(wf.shape[0]) // rank)


def svdf_multipliers(graph: Graph, op: Op) -> tuple[tuple[int, int], tuple[int, int]]:
    """((M1, s1), (M2, s2)): feature -> state and state * time -> output, as the installed
    TFLM's PrepareSvdf computes them (in double; see the module docstring)."""
    x, wf, wt, _, state = (graph.tensor(n) for n in op.inputs)
    out = graph.tensor(op.outputs[0])
    f64 = np.float64
    real1 = f64(x.scale) * f64(wf.scale) / f64(state.scale)
    real2 = f64(state.scale) * f64(wt.scale) / f64(out.scale)
    return quant.quantize_multiplier(float(real1)), quant.quantize_multiplier(float(real2))


def _per_tensor(op: Op, t: Tensor, role: str, symmetric: bool) -> None:
    if t.quant is None or t.quant.per_channel:
        raise UnsupportedError(f"{where(op)}: {role} {t.name} must be quantised per tensor "
                               "(TFLM's SVDF reads one scale)")
    if symmetric and t.zero_point != 0:
        raise UnsupportedError(f"{where(op)}: {role} {t.name} has zero point {t.zero_point}; "
                               "TFLM's SVDF takes symmetric weights (zero point 0)")


@register
class Svdf(OpDef):
    kind = "SVDF"
    # The activations are int8; the state (int16 or int8) is a variable tensor, which the IR's
    # dtype rule leaves to `check`.
    dtypes = ("int8",)
    patch = "none"
    # ONNX has no SVDF, and the QDQ export has no stateful ops.
    not_applicable = frozenset({"window", "from_onnx", "to_qdq"})

    # -- semantics ----------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        w = where(op)
        if len(op.inputs) != len(ROLES) or len(op.outputs) != 1:
            raise UnsupportedError(f"{w}: takes inputs ({', '.join(ROLES)}) and one output, got "
                                   f"{len(op.inputs)} inputs and {len(op.outputs)} outputs")
        for k, role in enumerate(ROLES):
            if not op.inputs[k]:
                why = (" (TFLM's integer SVDF reads the bias's scale, so it needs one: give a "
                       "zero bias)" if role == "bias" else "")
                raise UnsupportedError(f"{w}: its {role} (input {k}) is absent{why}")
        x, wf, wt, b, state = (graph.tensor(n) for n in op.inputs)
        out = graph.tensor(op.outputs[0])
        for t, role in ((x, "input"), (out, "output")):
            if t.dtype != "int8" or t.quant is None or t.quant.per_channel or t.is_const \
                    or t.variable:
                raise UnsupportedError(f"{w}: {role} {t.name} is {t.dtype}; SVDF runs on int8 "
                                       "activations quantised per tensor")
        if not state.variable:
            raise UnsupportedError(f"{w}: activation_state {state.name} is not a variable "
                                   "tensor (TFLite is_variable); the SVDF keeps its memory there")
        if state.dtype not in KERNELS or state.quant is None or state.quant.per_channel:
            how = (" without quantisation" if state.quant is None else
                   " quantised per channel" if state.quant.per_channel else "")
            raise UnsupportedError(f"{w}: activation_state {state.name} is {state.dtype}{how}; "
                                   "TFLM's integer SVDF keeps int16 or int8 state quantised per "
                                   "tensor")
        if not wf.is_const or wf.dtype != "int8":
            raise UnsupportedError(f"{w}: weights_feature {wf.name} must be constant int8, got "
                                   f"{wf.dtype}{'' if wf.is_const else ' activation'}")
        if not wt.is_const or wt.dtype != state.dtype:
            raise UnsupportedError(f"{w}: weights_time {wt.name} must be a constant of the "
                                   f"state's type {state.dtype}, got {wt.dtype}"
                                   f"{'' if wt.is_const else ' activation'}")
        _per_tensor(op, wf, "weights_feature", symmetric=True)
        _per_tensor(op, wt, "weights_time", symmetric=True)
        act = op.attrs.get("activation", "NONE")
        if act not in TFLITE_ACTIVATION.values():  # kept for the TFLite form, never applied
            raise UnsupportedError(f"{w}: fused activation {act!r} is not a TFLite activation")
        rank = op.attrs.get("rank")
        if not isinstance(rank, (int, np.integer)) or rank < 1:
            raise UnsupportedError(f"{w}: rank {rank!r} must be an integer >= 1")
        if len(x.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2:
            raise UnsupportedError(f"{w}: input {x.name} {x.shape}, weights_feature {wf.name} "
                                   f"{wf.shape} and weights_time {wt.name} {wt.shape} must be "
                                   "2-D")
        batches, n_in, filters = x.shape[0], x.shape[1], wf.shape[0]
        if wf.shape[1] != n_in or filters % rank or wt.shape[0] != filters:
            raise UnsupportedError(
                f"{w}: weights_feature {wf.name} {wf.shape} must be [units * rank, {n_in}] with "
                f"rank {rank}, and weights_time {wt.name} {wt.shape} [{filters}, memory]")
        memory = wt.shape[1]
        if tuple(state.shape) != (batches, filters * memory):
            raise UnsupportedError(f"{w}: activation_state {state.name} {state.shape} must be "
                                   f"[{batches}, {filters * memory}] (batches, filters * memory)")
        units = filters // rank
        if not b.is_const or b.dtype != "int32" or tuple(b.shape) != (units,):
            raise UnsupportedError(f"{w}: bias {b.name} {b.dtype} {b.shape} must be a constant "
                                   f"int32 vector of the {units} units")
        # PrepareSvdf reads the bias's first scale (0 when it has none) and compares it with the
        # product of the two scales; the tolerance dwarfs how that product is rounded.
        bias_scale = b.scale if b.quant is not None else 0.0
        expect = float(np.float32(state.scale) * np.float32(wt.scale))
        if not abs(bias_scale - expect) < BIAS_SCALE_TOLERANCE:
            raise UnsupportedError(f"{w}: bias {b.name} scale {bias_scale:g} is not state scale "
                                   f"times weights_time scale ({expect:g}); TFLM refuses it")
        svdf_multipliers(graph, op)  # raises MultiplierRangeError (verify names the scales)

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        batches, _, _, _, units = svdf_geometry(graph, op)
        return [(batches, units)]

    def macs(self, graph: Graph, op: Op) -> int:
        batches, n_in, filters, memory, _ = svdf_geometry(graph, op)
        return batches * filters * (n_in + memory)

    def state_inputs(self, graph: Graph, op: Op) -> list[int]:
        return [STATE]

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        x, wf, wt, b, state = inputs
        xt, st, ot = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[STATE]),
                      graph.tensor(op.outputs[0]))
        batches, _, filters, memory, units = svdf_geometry(graph, op)
        (m1, s1), (m2, s2) = svdf_multipliers(graph, op)
        lo, hi = qrange(st)
        zp_s = st.zero_point
        # 1. Forget the oldest step: the flat buffer moves left by one element.
        flat = state.reshape(-1).astype(np.int64)
        flat[:-1] = flat[1:].copy()
        mem = flat.reshape(batches, filters, memory)
        # 2. This step's feature values go into each filter's newest slot.
        dot = quant._wrap32((x.astype(np.int64) - xt.zero_point) @ wf.astype(np.int64).T)
        feat = np.clip(quant.multiply_by_quantized_multiplier(dot, m1, s1), lo, hi) + zp_s
        mem[:, :, -1] = feat.astype(st.dtype)  # C's conversion to T wraps
        # 3-4. Time weights, the sum of each unit's rank filters, the bias, the output rescale.
        t = ((mem - zp_s) * wt.astype(np.int64)[None]).sum(axis=2)
        acc = quant._wrap32(t.reshape(batches, units, -1).sum(axis=2) + b.astype(np.int64))
        y = quant.multiply_by_quantized_multiplier(acc, m2, s2) + ot.zero_point
        state[...] = mem.reshape(state.shape).astype(st.dtype)
        return [np.clip(y, -128, 127).astype(np.int8)]

    # -- C ------------------------------------------------------------------------------------

    def kernel(self, graph: Graph, op: Op) -> str:
        return KERNELS[graph.tensor(op.inputs[STATE]).dtype]

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        """None: the feature values go straight into the state and each unit's sum lives in a
        register, where TFLM takes batches * (filters + units) * 4 bytes of arena scratch."""
        return 0

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        xt, wf, wt, b, st = (graph.tensor(n) for n in op.inputs)
        ot = graph.tensor(op.outputs[0])
        batches, n_in, filters, memory, _ = svdf_geometry(graph, op)
        (m1, s1), (m2, s2) = svdf_multipliers(graph, op)
        assert wf.data is not None and wt.data is not None and b.data is not None
        ctype = "int16_t" if st.dtype == "int16" else "int8_t"
        return OpEmission(
            kernel=self.kernel(graph, op),
            params_type="te_svdf_params_t",
            params={
                "batches": batches, "input_size": n_in, "filters": filters,
                "rank": int(op.attrs["rank"]), "memory": memory,
                "input_offset": -xt.zero_point, "state_zero_point": st.zero_point,
                "output_offset": ot.zero_point,
                "feature_multiplier": m1, "feature_shift": s1,
                "output_multiplier": m2, "output_shift": s2,
            },
            args=[Arg("tensor", op.inputs[0], "const int8_t"),
                  Arg("const", "weights_feature", "const int8_t"),
                  Arg("const", "weights_time", f"const {ctype}"),
                  Arg("const", "bias", "const int32_t"),
                  Arg("tensor", op.inputs[STATE], ctype),
                  Arg("tensor", op.outputs[0], "int8_t")],
            consts=[ConstArray("weights_feature", "int8_t", wf.data.ravel()),
                    ConstArray("weights_time", ctype, wt.data.ravel()),
                    ConstArray("bias", "int32_t", b.data.ravel())],
            sources=list(SOURCES),
        )

    # -- frontends ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        o = tflite_options(operator, "SVDFOptions")
        if o is None:
            raise UnsupportedError("SVDF without SVDFOptions (its rank is unknown)")
        if o.AsymmetricQuantizeInputs():
            raise UnsupportedError("asymmetric_quantize_inputs is set: that is the hybrid "
                                   "(float input, int8 weights) SVDF, which TFLM does not run")
        act = TFLITE_ACTIVATION.get(o.FusedActivationFunction(), "UNKNOWN")
        return tflite_import({"rank": int(o.Rank()), "activation": act}, len(ROLES), inputs)

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        o = fb.SVDFOptionsT()
        o.rank = int(op.attrs["rank"])
        o.fusedActivationFunction = fb_activation(fb, op)
        o.asymmetricQuantizeInputs = False
        return TfliteLowering("SVDFOptions", o)

    # -- quantisation -------------------------------------------------------------------------

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        """Nothing shared or fixed. No quantiser of ours meets an SVDF (ONNX has none, and the
        float TFLite road goes through ONNX), and the weighted-op rule (weights at input 1, bias
        at input 2 with scale s_in * s_w) does not describe it: PTQ would quantise
        weights_feature per tensor to int8, weights_time per tensor to int16, the state from the
        calibrated range of the feature values, and the bias with scale s_state * s_wt. Without
        weight entries here the quantiser refuses the op's constants by name."""
        return QuantRule()
