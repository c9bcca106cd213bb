"""Post-training quantisation: a float IR graph + calibration ranges -> the engine's int8 graph.

The result follows TFLite's int8 scheme, so that what the converter would produce is what we
produce:
- Weights: symmetric int8, zero point 0, values in [-127, 127], scale = max|w| / 127 per output
  channel (CONV_2D axis 0, DEPTHWISE_CONV_2D axis 3) or per tensor (FULLY_CONNECTED, TFLite's
  default; `per_channel=False` for convolutions too). A channel of zeros gets scale 1.0, as the
  MLIR quantiser gives an all-zero range.
- Biases: int32 = round(b / (s_in * s_w[c])) with that product as the bias scale, zero point 0.
  Where a bias would leave +-2^30 (a weight channel far smaller than its bias, e.g. after BN
  folding), the channel's weight scale is raised until it fits, as TFLite's
  AdjustWeightsForBiasScale does; 2^30 leaves the products half of int32 as headroom.
- Activations: asymmetric int8 over the calibrated range widened to include 0 (so that 0, ReLU's
  floor and PAD's fill, is exact): scale = (hi - lo) / 255, zero point = round(-128 - lo / scale)
  clamped to int8, both in float64 as the MLIR quantiser's fakeQuantAttrsToType, the scale then
  stored as float32. An all-zero range gets scale 1.0 and zero point -128 (MLIR's special case).
- Each op's `quant_rule` hook says what TFLite's kernels require: tensors that share parameters
  (pooling, PAD, RESHAPE input/output, ...; with the union of their ranges; also the frontend's
  `shares_quant` pairs), outputs fixed by the op (SOFTMAX's scale 1/256, zero point -128), which
  inputs are weights and along which axis, whether float constant operands are allowed.

Rounding: every float -> int conversion here is std::round (half away from zero), which the
converter uses, never numpy's half-to-even `np.round`. `round_half_away` is its exact vectorised
form. Weights are divided by their float32-stored scale, so that int8 values times the stored
scale are the deployed weights.

16x8 (int16 activations, int8 weights; int16.py has TFLite's rules): each op runs on one
activation type, given per op (`op_types`, default int8). A tensor is stored in the type of the op
that writes it (a graph input: of its QUANTIZE); an op of the other type reads a copy that a
QUANTIZE op (int8 <-> int16 requantisation) writes under `{name}:s8` or `{name}:s16`, made once
before its first reader. Each type has its own parameters per share group, so the copies of
tensors that share parameters share them too.

The graph's float32 inputs keep their names and feed QUANTIZE ops writing `{name}:q`; the graph's
outputs keep their names and come from DEQUANTIZE ops reading `{name}:q`. Every other tensor keeps
its float graph's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import TinyEngineError, UnsupportedError
from ..ir import DTYPES, QRANGE, Graph, Op, QuantParams, Tensor, verify
from ..ops import QuantRule, get_op
from ..ops.common import SUFFIX
from . import int16
from .calibrate import DEFAULT_PERCENTILE, calibration_ranges, check_method, observe
from .mixed import MixedChoice, MixedOptions, choose_mixed, input_op, uniform_types

if TYPE_CHECKING:
    from ..frontend.onnx_reader import FloatModel

WEIGHT_QMAX = 127  # symmetric int8 weights use [-127, 127], as TFLite's narrow range
BIAS_LIMIT = 1 << 30
# The bias type and the bound a bias keeps to, by activation type.
BIAS = {"int8": ("int32", BIAS_LIMIT), "int16": ("int64", int16.BIAS_LIMIT_INT64)}


def quant_rule(graph: Graph, op: Op) -> QuantRule:
    return get_op(op.kind).quant_rule(graph, op)


def round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round, vectorised: half away from zero. Exact for every float64, unlike
    floor(|x| + 0.5), which turns 0.49999999999999994 into 1."""
    x = np.asarray(x, np.float64)
    t = np.trunc(x)
    frac = x - t  # exact: x and trunc(x) share a binade or trunc(x) is 0
    return t + (frac >= 0.5) - (frac <= -0.5)


