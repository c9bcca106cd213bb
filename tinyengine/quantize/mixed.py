"""Which ops run on int16: all, none, or a mix chosen on calibration data.

Layers. The choice is made per *layer*: each graph input (its QUANTIZE: a 16-bit sensor or audio
input loses most in int8) and each op that computes new values. Ops that only move or select
values (their quant_rule makes every output share its parameters with an input: RESHAPE, PAD,
pooling, CONCATENATION, ...) are *followers*: they take the type their first activation input is
stored in, so that a type changes only where a layer changes it. An op without an int16 path
(its `dtypes`), or whose int16 kernel refuses its configuration (its `check`), stays int8 in a
mix; under `--activations int16` it is refused instead.

Mixed (`choose_mixed`), deterministic and greedy, on the evaluation samples (the first
`eval_samples` calibration samples). The error of a graph is its output's noise-to-signal ratio
against the float model: the sum of squared errors over the sum of squares of the float
output, for each sample and output, averaged.
1. The all-int8 and the all-int16 graphs (every layer that can be int16) bound what mixing can
   reach. The budget recovers the share `recover` of int16's gain in decibels:
   e8 * (e16 / e8) ** recover; the default 0.5, the geometric mean of the two errors, asks for
   half of int16's improvement in signal-to-noise ratio.
2. Each candidate layer's cost in int8: the error of the all-int16 graph with that one layer
   int8, less int16's error. It counts what the layer loses where it stands, its type changes
   (int8 <-> int16 QUANTIZE ops around it) included.
3. Starting from all-int16, demote the layers to int8 from the cheapest up (ties by op order),
   keeping each demotion that leaves the error within the budget. If more than `max_fraction`
   of the candidates are still int16, the cheapest of them are demoted too (the budget is then
   missed, as a rule; the record says whether it is met).
A QUANTIZE op (int8 <-> int16) sits at each type change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op
from ..ops import get_op
from .int16 import has_int16, refuse_without_int16

Sample = Mapping[str, np.ndarray]  # float tensor name -> its value for one sample (batch 1)


def input_op(name: str) -> str:
    """The name of the QUANTIZE op that reads graph input `name` (a layer of its own)."""
    return f"{name}:quantize"


def _activation_inputs(graph: Graph, op: Op) -> list[str]:
    return [n for n in op.inputs if n and not graph.tensor(n).is_const]


def is_follower(graph: Graph, op: Op, shares_quant: Mapping[str, str]) -> bool:
    """Every output shares its parameters with an activation input, and nothing is weighted or
    fixed: the op moves or selects values, it does not compute new ones."""
    rule = get_op(op.kind).quant_rule(graph, op)
    if rule.weights or rule.fixed:
        return False
    inputs = set(_activation_inputs(graph, op))
    pairs = {frozenset(p) for p in rule.share} | {frozenset(p) for p in shares_quant.items()}
    return bool(inputs) and all(any(frozenset((o, i)) in pairs for i in inputs)
                                for o in op.outputs)


def layers(graph: Graph, shares_quant: Mapping[str, str]) -> list[str]:
    """Graph inputs' QUANTIZE ops, then the computing ops, in op order."""
    return [input_op(n) for n in graph.inputs] + [
        op.name for op in graph.ops if not is_follower(graph, op, shares_quant)]


def resolve_types(graph: Graph, shares_quant: Mapping[str, str],
                  layer_types: Mapping[str, str]) -> dict[str, str]:
    """Every op's type (graph inputs' QUANTIZE ops included) from the layers' (absent: int8):
    followers take their first activation input's; an op without an int16 path is int8."""
    types = {input_op(n): layer_types.get(input_op(n), "int8") for n in graph.inputs}
    stored = {n: types[input_op(n)] for n in graph.inputs}
    for op in graph.ops:
        if is_follower(graph, op, shares_quant):
            dtype = stored[_activation_inputs(graph, op)[0]]
        else:
            dtype = layer_types.get(op.name, "int8")
        if dtype == "int16" and not has_int16(op.kind):
            dtype = "int8"
        types[op.name] = dtype
        stored.update({o: dtype for o in op.outputs})
    return types


def uniform_types(graph: Graph, dtype: str) -> dict[str, str]:
    """Every op on `dtype`; int16 refuses (one line) the first op that has no int16 path."""
    if dtype == "int16":
        refuse_without_int16((op.name, op.kind) for op in graph.ops)
    return {**{input_op(n): dtype for n in graph.inputs}, **{op.name: dtype for op in graph.ops}}


