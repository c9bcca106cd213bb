"""Code generation: an IR graph + a memory plan -> a standalone C project on disk.

All arithmetic (offsets, shapes, quantisation constants) happens here in Python; the jinja2
templates in codegen_templates/ only lay the values out. The project is written to a temporary
sibling directory and renamed into place at the end, so a failure never leaves half a project;
an existing directory is replaced only when it holds the marker file written here (see
check_replaceable). Free text (paths, tensor and op names) reaches the C only through the
templates' `comment` filter; the prefix and kernel file names are validated.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from .. import __version__
from ..errors import TinyEngineError
from ..ir import Graph, Op, verify
from ..memory import MemoryPlan
from ..memory.plan import scratch_name
from ..memory.report import plan_json
from ..memory.schedule import DEFAULT_MAX_MAC_OVERHEAD, schedule
from ..ops import OpEmission, get_op
from ..resources import CSRC, TEMPLATES
from .cvalues import CTYPES, array_lines, c_comment, c_literal
from .integration import write_integration

# The marker file: only this tool writes it, and -o replaces a directory only when it holds it
# (report.json alone proves nothing: any tool may write one).
PROJECT_MARKER = ".tinyengine-project"
MARKER_SIGNATURE = "tinyengine project: written by `tinyengine compile`, which may replace it"

MAX_PREFIX = 32
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# C99, C11 and C23 keywords (those not starting with an underscore, which are refused anyway).
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while alignas alignof bool constexpr false nullptr "
    "static_assert thread_local true typeof typeof_unqual".split())
# Kernel file names go into #include lines, the Makefile and CMakeLists.txt unquoted.
_KERNEL_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*\.[ch]")


def check_prefix(prefix: str) -> str:
    """The symbol prefix, or a TinyEngineError: it starts every C symbol and file name of the
    project, so it must be a plain C identifier: a letter, then letters, digits and
    underscores, at most MAX_PREFIX characters, no C keyword. A leading underscore is refused
    too: the upper-case macros (_MODEL_ARENA_BYTES) would be reserved identifiers."""
    if (not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix)
            or len(prefix) > MAX_PREFIX or prefix in _C_KEYWORDS):
        why = ("is a C keyword" if prefix in _C_KEYWORDS else
               f"is longer than {MAX_PREFIX} characters" if isinstance(prefix, str)
               and _PREFIX.fullmatch(prefix) else "is not a plain C identifier")
        raise TinyEngineError(f"symbol prefix {prefix!r} {why}; use a letter followed by "
                              f"letters, digits and underscores (at most {MAX_PREFIX}), e.g. "
                              "--prefix kws")
    return prefix


def template_env() -> jinja2.Environment:
    """The jinja2 environment every project file is rendered with (benchmarks/code_sizes.py
    renders the schedule's macros with it too)."""
    return _env()


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["comment"] = c_comment  # every free text (path, tensor or op name) in a comment
    return env


def _io_info(graph: Graph, names: list[str], plan: MemoryPlan) -> list[dict[str, Any]]:
    out = []
    for i, n in enumerate(names):
        t = graph.tensor(n)
        out.append({"index": i, "name": n, "dtype": t.dtype, "ctype": CTYPES[t.dtype],
                    "shape": list(t.shape), "size": t.size, "bytes": t.nbytes,
                    "offset": plan.offsets.get(n), "streamed": n in plan.external,
                    "scale": t.scale if t.quant is not None else None,
                    "zero_point": t.zero_point if t.quant is not None else None})
    return out


def _state_info(graph: Graph, plan: MemoryPlan) -> list[dict[str, Any]]:
    """What reset() writes: each variable tensor's offset, byte count, and its reset value as
    a byte (TFLM's ResetVariableTensor memsets int8 state to its zero point, the rest to 0)."""
    return [{"name": n, "offset": off, "bytes": graph.tensor(n).nbytes,
             "byte": graph.tensor(n).reset_value & 0xFF}
            for n, off in plan.state_offsets.items()]


def const_key(op: Op, c: Any) -> tuple[str, str, str, bytes]:
    """What makes two constant arrays one: the same op (or patch copies of it), name and bytes;
    a `shared` table by its name, type and bytes alone."""
    owner = "" if c.shared else op.attrs.get("origin", op.name)
    return (owner, f"{c.name}:{c.ctype}", c.values.dtype.str, c.values.tobytes())


def _const_symbols(graph: Graph, prefix: str, emissions: list[OpEmission]
                   ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Per op, const name -> C symbol; and the arrays to emit. The patch copies of one op
    (attrs["origin"]) share its arrays when their contents agree: every patch runs with the same
    weights, and flash must not pay for that. Tables marked `shared` (the same in every model)
    are emitted once per project. cost.flash_bytes counts the same way."""
    by_content: dict[tuple[str, str, str, bytes], str] = {}
    per_op: list[dict[str, str]] = []
    arrays: list[dict[str, Any]] = []
    for i, (op, em) in enumerate(zip(graph.ops, emissions)):
        symbols = {}
        for c in em.consts:
            key = const_key(op, c)
            if key not in by_content:
                by_content[key] = f"{prefix}_op{i}_{c.name}"
                arrays.append({"sym": by_content[key], "ctype": c.ctype,
                               "count": int(c.values.size), "bytes": int(c.values.nbytes),
                               "lines": array_lines(c.values)})
            symbols[c.name] = by_content[key]
        per_op.append(symbols)
    return per_op, arrays


def _op_context(graph: Graph, index: int, em: OpEmission, plan: MemoryPlan,
                symbols: dict[str, str], prefix: str) -> dict[str, Any]:
    op = graph.ops[index]
    args = []
    for a in em.args:
        if a.kind == "tensor" and a.ref in plan.state_offsets:
            args.append({"kind": "state", "ctype": a.ctype, "offset": plan.state_offsets[a.ref]})
        elif a.kind == "tensor" and a.ref in plan.external:
            args.append({"kind": "stream", "ctype": a.ctype,
                         "index": graph.inputs.index(a.ref)})
        elif a.kind == "tensor":
            args.append({"kind": "arena", "ctype": a.ctype, "offset": plan.offsets[a.ref]})
        elif a.kind == "scratch":
            args.append({"kind": "arena", "ctype": a.ctype,
                         "offset": plan.offsets[scratch_name(op.name)]})
        elif a.ref:
            args.append({"kind": "symbol", "ctype": a.ctype, "symbol": symbols[a.ref]})
        else:
            args.append({"kind": "null", "ctype": a.ctype})
    return {"index": index, "name": op.name, "kind": op.kind, "kernel": em.kernel,
            "params_type": em.params_type, "params_sym": f"{prefix}_op{index}_params",
            "params": [{"field": k, "init": c_literal(v, symbols)} for k, v in em.params.items()],
            "args": args, "args_sym": f"{prefix}_args_op{index}",
            "streamed": any(a["kind"] == "stream" for a in args),
            "call": call_name(prefix, em.kernel, len(args) + 1)}


def _share_equal(ops: list[dict[str, Any]]) -> None:
    """Point an op whose params struct (or argument list) equals an earlier op's at that one,
    and mark it "params_shared" ("args_shared") so model.c.j2 does not define it again. With
    patches a layer runs once per patch, and the copies of the inner patches often have the
    same geometry: 11 of the digits 2 KB network's 68 structs. Streamed argument lists are
    written at run time, so they stay each op's own."""
    params: dict[tuple[Any, ...], str] = {}
    args: dict[tuple[Any, ...], str] = {}
    for op in ops:
        key = (op["params_type"], *((f["field"], f["init"]) for f in op["params"]))
        op["params_shared"] = key in params
        op["params_sym"] = params.setdefault(key, op["params_sym"])
        akey = (op["params_sym"], *(tuple(sorted(a.items())) for a in op["args"]))
        op["args_shared"] = not op["streamed"] and akey in args
        if not op["streamed"]:
            op["args_sym"] = args.setdefault(akey, op["args_sym"])


def call_name(prefix: str, kernel: str, n_args: int) -> str:
    """The function in <prefix>_model.c that calls `kernel` with an op's list of n_args
    arguments (model.c.j2): one per kernel and argument count, which is all its code depends
    on (target/code_size.py measures it under this name's pattern)."""
    return f"{prefix}_call{n_args}_{kernel}"


def _calls(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The call functions the ops use, in order of first use (the cases of invoke's switch;
    each op gets its number as "call_index"), with the pointer types their arguments are cast
    to: the first op's, as a kernel's types are the same for every op, and a variadic kernel
    reads its extra arguments as exactly these types."""
    calls: dict[str, dict[str, Any]] = {}
    for op in ops:
        if op["call"] not in calls:
            calls[op["call"]] = {"name": op["call"], "kernel": op["kernel"],
                                 "args": [f"const {op['params_type']}",
                                          *(a["ctype"] for a in op["args"])]}
        op["call_index"] = list(calls).index(op["call"])
    return list(calls.values())


def _stream_cells(ops: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """The argument-list entries that hold streamed input `index` (set by stream_input)."""
    return [{"args_sym": op["args_sym"], "slot": k + 1} for op in ops
            for k, a in enumerate(op["args"]) if a["kind"] == "stream" and a["index"] == index]


_C_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_C_TYPE = re.compile(r"(const )?(u?int(8|16|32|64)_t|float|void)")


def _is_c_value(v: Any) -> bool:
    """Strings among the parameters are pasted into C: "@const" names or enum constants only."""
    if isinstance(v, str):
        return _C_NAME.fullmatch(v[1:] if v.startswith("@") else v) is not None
    if isinstance(v, (list, tuple)):
        return all(_is_c_value(x) for x in v)
    return True


def check_emission(op: Op, em: OpEmission) -> None:
    """What an op's emit hook returns goes into the C source as code, unquoted: the names must
    be C identifiers and the types plain scalar types. Ours always are; a user-defined op's
    emit hook that slips is named here instead of breaking the build (or adding code to it)."""
    bad = [f"{what} {name!r}" for what, name in (("kernel", em.kernel),
                                                  ("params_type", em.params_type))
           if not _C_NAME.fullmatch(name)]
    bad += [f"parameter {k!r}" for k, v in em.params.items()
            if not _C_NAME.fullmatch(k) or not _is_c_value(v)]
    bad += [f"constant {c.name!r} ({c.ctype!r})" for c in em.consts
            if not _C_NAME.fullmatch(c.name) or not _C_TYPE.fullmatch(c.ctype)]
    bad += [f"argument {a.ref!r} ({a.ctype!r})" for a in em.args if not _C_TYPE.fullmatch(a.ctype)]
    if bad:
        raise TinyEngineError(f"op {op.name!r} ({op.kind}): its emit hook returned C text that is "
                              f"not a C identifier or scalar type: {', '.join(bad)}; fix the op's "
                              "emit (names are letters, digits and underscores)")


def _operand_ranges(graph: Graph, index: int, em: OpEmission, plan: MemoryPlan
                    ) -> list[tuple[int, int]]:
    """The arena bytes op `index`'s kernel may touch, as sorted, merged (offset, bytes) ranges:
    its tensor arguments (exact sizes, not the planner's aligned buffers) and its scratch.

    For the debug build option TE_ARENA_POISON (model.c.j2): every other arena byte is
    poisoned for AddressSanitizer while the kernel runs. That is stricter than "live at this
    step": a buffer another op will still read is live, but this kernel has no business in it
    either, and reading it is the bug the option exists to show."""
    op = graph.ops[index]
    ranges = []
    for a in em.args:
        if a.kind == "tensor" and a.ref not in plan.external and a.ref not in plan.state_offsets:
            ranges.append((plan.offsets[a.ref], graph.tensor(a.ref).nbytes))
        elif a.kind == "scratch":
            ranges.append((plan.offsets[scratch_name(op.name)], em.scratch_bytes))
    merged: list[tuple[int, int]] = []
    for start, size in sorted(r for r in ranges if r[1] > 0):
        if merged and start <= merged[-1][0] + merged[-1][1]:
            end = max(merged[-1][0] + merged[-1][1], start + size)
            merged[-1] = (merged[-1][0], end - merged[-1][0])
        else:
            merged.append((start, size))
    return merged


def _poison_tables(graph: Graph, emissions: list[OpEmission], plan: MemoryPlan
                   ) -> dict[str, Any]:
    """Op i may touch ranges[first[i]:first[i + 1]] (see _operand_ranges)."""
    ranges: list[dict[str, int]] = []
    first = [0]
    for i, em in enumerate(emissions):
        ranges += [{"op": i, "offset": o, "bytes": n}
                   for o, n in _operand_ranges(graph, i, em, plan)]
        first.append(len(ranges))
    return {"ranges": ranges, "first": first}


def _report(graph: Graph, source: str, prefix: str, emissions: list[OpEmission],
            plan: MemoryPlan, io: dict[str, Any], flash: int) -> dict[str, Any]:
    ops = []
    for op, em in zip(graph.ops, emissions):
        # "kernel": the variant (the `kernel` hook, which the latency tables are keyed by);
        # "entry": the function the generated code calls, the path of that variant the layer
        # takes where the kernel has paths of its own (CONV_2D, DEPTHWISE_CONV_2D,
        # FULLY_CONNECTED), else the same.
        ops.append({"name": op.name, "kind": op.kind,
                    "kernel": get_op(op.kind).kernel(graph, op), "entry": em.kernel,
                    "inplace": op.attrs.get("inplace") is not None,
                    "macs": get_op(op.kind).macs(graph, op), "inputs": [n for n in op.inputs if n],
                    "outputs": op.outputs, "scratch_bytes": em.scratch_bytes})
    return {"tinyengine_version": __version__, "source": source, "prefix": prefix,
            "arena_bytes": plan.arena_bytes, "persistent_bytes": plan.state_bytes,
            "flash_bytes": flash,
            "macs": sum(o["macs"] for o in ops), "inputs": io["inputs"],
            "outputs": io["outputs"], "ops": ops, "memory_plan": plan.to_json()}


def compile_graph(graph: Graph, out_dir: str | Path, prefix: str = "model",
                  source: str = "", planner: str = "auto", inplace: bool = True,
                  patch: str = "auto", max_mac_overhead: float = DEFAULT_MAX_MAC_OVERHEAD,
                  stream_input: bool = False, source_model: dict[str, Any] | None = None,
                  extra_files: dict[str, bytes] | None = None,
                  target: str | None = None) -> dict[str, Any]:
    """Generate the C project for `graph` into `out_dir`; returns the report (also report.json).

    source_model: what `tinyengine run` needs to take inputs and give outputs in the source
    model's own form (layouts, output quantisation), stored in report.json. extra_files: more
    files for the project directory (e.g. the QDQ ONNX model), written in the same atomic step.
    target: a Cortex-M core or board (tinyengine.target): checks that the model fits the board
    and adds startup code, a linker script with the board's memory and firmware build rules.

    The passes: verify -> schedule (patches, in-place marks, arena plan) -> emit each op ->
    render the templates -> write the project atomically.
    """
    check_prefix(prefix)
    verify(graph)
    sched = schedule(graph, patch, inplace, planner, max_mac_overhead, stream_input)
    graph, plan = sched.graph, sched.plan
    verify(graph)
    emissions = [get_op(op.kind).emit(graph, op) for op in graph.ops]
    for op, em in zip(graph.ops, emissions):
        assert em.scratch_bytes == plan_scratch(graph, op), op.name
        check_emission(op, em)

    symbols, consts = _const_symbols(graph, prefix, emissions)
    ops = [_op_context(graph, i, em, plan, symbols[i], prefix) for i, em in enumerate(emissions)]
    _share_equal(ops)
    flash = sum(c["bytes"] for c in consts)
    kernel_paths = _kernel_paths(emissions)
    kernel_files = sorted(kernel_paths)
    io = {"inputs": _io_info(graph, graph.inputs, plan),
          "outputs": _io_info(graph, graph.outputs, plan)}
    stream_cells = {t["index"]: _stream_cells(ops, t["index"]) for t in io["inputs"]
                    if t["streamed"]}
    ctx = {"prefix": prefix, "PREFIX": prefix.upper(), "version": __version__,
           "source": source or graph.name, "arena_bytes": plan.arena_bytes, "ops": ops,
           "consts": consts, "kernel_headers": [f for f in kernel_files if f.endswith(".h")],
           "kernel_sources": [f for f in kernel_files if f.endswith(".c")],
           "poison": _poison_tables(graph, emissions, plan), "state": _state_info(graph, plan),
           "state_bytes": plan.state_bytes, "calls": _calls(ops),
           "inputs": [{**t, "stream_cells": stream_cells.get(t["index"], [])}
                      for t in io["inputs"]], "outputs": io["outputs"]}
    report = _report(graph, source or graph.name, prefix, emissions, plan, io, flash)
    report["patches"] = sched.patches.to_json() if sched.patches else None
    report["source_model"] = source_model or {"format": "graph"}
    report["arena_counts"] = _arena_counts(graph, plan)
    report["memory_plan"].update(plan_json(graph, plan))
    files = dict(extra_files or {})
    if target not in (None, "host"):
        from ..target import check_fits, resolve_board, target_files

        board = resolve_board(target)
        report["target"] = {"board": board.name, "core": board.core,
                            **check_fits(report, board).to_json()}
        files.update(target_files(report, board, [f for f in kernel_files if f.endswith(".c")]))
    _write_project(Path(out_dir), prefix, ctx, kernel_paths, report, files)
    return report


def _kernel_paths(emissions: list[OpEmission]) -> dict[str, Path]:
    """Project file name (under kernels/) -> where it comes from: csrc/ for a bare name, the
    given path for a user-defined op's own C file (an absolute path in its emission)."""
    paths: dict[str, Path] = {}
    for em in emissions:
        for f in em.sources:
            src = Path(f) if Path(f).is_absolute() else CSRC / f
            if not _KERNEL_FILE.fullmatch(src.name):
                raise TinyEngineError(f"kernel file {str(src)!r} has a name the generated "
                                      "Makefile and #include lines cannot hold; rename it to "
                                      "letters, digits and _ . + - ending in .c or .h")
            if paths.get(src.name, src) != src:
                raise TinyEngineError(f"two kernel files are both named {src.name} "
                                      f"({paths[src.name]} and {src}); rename the user-defined "
                                      "op's C file")
            if not src.is_file():
                raise TinyEngineError(f"kernel source {src} does not exist")
            paths[src.name] = src
    return paths


_FILES = {"model.h.j2": "{p}_model.h", "model.c.j2": "{p}_model.c",
          "weights.h.j2": "{p}_weights.h", "weights.c.j2": "{p}_weights.c",
          "main.c.j2": "main.c", "Makefile.j2": "Makefile", "CMakeLists.txt.j2": "CMakeLists.txt"}


def _arena_counts(graph: Graph, plan: MemoryPlan) -> dict[str, Any]:
    """What arena_bytes holds, said plainly: input and output tensors are inside it unless
    streamed, and so is every op's scratch."""
    streamed = [n for n in graph.inputs if n in plan.external]
    return {"includes_inputs": not streamed,
            "input_bytes": sum(graph.tensor(n).nbytes for n in graph.inputs
                               if n not in plan.external),
            "streamed_inputs": streamed,
            "caller_buffer_bytes": sum(graph.tensor(n).nbytes for n in streamed),
            "output_bytes": sum(graph.tensor(n).nbytes for n in graph.outputs),
            "largest_scratch_bytes": max((b.size for b in plan.buffers
                                          if b.name.endswith(":scratch")), default=0)}


def plan_scratch(graph: Graph, op: Op) -> int:
    return get_op(op.kind).scratch_bytes(graph, op)


def _write_project(out: Path, prefix: str, ctx: dict[str, Any], kernel_files: dict[str, Path],
                   report: dict[str, Any], extra_files: dict[str, bytes]) -> None:
    """Render into a temporary sibling, then swap it in for `out` (see check_replaceable)."""
    try:
        out = out.resolve()
        check_replaceable(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # The sibling's name is bounded: `out` may be near the file system's name limit.
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:40]}.", dir=out.parent))
    except OSError as e:
        raise TinyEngineError(f"cannot write the project to {out}: {e.strerror or e}") from None
    try:
        env = _env()
        for template, name in _FILES.items():
            (tmp / name.format(p=prefix)).write_text(env.get_template(template).render(**ctx))
        (tmp / "kernels").mkdir()
        for name, src in sorted(kernel_files.items()):
            shutil.copyfile(src, tmp / "kernels" / name)
        write_integration(tmp, env, ctx, sorted(kernel_files))  # Zephyr, PlatformIO, Arduino
        for name, data in extra_files.items():
            (tmp / name).write_bytes(data)
        (tmp / "report.json").write_text(json.dumps(report, indent=1, default=_json_default))
        _add_firmware_estimate(tmp, report)
        (tmp / PROJECT_MARKER).write_text(f"{MARKER_SIGNATURE}\nversion {__version__}\n")
        _swap_in(tmp, out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise TinyEngineError(f"cannot write the project to {out}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _add_firmware_estimate(project: Path, report: dict[str, Any]) -> None:
    """report.json "firmware_estimate": the bare firmware's flash and RAM, part by part, from
    the code-size table (target/code_size.py), for every compile; the linked figures come with
    --target ("firmware_totals")."""
    from ..target.code_size import firmware_estimates

    report["firmware_estimate"] = firmware_estimates(project, report)
    (project / "report.json").write_text(json.dumps(report, indent=1, default=_json_default))


def is_project_dir(path: Path) -> bool:
    """Whether `path` holds the marker file `compile` writes (with its signature line)."""
    marker = path / PROJECT_MARKER
    try:
        if marker.is_symlink() or not marker.is_file():
            return False
        with marker.open("rb") as f:
            first = f.readline(len(MARKER_SIGNATURE) + 2)
    except OSError:
        return False
    return first.rstrip(b"\r\n") == MARKER_SIGNATURE.encode()


def check_replaceable(out: Path) -> None:
    """Refuse (TinyEngineError) an output directory that is not ours to replace: one that holds
    anything but has no project marker, and always the file system root, the working directory,
    the home directory and any directory containing one of them, marker or not. Projects from
    before the marker (report.json only) are refused too: report.json is no proof of ownership,
    and guessing wrong would delete a user's files. `out` is resolved."""
    protected = [(Path(out.anchor or "/"), "the file system root")]
    for where, what in ((Path.cwd, "the working directory"), (Path.home, "the home directory")):
        try:
            protected.append((where().resolve(), what))
        except (OSError, RuntimeError):  # a deleted working directory, no home
            pass
    for path, what in protected:
        if out == path or out in path.parents:
            raise TinyEngineError(f"{out} {'is' if out == path else 'contains'} {what}; -o "
                                  "never replaces it, choose a new directory for the project, "
                                  "e.g. -o ./project")
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise TinyEngineError(f"{out} exists and is not a tinyengine project; choose an empty or "
                              "new directory for -o")
    if not any(out.iterdir()) or is_project_dir(out):
        return
    if (out / "report.json").is_file():
        raise TinyEngineError(f"{out} holds a report.json but no {PROJECT_MARKER} marker: it is "
                              "not a tinyengine project (or one from an older tinyengine); "
                              "delete it yourself if it is an old project, or choose a new "
                              "directory for -o")
    raise TinyEngineError(f"{out} exists and is not a tinyengine project; choose an empty or new "
                          "directory for -o")


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename `tmp` to `out`; an existing `out` (checked by check_replaceable) is first renamed
    aside and deleted only once the new project is in place. A concurrent compile into the same
    directory may swap its own project in between: then try again (its project is ours too)."""
    for _ in range(5):
        old = None
        if out.exists():
            if any(out.iterdir()) and not is_project_dir(out):
                check_replaceable(out)  # someone put something else there meanwhile: refuse
            old = out.parent / f"{tmp.name}.old"
            try:
                out.rename(old)
            except FileNotFoundError:
                old = None
        try:
            tmp.rename(out)
        except OSError as e:
            if old is not None and not out.exists():
                old.rename(out)  # the previous project goes back where it was
                old = None
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            continue  # another compile's project landed first: replace that one
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        return
    raise TinyEngineError(f"cannot write the project to {out}: other processes keep writing it")


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v))
