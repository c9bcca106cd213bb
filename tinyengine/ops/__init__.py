"""Op definitions. Importing this package registers every op with the registry."""

from . import (  # noqa: F401
    add,
    conv,
    depthwise,
    fully_connected,
    pad,
    pool,
    quantize,
    reshape,
    slice,
    softmax,
)
from .base import REGISTRY, Arg, ConstArray, OpDef, OpEmission, get_op, register

__all__ = ["REGISTRY", "Arg", "ConstArray", "OpDef", "OpEmission", "get_op", "register"]
