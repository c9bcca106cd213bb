"""One op, one place: the contract every op definition fulfils, and the registry.

An `OpDef` knows its op's shape rule, its reference semantics (numpy, the specification), its
MAC count, the domain check that rejects configurations we do not implement, and what C it emits
(which kernel, which parameter struct, which constant arrays). Ops register with `@register`;
nothing else in the engine switches on op kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op

# A C initialiser value: an int, a float, a C expression string, or a sequence -> braces.
CValue = Union[int, float, str, Sequence["CValue"]]  # noqa: UP007 (a recursive alias needs Union)


@dataclass
class ConstArray:
    """A constant array the op needs in flash, emitted into the weights source."""

    name: str  # short name, unique within the op ("filter", "bias", "mult", "shift")
    ctype: str  # "int8_t", "int32_t", "float"
    values: np.ndarray  # flattened in the order the kernel reads it


@dataclass
class Arg:
    """One argument of the kernel call after the params pointer.

    kind "tensor": pointer into the arena for the activation tensor `ref`;
    kind "const":  the ConstArray named `ref` of this op (NULL if `ref` is "");
    kind "scratch": pointer to the op's scratch buffer (size from `OpEmission.scratch_bytes`).
    """

    kind: str
    ref: str
    ctype: str  # pointee type, e.g. "const int8_t" or "int8_t"


@dataclass
class OpEmission:
    kernel: str  # C function to call, e.g. "te_conv2d_s8"
    params_type: str  # C struct type, e.g. "te_conv2d_params_t"
    params: dict[str, CValue]  # designated initialisers, in field order; may name consts
    args: list[Arg]
    consts: list[ConstArray] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # csrc files (.c and .h) the kernel needs
    scratch_bytes: int = 0


class OpDef:
    """Base class of op definitions; subclasses set `kind` and override the methods."""

    kind: str = ""

    def check(self, graph: Graph, op: Op) -> None:
        """Raise UnsupportedError naming the op if its configuration is outside our kernels."""

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Compute the outputs from the input arrays (None for absent optional inputs)."""
        raise NotImplementedError

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        """Scratch the kernel emit() chooses needs; cheap, for planning without emitting."""
        return 0

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        """Inputs whose buffer the output may take over when that input dies at this op, in
        order of preference; the kernel must then stay exact with output == input."""
        return []

    # True for ops whose output is the input's bytes unchanged (RESHAPE): the output can share
    # the input's buffer even while the input is still read later.
    is_view: bool = False

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        raise NotImplementedError


REGISTRY: dict[str, OpDef] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    assert cls.kind and cls.kind not in REGISTRY, cls
    REGISTRY[cls.kind] = cls()
    return cls


def get_op(kind: str) -> OpDef:
    if kind not in REGISTRY:
        raise UnsupportedError(f"op kind {kind} is not supported")
    return REGISTRY[kind]
