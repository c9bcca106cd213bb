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

The graph's float32 inputs keep their names and feed QUANTIZE ops writing `{name}:q`; the graph's
outputs keep their names and come from DEQUANTIZE ops reading `{name}:q`. Every other tensor keeps
its float graph's name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op, QuantParams, Tensor, verify
from ..ops import QuantRule, get_op
from .calibrate import DEFAULT_PERCENTILE, calibration_ranges, check_method, observe

if TYPE_CHECKING:
    from ..frontend.onnx_reader import FloatModel

WEIGHT_QMAX = 127  # symmetric int8 weights use [-127, 127], as TFLite's narrow range
BIAS_LIMIT = 1 << 30


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


def weight_scales(w: np.ndarray, axis: int | None) -> np.ndarray:
    """max|w| / 127 per slice along `axis` (or over the whole tensor), float64; 0 -> 1.0."""
    w = np.abs(np.asarray(w, np.float64))
    if axis is None:
        peak = np.array([w.max(initial=0.0)])
    else:
        peak = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1).max(axis=1, initial=0.0)
    return np.where(peak > 0, peak / WEIGHT_QMAX, 1.0)


def fit_bias(scales: np.ndarray, bias: np.ndarray | None, input_scale: float) -> np.ndarray:
    """Raise weight scales whose bias would not fit in +-BIAS_LIMIT steps of s_in * s_w."""
    if bias is None:
        return scales
    # 1 + 2^-20 covers the float32 rounding of both stored scales.
    need = np.abs(np.asarray(bias, np.float64)) / (np.float64(input_scale) * BIAS_LIMIT) \
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


def quantize_bias(b: np.ndarray, input_scale: float, scales: np.ndarray) -> Tensor:
    """int32 bias at scale s_in * s_w: the product of the float32 scales in float64, as the
    kernels' multipliers use it (ops/common.conv_requant)."""
    bias_scale = np.float64(np.float32(input_scale)) * np.asarray(scales, np.float32).astype(
        np.float64)
    q = round_half_away(np.asarray(b, np.float64) / bias_scale)
    q = np.clip(q, -(1 << 31), (1 << 31) - 1).astype(np.int32)
    quant = QuantParams(bias_scale.astype(np.float32), np.zeros(bias_scale.size, np.int64), 0)
    return Tensor("", tuple(q.shape), "int32", quant, q)


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
                      shares_quant: Mapping[str, str]) -> dict[str, QuantParams]:
    """Quantisation of every activation tensor: fixed where an op dictates it, else from the
    union of the calibrated ranges of its share group."""
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
             for name, value in quant_rule(graph, op).fixed.items()}
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
            q = activation_qparams(min(r[0] for r in seen), max(r[1] for r in seen))
        for n in names:
            params[n] = q
    _respect_scale_floors(graph, params, groups, members)
    return params


def _respect_scale_floors(graph: Graph, params: dict[str, QuantParams], groups: _Groups,
                          members: dict[str, list[str]]) -> None:
    """Raise output scales below the floor an op's kernel needs (its quant_rule)."""
    for op in graph.ops:
        rule = quant_rule(graph, op)
        if rule.output_scale_floor is None:
            continue
        floor = rule.output_scale_floor([float(params[n].scale[0]) if n in params else 0.0
                                         for n in op.inputs])
        out = params[op.outputs[0]]
        if float(out.scale[0]) < floor:
            q = QuantParams(np.array([floor], np.float32), out.zero_point.copy())
            for n in members[groups.find(op.outputs[0])]:
                params[n] = q


def shared_constants(graph: Graph) -> list[str]:
    """Float constants named in a quant_rule share pair (operands quantised with their group)."""
    return sorted({n for op in graph.ops for pair in quant_rule(graph, op).share for n in pair
                   if graph.tensor(n).data is not None})


def _const_activation(t: Tensor, q: QuantParams | None = None) -> Tensor:
    """A float constant read as an activation (an ADD operand): per-tensor asymmetric int8, with
    its own range or with the parameters of the group it must share (`q`)."""
    assert t.data is not None
    if q is None:
        q = activation_qparams(float(t.data.min()), float(t.data.max()))
    data = round_half_away(t.data.astype(np.float64) / np.float64(q.scale[0])) + q.zero_point[0]
    return Tensor(t.name, t.shape, "int8", q, np.clip(data, -128, 127).astype(np.int8))


def _same_const(a: Tensor, b: Tensor) -> bool:
    assert a.data is not None and b.data is not None and a.quant and b.quant
    return (a.dtype == b.dtype and np.array_equal(a.data, b.data)
            and np.array_equal(a.quant.scale, b.quant.scale)
            and np.array_equal(a.quant.zero_point, b.quant.zero_point))