@dataclass(frozen=True)
class MixedOptions:
    recover: float = 0.5  # the share of int16's gain over int8 (in dB) the mix must keep
    max_fraction: float = 1.0  # of the candidate layers, at most this share stays int16
    eval_samples: int = 64  # calibration samples the output error is measured on


@dataclass
class MixedChoice:
    """What the mixed search saw and chose (report.json's "activations" -> "mixed")."""

    int16_layers: list[str]  # in op order
    pinned_int8: dict[str, str]  # layer -> why it cannot be int16
    layer_cost: dict[str, float]  # candidate -> its cost in int8 (step 2), cheapest first
    error: dict[str, float]  # output error: "int8", "int16", "mixed", "budget"
    budget_met: bool
    steps: list[dict[str, Any]] = field(default_factory=list)  # each demotion tried
    samples: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"int16_layers": self.int16_layers, "pinned_int8": self.pinned_int8,
                "layer_cost": self.layer_cost, "output_error": self.error,
                "budget_met": self.budget_met, "steps": self.steps,
                "eval_samples": self.samples}


def output_error(qgraph: Graph, float_graph: Graph, samples: Sequence[Sample]) -> float:
    """Noise-to-signal ratio of the quantised graph's (float) outputs against the float model's,
    per sample and output, averaged: a quiet input counts as much as a loud one (summed over
    samples, the loud ones would hide what int8 does to the quiet)."""
    from ..reference import run_reference

    ratios = []
    for s in samples:
        outs = run_reference(qgraph, [s[n] for n in float_graph.inputs])
        for n, y in zip(float_graph.outputs, outs):
            want = np.asarray(s[n], np.float64).reshape(y.shape)
            noise = float(np.sum((y.astype(np.float64) - want) ** 2))
            ratios.append(noise / max(float(np.sum(want ** 2)), _TINY))
    return float(np.mean(ratios))


_TINY = 1e-30  # an all-zero float output: its noise counts as is


def choose_mixed(graph: Graph, shares_quant: Mapping[str, str],
                 build: Callable[[Mapping[str, str]], Graph], samples: Sequence[Sample],
                 options: MixedOptions | None = None) -> tuple[Graph, MixedChoice]:
    """The mixed graph and the record of how it was chosen (module docstring)."""
    options = options or MixedOptions()
    if not samples:
        raise TinyEngineError("mixed activations need calibration samples to measure errors on")
    all_layers = layers(graph, shares_quant)
    kinds = {op.name: op.kind for op in graph.ops}
    pinned = {n: f"{kinds[n]} has no int16 path" for n in all_layers
              if n in kinds and not has_int16(kinds[n])}
    candidates = [n for n in all_layers if n not in pinned]

    def typed(int16_layers: Sequence[str]) -> Graph:
        return build(resolve_types(graph, shares_quant, {n: "int16" for n in int16_layers}))

    try:
        typed(candidates)
    except UnsupportedError:
        # An int16 kernel that refuses this op's configuration: find the layers it comes from
        # (one at a time) and keep them int8, with the kernel's reason.
        for n in list(candidates):
            try:
                typed([n])
            except UnsupportedError as refusal:
                pinned[n] = str(refusal)
                candidates.remove(n)

    def error(int16_layers: Sequence[str]) -> float:
        return output_error(typed(int16_layers), graph, samples)

    e8 = error([])
    e16 = error(candidates)
    budget = e8 * (e16 / e8) ** options.recover if e8 > 0 else 0.0
    cost = {n: error([c for c in candidates if c != n]) - e16 for n in candidates}
    order = sorted(candidates, key=lambda n: (cost[n], all_layers.index(n)))
    kept = list(candidates)
    err = e16
    steps: list[dict[str, Any]] = []
    for name in order:
        trial = [n for n in kept if n != name]
        e = error(trial)
        ok = e <= budget
        steps.append({"layer": name, "output_error": e, "demoted": ok})
        if ok:
            kept, err = trial, e
    cap = math.floor(options.max_fraction * len(candidates) + 1e-9)
    if len(kept) > cap:
        drop = [n for n in order if n in kept][:len(kept) - cap]
        kept = [n for n in kept if n not in drop]
        err = error(kept)
        steps.append({"layer": drop, "output_error": err, "demoted": True, "cap": cap})
    choice = MixedChoice(kept, pinned, {n: cost[n] for n in order},
                         {"int8": e8, "int16": e16, "mixed": err, "budget": budget},
                         err <= budget, steps, len(samples))
    return typed(kept), choice
