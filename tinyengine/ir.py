"""The engine's one graph IR: tensors with quantisation parameters, ops in a DAG, one checker.

Activations are NHWC. Weights keep TFLite's layouts: CONV_2D filters are OHWI, DEPTHWISE_CONV_2D
filters are 1HW(C*multiplier), FULLY_CONNECTED weights are [out, in]. Constant parameters of an op
(reshape target, pad amounts, reduction axes) live in `Op.attrs`, not as tensors, so every tensor
input of an op is either an activation or a weight/bias that the C code reads from flash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from .errors import TinyEngineError, UnsupportedError

DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
          "float32": np.float32}
# The range of each quantised activation type (int16 activations are TFLite's 16x8 mode).
QRANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}


@dataclass
class QuantParams:
    """Affine quantisation: real = scale * (q - zero_point), per tensor or along `axis`."""

    scale: np.ndarray  # float32, shape [1] or [channels]
    zero_point: np.ndarray  # int64, same shape as scale
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    data: np.ndarray | None = None  # set for constants (weights, bias)
    # A constant whose values are not known yet (a network description without weights, as
    # the search has): it costs flash like any constant, but nothing can run it.
    const: bool = False
    # State that persists from one invocation to the next (TFLite's is_variable: SVDF's
    # activation state, an LSTM's cell and output state). It lives outside the arena, in a region
    # no other tensor reuses; ops that take it (their `state_inputs`) update it in place, and
    # `reset` sets it to `reset_value`.
    variable: bool = False

    @property
    def reset_value(self) -> int:
        """What reset writes into every element: TFLM's ResetVariableTensor uses the zero point
        for int8 and 0 for every other type."""
        if self.dtype == "int8" and self.quant is not None:
            return self.zero_point
        return 0

    @property
    def in_arena(self) -> bool:
        """An activation the planner places in the arena: not a constant, not state."""
        return not self.is_const and not self.variable

    @property
    def is_const(self) -> bool:
        return self.data is not None or self.const

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(DTYPES[self.dtype]).itemsize

    @property
    def scale(self) -> float:
        assert self.quant is not None, f"tensor {self.name} is not quantised"
        return float(self.quant.scale[0])

    @property
    def zero_point(self) -> int:
        assert self.quant is not None, f"tensor {self.name} is not quantised"
        return int(self.quant.zero_point[0])


@dataclass
class Op:
    name: str
    kind: str  # registry key, TFLite's builtin name: "CONV_2D", "ADD", ...
    inputs: list[str]  # tensor names; "" for an absent optional input (e.g. no bias)
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    ops: list[Op]  # a valid topological order (the file's order for imported models)
    inputs: list[str]
    outputs: list[str]
    name: str = "model"

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[n] if n else None for n in op.inputs]

    def activations(self) -> list[Tensor]:
        """Non-constant tensors that are not state: the ones that live in the arena."""
        return [t for t in self.tensors.values() if t.in_arena]

    def state(self) -> list[Tensor]:
        """The variable tensors (persistent state), in the graph's tensor order."""
        return [t for t in self.tensors.values() if t.variable]

    def dag(self) -> nx.DiGraph:
        """Ops as nodes, an edge wherever one op's output feeds another op."""
        g = nx.DiGraph()
        producer: dict[str, str] = {}
        for op in self.ops:
            g.add_node(op.name)
            for t in op.outputs:
                producer[t] = op.name
        for op in self.ops:
            for t in op.inputs:
                if t in producer:
                    g.add_edge(producer[t], op.name, tensor=t)
        return g


# The generated C indexes tensors and the arena with int32 offsets.
MAX_TENSOR_BYTES = (1 << 31) - 1
# The smallest scale the engine takes: a normal float32. TFLite divides by the scale in float32
# (activation limits, QUANTIZE), and 1 / scale overflows below this.
MIN_SCALE = float(np.finfo(np.float32).tiny)