def activation_qparams(lo: float, hi: float) -> QuantParams:
    """Asymmetric int8 parameters for the real range [lo, hi], widened to include 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < np.finfo(np.float64).eps:
        return QuantParams(np.array([1.0], np.float32), np.array([-128], np.int64))
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round_half_away(np.array(-128.0 - lo / scale)), -128, 127))
    return QuantParams(np.array([scale], np.float32), np.array([zp], np.int64))


def qparams(dtype: str, lo: float, hi: float) -> QuantParams:
    """Activation parameters of type `dtype` for the real range [lo, hi]."""
    return activation_qparams(lo, hi) if dtype == "int8" else int16.symmetric_qparams(lo, hi)


def weight_scales(w: np.ndarray, axis: int | None) -> np.ndarray:
    """max|w| / 127 per slice along `axis` (or over the whole tensor), float64; 0 -> 1.0."""
    w = np.abs(np.asarray(w, np.float64))
    if axis is None:
        peak = np.array([w.max(initial=0.0)])
    else:
        peak = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1).max(axis=1, initial=0.0)
    return np.where(peak > 0, peak / WEIGHT_QMAX, 1.0)


def fit_bias(scales: np.ndarray, bias: np.ndarray | None, input_scale: float,
             limit: int = BIAS_LIMIT) -> np.ndarray:
    """Raise weight scales whose bias would not fit in +-`limit` steps of s_in * s_w."""
    if bias is None:
        return scales
    # 1 + 2^-20 covers the float32 rounding of both stored scales.
    need = np.abs(np.asarray(bias, np.float64)) / (np.float64(input_scale) * limit) \
        * (1 + 2.0**-20)
    if scales.size == 1:
        need = np.array([need.max(initial=0.0)])
    return np.maximum(scales, need)


def quantize_weights(w: np.ndarray, scales: np.ndarray, axis: int) -> np.ndarray:
    """int8 = round_half_away(w / float32 scale), in [-127, 127]."""
    stored = np.float32(scales).astype(np.float64)  # what the engine will multiply by
    shape = [1] * w.ndim
    if stored.size > 1:
        shape[axis] = stored.size
    q = round_half_away(np.asarray(w, np.float64) / stored.reshape(shape))
    return np.clip(q, -WEIGHT_QMAX, WEIGHT_QMAX).astype(np.int8)


def quantize_bias(b: np.ndarray, input_scale: float, scales: np.ndarray,
                  dtype: str = "int32") -> Tensor:
    """int32 (int64 for 16x8) bias at scale s_in * s_w: the product of the float32 scales in
    float64, as the kernels' multipliers use it (ops/common.conv_requant)."""
    bias_scale = np.float64(np.float32(input_scale)) * np.asarray(scales, np.float32).astype(
        np.float64)
    q = round_half_away(np.asarray(b, np.float64) / bias_scale)
    info = np.iinfo(np.int32 if dtype == "int32" else np.int64)
    # float64 cannot hold int64's top; fit_bias keeps int64 biases far inside it anyway.
    q = np.clip(q, float(info.min), float(info.max) if dtype == "int32" else 2.0**62)
    q = q.astype(np.int32 if dtype == "int32" else np.int64)
    quant = QuantParams(bias_scale.astype(np.float32), np.zeros(bias_scale.size, np.int64), 0)
    return Tensor("", tuple(q.shape), dtype, quant, q)


