"""The numpy reference executor: runs a graph op by op with each op's reference semantics."""

from __future__ import annotations

import numpy as np

from .errors import TinyEngineError
from .ir import DTYPES, Graph
from .ops import get_op


def run_reference(graph: Graph, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run one inference. `inputs` are in the graph's input shapes and dtypes."""
    if len(inputs) != len(graph.inputs):
        raise TinyEngineError(f"model takes {len(graph.inputs)} inputs, got {len(inputs)}")
    values: dict[str, np.ndarray] = {}
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
            assert y.shape == t.shape and y.dtype == DTYPES[t.dtype], (op.name, y.shape, y.dtype)
            values[name] = y
    return [values[n] for n in graph.outputs]
