"""Op definitions. Importing this package registers every op with the registry."""

from . import add, conv, depthwise, fully_connected, pad, pool, quantize, reshape, softmax  # noqa: F401
from .base import REGISTRY, Arg, ConstArray, OpDef, OpEmission, get_op, register

__all__ = ["REGISTRY", "Arg", "ConstArray", "OpDef", "OpEmission", "get_op", "register"]
