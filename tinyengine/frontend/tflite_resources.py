"""TFLite resource variables <-> IR variable tensors, for the TFLite reader and writer.

A .tflite file names a variable with a VAR_HANDLE op (VarHandleOptions container, shared_name)
whose output is a RESOURCE tensor; READ_VARIABLE and ASSIGN_VARIABLE take that tensor. The IR
has no resource type and no VAR_HANDLE: each variable is one variable tensor (`Tensor.variable`,
state the engine keeps between invokes) whose shape, type and quantisation are those of the
value its first ASSIGN_VARIABLE writes (TFLM sizes and fills the buffer from that value), and
READ_VARIABLE / ASSIGN_VARIABLE take it as their state input 0 (ops/variables.py). Two handles
that TFLM resolves to one variable (MicroResourceVariables::FindId: same shared_name, and the
same container unless the new handle has none) are one IR tensor.

Reading: `scan` runs before the reader reads tensors (it must not refuse the RESOURCE tensors
that handles produce); `ResourceScan.resolve` then makes the variable tensors and the IR output
(an unread view of the value) of each ASSIGN_VARIABLE, which has none in TFLite.
Writing: `ResourceWriter` writes each variable that READ/ASSIGN ops use as a RESOURCE tensor with
a VAR_HANDLE op before its first use, and leaves ASSIGN's IR output out of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import tflite

from ..errors import TinyEngineError, UnsupportedError
from ..ir import Graph, Op, Tensor

VAR_OPS = ("READ_VARIABLE", "ASSIGN_VARIABLE")
_CODES = {int(tflite.BuiltinOperator.VAR_HANDLE): "VAR_HANDLE",
          int(tflite.BuiltinOperator.READ_VARIABLE): "READ_VARIABLE",
          int(tflite.BuiltinOperator.ASSIGN_VARIABLE): "ASSIGN_VARIABLE"}


def _kind(model: Any, raw_op: Any) -> str:
    code = model.OperatorCodes(raw_op.OpcodeIndex())
    return _CODES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "")


def _indices(raw_op: Any, inputs: bool) -> list[int]:
    if inputs:
        return [int(j) for j in raw_op.InputsAsNumpy()] if raw_op.InputsLength() else []
    return [int(j) for j in raw_op.OutputsAsNumpy()] if raw_op.OutputsLength() else []


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


@dataclass
class ResourceScan:
    """What the VAR_HANDLE ops of a subgraph declare."""

    source: str
    handles: set[int] = field(default_factory=set)  # operator indices of the VAR_HANDLE ops
    resources: dict[int, int] = field(default_factory=dict)  # RESOURCE tensor -> variable
    keys: list[tuple[str | None, str]] = field(default_factory=list)  # (container, shared)
    handle_of: list[int] = field(default_factory=list)  # variable -> its first VAR_HANDLE op
    # operator index -> (kind, variable, value tensor index) of READ / ASSIGN ops
    uses: dict[int, tuple[str, int, int]] = field(default_factory=dict)

    def resolve(self, model: Any, sub: Any, tensors: list[Tensor | None],
                names: list[str]) -> dict[int, list[int]]:
        """Put each variable's IR tensor at its RESOURCE tensors' places in `tensors` and
        `names`; append ASSIGN_VARIABLE's output views there. Returns operator index -> the
        output tensor indices the IR op gets (ASSIGN_VARIABLE's view)."""
        for i in range(sub.OperatorsLength()):
            raw_op = sub.Operators(i)
            kind = _kind(model, raw_op)
            ins = _indices(raw_op, True)
            res = [j for j in ins if j in self.resources]
            if kind in VAR_OPS and ins and ins[0] in self.resources:
                outs = _indices(raw_op, False)
                value = ins[1] if kind == "ASSIGN_VARIABLE" and len(ins) == 2 else (
                    outs[0] if kind == "READ_VARIABLE" and len(outs) == 1 else None)
                if (value is None or not 0 <= value < sub.TensorsLength()
                        or value in self.resources or len(res) != 1):
                    raise UnsupportedError(
                        f"{self.source}: op {i} ({kind}) takes {len(ins)} input(s) and gives "
                        f"{len(outs)} output(s); TFLite's {kind} is "
                        + ("(resource, value) -> ()" if kind == "ASSIGN_VARIABLE" else
                           "(resource) -> value"))
                self.uses[i] = (kind, self.resources[ins[0]], value)
            elif res:
                raise UnsupportedError(
                    f"{self.source}: op {i} ({kind or 'an op'}) takes the resource tensor "
                    f"{names[res[0]]}; only READ_VARIABLE and ASSIGN_VARIABLE take variables")
        variables = [self._variable(v, tensors, names) for v in range(len(self.keys))]
        for j, v in self.resources.items():
            tensors[j], names[j] = variables[v], variables[v].name
        outputs: dict[int, list[int]] = {}
        taken = set(names)
        for i, (kind, _, value) in self.uses.items():
            if kind == "ASSIGN_VARIABLE":
                x = tensors[value]
                assert x is not None
                name = _fresh(f"{x.name}/assigned", taken)
                tensors.append(Tensor(name, x.shape, x.dtype, x.quant))
                names.append(name)
                outputs[i] = [len(names) - 1]
        return outputs

    def _variable(self, v: int, tensors: list[Tensor | None], names: list[str]) -> Tensor:
        """Variable v's IR tensor, from its first ASSIGN_VARIABLE's value; every read and
        assign must have that value's shape and type (TFLM copies its byte count)."""
        container, shared = self.keys[v]
        label = f"variable {shared!r}" + (f" (container {container!r})" if container else "")
        uses = [(i, kind, tensors[value]) for i, (kind, w, value) in sorted(self.uses.items())
                if w == v]
        assigns = [u for u in uses if u[1] == "ASSIGN_VARIABLE"]
        if not uses:
            raise UnsupportedError(f"{self.source}: op {self.handle_of[v]} (VAR_HANDLE): {label} "
                                   "is never assigned nor read; drop the handle")
        if not assigns:
            raise UnsupportedError(
                f"{self.source}: {label} is read (op {uses[0][0]}) but never assigned; TFLM "
                "gives a variable its buffer at its first ASSIGN_VARIABLE, so the read returns "
                "undefined bytes")
        first = assigns[0][2]
        assert first is not None
        for i, kind, t in uses:
            assert t is not None
            if t.dtype != first.dtype or t.shape != first.shape:
                verb = "writes" if kind == "ASSIGN_VARIABLE" else "reads into"
                raise UnsupportedError(
                    f"{self.source}: {label}: op {i} ({kind}) {verb} {t.name} {t.dtype} "
                    f"{t.shape}, op {assigns[0][0]} "
                    f"(ASSIGN_VARIABLE) writes {first.name} {first.dtype} {first.shape}; one "
                    "variable has one shape and type")
        name = _fresh(shared, set(names) - {names[j] for j, w in self.resources.items()
                                            if w == v})
        return Tensor(name, first.shape, first.dtype, first.quant, variable=True)


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}#{n}"
    taken.add(candidate)
    return candidate


