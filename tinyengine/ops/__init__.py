"""Op definitions. Importing this package registers every op module in it with the registry: a new
op is a new module here (and its C file in csrc/), with no list to edit.

`load_op_library(path)` registers a user's ops from a Python file outside the package (see
examples/custom_op/); their C sources sit beside that file.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

from ..errors import TinyEngineError
from .base import (
    CUSTOM_CODES,
    HOOKS,
    REGISTRY,
    Arg,
    ConstArray,
    OpDef,
    OpEmission,
    QuantRule,
    TfliteImport,
    TfliteLowering,
    get_op,
    implements,
    register,
)

# Modules of this package that hold helpers, not ops.
_HELPERS = {"base", "common"}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name not in _HELPERS:
        importlib.import_module(f"{__name__}.{_info.name}")


def load_op_library(path: str | Path) -> list[str]:
    """Import a user's Python file that registers ops with `@register`; return the new kinds.

    The file is the user's own code and runs as such (like a plugin); loading the same file
    twice registers nothing new.
    """
    path = Path(path).resolve()
    if not path.is_file() or path.suffix != ".py":
        raise TinyEngineError(f"{path}: an op library is a .py file that registers ops")
    name = f"tinyengine_user_ops_{abs(hash(str(path)))}"
    if name in sys.modules:
        return []
    before = set(REGISTRY)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except TinyEngineError:
        del sys.modules[name]
        raise
    except Exception as e:
        del sys.modules[name]
        raise TinyEngineError(f"{path}: loading the op library failed: "
                              f"{type(e).__name__}: {e}") from None
    return sorted(set(REGISTRY) - before)


__all__ = ["CUSTOM_CODES", "HOOKS", "REGISTRY", "Arg", "ConstArray", "OpDef", "OpEmission",
           "QuantRule", "TfliteImport", "TfliteLowering", "get_op", "implements",
           "load_op_library", "register"]
