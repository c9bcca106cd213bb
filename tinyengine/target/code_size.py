"""Whole-firmware flash and RAM of the bare runtime, estimated without a cross toolchain.

The linked figures (sizes.py, report.json "firmware_totals") need arm-none-eabi-gcc; host builds
and the search do not have it. This module reproduces what the linker does with the measured
table code_sizes.json (benchmarks/code_sizes.py --write), one entry per core, SIMD choice and
optimisation level:

- The kernel library, the runtime (startup code, main) and the libgcc/libc members they may
  call were compiled once with the firmware's flags; the table holds every allocated section of
  those objects (size, alignment), what each section refers to (its relocations), the frame of
  every function (-fstack-usage, or the prologue for library code) and its calls.
- The model's own objects are rebuilt from the generated C: the weights arrays and parameter
  structs by their declared types (sizes and alignments GCC gives them, from the table), the
  arena and state by their declared lengths. The model's code is the schedule of
  codegen_templates/model_schedule.j2, which is the same text in every model: invoke is one
  loop over a const table of ops, each a pointer to its argument list and the number of its
  call function, one per kernel and argument count. The table holds each call function by its
  argument count, invoke by its number of call functions, init and reset with and without a
  state table (compiled from those macros); the op table and the argument lists are data of
  known size.
- --gc-sections keeps the sections reachable from the reset handler and the vector table;
  they are laid out in the linker script's order (vector table; code of every object in link
  order; constants of every object; .data; .bss; the stack) with each section's alignment, so
  the padding is the linker's too. The stack reserve is the deepest call path from the reset
  handler, computed the way sizes.stack_need computes it on the linked ELF.

The result has the same parts as sizes.linked_parts, so the two can be compared part by part.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..errors import TinyEngineError
from ..resources import CSRC, TEMPLATES

TABLE = Path(__file__).with_name("code_sizes.json")
FLASH_ORIGIN = 0
RAM_ORIGIN = 0x20000000
ISR_VECTOR = ".isr_vector"

_ARRAY = re.compile(r"^(?:static )?const (\w+) (\w+)\[(\d+)\] =", re.M)
_BSS = re.compile(r"^static (\w+) (\w+)\[([0-9 ()+*/]+)\];", re.M)


# The templates whose output the table measures or the estimate reads: the model's schedule
# code and the layout of its C (model.c.j2, model_schedule.j2, weights.c.j2), and the bare
# runtime and its linker script.
TEMPLATE_FILES = ("model.c.j2", "model_schedule.j2", "weights.c.j2",
                  "target/firmware_bare_main.c.j2", "target/firmware_bare_startup.c.j2",
                  "target/firmware.ld.j2")


def source_hash(csrc: Path = CSRC, templates: Path = TEMPLATES) -> str:
    """sha256 of the kernel sources and headers and of the templates (TEMPLATE_FILES) a table
    was measured from."""
    h = hashlib.sha256()
    for f in sorted(csrc.glob("*.[ch]")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    for name in TEMPLATE_FILES:
        h.update(name.encode() + b"\0" + (templates / name).read_bytes())
    return h.hexdigest()[:16]


def table_key(core: str, opt: str, simd: bool = True) -> str:
    return f"{core}-{opt}" + ("" if simd else "-portable")


def load_table(path: Path = TABLE) -> dict[str, Any]:
    if not path.is_file():
        raise TinyEngineError(f"{path} is missing; run benchmarks/code_sizes.py --write")
    table: dict[str, Any] = json.loads(path.read_text())
    return table


# --- the model's own objects, from the generated C ---------------------------------------------

_PARAMS = re.compile(r"^static const (\w+) (\w+_op\d+_params) = \{(.*?)^\};", re.M | re.S)
_ARGS = re.compile(r"^static void \*(const )?(\w+_args_op\d+)\[(\d+)\] = \{(.*?)^\};", re.M | re.S)
_OPS = re.compile(r"^static const \w+_op_t (\w+_ops)\[(\d+)\] = \{", re.M)
_FILLS = re.compile(r"^static const uint32_t (\w+_fills)\[(\d+)\]\[3\] = \{", re.M)
_CALL_FN = re.compile(r"^TE_CALL_FN (\w+)\(void \*const \*a\)\n\{\n    return (\w+)\((.*?)\);",
                      re.M | re.S)


def _args_refs(body: str, prefix: str) -> list[str]:
    """What an argument list points at: the params struct, constant arrays, arena, state."""
    refs = set(re.findall(r"&(\w+)|\(void \*\)(\w+)", body))
    names = {n for pair in refs for n in pair if n}
    names |= {f"{prefix}_{b.lower()}" for b in ("ARENA", "STATE") if re.search(rf"\b{b}\b", body)}
    return sorted(names)


def _model_objects(project: Path, prefix: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The sections of <prefix>_model.o and <prefix>_weights.o, as the compiler emits them:
    functions in definition order, variables in reverse definition order (GCC's varpool).

    The model's code is the schedule of model_schedule.j2 (measured in entry["schedule"]): one
    call function per kernel and argument count, invoke by its number of call functions, init
    and reset by whether there is a state table; the rest is data of known size."""
    model_c = (project / f"{prefix}_model.c").read_text()
    weights_c = (project / f"{prefix}_weights.c").read_text()
    types, array_align, sched = entry["types"], entry["array_align"], entry["schedule"]

    def ctype(name: str, where: str) -> list[int]:
        if name not in types:
            raise TinyEngineError(f"{project}: {where} has type {name}, which the code-size "
                                  "table does not know; re-run benchmarks/code_sizes.py --write")
        return list(types[name])

    def measured(table: dict[str, Any], key: int, what: str) -> list[int]:
        if str(key) not in table:
            raise TinyEngineError(f"{project}: {what} is beyond what the code-size table "
                                  f"measured (up to {max(int(k) for k in table)}); raise it in "
                                  "benchmarks/code_sizes.py and re-run it with --write")
        return list(table[str(key)])

    weights: list[list[Any]] = []
    for t, name, n in _ARRAY.findall(weights_c):
        size, _ = ctype(t, name)
        weights.append([f".rodata.{name}", size * int(n), array_align[t], "", []])
    weights.reverse()

    # Functions, in the order GCC emits them: the call functions, init and reset (in the
    # measured order), invoke. The others
    # (stream_input, input, output) are never kept by the bare firmware, which calls none.
    text: list[list[Any]] = []
    frames: dict[str, int] = {}
    calls: dict[str, list[str]] = {}
    call_names = []
    for name, kernel, args in _CALL_FN.findall(model_c):
        size, align, frame = measured(sched["calls"], args.count("a["),
                                      f"{name} ({args.count('a[')} arguments)")
        text.append([f".text.{name}", size, align, "", [kernel]])
        frames[name], calls[name] = frame, [kernel]
        call_names.append(name)
    fills = _FILLS.search(model_c)
    init = sched["init"]["fills" if fills else "none"]
    for m in init:
        name = _renamed_ref(m["function"], prefix)
        text.append([f".text.{name}", *m["section"][1:4], [_renamed_ref(r, prefix)
                                                          for r in m["section"][4]]])
        frames[name], calls[name] = m["frame"], [_renamed_ref(r, prefix) for r in m["calls"]]
    ops = _OPS.search(model_c)
    if ops is None:
        raise TinyEngineError(f"{project}/{prefix}_model.c has no op table; it was generated "
                              "by another version of tinyengine: compile the model again")
    size, align, frame = measured(sched["invoke"], len(call_names),
                                  f"invoke with {len(call_names)} call functions")
    text.append([f".text.{prefix}_invoke", size, align, "", [ops.group(1), *call_names]])
    frames[f"{prefix}_invoke"], calls[f"{prefix}_invoke"] = frame, list(call_names)

    # Variables, in definition order (reversed below): per op its params and argument list,
    # then the op table and the state table.
    found: list[tuple[int, list[Any]]] = []
    for m in _PARAMS.finditer(model_c):
        size, align = ctype(m.group(1), m.group(2))
        refs = sorted(set(re.findall(rf"\b{re.escape(prefix)}_op\d+_\w+", m.group(3))))
        found.append((m.start(), [f".rodata.{m.group(2)}", size, align, "", refs]))
    ptr, ptr_align = sched["pointer"]
    for m in _ARGS.finditer(model_c):
        kind = ".rodata" if m.group(1) else ".data"
        found.append((m.start(), [f"{kind}.{m.group(2)}", ptr * int(m.group(3)), ptr_align, "",
                                  _args_refs(m.group(4), prefix)]))
    body = model_c[ops.end():model_c.index("\n};", ops.end())]
    found.append((ops.start(), [f".rodata.{ops.group(1)}",
                                sched["op_entry"][0] * int(ops.group(2)), sched["op_entry"][1],
                                "", sorted(set(re.findall(r"\w+_args_op\d+", body)))]))
    if fills:
        found.append((fills.start(), [f".rodata.{fills.group(1)}",
                                       sched["fill_entry"][0] * int(fills.group(2)),
                                       sched["fill_entry"][1], "", []]))
    data = [sec for _, sec in sorted(found, key=lambda t: t[0])]
    data.reverse()
    bss = []
    for t, name, expr in _BSS.findall(model_c):
        size, _ = ctype(t, name)
        n = eval(expr.replace("/", "//"), {"__builtins__": {}})  # digits and + - * / ( ) only
        bss.append([f".bss.{name}", size * n, array_align[t], "nobits", []])
    bss.reverse()
    sections = text + data + bss
    model = {"name": f"{prefix}_model.o", "sections": sections,
             "where": {s[0].split(".", 2)[2]: i for i, s in enumerate(text)},
             "frames": frames, "calls": calls,
             "symbols": {s[0].split(".", 2)[2]: i for i, s in enumerate(sections)}}
    weights_obj = {"name": f"{prefix}_weights.o", "sections": weights, "frames": {},
                   "calls": {}, "where": {},
                   "symbols": {s[0].split(".", 2)[2]: i for i, s in enumerate(weights)}}
    return [model, weights_obj]