def scan(model: Any, sub: Any, source: str) -> ResourceScan:
    """The VAR_HANDLE ops of subgraph `sub` and the variables they name, as TFLM resolves
    them (first handle of a (container, shared_name) creates the variable)."""
    found = ResourceScan(source)
    n_tensors = sub.TensorsLength()
    for i in range(sub.OperatorsLength()):
        raw_op = sub.Operators(i)
        if _kind(model, raw_op) != "VAR_HANDLE":
            continue
        outs = _indices(raw_op, False)
        if len(outs) != 1 or not 0 <= outs[0] < n_tensors or _indices(raw_op, True):
            raise TinyEngineError(f"{source}: op {i} (VAR_HANDLE) must take no inputs and give "
                                  "one resource tensor; the file is corrupt")
        table = raw_op.BuiltinOptions()
        opts = tflite.VarHandleOptions()
        if table is not None:
            opts.Init(table.Bytes, table.Pos)
        container = _text(opts.Container()) if table is not None else None
        shared = _text(opts.SharedName()) if table is not None else None
        if shared is None:
            raise UnsupportedError(f"{source}: op {i} (VAR_HANDLE) has no shared_name; TFLM "
                                   "names variables by it")
        v = _find(found.keys, container, shared, source, i)
        if v < 0:
            v = len(found.keys)
            found.keys.append((container, shared))
            found.handle_of.append(i)
        found.handles.add(i)
        found.resources[outs[0]] = v
    return found


def _find(keys: list[tuple[str | None, str]], container: str | None, shared: str,
          source: str, i: int) -> int:
    """MicroResourceVariables::FindId: a handle without container matches any container."""
    for v, (c, s) in enumerate(keys):
        if s != shared:
            continue
        if container is not None and c is None:
            raise UnsupportedError(f"{source}: op {i} (VAR_HANDLE): variable {shared!r} is "
                                   f"declared without a container and again in container "
                                   f"{container!r}; TFLM cannot compare the two")
        if container is None or container == c:
            return v
    return -1


class ResourceWriter:
    """Writes the variables of READ/ASSIGN ops as TFLite resource variables."""

    def __init__(self, fb: ModuleType, graph: Graph) -> None:
        self.fb = fb
        self.variables = {op.inputs[0] for op in graph.ops if op.kind in VAR_OPS}
        self.views = {op.outputs[0] for op in graph.ops if op.kind == "ASSIGN_VARIABLE"}
        self.declared: set[str] = set()
        other = next((op for op in graph.ops if op.kind not in VAR_OPS
                      and self.variables & set(op.inputs)), None)
        if other is not None:
            raise UnsupportedError(f"op {other.name} ({other.kind}) takes a resource variable, "
                                   "which only READ_VARIABLE and ASSIGN_VARIABLE take in TFLite")

    def add_tensor(self, mb: Any, t: Tensor) -> bool:
        """Write `t` if it is a resource variable (or leave it out if it is ASSIGN's view);
        False when it is an ordinary tensor for the caller to write."""
        if t.name in self.views:
            return True
        if t.name not in self.variables:
            return False
        r = self.fb.TensorT()
        r.name = t.name
        r.shape = []  # a scalar resource id, as TensorFlow's converter writes it
        r.type = int(self.fb.TensorType.RESOURCE)
        r.buffer = 0
        mb.index[t.name] = len(mb.tensors)
        mb.tensors.append(r)
        return True

    def handles_before(self, mb: Any, op: Op) -> list[Any]:
        """The VAR_HANDLE op to place before `op` when `op` is its variable's first use."""
        if op.kind not in VAR_OPS or op.inputs[0] in self.declared:
            return []
        name = op.inputs[0]
        self.declared.add(name)
        o = self.fb.OperatorT()
        o.opcodeIndex = mb.opcode("VAR_HANDLE")
        o.inputs = []
        o.outputs = [mb.index[name]]
        opts = self.fb.VarHandleOptionsT()
        opts.container = ""
        opts.sharedName = name
        o.builtinOptionsType = int(self.fb.BuiltinOptions.VarHandleOptions)
        o.builtinOptions = opts
        return [o]
