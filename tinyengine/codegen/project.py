"""Code generation: an IR graph + a memory plan -> a standalone C project on disk.

All arithmetic (offsets, shapes, quantisation constants) happens here in Python; the jinja2
templates in codegen_templates/ only lay the values out. The project is written to a temporary
sibling directory and renamed into place at the end, so a failure never leaves half a project.
"""

from __future__ import annotations

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
from .cvalues import CTYPES, array_lines, c_literal

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROJECT_MARKER = "report.json"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


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


def _const_symbols(graph: Graph, prefix: str, emissions: list[OpEmission]
                   ) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Per op, const name -> C symbol; and the arrays to emit. The patch copies of one op
    (attrs["origin"]) share its arrays when their contents agree: every patch runs with the same
    weights, and flash must not pay for that."""
    by_content: dict[tuple[str, str, bytes], str] = {}
    per_op: list[dict[str, str]] = []
    arrays: list[dict[str, Any]] = []
    for i, (op, em) in enumerate(zip(graph.ops, emissions)):
        symbols = {}
        for c in em.consts:
            key = (op.attrs.get("origin", op.name), c.name, c.values.tobytes())
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
        if a.kind == "tensor" and a.ref in plan.external:
            args.append({"kind": "stream", "ctype": a.ctype,
                         "index": graph.inputs.index(a.ref)})
        elif a.kind == "tensor":
            args.append({"kind": "arena", "ctype": a.ctype, "offset": plan.offsets[a.ref]})
        elif a.kind == "scratch":
            args.append({"kind": "arena", "ctype": a.ctype,
                         "offset": plan.offsets[scratch_name(op.name)]})
        elif a.ref:
            args.append({"kind": "symbol", "symbol": symbols[a.ref]})
        else:
            args.append({"kind": "null"})
    return {"index": index, "name": op.name, "kind": op.kind, "kernel": em.kernel,
            "params_type": em.params_type, "params_sym": f"{prefix}_op{index}_params",
            "params": [{"field": k, "init": c_literal(v, symbols)} for k, v in em.params.items()],
            "args": args}


def _report(graph: Graph, source: str, prefix: str, emissions: list[OpEmission],
            plan: MemoryPlan, io: dict[str, Any], flash: int) -> dict[str, Any]:
    ops = []
    for op, em in zip(graph.ops, emissions):
        ops.append({"name": op.name, "kind": op.kind, "kernel": em.kernel,
                    "inplace": op.attrs.get("inplace") is not None,
                    "macs": get_op(op.kind).macs(graph, op), "inputs": [n for n in op.inputs if n],
                    "outputs": op.outputs, "scratch_bytes": em.scratch_bytes})
    return {"tinyengine_version": __version__, "source": source, "prefix": prefix,
            "arena_bytes": plan.arena_bytes, "flash_bytes": flash,
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
    if not _IDENT.match(prefix):
        raise TinyEngineError(f"symbol prefix {prefix!r} is not a C identifier; use letters, "
                              "digits and underscores, not starting with a digit")
    verify(graph)
    sched = schedule(graph, patch, inplace, planner, max_mac_overhead, stream_input)
    graph, plan = sched.graph, sched.plan
    verify(graph)
    emissions = [get_op(op.kind).emit(graph, op) for op in graph.ops]
    for op, em in zip(graph.ops, emissions):
        assert em.scratch_bytes == plan_scratch(graph, op), op.name

    symbols, consts = _const_symbols(graph, prefix, emissions)
    ops = [_op_context(graph, i, em, plan, symbols[i], prefix) for i, em in enumerate(emissions)]
    flash = sum(c["bytes"] for c in consts)
    kernel_paths = _kernel_paths(emissions)
    kernel_files = sorted(kernel_paths)
    io = {"inputs": _io_info(graph, graph.inputs, plan),
          "outputs": _io_info(graph, graph.outputs, plan)}
    ctx = {"prefix": prefix, "PREFIX": prefix.upper(), "version": __version__,
           "source": source or graph.name, "arena_bytes": plan.arena_bytes, "ops": ops,
           "consts": consts, "kernel_headers": [f for f in kernel_files if f.endswith(".h")],
           "kernel_sources": [f for f in kernel_files if f.endswith(".c")], **io}
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
    out = out.resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                             and not (out / PROJECT_MARKER).is_file())):
        raise TinyEngineError(f"{out} exists and is not a tinyengine project; choose an empty "
                              "or new directory for -o")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise TinyEngineError(f"cannot write the project to {out}: {e.strerror}") from None
    try:
        env = _env()
        for template, name in _FILES.items():
            (tmp / name.format(p=prefix)).write_text(env.get_template(template).render(**ctx))
        (tmp / "kernels").mkdir()
        for name, src in sorted(kernel_files.items()):
            shutil.copyfile(src, tmp / "kernels" / name)
        for name, data in extra_files.items():
            (tmp / name).write_bytes(data)
        (tmp / PROJECT_MARKER).write_text(json.dumps(report, indent=1, default=_json_default))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(type(v))
