"""One op, one place: the contract every op definition fulfils, and the registry.

An `OpDef` holds everything the engine knows about one op kind, as hooks:
- semantics: `check` (the domain our kernels implement), `infer_shapes`, `reference` (numpy, the
  specification), `macs`, `dtypes` (activation types it takes);
- C: `kernel` (the entry point chosen for this op, by the rule the C `_wrapper` also applies),
  `scratch_bytes` (the twin of the C `_get_buffer_size`), `emit` (parameter struct, constants,
  arguments), `inplace_inputs`, `is_view`;
- frontends: `from_tflite` / `to_tflite` (builtin options <-> attrs; the writer serves the TFLM
  oracle), `onnx_types` + `from_onnx` (ONNX node -> IR ops), `to_qdq` (the ONNX QDQ export);
- quantisation: `quant_rule` (tensors that share parameters, fixed output parameters, weight
  axes);
- memory: `patch` ("windowed", "elementwise" or "none") and `window` for the patch pass.

A hook an op has no use for is named in `not_applicable`; tests/test_op_hooks.py holds every
registered op to every hook. The frontends, passes and code generator loop over the registry;
nothing else in the engine switches on op kinds. Ops register with `@register` by being a module
of this package (imported by tinyengine/ops/__init__.py without a hand-kept list), or from a
user's own file through `load_op_library`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from ..errors import UnsupportedError
from ..ir import Graph, Op

if TYPE_CHECKING:
    from types import ModuleType

# A C initialiser value: an int, a float, a C expression string, or a sequence -> braces.
CValue = Union[int, float, str, Sequence["CValue"]]  # noqa: UP007 (a recursive alias needs Union)


@dataclass
class ConstArray:
    """A constant array the op needs in flash, emitted into the weights source."""

    name: str  # short name, unique within the op ("filter", "bias", "mult", "shift")
    ctype: str  # "int8_t", "int32_t", "float"
    values: np.ndarray  # flattened in the order the kernel reads it
    # A table that is the same in every model (TFLite's sigmoid table, int16 SOFTMAX's LUTs):
    # emitted once per project however many ops use it. Never set it for values derived from
    # the model's weights or scales (the search prices networks without them).
    shared: bool = False


@dataclass
class Arg:
    """One argument of the kernel call after the params pointer.

    kind "tensor": pointer into the arena for the activation tensor `ref`;
    kind "const":  the ConstArray named `ref` of this op (NULL if `ref` is "");
    kind "scratch": pointer to the op's scratch buffer (size from `OpEmission.scratch_bytes`).
    A "tensor" that is a variable (state) tensor points into the state region, not the arena.
    """

    kind: str
    ref: str
    ctype: str  # pointee type, e.g. "const int8_t" or "int8_t"


@dataclass
class OpEmission:
    # The C function the generated code calls, e.g. "te_conv2d_s8". Where a kernel has paths of
    # its own (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED) it is the path the layer takes,
    # chosen at compile time so that only the paths a model uses are linked; the op's `kernel`
    # hook still names the variant (the rule the C `_wrapper` applies), which the latency
    # tables are keyed by.
    kernel: str
    params_type: str  # C struct type, e.g. "te_conv2d_params_t"
    params: dict[str, CValue]  # designated initialisers, in field order; may name consts
    args: list[Arg]
    consts: list[ConstArray] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # csrc files (.c and .h) the kernel needs
    scratch_bytes: int = 0


@dataclass
class TfliteImport:
    """What a TFLite operator becomes: attrs, and which of its inputs (positions in the
    operator's input list, in IR order; None for an absent optional one) the IR keeps. Inputs not
    kept are constant parameters the hook folded into attrs (shape, axes, paddings)."""

    attrs: dict[str, Any]
    inputs: list[int | None]


@dataclass
class TfliteLowering:
    """What one IR op becomes in a .tflite file: builtin options plus int32 constants appended to
    its inputs (or, with `leading_inputs`, put before them)."""

    options_type: str  # a BuiltinOptions member name, "NONE" for none
    options: Any = None
    extra_inputs: list[Any] = field(default_factory=list)  # numpy arrays, written as constants
    # Leave absent trailing inputs out instead of writing index -1 for them.
    omit_absent_tail: bool = False
    leading_inputs: list[Any] = field(default_factory=list)
    # The IR inputs in TFLite's order, as positions in op.inputs (None: the IR's own order), e.g.
    # TRANSPOSE_CONV's (weights, input, bias) after its output-shape leading input.
    input_order: list[int] | None = None
    custom_code: str = ""  # for CUSTOM ops: the custom code, options_type "NONE"
    # Write the operator with no outputs: TFLite's ASSIGN_VARIABLE has none, where the IR gives
    # every op one (there an unread view of the value, left out of the file).
    no_outputs: bool = False


@dataclass
class QuantRule:
    """How post-training quantisation treats an op (TFLite's converter rules).

    share: pairs of tensors (inputs/outputs of this op) that must have one set of parameters.
    fixed: output tensor -> (scale, zero_point) that the op dictates (SOFTMAX's 1/256, -128).
    weights: input position -> the channel axis of a weight tensor quantised symmetrically (the
             bias, at position 2, follows the weights at position 1 with scale s_in * s_w).
    weights_per_tensor: the converter's default for these weights is one scale (FC).
    const_operands: float constants among the inputs become per-tensor int8 activations.
    """

    share: list[tuple[str, str]] = field(default_factory=list)
    fixed: dict[str, tuple[float, int]] = field(default_factory=dict)
    weights: dict[int, int] = field(default_factory=dict)
    # TFLite's converter quantises these weights per tensor unless asked otherwise
    # (FULLY_CONNECTED); convolutions per channel.
    weights_per_tensor: bool = False
    const_operands: bool = False
    # The smallest output scale the kernel accepts, given the input scales (ADD's rescale must
    # stay below 1); the quantiser raises a calibrated scale below it.
    output_scale_floor: Callable[[list[float]], float] | None = None


# A window geometry for the patch pass: (fh, fw, sh, sw, dh, dw, pad_h, pad_w) in whole-tensor
# execution; a patch then gets attrs["window"] = (out_h, out_w, pad_h, pad_w).
Window = tuple[int, int, int, int, int, int, int, int]

# The hooks every op implements or names in `not_applicable`.
HOOKS = ("check", "infer_shapes", "reference", "macs", "kernel", "scratch_bytes", "emit",
         "from_tflite", "to_tflite", "from_onnx", "to_qdq", "quant_rule", "window")


class OpDef:
    """Base class of op definitions; subclasses set `kind` and override the hooks."""

    kind: str = ""
    # Activation dtypes the op takes ("int8", "int16" for TFLite's 16x8 mode, "float32" for
    # boundary ops); `check` then says which combinations of input and output types it runs.
    dtypes: tuple[str, ...] = ()
    # How the patch pass treats it: "windowed" (its output region reads an input window: give
    # `window`), "elementwise" (region in = region out) or "none" (ends a patch stage).
    patch: str = ""
    # ONNX node types whose converter is this op's `from_onnx`.
    onnx_types: tuple[str, ...] = ()
    # For a TFLite CUSTOM operator: its custom code (the op's `kind` is then free).
    tflite_custom_code: str = ""
    # Hooks with no meaning for this op (e.g. "window" for a non-windowed op).
    not_applicable: frozenset[str] = frozenset()
    # True for ops whose output is the input's bytes unchanged (RESHAPE): the output can share
    # the input's buffer even while the input is still read later.
    is_view: bool = False

    # -- semantics ----------------------------------------------------------------------------

    def check(self, graph: Graph, op: Op) -> None:
        """Raise UnsupportedError naming the op if its configuration is outside our kernels."""

    def infer_shapes(self, graph: Graph, op: Op) -> list[tuple[int, ...]]:
        raise NotImplementedError

    def reference(self, graph: Graph, op: Op, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Compute the outputs from the input arrays (None for absent optional inputs)."""
        raise NotImplementedError

    def macs(self, graph: Graph, op: Op) -> int:
        return 0

    # -- C ------------------------------------------------------------------------------------

    def kernel(self, graph: Graph, op: Op) -> str:
        """The C entry point this op calls (the variant the C wrapper would choose)."""
        raise NotImplementedError

    def scratch_bytes(self, graph: Graph, op: Op) -> int:
        """Scratch the kernel emit() chooses needs; cheap, for planning without emitting."""
        return 0

    def inplace_inputs(self, graph: Graph, op: Op) -> list[int]:
        """Inputs whose buffer the output may take over when that input dies at this op, in
        order of preference; the kernel must then stay exact with output == input."""
        return []

    def inplace_class(self, graph: Graph, op: Op) -> str | None:
        """The shape class of the in-place kernel the op runs when marked in place (an
        `inplace` mark at offset 0), as benchmarks/inplace_speed.py measures it; None where the
        op has no in-place kernel of its own."""
        return None

    def inplace_speed(self, graph: Graph, op: Op) -> float:
        """Instructions of the op's in-place kernel over its out-of-place one (ops/speed.py:
        measured per class; 1.0 where not measured). memory/ takes an in-place kernel that is
        slower only where the arena needs it."""
        from .speed import inplace_ratio

        cls = self.inplace_class(graph, op)
        return 1.0 if cls is None else inplace_ratio(f"{self.kind}/{cls}")

    def inplace_offsets(self, graph: Graph, op: Op) -> list[tuple[int, int]]:
        """(input, byte offset) pairs at which the op can also run in place with that input
        starting `offset` bytes after its output's start (a convolution band by band,
        ops/rows_inplace.py), cheapest first; memory/inplace.py takes one only where the arena
        needs it. Most ops return []."""
        return []

    def state_inputs(self, graph: Graph, op: Op) -> list[int]:
        """Positions of the inputs that are persistent state (variable tensors) the kernel reads
        and updates in place, e.g. SVDF's activation state. The reference hook receives these as
        writable arrays and updates them in place; the C kernel gets a pointer into the state
        region. Stateless ops return []."""
        return []

    def emit(self, graph: Graph, op: Op) -> OpEmission:
        raise NotImplementedError

    # -- frontends ----------------------------------------------------------------------------

    def from_tflite(self, operator: Any, inputs: list[Any]) -> TfliteImport:
        """attrs from a TFLite operator of this kind: `operator` is the flatbuffer Operator (read
        its options with common.tflite_options), `inputs` its input Tensors in the IR (None for
        index -1). Raise UnsupportedError for options we do not implement."""
        raise NotImplementedError

    def to_tflite(self, fb: ModuleType, graph: Graph, op: Op) -> TfliteLowering:
        """The op as a TFLite builtin; `fb` is TFLite's schema module (object API)."""
        raise NotImplementedError

    def from_onnx(self, b: Any, i: int, node: Any) -> None:
        """Convert ONNX node `i` (a type in `onnx_types`) through the ONNX builder `b`
        (frontend/onnx_ops.py), appending IR ops; raise b.Unsupported(reason) to refuse."""
        raise NotImplementedError

    def to_qdq(self, b: Any, op: Op) -> str | list[str]:
        """Emit the op's float ONNX nodes for the QDQ export (quantize/qdq.py's builder `b`);
        return the ONNX name of its (pre-activation) output, or one per output."""
        raise NotImplementedError

    # -- quantisation and memory ----------------------------------------------------------------

    def quant_rule(self, graph: Graph, op: Op) -> QuantRule:
        return QuantRule()

    def window(self, graph: Graph, op: Op) -> Window | None:
        """Whole-tensor window geometry of a `patch = "windowed"` op (None: this configuration
        cannot run patch by patch)."""
        raise NotImplementedError

    def concat_axis_offsets(self, graph: Graph, op: Op) -> list[int] | None:
        """For a join whose inputs are contiguous byte ranges of its output: each input's byte
        offset there (the planner may let producers write straight into their slices)."""
        return None

    def split_axis_offsets(self, graph: Graph, op: Op) -> list[int] | None:
        """For a split whose outputs are contiguous byte ranges of its input: each output's byte
        offset there (the planner may make them views of the input)."""
        return None

    def spatial_axes(self, graph: Graph, op: Op) -> tuple[int, int] | None:
        """For an `elementwise` op whose input is laid out differently from its output
        (TRANSPOSE from NCHW): the input axes that hold the output's rows and columns, or None
        when they are not the output's own (1, 2) and the op cannot run patch by patch."""
        x, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        return (1, 2) if x.shape == out.shape else None

    def patch_attrs(self, op: Op, window: tuple[int, int, int, int],
                    input_shape: tuple[int, ...]) -> dict[str, Any]:
        """Attrs of one patch of a windowed op: its output size and the padding that falls
        inside the real image border, (out_h, out_w, pad_h, pad_w), for an input window of
        `input_shape`. Convolution and pooling kernels read attrs["window"]."""
        return {"window": window}


REGISTRY: dict[str, OpDef] = {}
# TFLite custom code -> op kind, for CUSTOM operators.
CUSTOM_CODES: dict[str, str] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    """Class decorator: add an op definition to the registry (once per kind)."""
    if not cls.kind or cls.kind in REGISTRY:
        raise ValueError(f"op kind {cls.kind!r} is empty or registered twice ({cls.__name__})")
    if cls.patch not in ("windowed", "elementwise", "none"):
        raise ValueError(f"op {cls.kind}: patch must be windowed, elementwise or none")
    REGISTRY[cls.kind] = cls()
    if cls.tflite_custom_code:
        CUSTOM_CODES[cls.tflite_custom_code] = cls.kind
    return cls


def get_op(kind: str) -> OpDef:
    if kind not in REGISTRY:
        raise UnsupportedError(f"op kind {kind} is not supported")
    return REGISTRY[kind]


def implements(opdef: OpDef, hook: str) -> bool:
    """True when the op's class overrides `hook` (rather than inheriting OpDef's)."""
    return getattr(type(opdef), hook) is not getattr(OpDef, hook)
