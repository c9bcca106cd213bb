"""TensorFlow Lite Micro as the oracle: run a .tflite model and measure the arena it needs.

Everything the engine computes must equal what TFLM computes, so tests compare against these
functions. TFLM comes from the optional `tflite-micro` package (the "tflm" extra); it is imported
lazily so the engine itself works without it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

from .errors import TinyEngineError

# Generous on purpose: a too-small arena makes TFLM raise at construction or, for some models,
# crash the whole process. Every model in shared/models needs under 100 KiB.
DEFAULT_ARENA_BYTES = 4 << 20

_INSTALL_HINT = ("TensorFlow Lite Micro is not installed: install the tflm extra: "
                 "pip install tflite-micro")

# print_allocations() writes these lines (RecordingMicroAllocator) to the C-level stderr.
_ARENA_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_VARIABLE_LINE = re.compile(r"'TfLiteTensor variable buffer data' used (\d+) bytes")

# Runs in a child process: print_allocations() writes to fd 2 from C, which we can only read
# reliably from outside, and a failing TFLM may abort the process rather than raise.
_ARENA_CHILD = """
import sys
import numpy as np
from tflite_micro import runtime
model = sys.stdin.buffer.read()
itp = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[1]))
for i in range(int(sys.argv[2])):
    d = itp.get_input_details(i)
    itp.set_input(np.zeros(d["shape"], d["dtype"]), i)
itp.invoke()
sys.stderr.flush()
itp.print_allocations()
"""


def tflm_available() -> bool:
    """Whether the `tflite_micro` package can be imported."""
    try:
        _runtime()
    except TinyEngineError:
        return False
    return True


def _runtime() -> ModuleType:
    try:
        from tflite_micro import runtime
    except ImportError as e:
        raise TinyEngineError(_INSTALL_HINT) from e
    return runtime


def _io_counts(model: bytes) -> tuple[int, int]:
    """(inputs, outputs) of subgraph 0, read from the flatbuffer (the interpreter has no count)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    sub = fb.Model.GetRootAsModel(model, 0).Subgraphs(0)
    return sub.InputsLength(), sub.OutputsLength()


class TflmSession:
    """One TFLM interpreter kept across invocations, so a stateful model (SVDF, LSTM: variable
    tensors) carries its state from one invoke to the next; `reset()` is TFLM's Reset, which
    sets the variable tensors back to zero (int8 ones to their zero point)."""

    def __init__(self, model: bytes, arena_size: int = DEFAULT_ARENA_BYTES):
        runtime = _runtime()
        self.model = bytes(model)
        self.n_in, self.n_out = _io_counts(self.model)
        try:
            self.itp = runtime.Interpreter.from_bytes(self.model, arena_size=arena_size)
        except RuntimeError as e:
            raise TinyEngineError(f"TFLM rejected the model: {e}") from e

    def invoke(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != self.n_in:
            raise TinyEngineError(f"model takes {self.n_in} inputs, got {len(inputs)}")
        itp = self.itp
        try:
            for i, x in enumerate(inputs):
                d = itp.get_input_details(i)
                itp.set_input(np.asarray(x, d["dtype"]).reshape(d["shape"]), i)
            itp.invoke()
        except RuntimeError as e:
            raise TinyEngineError(f"TFLM rejected the model: {e}") from e
        # get_output returns a view of the arena; copy before the next invoke overwrites it.
        return [np.array(itp.get_output(i), copy=True) for i in range(self.n_out)]

    def reset(self) -> None:
        self.itp.reset()


def run_tflm(model: bytes, inputs: list[np.ndarray],
             arena_size: int = DEFAULT_ARENA_BYTES) -> list[np.ndarray]:
    """Run one inference of a .tflite model with TFLM's reference kernels (from a fresh
    interpreter, so from the initial state); returns the outputs."""
    return TflmSession(model, arena_size).invoke(inputs)


def tflm_arena(model: str | Path | bytes,
               arena_size: int = DEFAULT_ARENA_BYTES) -> dict[str, int]:
    """TFLM's arena use for one inference: {"head", "tail", "total", "variable"} in bytes.

    head = activations and scratch (its GreedyMemoryPlanner), tail = persistent runtime data,
    variable = the state (variable tensors) inside the tail.
    Measured in a subprocess, from RecordingMicroAllocator's report; the figures do not depend on
    `arena_size` as long as it is large enough.
    """
    _runtime()
    data = Path(model).read_bytes() if isinstance(model, (str, Path)) else bytes(model)
    n_in, _ = _io_counts(data)
    proc = subprocess.run([sys.executable, "-c", _ARENA_CHILD, str(arena_size), str(n_in)],
                          input=data, capture_output=True, timeout=120, check=False)
    text = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        tail = text.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise TinyEngineError(f"TFLM could not run the model with a {arena_size} B arena: "
                              f"{tail[0]}")
    figures = {k: int(v) for k, v in _ARENA_LINE.findall(text)}
    if set(figures) != {"head", "tail", "total"}:
        raise TinyEngineError(f"unexpected TFLM allocation report: {text[:200]!r}")
    # State (variable tensors) is part of the tail; 0 when the report has no such line.
    figures["variable"] = sum(int(v) for v in _VARIABLE_LINE.findall(text))
    return figures