class _Groups:
    """Union-find over tensor names: the tensors that must share one quantisation."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smaller name leads: deterministic


def share_groups(graph: Graph, shares_quant: Mapping[str, str]) -> _Groups:
    groups = _Groups()
    for op in graph.ops:
        for a, b in quant_rule(graph, op).share:
            groups.union(a, b)
    for a, b in shares_quant.items():
        groups.union(a, b)
    return groups


def activation_params(graph: Graph, ranges: Mapping[str, tuple[float, float]],
                      shares_quant: Mapping[str, str], dtype: str = "int8",
                      op_types: Mapping[str, str] | None = None) -> dict[str, QuantParams]:
    """Quantisation of every activation tensor in type `dtype`: fixed where an op dictates it,
    else from the union of the calibrated ranges of its share group. Scale floors are those of
    the ops that run on `dtype` (`op_types`: op name -> type, default int8)."""
    groups = share_groups(graph, shares_quant)
    members: dict[str, list[str]] = {}
    for t in graph.activations():
        members.setdefault(groups.find(t.name), []).append(t.name)
    # A constant operand that must share an activation's parameters (MAXIMUM's) joins its group,
    # its values widening the group's range.
    ranges = dict(ranges)
    for name in shared_constants(graph):
        data = graph.tensor(name).data
        assert data is not None
        ranges[name] = (float(data.min()), float(data.max()))
        members.setdefault(groups.find(name), []).append(name)
    fixed = {groups.find(name): value for op in graph.ops
             for name, value in _fixed(graph, op, dtype).items()}
    params: dict[str, QuantParams] = {}
    for root, names in sorted(members.items()):
        if root in fixed:
            scale, zero_point = fixed[root]
            q = QuantParams(np.array([scale], np.float32), np.array([zero_point], np.int64))
        else:
            seen = [ranges[n] for n in names if n in ranges]
            if not seen:
                raise TinyEngineError(f"calibration gave no values for tensor {sorted(names)[0]}"
                                      "; the float model did not produce it")
            q = qparams(dtype, min(r[0] for r in seen), max(r[1] for r in seen))
        for n in names:
            params[n] = q
    types = op_types or {}
    _respect_scale_floors(graph, params, groups, members, dtype,
                          [op for op in graph.ops if types.get(op.name, "int8") == dtype])
    return params


def typed_rule(graph: Graph, op: Op, dtype: str) -> QuantRule:
    """The op's quant_rule as it runs on `dtype`: the rule may depend on the type (int16
    LOGISTIC fixes 2^-15 where int8 fixes 1/256; int16 ADD's headroom is 15 bits, not 20), so
    the op is asked about a view of the graph whose activations around it have that type."""
    if dtype == "int8":
        return quant_rule(graph, op)
    tensors = dict(graph.tensors)
    for n in op.inputs + op.outputs:
        if n and graph.tensors[n].data is None:
            tensors[n] = dataclasses.replace(graph.tensors[n], dtype=dtype)
    return quant_rule(Graph(tensors, graph.ops, graph.inputs, graph.outputs, graph.name), op)


def _fixed(graph: Graph, op: Op, dtype: str) -> dict[str, tuple[float, int]]:
    """The output parameters an op fixes in type `dtype`."""
    return typed_rule(graph, op, dtype).fixed


def _respect_scale_floors(graph: Graph, params: dict[str, QuantParams], groups: _Groups,
                          members: dict[str, list[str]], dtype: str, ops: list[Op]) -> None:
    """Raise output scales below the floor an op's kernel needs (its quant_rule)."""
    for op in ops:
        floor_of = typed_rule(graph, op, dtype).output_scale_floor
        if floor_of is None:
            continue
        floor = floor_of([float(params[n].scale[0]) if n in params else 0.0 for n in op.inputs])
        out = params[op.outputs[0]]
        if float(out.scale[0]) < floor:
            q = QuantParams(np.array([floor], np.float32), out.zero_point.copy())
            for n in members[groups.find(op.outputs[0])]:
                params[n] = q


def shared_constants(graph: Graph) -> list[str]:
    """Float constants named in a quant_rule share pair (operands quantised with their group)."""
    return sorted({n for op in graph.ops for pair in quant_rule(graph, op).share for n in pair
                   if graph.tensor(n).data is not None})


def _const_activation(t: Tensor, q: QuantParams | None = None, dtype: str = "int8") -> Tensor:
    """A float constant read as an activation (an ADD operand): per-tensor, with its own range
    or with the parameters of the group it must share (`q`)."""
    assert t.data is not None
    if q is None:
        q = qparams(dtype, float(t.data.min()), float(t.data.max()))
    lo, hi = QRANGE[dtype]
    data = round_half_away(t.data.astype(np.float64) / np.float64(q.scale[0])) + q.zero_point[0]
    return Tensor(t.name, t.shape, dtype, q, np.clip(data, lo, hi).astype(DTYPES[dtype]))


