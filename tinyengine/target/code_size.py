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
  arena and state by their declared lengths. Only the model's code (init, reset, invoke) is not
  known exactly: it is a sequence of calls with constant arguments whose size depends on GCC's
  register allocation and literal pools, so it comes from a linear fit per call site
  (coefficients in the table; benchmarks/code_sizes.py fits them on random graphs).
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
from ..resources import CSRC

TABLE = Path(__file__).with_name("code_sizes.json")
FLASH_ORIGIN = 0
RAM_ORIGIN = 0x20000000
ISR_VECTOR = ".isr_vector"

_ARRAY = re.compile(r"^(?:static )?const (\w+) (\w+)\[(\d+)\] =", re.M)
_PARAMS = re.compile(r"^static const (\w+) (\w+_op\d+_params) = \{(.*?)^\};", re.M | re.S)
_BSS = re.compile(r"^static (\w+) (\w+)\[([0-9 ()+*/]+)\];", re.M)
_CALL = re.compile(r"status = (\w+)\((.*?)\);", re.S)
_FUNC = re.compile(r"^(?:int|void|void \*) (\w+)\((?:void|int \w+(?:, const void \*\w+)?)\)\n\{",
                   re.M)


def source_hash(csrc: Path = CSRC) -> str:
    """sha256 of the kernel sources and headers a table was measured from."""
    h = hashlib.sha256()
    for f in sorted(csrc.glob("*.[ch]")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def table_key(core: str, opt: str, simd: bool = True) -> str:
    return f"{core}-{opt}" + ("" if simd else "-portable")


def load_table(path: Path = TABLE) -> dict[str, Any]:
    if not path.is_file():
        raise TinyEngineError(f"{path} is missing; run benchmarks/code_sizes.py --write")
    table: dict[str, Any] = json.loads(path.read_text())
    return table


# --- the model's own objects, from the generated C ---------------------------------------------

def _function_bodies(src: str) -> dict[str, str]:
    """Name -> body of each top-level function of <prefix>_model.c (outside the ASan block)."""
    starts = [(m.group(1), m.end()) for m in _FUNC.finditer(src)]
    bodies = {}
    for name, start in starts:
        end = src.find("\n}\n", start)
        bodies[name] = src[start:end]
    return bodies


def model_features(model_c: str, prefix: str) -> dict[str, dict[str, float]]:
    """What the size of the model's code depends on, per function the firmware keeps: the
    inputs of the per-call-site fit (benchmarks/code_sizes.py)."""
    bodies = _function_bodies(model_c)
    invoke = bodies.get(f"{prefix}_invoke", "")
    calls = _CALL.findall(invoke)
    args = [len([a for a in re.split(r",(?![^(]*\))", a) if a.strip()]) for _, a in calls]
    syms = set(re.findall(rf"\b{re.escape(prefix)}_op\d+_\w+", invoke))
    offsets = set(re.findall(r"ARENA \+ (\d+)", invoke))
    reset = bodies.get(f"{prefix}_reset", "")
    fills = len(re.findall(r"\b(?:memset|memcpy)\(", reset))
    return {
        "invoke": {"one": 1.0, "calls": float(len(calls)),
                   "reg_args": float(sum(min(a, 4) for a in args)),
                   "stack_args": float(sum(max(a - 4, 0) for a in args)),
                   "symbols": float(len(syms)), "offsets": float(len(offsets)),
                   "other_lines": float(len(re.findall(r"^    (?!status|if|TE_|/\*|\}| )",
                                                       invoke, re.M)))},
        "init": {"one": 1.0, "fills": float(fills)},
        "frame": {"max_stack_args": float(max([max(a - 4, 0) for a in args], default=0))},
    }


def _predict(coef: dict[str, float], feats: dict[str, float], align: int) -> int:
    value = sum(coef.get(k, 0.0) * v for k, v in feats.items())
    return max(align, int(round(value / align)) * align)


def _model_objects(project: Path, prefix: str, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The sections of <prefix>_model.o and <prefix>_weights.o, as the compiler would emit them:
    functions in definition order, variables in reverse definition order (GCC's varpool)."""
    model_c = (project / f"{prefix}_model.c").read_text()
    weights_c = (project / f"{prefix}_weights.c").read_text()
    types, array_align = entry["types"], entry["array_align"]

    def ctype(name: str, where: str) -> list[int]:
        if name not in types:
            raise TinyEngineError(f"{project}: {where} has type {name}, which the code-size "
                                  "table does not know; re-run benchmarks/code_sizes.py --write")
        return list(types[name])

    weights: list[list[Any]] = []
    names = set()
    for t, name, n in _ARRAY.findall(weights_c):
        size, _ = ctype(t, name)
        weights.append([f".rodata.{name}", size * int(n), array_align[t], "", []])
        names.add(name)
    weights.reverse()

    feats = model_features(model_c, prefix)
    mc = entry["model_code"]
    invoke_src = _function_bodies(model_c).get(f"{prefix}_invoke", "")
    callees = sorted({f for f, _ in _CALL.findall(invoke_src)})
    refs = sorted(set(re.findall(rf"\b{re.escape(prefix)}_op\d+_\w+", invoke_src)))
    reset_src = _function_bodies(model_c).get(f"{prefix}_reset", "")
    init_refs = sorted(set(re.findall(r"\b(memset|memcpy)\(", reset_src)))
    init_refs += [f"{prefix}_state"] if "STATE" in reset_src else []
    refs += [f"{prefix}_{b}" for b in ("arena", "state") if b.upper() in invoke_src]
    text = [[f".text.{prefix}_init", _predict(mc["init"], feats["init"], 2), mc["align"], "",
             init_refs],
            [f".text.{prefix}_invoke", _predict(mc["invoke"], feats["invoke"], 4), mc["align"],
             "", callees + refs]]
    params = []
    for t, name, body in _PARAMS.findall(model_c):
        size, align = ctype(t, name)
        params.append([f".rodata.{name}", size, align, "",
                       sorted(set(re.findall(rf"\b{re.escape(prefix)}_op\d+_\w+", body)))])
    params.reverse()
    bss = []
    for t, name, expr in _BSS.findall(model_c):
        size, _ = ctype(t, name)
        n = eval(expr.replace("/", "//"), {"__builtins__": {}})  # digits and + - * / ( ) only
        bss.append([f".bss.{name}", size * n, array_align[t], "nobits", []])
    bss.reverse()
    frame = feats["frame"]["max_stack_args"]
    invoke_frame = int(mc["frame"].get(str(int(frame)), 8 + 4 * frame))
    model = {"name": f"{prefix}_model.o", "sections": text + params + bss,
             "where": {f"{prefix}_init": 0, f"{prefix}_invoke": 1},
             "frames": {f"{prefix}_init": mc["init_frame"], f"{prefix}_invoke": invoke_frame},
             "calls": {f"{prefix}_init": init_refs, f"{prefix}_invoke": callees}}
    model["symbols"] = {s[0].split(".", 2)[2]: i for i, s in enumerate(model["sections"])}
    weights_obj = {"name": f"{prefix}_weights.o", "sections": weights, "frames": {},
                   "calls": {}, "where": {},
                   "symbols": {s[0].split(".", 2)[2]: i for i, s in enumerate(weights)}}
    return [model, weights_obj]


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
    if section.endswith("_params"):
        return "params"
    if section.startswith(".text"):
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
                      simd: bool = True, table: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flash and RAM of the project's bare firmware on `core` at -`opt`, part by part (the
    parts of sizes.linked_parts), from the code-size table; no toolchain needed."""
    project = Path(project_dir)
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
            "method": "estimated from tinyengine/target/code_sizes.json (model code: fitted)",
            "table_source_hash": table["source_hash"]}