def verify(graph: Graph) -> None:
    """Check shapes, dtypes, quantisation parameters and topology; raise on the first problem.

    One validation pass, run after the frontend and after every pass, and by the code generator
    before anything is emitted: the generic rules (every tensor, the graph's inputs and outputs,
    the topology) here, and each op's own rules from its registered definition: its `check` hook,
    the per-channel axis its `quant_rule` gives its weights, its shape rule, and the
    representability of every multiplier it computes (quant.MultiplierRangeError raised while its
    check runs). Every message names the op or tensor and the rule it breaks.
    """
    for t in graph.tensors.values():
        _check_tensor(t)
    _check_graph_io(graph)
    available = ({t.name for t in graph.tensors.values() if t.is_const or t.variable}
                 | set(graph.inputs))
    seen_ops: set[str] = set()
    for op in graph.ops:
        if op.name in seen_ops:
            raise TinyEngineError(f"op name {op.name} is used twice")
        seen_ops.add(op.name)
        for n in op.inputs:
            if n and n not in graph.tensors:
                raise TinyEngineError(f"op {op.name} ({op.kind}) reads unknown tensor {n}")
            if n and n not in available:
                raise TinyEngineError(f"op {op.name} reads {n} before it is produced")
        if not op.outputs:
            raise TinyEngineError(f"op {op.name} ({op.kind}) has no output")
        for n in op.outputs:
            if n not in graph.tensors:
                raise TinyEngineError(f"op {op.name} writes unknown tensor {n}")
            if graph.tensors[n].variable:
                raise UnsupportedError(f"op {op.name} ({op.kind}) writes the variable (state) "
                                       f"tensor {n} as an output; state is updated in place by "
                                       "the ops that take it as an input")
            if n in available:
                raise TinyEngineError(f"tensor {n} is produced twice (op {op.name})")
            available.add(n)
        _check_op(graph, op)
    for n in graph.outputs:
        if n not in available:
            raise TinyEngineError(f"graph output {n} is never produced")
    if not nx.is_directed_acyclic_graph(graph.dag()):
        raise TinyEngineError("the op graph has a cycle")


def _check_tensor(t: Tensor) -> None:
    """The rules every tensor obeys, whatever reads it."""
    if t.dtype not in DTYPES:
        raise TinyEngineError(f"tensor {t.name}: unsupported dtype {t.dtype}")
    if any(int(d) <= 0 for d in t.shape):
        raise TinyEngineError(f"tensor {t.name}: shape {t.shape} has a non-positive dimension")
    if t.nbytes > MAX_TENSOR_BYTES:
        raise UnsupportedError(f"tensor {t.name}: shape {t.shape} {t.dtype} holds {t.nbytes} "
                               f"bytes; the generated C indexes at most {MAX_TENSOR_BYTES}")
    if t.data is not None and tuple(t.data.shape) != t.shape:
        raise TinyEngineError(f"tensor {t.name}: data shape {t.data.shape} != {t.shape}")
    if t.data is not None and t.data.dtype != DTYPES[t.dtype]:
        raise TinyEngineError(f"tensor {t.name}: data dtype {t.data.dtype} != {t.dtype}")
    q = t.quant
    if q is not None:
        _check_quant(t, q)
    if t.dtype in QRANGE and not t.is_const and q is None:
        raise TinyEngineError(f"tensor {t.name}: {t.dtype} activation without quantisation")
    if t.variable and t.is_const:
        raise TinyEngineError(f"tensor {t.name}: a variable (state) tensor cannot be a "
                              "constant")


def _check_quant(t: Tensor, q: QuantParams) -> None:
    if q.scale.shape != q.zero_point.shape or q.scale.ndim != 1 or q.scale.size == 0:
        raise TinyEngineError(f"tensor {t.name}: malformed quantisation parameters (scales "
                              f"{q.scale.shape}, zero points {q.zero_point.shape})")
    scale = np.asarray(q.scale, np.float64)
    bad = ~(np.isfinite(scale) & (scale >= MIN_SCALE))
    if np.any(bad):
        raise TinyEngineError(
            f"tensor {t.name}: quantisation scale {scale[bad][0]:g} must be a finite positive "
            f"number of at least {MIN_SCALE:.3g} (a normal float32; TFLite divides by it)")
    if t.dtype in ("int8", "int16", "int32"):
        info = np.iinfo(DTYPES[t.dtype])  # type: ignore[type-var]
        zp = np.asarray(q.zero_point)
        outside = (zp < info.min) | (zp > info.max)
        if np.any(outside):
            raise TinyEngineError(
                f"tensor {t.name}: zero point {int(zp[outside][0])} is outside the {t.dtype} "
                f"range [{info.min}, {info.max}]")
    if q.per_channel:
        if not 0 <= q.axis < len(t.shape):
            raise TinyEngineError(f"tensor {t.name}: per-channel quantisation axis {q.axis} is "
                                  f"not an axis of shape {t.shape}")
        if t.shape[q.axis] != q.scale.size:
            raise TinyEngineError(
                f"tensor {t.name}: {q.scale.size} channel scales do not match axis {q.axis} "
                f"of shape {t.shape}")


