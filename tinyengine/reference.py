"""The numpy reference executor: runs a graph op by op with each op's reference semantics.

A stateful model (variable tensors: SVDF's activation state, an LSTM's cell state) carries its
state from one invocation to the next: `ReferenceSession` holds it, as the generated engine's
state region does, and `reset()` sets it back (TFLM's ResetVariableTensors: int8 state to its
zero point, everything else to 0). Ops receive their state inputs (`state_inputs`) as writable
arrays and update them in place.
"""

from __future__ import annotations

import numpy as np

from .errors import TinyEngineError
from .ir import DTYPES, Graph
from .ops import get_op


class ReferenceSession:
    """One model instance: `invoke(inputs) -> outputs` with state carried, `reset()`."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.state: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        self.state = {t.name: np.full(t.shape, t.reset_value, DTYPES[t.dtype])
                      for t in self.graph.state()}

    def invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run one inference. `inputs` are in the graph's input shapes and dtypes."""
        graph = self.graph
        if len(inputs) != len(graph.inputs):
            raise TinyEngineError(f"model takes {len(graph.inputs)} inputs, got {len(inputs)}")
        values: dict[str, np.ndarray] = dict(self.state)
        for name, x in zip(graph.inputs, inputs):
            t = graph.tensor(name)
            x = np.asarray(x)
            if x.size != t.size:
                raise TinyEngineError(f"input {name}: expected shape {t.shape}, got {x.shape}")
            values[name] = x.reshape(t.shape).astype(DTYPES[t.dtype], copy=False)
        for t in graph.tensors.values():
            if t.data is not None:
                values[t.name] = t.data
        for op in graph.ops:
            args = [values[n] if n else None for n in op.inputs]
            outs = get_op(op.kind).reference(graph, op, args)  # type: ignore[arg-type]
            for name, y in zip(op.outputs, outs):
                t = graph.tensor(name)
                assert y.shape == t.shape and y.dtype == DTYPES[t.dtype], \
                    (op.name, y.shape, y.dtype)
                values[name] = y
        for name, s in self.state.items():
            assert s.shape == graph.tensor(name).shape and s.dtype == DTYPES[
                graph.tensor(name).dtype], f"state {name} changed shape or type"
        return [values[n] for n in graph.outputs]


def run_reference(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run one inference from the initial state (a fresh session)."""
    return ReferenceSession(graph).invoke(inputs)