def _renamed_ref(name: str, prefix: str, old: str = "m") -> str:
    """A name of the probe model (prefix "m") under the model's prefix."""
    return f"{prefix}_{name[len(old) + 1:]}" if name.startswith(f"{old}_") else name


# --- the linker: which sections stay, where they go --------------------------------------------

def _objects(project: Path, report: dict[str, Any], entry: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = report["prefix"]
    if any(t.get("streamed") for t in report["inputs"]):
        raise TinyEngineError(f"{project}: the code-size table has no main for streamed inputs; "
                              "link the firmware (--target) for its size")
    kernels = sorted(f.name for f in (project / "kernels").glob("*.c"))
    objs = _model_objects(project, prefix, entry)
    for name in [*kernels, "firmware_main.c", "firmware_startup.c"]:
        if name not in entry["objects"]:
            raise TinyEngineError(f"{project}: kernels/{name} is not in the code-size table; "
                                  "re-run benchmarks/code_sizes.py --write")
        obj = entry["objects"][name]
        if name.startswith("firmware_"):  # measured with the prefix "m"
            obj = _renamed(obj, entry["prefix"], prefix)
        objs.append({"name": name, **obj})
    objs += [{"name": m, **entry["objects"][m]} for m in entry["library_order"]]
    return objs


def _renamed(obj: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The runtime object with the model's names under another prefix."""
    def name(n: Any) -> Any:
        return f"{new}_{n[len(old) + 1:]}" if isinstance(n, str) and n.startswith(f"{old}_") else n

    return {**obj, "sections": [[*s[:4], [name(r) for r in s[4]]] for s in obj["sections"]],
            "where": {name(f): s for f, s in obj["where"].items()},
            "frames": {name(f): b for f, b in obj["frames"].items()},
            "calls": {f: [name(g) for g in c] for f, c in obj["calls"].items()}}


def _kept(objs: list[dict[str, Any]]) -> set[tuple[int, int]]:
    """(object, section) pairs --gc-sections keeps: the closure of the vector table and the
    entry point over the sections' references; a global name resolves to its first
    definition in link order."""
    defs: dict[str, tuple[int, int]] = {}
    for o, obj in enumerate(objs):
        for name, s in obj["symbols"].items():
            defs.setdefault(name, (o, s))
    todo = [defs["Reset_Handler"]]
    todo += [(o, s) for o, obj in enumerate(objs) for s, sec in enumerate(obj["sections"])
             if sec[0] == ISR_VECTOR]
    kept: set[tuple[int, int]] = set()
    while todo:
        o, s = todo.pop()
        if (o, s) in kept:
            continue
        kept.add((o, s))
        for ref in objs[o]["sections"][s][4]:
            if isinstance(ref, int):
                todo.append((o, ref))
            elif ref in defs:
                todo.append(defs[ref])
    return kept


def _layout(objs: list[dict[str, Any]], kept: set[tuple[int, int]],
            part_of: list[str]) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """Place the kept sections as the bare linker script does; flash and RAM as `size` counts
    them (flash = text + data, ram = data + bss; the stack is added by the caller)."""
    def phase(name: str, kind: str) -> str:
        if name == ISR_VECTOR:
            return "vector"
        if kind == "nobits" or name.startswith((".bss", "COMMON")):
            return "bss"
        if name.startswith(".data"):
            return "data"
        if name.startswith(".ARM.exidx"):
            return "exidx"
        return "text" if name.startswith(".text") else "rodata"

    flash_parts: dict[str, int] = {}
    ram_parts: dict[str, int] = {}

    def place(addr: int, phases: tuple[str, ...], parts: dict[str, int]) -> int:
        for ph in phases:
            for o, obj in enumerate(objs):
                for s, (name, size, align, kind, _) in enumerate(obj["sections"]):
                    if (o, s) in kept and phase(name, kind) == ph and size:
                        addr = -(-addr // align) * align + size
                        part = part_of[o] if part_of[o] != "model" else _model_part(name)
                        parts[part] = parts.get(part, 0) + size
        return addr

    end = place(FLASH_ORIGIN, ("vector",), flash_parts)
    end = -(-place(end, ("text", "rodata"), flash_parts) // 4) * 4
    end = place(end, ("exidx",), flash_parts)
    data_start = RAM_ORIGIN
    data_end = -(-place(data_start, ("data",), ram_parts) // 4) * 4
    data = data_end - data_start
    bss_end = -(-place(data_end, ("bss",), ram_parts) // 4) * 4
    heap_end = -(-bss_end // 8) * 8
    return end + data, heap_end - RAM_ORIGIN, flash_parts, ram_parts


def _model_part(section: str) -> str:
    """sizes._part for a section of <prefix>_model.o or <prefix>_weights.o: the op table, the
    argument lists and the state table are the schedule, counted with the model's code."""
    if section.endswith("_params"):
        return "params"
    if section.startswith(".text") or section.endswith(("_ops", "_fills")) or \
            re.search(r"_args_op\d+$", section):
        return "model_code"
    if section.endswith("_arena"):
        return "arena"
    if section.endswith("_state"):
        return "state"
    return "weights"


def _stack(objs: list[dict[str, Any]], kept: set[tuple[int, int]],
           part_prefix: str) -> dict[str, Any]:
    """sizes.stack_need on the estimate: frames by function name (the largest of a name that
    several files define), calls by relocation, an indirect call reaching every function whose
    address a kept section outside the vector table holds."""
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    taken: set[str] = set()
    indirect: set[str] = set()
    for o, obj in enumerate(objs):
        library = obj["name"] not in ("firmware_main.c", "firmware_startup.c") and \
            not obj["name"].startswith(("te_", part_prefix))
        for f, s in obj["where"].items():
            if not library:  # sizes.stack_usage_files: every .su of the build, kept or not
                frames[f] = max(frames.get(f, 0), obj["frames"].get(f, 0))
            if (o, s) not in kept:
                continue
            if library:
                frames[f] = max(frames.get(f, 0), obj["frames"].get(f, 0))
            calls.setdefault(f, set()).update(obj["calls"].get(f, []))
            if f in obj.get("indirect", []):
                indirect.add(f)
        for s, names in obj.get("taken", {}).items():
            if (o, int(s)) in kept and obj["sections"][int(s)][0] != ISR_VECTOR:
                taken.update(names)
    for f in indirect:
        calls[f] |= (taken & set(calls)) - {f}
    depth: dict[str, tuple[int, list[str]]] = {}

    def walk(f: str, seen: frozenset[str]) -> tuple[int, list[str]]:
        if f in depth:
            return depth[f]
        if f in seen:
            raise TinyEngineError(f"{f} is recursive; the stack figure cannot be estimated")
        best: tuple[int, list[str]] = (0, [])
        for g in sorted(calls.get(f, ())):
            if g in calls:
                best = max(best, walk(g, seen | {f}), key=lambda t: t[0])
        depth[f] = (frames.get(f, 0) + best[0], [f, *best[1]])
        return depth[f]

    total, path = walk("Reset_Handler", frozenset())
    return {"bytes": total, "path": [{"function": f, "frame": frames.get(f, 0)} for f in path]}


def estimate_firmware(project_dir: str | Path, core: str = "cortex-m4", opt: str = "O2",
                      simd: bool = True, table: dict[str, Any] | None = None,
                      report: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flash and RAM of the project's bare firmware on `core` at -`opt`, part by part (the
    parts of sizes.linked_parts), from the code-size table; no toolchain needed. `report`:
    the project's report (read from its report.json when not given)."""
    project = Path(project_dir)
    if report is None:
        report = json.loads((project / "report.json").read_text())
    table = load_table() if table is None else table
    key = table_key(core, opt, simd)
    if key not in table["entries"]:
        raise TinyEngineError(f"the code-size table has no entry {key}; measured: "
                              f"{', '.join(sorted(table['entries']))}")
    entry = table["entries"][key]
    objs = _objects(project, report, entry)
    part_of = ["model", "model"] + ["kernel_code" if o["name"].startswith("te_") else
                                    "runtime" if o["name"].startswith("firmware_") else
                                    "library" for o in objs[2:]]
    kept = _kept(objs)
    flash, ram, fp, rp = _layout(objs, kept, part_of)
    stack = _stack(objs, kept, f"{report['prefix']}_")
    reserve = -(-stack["bytes"] // 8) * 8
    flash_parts = {k: fp.get(k, 0) for k in ("weights", "params", "model_code", "kernel_code",
                                             "runtime", "library")}
    flash_parts["alignment"] = flash - sum(flash_parts.values())
    ram += reserve
    ram_parts = {"arena": rp.get("arena", 0), "state": rp.get("state", 0),
                 "static_data": sum(v for k, v in rp.items() if k not in ("arena", "state")),
                 "stack": reserve, "heap": 0}
    ram_parts["alignment"] = ram - sum(ram_parts.values())
    return {"core": core, "opt": opt, "simd": simd, "runtime": "bare", "flash": flash, "ram": ram,
            "flash_parts": flash_parts, "ram_parts": ram_parts, "stack_path": stack["path"],
            "method": "estimated from tinyengine/target/code_sizes.json",
            "table_source_hash": table["source_hash"]}


# What every compile estimates (report.json "firmware_estimate"): the table's configurations.
REPORT_CONFIGS = (("cortex-m4", "O2"), ("cortex-m4", "Os"))


def firmware_estimates(project_dir: str | Path,
                       report: dict[str, Any] | None = None) -> dict[str, Any]:
    """report.json "firmware_estimate": per "<core>-<opt>" of REPORT_CONFIGS the estimated
    flash and RAM totals and their parts, or {"unavailable": why} (a streamed input, a kernel
    the table does not hold). A few milliseconds: cheap enough for every compile."""
    try:
        table = load_table()
    except TinyEngineError as e:
        return {f"{core}-{opt}": {"unavailable": str(e)} for core, opt in REPORT_CONFIGS}
    out: dict[str, Any] = {}
    for core, opt in REPORT_CONFIGS:
        try:
            est = estimate_firmware(project_dir, core, opt, table=table, report=report)
        except TinyEngineError as e:
            out[f"{core}-{opt}"] = {"unavailable": str(e)}
            continue
        out[f"{core}-{opt}"] = {k: est[k] for k in ("flash", "ram", "flash_parts", "ram_parts")}
    return out


def estimate_phrase(report: dict[str, Any], key: str = "cortex-m4-O2") -> str:
    """The compile summary's phrase for report["firmware_estimate"][key] ("" when there is
    none), e.g. ", firmware est. 2,748 B flash / 288 B RAM (cortex-m4 -O2, bare)"."""
    est = report.get("firmware_estimate", {}).get(key, {})
    if "flash" not in est:
        return ""
    core, opt = key.rsplit("-", 1)
    return (f", firmware est. {est['flash']:,} B flash / {est['ram']:,} B RAM ({core} -{opt}, "
            "bare)")
