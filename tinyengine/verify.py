"""End-to-end check of a model: generated C (on the host) vs the numpy reference vs TFLM."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import tflm
from .codegen import compile_graph
from .frontend import load_model
from .inputs import as_input, check_input_count, check_input_order, input_specs, random_inputs
from .ir import Graph
from .progress import progress_bar
from .reference import ReferenceSession
from .runtime import HostModel


@dataclass
class OutputVerdict:
    index: int
    name: str
    n_inputs: int
    max_diff_reference: float  # max |C - reference| over all inputs
    max_diff_tflm: float | None  # max |C - TFLM|, None where TFLM was not run

    @property
    def exact(self) -> bool:
        return self.max_diff_reference == 0 and self.max_diff_tflm in (0, None)

    def line(self, arena_bytes: int) -> str:
        oracles = "reference" + (" and TFLM" if self.max_diff_tflm is not None else "")
        verdict = "bit-exact" if self.exact else "MISMATCH"
        tflm_part = "" if self.max_diff_tflm is None else f", vs TFLM {self.max_diff_tflm:g}"
        return (f"output {self.index} ({self.name}): {verdict} with {oracles} on "
                f"{self.n_inputs} inputs (max |diff| vs reference {self.max_diff_reference:g}"
                f"{tflm_part}); arena {arena_bytes} B")


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))


def _given_case(graph: Graph, k: int, case: list[np.ndarray]) -> list[np.ndarray]:
    """A given case in the exact shapes and dtypes of the graph's inputs, so that C, reference
    and TFLM all run on the same arrays."""
    specs = input_specs(graph)
    arrays = [np.asarray(x) for x in case]
    check_input_count(len(arrays), specs, f"given case {k} must be a list with one array per "
                                          "input")
    names = [f"given case {k}, input {i} ({s['name']})" for i, s in enumerate(specs)]
    check_input_order(arrays, specs, names)
    return [as_input(x, s, w) for x, s, w in zip(arrays, specs, names)]


# After a stream, the engines are reset and this many of its first inputs run again.
REPLAY_AFTER_RESET = 10


def verify_model(model: str | Path, given: list[list[np.ndarray]] | None = None,
                 n_random: int = 20, seed: int = 0, use_tflm: bool = True,
                 progress: bool = False, compile_options: dict[str, Any] | None = None,
                 stream: bool | None = None) -> tuple[list[OutputVerdict], dict[str, Any]]:
    """Compile the model file, then run C, reference and (if installed) TFLM on `n_random`
    seeded random inputs plus the `given` ones (each a list with one array per model input).
    For `stream` see verify_graph."""
    graph = load_model(model)
    run_tflm = use_tflm and tflm.tflm_available()
    tflite_bytes = Path(model).read_bytes() if run_tflm else None
    return verify_graph(graph, tflite_bytes, given, n_random, seed, progress, str(model),
                        compile_options, stream)


def stream_schedule(n_cases: int, stream: bool) -> list[tuple[int, bool]]:
    """(case index, reset before it) for each invocation. A stream runs every case on one
    engine instance, state carried, then resets and replays the first REPLAY_AFTER_RESET; else
    every case starts from the initial state."""
    if not stream:
        return [(k, True) for k in range(n_cases)]
    replay = [(k, k == 0) for k in range(min(n_cases, REPLAY_AFTER_RESET))]
    return [(k, False) for k in range(n_cases)] + replay


def verify_graph(graph: Graph, tflite_bytes: bytes | None = None,
                 given: list[list[np.ndarray]] | None = None, n_random: int = 20, seed: int = 0,
                 progress: bool = False, source: str = "",
                 compile_options: dict[str, Any] | None = None, stream: bool | None = None
                 ) -> tuple[list[OutputVerdict], dict[str, Any]]:
    """As verify_model, for a graph in memory; TFLM runs when `tflite_bytes` is given.

    stream: feed the inputs, in order, to one instance of each engine (C, reference, TFLM) with
    their state carried, then reset all three and replay the first inputs; the default for a
    model with state (variable tensors). False resets the state before every input."""
    run_tflm = tflite_bytes is not None
    stateful = bool(graph.state())
    stream = stateful if stream is None else stream and stateful
    rng = np.random.default_rng(seed)
    cases = [_given_case(graph, k, case) for k, case in enumerate(given or [])]
    cases += [random_inputs(graph, rng) for _ in range(n_random)]
    schedule = stream_schedule(len(cases), stream)
    diffs_ref = [0.0] * len(graph.outputs)
    diffs_tflm = [0.0] * len(graph.outputs)
    with tempfile.TemporaryDirectory(prefix="tinyengine-verify-") as tmp:
        report = compile_graph(graph, Path(tmp) / "project", source=source or graph.name,
                               **(compile_options or {}))
        host = HostModel(Path(tmp) / "project")
        ref = ReferenceSession(graph)
        oracle = tflm.TflmSession(tflite_bytes) if tflite_bytes is not None else None
        for k, reset in progress_bar(schedule, desc="verify", enabled=progress):
            if reset and stateful:
                host.reset()
                ref.reset()
                if oracle is not None:
                    oracle.reset()
            inputs = cases[k]
            c_out = host.invoke(inputs)
            r_out = ref.invoke(inputs)
            tfl = oracle.invoke(inputs) if oracle is not None else None
            for i, y in enumerate(c_out):
                diffs_ref[i] = max(diffs_ref[i], _max_diff(y, r_out[i]))
                if tfl is not None:
                    diffs_tflm[i] = max(diffs_tflm[i], _max_diff(y, tfl[i].reshape(y.shape)))
    report["verify_stream"] = {"stream": stream, "invocations": len(schedule),
                               "replayed_after_reset": len(schedule) - len(cases)}
    verdicts = [OutputVerdict(i, n, len(schedule), diffs_ref[i],
                              diffs_tflm[i] if run_tflm else None)
                for i, n in enumerate(graph.outputs)]
    return verdicts, report
