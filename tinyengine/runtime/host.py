"""Host simulation: build a generated project's own sources with cffi and call them.

Nothing is re-implemented on this side: the module is compiled from the project's
<prefix>_model.c, <prefix>_weights.c and kernels/*.c, exactly what goes to the board.
Builds are cached under <project>/.host/ by a hash of the sources and flags.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cffi
import numpy as np

from ..errors import TinyEngineError
from ..inputs import as_input, check_input_count, check_input_order
from ..ir import DTYPES

HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def load_project_report(project: str | Path) -> dict[str, Any]:
    """A compiled project's report.json, checked for what running it needs (prefix, inputs,
    outputs, ops); a missing, damaged or foreign one is refused with one line."""
    path = Path(project) / "report.json"
    try:
        text = path.read_text()
    except (OSError, UnicodeError):
        raise TinyEngineError(f"{project} is not a compiled tinyengine project (no readable "
                              "report.json); run `tinyengine compile MODEL -o DIR` first") from None
    try:
        report = json.loads(text)
        _check_report(report)
    except (ValueError, TypeError, KeyError) as e:
        detail = e.args[0] if isinstance(e, _ReportError) else f"{type(e).__name__}: {e}"
        raise TinyEngineError(f"{path}: damaged or not written by tinyengine ({detail}); "
                              "compile the model again into this directory") from None
    return report


class _ReportError(ValueError):
    pass


def _check_report(report: Any) -> None:
    """The fields the host run reads, with the types it reads them as."""
    if not isinstance(report, dict):
        raise _ReportError("not a JSON object")
    prefix = report.get("prefix")
    if not isinstance(prefix, str) or not prefix.isidentifier() or not prefix.isascii():
        raise _ReportError(f"prefix {prefix!r} is not a C identifier")
    for key in ("inputs", "outputs"):
        specs = report.get(key)
        if not isinstance(specs, list) or not specs:
            raise _ReportError(f"{key} is not a non-empty list")
        for spec in specs:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise _ReportError(f"an entry of {key} has no name")
            shape, dtype, nbytes = spec.get("shape"), spec.get("dtype"), spec.get("bytes")
            if not isinstance(shape, list) or not all(
                    isinstance(d, int) and d > 0 for d in shape) or dtype not in DTYPES:
                raise _ReportError(f"{key} entry {spec['name']} has a bad shape or dtype")
            if nbytes != int(np.prod(shape)) * np.dtype(DTYPES[dtype]).itemsize:
                raise _ReportError(f"{key} entry {spec['name']}: bytes {nbytes!r} do not match "
                                   f"shape {shape} {dtype}")
            spec.setdefault("size", int(np.prod(shape)))
    if not isinstance(report.get("ops"), list):
        raise _ReportError("ops is not a list")
    source_model = report.get("source_model", {})
    if not isinstance(source_model, dict):
        raise _ReportError("source_model is not an object")


class HostModel:
    """A compiled project loaded into this process: `invoke([x0, x1, ...]) -> [y0, y1, ...]`,
    one array per model input and per model output, in the model's order."""

    def __init__(self, project: str | Path, extra_cflags: list[str] | None = None):
        self.project = Path(project).resolve()
        self.report = load_project_report(self.project)
        self.prefix: str = self.report["prefix"]
        self._ffi, self._lib = self._build(extra_cflags or [])
        if getattr(self._lib, f"{self.prefix}_init")() != 0:
            raise TinyEngineError(f"{self.project}: {self.prefix}_init failed")
        # Streamed inputs live in buffers of ours, outside the arena, as on the board.
        self._streams: dict[int, Any] = {}
        for i, spec in enumerate(self.report["inputs"]):
            if spec.get("streamed"):
                self._streams[i] = self._ffi.new("char[]", spec["bytes"])
                getattr(self._lib, f"{self.prefix}_stream_input")(i, self._streams[i])

    def _sources(self) -> list[Path]:
        p = self.project
        return [p / f"{self.prefix}_model.c", p / f"{self.prefix}_weights.c",
                *sorted((p / "kernels").glob("*.c"))]

    def _build(self, extra_cflags: list[str]) -> tuple[Any, Any]:
        p = self.prefix
        cdef = (f"int {p}_init(void); int {p}_invoke(void); void {p}_reset(void); "
                f"void *{p}_input(int index); void *{p}_output(int index); "
                f"int {p}_stream_input(int index, const void *data);")
        sources = self._sources()
        for f in [*sources, self.project / f"{p}_model.h"]:
            if not f.is_file():
                raise TinyEngineError(f"{self.project}: the project is incomplete ({f.name} is "
                                      "missing); compile the model again into this directory")
        h = hashlib.sha256()
        for f in [*sources, *sorted(self.project.glob("*.h")),
                  *sorted((self.project / "kernels").glob("*.h"))]:
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        h.update(" ".join(HOST_CFLAGS + extra_cflags).encode())
        name = f"_tinyengine_{p}_{h.hexdigest()[:16]}"
        # Instances of one stateless project may share one loaded library (its arena holds
        # nothing between invokes). A stateful one gets a private copy: two HostModels of equal
        # sources (e.g. builds with and without patches that came out the same) must not carry
        # each other's state.
        stateful = bool(self.report.get("persistent_bytes"))
        if name in sys.modules and not stateful:
            mod = sys.modules[name]
            return mod.ffi, mod.lib
        build_dir = self.project / ".host"
        libs = sorted(build_dir.glob(f"{name}*.so")) if build_dir.is_dir() else []
        if not libs:
            ffi = cffi.FFI()
            ffi.cdef(cdef)
            ffi.set_source(name, f'#include "{p}_model.h"', sources=[str(s) for s in sources],
                           include_dirs=[str(self.project), str(self.project / "kernels")],
                           extra_compile_args=HOST_CFLAGS + extra_cflags)
            build_dir.mkdir(exist_ok=True)
            log = io.StringIO()
            try:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    ffi.compile(tmpdir=str(build_dir), verbose=False)
            except Exception as e:
                raise TinyEngineError(f"{self.project}: the host build failed: {e}\n"
                                      f"{log.getvalue()[-2000:]}") from None
            libs = sorted(build_dir.glob(f"{name}*.so"))
        if stateful:
            # The loader maps a file once per path: a copy under a fresh path has its own
            # statics. The mapping outlives the copy's deletion.
            with tempfile.TemporaryDirectory(prefix="tinyengine-host-") as tmp:
                private = Path(tmp) / libs[0].name
                shutil.copyfile(libs[0], private)
                mod = self._load(name, private)
            return mod.ffi, mod.lib
        mod = self._load(name, libs[0])
        sys.modules[name] = mod
        return mod.ffi, mod.lib

    def _load(self, name: str, lib: Path) -> Any:
        spec = importlib.util.spec_from_file_location(name, lib)
        assert spec is not None and spec.loader is not None
        try:
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        except (ImportError, OSError) as e:  # e.g. a kernel source removed: undefined symbol
            raise TinyEngineError(f"{self.project}: the host build does not load ({e}); the "
                                  "project is incomplete: compile the model again into this "
                                  "directory") from None
        return mod

    def reset(self) -> None:
        """Reset the model's persistent state (variable tensors), as `<prefix>_reset()` does on
        the board. Invokes in between carry the state from one to the next."""
        getattr(self._lib, f"{self.prefix}_reset")()

    def invoke(self, inputs: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """One inference. `inputs`: a list with one array per model input, in the model's order
        (a bare array for a one-input model), each in its input's exact shape (or a batch of one
        of it) and dtype. Returns a list with one array per model output, in order."""
        lib, ffi, p = self._lib, self._ffi, self.prefix
        specs = self.report["inputs"]
        if isinstance(inputs, np.ndarray):
            if len(specs) != 1:
                raise TinyEngineError(f"the model takes {len(specs)} inputs: pass a list with "
                                      "one array per input")
            inputs = [inputs]
        arrays = [np.asarray(x) for x in inputs]
        check_input_count(len(arrays), specs, "pass a list with one array per input")
        names = [f"input {i} ({s['name']})" for i, s in enumerate(specs)]
        check_input_order(arrays, specs, names)
        for i, (x, spec) in enumerate(zip(arrays, specs)):
            x = as_input(x, spec, names[i])
            dest = self._streams[i] if i in self._streams else getattr(lib, f"{p}_input")(i)
            ffi.memmove(dest, x.tobytes(), spec["bytes"])
        status = getattr(lib, f"{p}_invoke")()
        if status != 0:
            op = self.report["ops"][(status >> 8) - 1]
            raise TinyEngineError(f"{op['name']} ({op['kernel']}) returned status "
                                  f"{status & 255}")
        outs = []
        for i, spec in enumerate(self.report["outputs"]):
            buf = ffi.buffer(getattr(lib, f"{p}_output")(i), spec["bytes"])
            outs.append(np.frombuffer(bytes(buf), DTYPES[spec["dtype"]]).reshape(spec["shape"]))
        return outs