def _same_const(a: Tensor, b: Tensor) -> bool:
    assert a.data is not None and b.data is not None and a.quant and b.quant
    return (a.dtype == b.dtype and np.array_equal(a.data, b.data)
            and np.array_equal(a.quant.scale, b.quant.scale)
            and np.array_equal(a.quant.zero_point, b.quant.zero_point))


class _Builder:
    """The quantised graph under construction: tensors by name, ops in order, and where each
    float tensor lives in each activation type."""

    def __init__(self, float_graph: Graph, params: Mapping[str, Mapping[str, QuantParams]],
                 home: Mapping[str, str]):
        self.src = float_graph
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.params = params  # type -> float tensor name -> parameters
        self.home = home  # float tensor name -> the type its producer writes
        self.rename = {n: f"{n}:q" for n in (*float_graph.inputs, *float_graph.outputs)}

    def act(self, name: str, dtype: str | None = None) -> str:
        """The quantised tensor of float activation `name` in type `dtype` (default: its home
        type); another type's copy comes from a QUANTIZE op added now, before its reader."""
        home = self.home[name]
        base = self.rename.get(name, name)
        if base not in self.tensors:
            t = self.src.tensor(name)
            self.tensors[base] = Tensor(base, t.shape, home, self.params[home][name])
        if dtype is None or dtype == home:
            return base
        copy = f"{base}:{SUFFIX[dtype]}"
        if copy not in self.tensors:
            t = self.src.tensor(name)
            self.tensors[copy] = Tensor(copy, t.shape, dtype, self.params[dtype][name])
            self.ops.append(Op(f"{copy}:requantize", "QUANTIZE", [base], [copy]))
        return copy

    def add_const(self, t: Tensor, owner: Op) -> str:
        """Add a quantised constant under its float name (or a per-op name where two ops share
        one float constant but need different quantisations)."""
        name = t.name
        if name in self.tensors:
            if _same_const(self.tensors[name], t):
                return name
            name = f"{t.name}:{owner.name}"
        t.name = name
        self.tensors[name] = t
        return name


def quantize_graph(graph: Graph, ranges: Mapping[str, tuple[float, float]],
                   shares_quant: Mapping[str, str] | None = None, per_channel: bool = True,
                   fc_per_channel: bool = False, *, op_types: Mapping[str, str] | None = None,
                   ranges16: Mapping[str, tuple[float, float]] | None = None) -> Graph:
    """The quantised graph of a float graph, given each activation's calibrated (lo, hi).

    op_types: op name (or `input_op(name)` for a graph input's QUANTIZE) -> "int8" or "int16";
    absent ones are int8. ranges16: the ranges int16 tensors use (default `ranges`)."""
    for n in graph.inputs:
        if graph.tensor(n).dtype != "float32":
            raise UnsupportedError(f"input {n} is {graph.tensor(n).dtype}; quantisation takes "
                                   "float32 model inputs")
    types = dict(op_types or {})
    home = {n: types.get(input_op(n), "int8") for n in graph.inputs}
    home.update({o: types.get(op.name, "int8") for op in graph.ops for o in op.outputs})
    used = sorted({"int8", *home.values()})
    params = {d: activation_params(graph, ranges if d == "int8" or ranges16 is None else ranges16,
                                   shares_quant or {}, d, types)
              for d in used}
    b = _Builder(graph, params, home)
    for n in graph.inputs:
        t = graph.tensor(n)
        b.tensors[n] = Tensor(n, t.shape, "float32")
        b.ops.append(Op(input_op(n), "QUANTIZE", [n], [b.act(n)]))
    for op in graph.ops:
        dtype = types.get(op.name, "int8")
        if quant_rule(graph, op).weights:
            inputs = _quantize_weighted(b, op, params[dtype], per_channel, fc_per_channel, dtype)
            inputs[0] = b.act(op.inputs[0], dtype)
        else:
            inputs = [_operand(b, op, n, dtype) for n in op.inputs]
        b.ops.append(Op(op.name, op.kind, inputs, [b.act(n) for n in op.outputs], dict(op.attrs)))
    for n in graph.outputs:
        t = graph.tensor(n)
        source = b.act(n)
        b.tensors[n] = Tensor(n, t.shape, "float32")
        b.ops.append(Op(f"{n}:dequantize", "DEQUANTIZE", [source], [n]))
    out = Graph(b.tensors, b.ops, list(graph.inputs), list(graph.outputs), graph.name)
    verify(out)
    return out