def _check_graph_io(graph: Graph) -> None:
    for n in graph.inputs + graph.outputs:
        if n not in graph.tensors:
            raise TinyEngineError(f"graph input/output {n} is not a tensor")
    # Inputs and outputs are buffers the caller reads or fills: a constant has none in the arena,
    # and one input listed twice would be two buffers for one tensor.
    for kind, names_io in (("input", graph.inputs), ("output", graph.outputs)):
        const = next((n for n in names_io if graph.tensors[n].is_const), None)
        if const is not None:
            raise UnsupportedError(f"graph {kind} {const} is a constant tensor; the engine's "
                                   f"{kind}s must be activations (drop it from the model's "
                                   f"{kind}s)")
    state = next((n for n in graph.inputs + graph.outputs if graph.tensors[n].variable), None)
    if state is not None:
        raise UnsupportedError(f"graph input/output {state} is a variable (state) tensor; state "
                               "lives inside the engine: read it through an op's output")
    if len(set(graph.inputs)) != len(graph.inputs):
        twice = next(n for n in graph.inputs if graph.inputs.count(n) > 1)
        raise TinyEngineError(f"graph input {twice} is listed twice; list each input once")


def _scales_text(graph: Graph, op: Op) -> str:
    parts = []
    for role, names in (("input", op.inputs), ("output", op.outputs)):
        for n in names:
            t = graph.tensors[n] if n else None
            if t is not None and t.quant is not None:
                s = t.quant.scale
                parts.append(f"{role} {n} scale {float(s[0]):g}" if s.size == 1 else
                             f"{role} {n} scales {float(s.min()):g}..{float(s.max()):g}")
    return "; ".join(parts)


def _check_op(graph: Graph, op: Op) -> None:
    """The op's own rules, from its definition."""
    from .ops import get_op  # ops import ir; import late to avoid the cycle
    from .quant import MultiplierRangeError

    opdef = get_op(op.kind)
    where = f"op {op.name} ({op.kind})"
    state_at = set(opdef.state_inputs(graph, op))
    for k, n in enumerate(op.inputs):
        if n and graph.tensors[n].variable and k not in state_at:
            raise UnsupportedError(f"{where}: input {k} ({n}) is a variable (state) tensor; "
                                   "this op does not keep state there")
    # State inputs have their own types (SVDF keeps int16 state beside int8 activations): the
    # op's check judges them, and says so when one is not a variable tensor.
    checked = [n for k, n in enumerate(op.inputs) if k not in state_at] + op.outputs
    for n in checked:
        io = graph.tensors[n] if n else None
        if io is not None and not io.is_const and io.dtype not in opdef.dtypes:
            raise UnsupportedError(
                f"{where}: tensor {n} is {io.dtype}; the engine runs this op "
                f"on {' or '.join(opdef.dtypes)} activations")
    try:
        opdef.check(graph, op)
    except MultiplierRangeError as e:
        raise UnsupportedError(f"{where}: {e} ({_scales_text(graph, op)}); the requantisation "
                               "cannot be computed in Q31 fixed point: fix these scales") from None
    # A weight quantised per channel must be so along the axis the kernels index by output
    # channel (the op's quant_rule): another axis would make them read past the scale table.
    for pos, axis in opdef.quant_rule(graph, op).weights.items():
        w = graph.tensors[op.inputs[pos]] if pos < len(op.inputs) and op.inputs[pos] else None
        if w is not None and w.quant is not None and w.quant.per_channel and w.quant.axis != axis:
            raise UnsupportedError(
                f"{where}: weights {w.name} {w.shape} are quantised per channel along axis "
                f"{w.quant.axis}; this op's kernels read one scale per channel of axis {axis}")
    expected = opdef.infer_shapes(graph, op)
    for n, shape in zip(op.outputs, expected):
        if tuple(graph.tensors[n].shape) != tuple(shape):
            raise TinyEngineError(
                f"{where}: output {n} has shape {graph.tensors[n].shape}, "
                f"the op computes {tuple(shape)}")
