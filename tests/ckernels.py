"""Build csrc/ kernels straight into a cffi module, for kernel-level tests.

End-to-end tests go through the code generator; these let a kernel test call one C function with
numpy arrays (ffi.from_buffer) and compare with the op's numpy reference.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import cffi

CSRC = Path(__file__).resolve().parent.parent / "csrc"
_BUILD = Path(tempfile.gettempdir()) / "tinyengine_kernel_tests"


def build(headers: list[str], sources: list[str], cdef: str, cflags: tuple[str, ...] = (),
          deps: tuple[str, ...] = ()) -> tuple[Any, Any]:
    """Compile csrc `sources` with `cdef` declarations and extra `cflags`; returns (ffi, lib).
    Cached by content: of the flags, the files named and `deps` (headers the sources include
    that `headers` does not name)."""
    texts = [cdef, " ".join(cflags)] + [(CSRC / f).read_text() for f in
                                        [*headers, *sources, "te_common.h", *deps]]
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    name = f"_te_kernels_{digest}"
    out = _BUILD / name
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, "\n".join(f'#include "{h}"' for h in headers),
                   sources=[str(CSRC / s) for s in sources], include_dirs=[str(CSRC)],
                   extra_compile_args=["-std=c99", "-O1", "-Wall", "-Wextra", "-Werror",
                                       *cflags])
    libs = list(out.glob(f"{name}*.so"))
    if not libs:
        # Two pytest-xdist workers may build the same module at once: each builds in a folder of
        # its own and renames the finished library into place (atomic), so none loads another's
        # half-written file.
        work = out / f"build-{os.getpid()}"
        work.mkdir(parents=True, exist_ok=True)
        ffi.compile(tmpdir=str(work), verbose=False)
        built = next(work.glob(f"{name}*.so"))
        os.replace(built, out / built.name)
        libs = [out / built.name]
    spec = importlib.util.spec_from_file_location(name, libs[0])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod.ffi, mod.lib