def _operand(b: _Builder, op: Op, name: str, dtype: str) -> str:
    if not name:
        return ""
    t = b.src.tensor(name)
    if t.is_const:
        if t.data is None or not quant_rule(b.src, op).const_operands:
            raise UnsupportedError(f"op {op.name} ({op.kind}): constant input {name} cannot be "
                                   "quantised here; fold it into the model")
        return b.add_const(_const_activation(t, b.params[dtype].get(name), dtype), op)
    return b.act(name, dtype)


def _quantize_weighted(b: _Builder, op: Op, params: Mapping[str, QuantParams],
                       per_channel: bool, fc_per_channel: bool, dtype: str = "int8") -> list[str]:
    """Weights (input 1, along the axis of the op's quant_rule) and bias (input 2) of a weighted
    op (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ...) -> int8 / int32 (int64 when the op runs
    on int16); other inputs are activations."""
    src = b.src
    w = src.tensor(op.inputs[1])
    bias = src.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    if w.data is None or (bias is not None and bias.data is None):
        raise UnsupportedError(f"op {op.name} ({op.kind}): weights {w.name} have no values; "
                               "only a model with constant weights can be quantised")
    for t in (w, bias):
        if t is not None and t.data is not None and not np.all(np.isfinite(t.data)):
            raise UnsupportedError(f"op {op.name} ({op.kind}): {t.name} holds inf or NaN; "
                                   "only finite weights and biases can be quantised")
    rule = quant_rule(src, op)
    # TFLite's converter quantises FULLY_CONNECTED weights per tensor by default.
    channel = fc_per_channel if rule.weights_per_tensor else per_channel
    axis = rule.weights[1]
    input_scale = float(params[op.inputs[0]].scale[0])
    bias_type, limit = BIAS[dtype]
    scales = weight_scales(w.data, axis if channel else None)
    scales = fit_bias(scales, None if bias is None else bias.data, input_scale, limit)
    wq = QuantParams(scales.astype(np.float32), np.zeros(scales.size, np.int64),
                     axis if channel else 0)
    names = ["", b.add_const(Tensor(w.name, w.shape, "int8", wq,
                                    quantize_weights(w.data, scales, axis)), op)]
    if bias is not None:
        assert bias.data is not None
        bq = quantize_bias(bias.data, input_scale, scales, bias_type)
        bq.name = bias.name
        names.append(b.add_const(bq, op))
    return names


@dataclass
class Quantized:
    """A quantised graph and how its activation types were chosen."""

    graph: Graph
    activations: str  # "int8", "int16" or "mixed"
    mixed: MixedChoice | None = None

    def summary(self) -> dict[str, Any]:
        """report.json's "activations": the mode, the number of ops (the requantisations
        aside), the ops that run on int16 (graph inputs' QUANTIZE included: an int16 input), the
        int8 <-> int16 QUANTIZE ops between them, and the mixed search's record."""
        g = self.graph
        boundary = {input_op(n) for n in g.inputs}
        int16_ops = [op.name for op in g.ops
                     if g.tensor(op.outputs[0]).dtype == "int16"
                     and (op.kind not in ("QUANTIZE", "DEQUANTIZE") or op.name in boundary)]
        requantize = [op.name for op in g.ops if op.kind == "QUANTIZE"
                      and g.tensor(op.inputs[0]).dtype != "float32"]
        out: dict[str, Any] = {"mode": self.activations, "ops": len(g.ops) - len(requantize),
                               "int16_ops": int16_ops, "requantize_ops": requantize}
        if self.mixed is not None:
            out["mixed"] = self.mixed.to_json()
        return out