class _Builder:
    """The int8 graph under construction: tensors by name, ops in order."""

    def __init__(self, float_graph: Graph):
        self.src = float_graph
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.params: Mapping[str, QuantParams] = {}

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
                   fc_per_channel: bool = False) -> Graph:
    """The int8 graph of a float graph, given each activation's calibrated (lo, hi)."""
    for n in graph.inputs:
        if graph.tensor(n).dtype != "float32":
            raise UnsupportedError(f"input {n} is {graph.tensor(n).dtype}; quantisation takes "
                                   "float32 model inputs")
    params = activation_params(graph, ranges, shares_quant or {})
    b = _Builder(graph)
    b.params = params
    rename = {n: f"{n}:q" for n in (*graph.inputs, *graph.outputs)}

    def act(name: str) -> str:
        new = rename.get(name, name)
        if new not in b.tensors:
            t = graph.tensor(name)
            b.tensors[new] = Tensor(new, t.shape, "int8", params[name])
        return new

    for n in graph.inputs:
        t = graph.tensor(n)
        b.tensors[n] = Tensor(n, t.shape, "float32")
        b.ops.append(Op(f"{n}:quantize", "QUANTIZE", [n], [act(n)]))
    for op in graph.ops:
        if quant_rule(graph, op).weights:
            inputs = _quantize_weighted(b, op, params, per_channel, fc_per_channel)
            inputs[0] = act(op.inputs[0])
        else:
            inputs = [_operand(b, op, n, act) for n in op.inputs]
        b.ops.append(Op(op.name, op.kind, inputs, [act(n) for n in op.outputs], dict(op.attrs)))
    for n in graph.outputs:
        t = graph.tensor(n)
        source = act(n)
        b.tensors[n] = Tensor(n, t.shape, "float32")
        b.ops.append(Op(f"{n}:dequantize", "DEQUANTIZE", [source], [n]))
    out = Graph(b.tensors, b.ops, list(graph.inputs), list(graph.outputs), graph.name)
    verify(out)
    return out


def _operand(b: _Builder, op: Op, name: str, act: Callable[[str], str]) -> str:
    if not name:
        return ""
    t = b.src.tensor(name)
    if t.is_const:
        if t.data is None or not quant_rule(b.src, op).const_operands:
            raise UnsupportedError(f"op {op.name} ({op.kind}): constant input {name} cannot be "
                                   "quantised here; fold it into the model")
        return b.add_const(_const_activation(t, b.params.get(name)), op)
    return act(name)


def _quantize_weighted(b: _Builder, op: Op, params: Mapping[str, QuantParams],
                       per_channel: bool, fc_per_channel: bool) -> list[str]:
    """Weights (input 1, along the axis of the op's quant_rule) and bias (input 2) of a weighted
    op (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ...) -> int8 / int32; other inputs are
    activations."""
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
    scales = weight_scales(w.data, axis if channel else None)
    scales = fit_bias(scales, None if bias is None else bias.data, input_scale)
    wq = QuantParams(scales.astype(np.float32), np.zeros(scales.size, np.int64),
                     axis if channel else 0)
    names = ["", b.add_const(Tensor(w.name, w.shape, "int8", wq,
                                    quantize_weights(w.data, scales, axis)), op)]
    if bias is not None:
        assert bias.data is not None
        bq = quantize_bias(bias.data, input_scale, scales)
        bq.name = bias.name
        names.append(b.add_const(bq, op))
    return names


def quantize_model(model: FloatModel, batches: Sequence[np.ndarray | Sequence[np.ndarray]],
                   method: str = "minmax", per_channel: bool = True, *,
                   fc_per_channel: bool = False,
                   percentile: float = DEFAULT_PERCENTILE) -> Graph:
    """Calibrate `model` on `batches` (ONNX layout; one array per batch, or one per input for a
    model with several inputs) and return the verified int8 graph."""
    from ..frontend.onnx_reader import float_activations
    from ..progress import progress_bar

    check_method(method)
    if len(batches) == 0:
        raise TinyEngineError("no calibration batches; calibration needs at least one sample")

    def runs() -> Iterator[dict[str, np.ndarray]]:
        for batch in progress_bar(batches, desc="calibrating", unit="batch"):
            inputs = [batch] if isinstance(batch, np.ndarray) else list(batch)
            yield float_activations(model, inputs)

    observers = observe(runs(), method)
    ranges = calibration_ranges(observers, method, percentile)
    return quantize_graph(model.graph, ranges, model.shares_quant, per_channel, fc_per_channel)