def quantize_float(graph: Graph, shares_quant: Mapping[str, str],
                   activations_of: Callable[[Any], Mapping[str, np.ndarray]],
                   batches: Sequence[Any], method: str = "minmax", per_channel: bool = True, *,
                   fc_per_channel: bool = False, percentile: float = DEFAULT_PERCENTILE,
                   activations: str = "int8", mixed: MixedOptions | None = None
                   ) -> Quantized:
    """Calibrate a float graph on `batches` (`activations_of(batch)` gives every activation's
    float value, IR layout, batch along axis 0) and quantise it with `activations`: "int8",
    "int16" (16x8: every op on int16) or "mixed" (int16 where int8 loses most; mixed.py)."""
    from ..progress import progress_bar

    check_method(method)
    int16.check_activations(activations)
    if len(batches) == 0:
        raise TinyEngineError("no calibration batches; calibration needs at least one sample")
    types = uniform_types(graph, "int16") if activations == "int16" else None  # refuse early
    mixed = mixed or MixedOptions()
    keep = mixed.eval_samples if activations == "mixed" else 0
    samples: list[dict[str, np.ndarray]] = []

    def runs() -> Iterator[Mapping[str, np.ndarray]]:
        for batch in progress_bar(batches, desc="calibrating", unit="batch"):
            values = activations_of(batch)
            n = len(next(iter(values.values())))
            samples.extend({k: v[j:j + 1] for k, v in values.items()}
                           for j in range(min(n, keep - len(samples))))
            yield values

    observers = observe(runs(), method)
    ranges = calibration_ranges(observers, method, percentile)
    # With 65535 levels rounding costs next to nothing: int16 tensors keep their whole range
    # rather than the range mse chose to trade clipping against int8's rounding.
    ranges16 = calibration_ranges(observers, "minmax") if method == "mse" else ranges

    def build(op_types: Mapping[str, str] | None) -> Graph:
        return quantize_graph(graph, ranges, shares_quant, per_channel, fc_per_channel,
                              op_types=op_types, ranges16=ranges16)

    if activations == "mixed":
        q, choice = choose_mixed(graph, shares_quant, build, samples, mixed)
        return Quantized(q, activations, choice)
    return Quantized(build(types), activations)


def quantize_model(model: FloatModel, batches: Sequence[np.ndarray | Sequence[np.ndarray]],
                   method: str = "minmax", per_channel: bool = True, *,
                   fc_per_channel: bool = False,
                   percentile: float = DEFAULT_PERCENTILE, activations: str = "int8",
                   mixed: MixedOptions | None = None) -> Graph:
    """Calibrate `model` on `batches` (ONNX layout; one array per batch, or one per input for a
    model with several inputs) and return the verified quantised graph (`activations`: int8,
    int16 or mixed, as quantize_float)."""
    return quantize_onnx_model(model, batches, method, per_channel, fc_per_channel=fc_per_channel,
                               percentile=percentile, activations=activations,
                               mixed=mixed).graph


def quantize_onnx_model(model: FloatModel, batches: Sequence[np.ndarray | Sequence[np.ndarray]],
                        method: str = "minmax", per_channel: bool = True, *,
                        fc_per_channel: bool = False, percentile: float = DEFAULT_PERCENTILE,
                        activations: str = "int8", mixed: MixedOptions | None = None
                        ) -> Quantized:
    """quantize_model, with the record of the activation types."""
    from ..frontend.onnx_reader import float_activations

    def values(batch: np.ndarray | Sequence[np.ndarray]) -> Mapping[str, np.ndarray]:
        return float_activations(model, [batch] if isinstance(batch, np.ndarray) else list(batch))

    return quantize_float(model.graph, model.shares_quant, values, batches, method, per_channel,
                          fc_per_channel=fc_per_channel, percentile=percentile,
                          activations=activations, mixed=mixed)
