"""Measure the code-size table (tinyengine/target/code_sizes.json) and check it against the linker.

    .venv/bin/python benchmarks/code_sizes.py [--write] [-o out/code_sizes] [--no-check]

For each core and optimisation level in CONFIGS: every csrc/*.c is compiled with the bare
firmware's flags (build.firmware_flags + -fstack-usage), the bare runtime (main, startup) is taken
from a linked project, and the libgcc/libc members those objects may pull in are taken from the
toolchain's archives. Of each object the table keeps its allocated sections (size, alignment),
their references (relocations), the functions' frames (-fstack-usage; the prologue for library
code), their calls, and which functions load another's address (for indirect calls). The
parameter structs' and arrays' sizes and alignments come from a probe file. The model's own code
is the schedule of codegen_templates/model_schedule.j2, the same text in every model: probe files
rendered from those macros give each call function by its argument count (1 to MAX_CALL_ARGS),
invoke by its number of call functions (0 to MAX_CALLS), and init and reset with and without a
state table.

The check: every shared model that tests/conftest.py lists and the digits pipeline's project,
linked bare for cortex-m4 at -O2 and -Os, against code_size.estimate_firmware. Prints a markdown
table (model, opt, estimated vs linked flash and RAM). Needs arm-none-eabi-gcc with newlib.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tinyengine.codegen import compile_graph  # noqa: E402
from tinyengine.resources import CSRC  # noqa: E402
from tinyengine.target import build_firmware, resolve_board  # noqa: E402
from tinyengine.target.build import find_toolchain, firmware_flags, firmware_key  # noqa: E402
from tinyengine.target.code_size import (  # noqa: E402
    TABLE,
    estimate_firmware,
    source_hash,
    table_key,
)
from tinyengine.target.sizes import call_graph  # noqa: E402

# Not the Cortex-M0+ yet: its table measures, but the estimate is 20 B short at -Os (outside
# the model code) and 104-148 B short of the model code at -O2 (Thumb-1 lays out the schedule's
# code differently); the firmware scope stays "model" by default on its boards until it is exact.
CONFIGS = [("cortex-m4", "O2", True), ("cortex-m4", "Os", True), ("cortex-m7", "O2", True),
           ("cortex-m7", "Os", True)]
RUNTIME_SEED = 1000
# The largest call function (arguments, the params pointer included) and the most call
# functions (distinct kernels and argument counts) in one model that the table measures.
MAX_CALL_ARGS = 32
MAX_CALLS = 64
_CALLS = ("R_ARM_THM_CALL", "R_ARM_THM_JUMP24", "R_ARM_CALL", "R_ARM_JUMP24")
_SEC = re.compile(r"^\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+"
                  r"[0-9a-f]+\s+([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)$")
_SYM = re.compile(r"^\s*(\d+):\s+([0-9a-f]+)\s+(\d+)\s+(\w+)\s+(\w+)\s+\w+\s+(\w+)\s*(\S*)$")
_REL = re.compile(r"^([0-9a-f]+)\s+([0-9a-f]+)\s+(R_\w+)")


def _run(cmd: list[str]) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def read_object(path: Path, su: Path | None, objdump: str) -> dict:
    """One object file as the table holds it (see the module docstring)."""
    secs = [m.groups() for line in _run(["arm-none-eabi-readelf", "-S", "-W", str(path)])
            .splitlines() if (m := _SEC.match(line))]
    alloc = [int(i) for i, name, typ, size, flags, lk, inf, al in secs
             if "A" in flags and typ != "ARM_EXIDX" or name.startswith(".ARM.exidx")]
    index = {old: new for new, old in enumerate(alloc)}
    by_old = {int(s[0]): s for s in secs}
    sections: list[list[Any]] = [[by_old[i][1], int(by_old[i][3], 16), max(int(by_old[i][7]), 1),
                 "nobits" if by_old[i][2] == "NOBITS" else "", []] for i in alloc]
    syms = {int(m.group(1)): m.groups() for line in _run(
        ["arm-none-eabi-readelf", "-s", "-W", str(path)]).splitlines() if (m := _SYM.match(line))}
    symbols = {s[6]: index[int(s[5])] for s in syms.values()
               if s[4] in ("GLOBAL", "WEAK") and s[5].isdigit() and int(s[5]) in index}
    funcs = [(index[int(s[5])], int(s[1], 16) & ~1, int(s[2]), s[6]) for s in syms.values()
             if s[3] == "FUNC" and s[5].isdigit() and int(s[5]) in index]
    calls: dict[str, list[str]] = {f: [] for _, _, _, f in funcs}
    taken: dict[str, list[str]] = {}
    for i, *_rest in secs:  # link-order sections (.ARM.exidx) go with their code
        if int(i) in index and by_old[int(i)][1].startswith(".ARM.exidx"):
            target = int(by_old[int(i)][5])
            if target in index:
                sections[index[target]][4].append(index[int(i)])
    rel_text = _run(["arm-none-eabi-readelf", "-r", "-W", str(path)])
    for block in rel_text.split("Relocation section '")[1:]:
        rel_name = block.split("'", 1)[0]
        target = next((int(s[6]) for s in secs if s[1] == rel_name), -1)
        if target not in index:
            continue
        t = index[target]
        for line in block.splitlines()[2:]:
            m = _REL.match(line)
            if not m:
                continue
            offset, sym = int(m.group(1), 16), syms.get(int(m.group(2), 16) >> 8)
            if sym is None:
                continue
            _, _, _, styp, bind, ndx, sname = sym
            local = bind == "LOCAL" and ndx.isdigit()
            ref: int | str = index.get(int(ndx), -1) if local else sname
            if ref == -1:
                continue
            if ref not in sections[t][4]:
                sections[t][4].append(ref)
            callee = sname if styp in ("FUNC", "NOTYPE") and sname else ""
            caller = next((f for s, v, n, f in funcs if s == t and v <= offset < v + max(n, 1)),
                          None)
            if m.group(3) in _CALLS and callee and caller and callee != caller:
                if callee not in calls[caller]:
                    calls[caller].append(callee)
            if m.group(3) == "R_ARM_ABS32" and styp == "FUNC":
                taken.setdefault(str(t), []).append(sname)
    frames: dict[str, int] = {}
    if su is not None:
        for line in su.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                name = parts[0].rsplit(":", 1)[-1]
                frames[name] = max(frames.get(name, 0), int(parts[1]))
    _, prologue, indirect = call_graph(path, objdump)
    for f in calls:
        frames.setdefault(f, prologue.get(f, 0))
    where = {f: sec for sec, _, _, f in funcs}
    return {"sections": sections, "symbols": symbols, "frames": frames, "calls": calls,
            "where": where,
            "indirect": sorted(indirect & set(calls)), "taken": taken,
            "library": su is None}


def _probe_types(flags: list[str], tmp: Path) -> tuple[dict, dict]:
    """sizeof/alignment of every te_*_t type and element type, and the alignment GCC gives a
    const array of each element type at these flags (4 for any array at -O2 on Arm)."""
    typedef = re.compile(r"(?:\}|typedef te_\w+_t)\s*(te_\w+_t)\s*;")
    names = sorted({m for h in CSRC.glob("*.h") for m in typedef.findall(h.read_text())})
    base = ["int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t",
            "float"]
    flags = [f for f in flags if f not in ("-Werror", "-Wall", "-Wextra")]
    while True:  # types the headers declare only for SIMD builds drop out on portable cores
        lines = ["#include <stdint.h>", *(f'#include "{h.name}"'
                                          for h in sorted(CSRC.glob("*.h")))]
        lines += [f"const {t} te_probe_{t} = {{0}};" for t in names + base]
        lines += [f"const {t} te_probe_arr_{t}[3] = {{0}};" for t in base]
        (tmp / "probe.c").write_text("\n".join(lines) + "\n")
        done = subprocess.run(["arm-none-eabi-gcc", *flags, f"-I{CSRC}", "-c",
                               str(tmp / "probe.c"), "-o", str(tmp / "probe.o")],
                              capture_output=True, text=True)
        unknown = set(re.findall(r"unknown type name '(te_\w+_t)'", done.stderr))
        if done.returncode == 0 or not unknown & set(names):
            break
        names = [t for t in names if t not in unknown]
    if done.returncode != 0:
        raise SystemExit(f"the type probe does not compile:\n{done.stderr}")
    obj = read_object(tmp / "probe.o", None, "arm-none-eabi-objdump")
    got = {s[0].split(".", 2)[-1]: (s[1], s[2]) for s in obj["sections"]}
    types = {t: list(got[f"te_probe_{t}"]) for t in names + base}
    array_align = {t: got[f"te_probe_arr_{t}"][1] for t in base}
    return types, array_align


def _library(objs: list[dict], flags: list[str], tmp: Path, objdump: str) -> dict[str, dict]:
    """The archive members the objects may pull in (the closure of their undefined names)."""
    archives = [Path(_run(["arm-none-eabi-gcc", *flags, "--specs=nano.specs",
                           "-print-file-name=libc_nano.a"]).strip()),
                Path(_run(["arm-none-eabi-gcc", *flags, "-print-libgcc-file-name"]).strip())]
    where: dict[str, tuple[int, str, int]] = {}
    for a, archive in enumerate(archives):
        members = _run(["arm-none-eabi-ar", "t", str(archive)]).split()
        order = {m: i for i, m in enumerate(members)}
        for line in _run(["arm-none-eabi-nm", "-A", "--defined-only", "-g", str(archive)]) \
                .splitlines():
            parts = line.split()
            member = parts[0].split(":")[-2] if parts and parts[0].count(":") >= 2 else ""
            if len(parts) == 3 and member in order:
                where.setdefault(parts[2], (a, member, order[member]))
    defined = {n for o in objs for n in o["symbols"]}
    todo = sorted({r for o in objs for s in o["sections"] for r in s[4]
                   if isinstance(r, str) and r not in defined})
    out: dict[str, dict] = {}
    loaded: dict[str, tuple[int, int]] = {}
    while todo:
        name = todo.pop()
        if name in defined or name not in where:
            continue
        a, member, pos = where[name]
        key = f"{archives[a].stem}({member})"
        if key in out:
            continue
        d = tmp / f"ar{a}"
        d.mkdir(exist_ok=True)
        subprocess.run(["arm-none-eabi-ar", "x", str(archives[a]), member], cwd=d, check=True)
        obj = read_object(d / member, None, objdump)
        out[key] = obj
        loaded[key] = (a, pos)
        defined |= set(obj["symbols"])
        todo += [r for s in obj["sections"] for r in s[4] if isinstance(r, str)]
    return {k: out[k] for k in sorted(out, key=lambda k: loaded[k])}


def digits_project(out: Path) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from code_size import digits_project as build  # the README's 2 KB / 8 KB network

    return build(out)


def _runtime_project(out: Path) -> Path:
    """A small project whose bare firmware gives the runtime objects (main, startup)."""
    from random_graphs import ALL_KINDS, random_graph

    p = out / f"random{RUNTIME_SEED}"
    if not (p / "report.json").is_file():
        compile_graph(random_graph(np.random.default_rng(RUNTIME_SEED), ALL_KINDS), p, prefix="m")
    return p


# A probe <prefix>_model.c: the schedule's code exactly as model.c.j2 writes it (the same
# macros), with `calls` call functions to kernels te_probe<j> and a state table or none.
_PROBE = """{% import "model_schedule.j2" as schedule %}
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "te_common.h"

int m_init(void);
void m_reset(void);
int m_invoke(void);
{% for c in calls %}
te_status_t {{ c.kernel }}({{ c.proto }});
{% endfor %}
static int32_t m_state[16];
#define STATE ((uint8_t *)m_state)
#define TE_ARENA_STEP(op) ((void)0)
#define TE_ARENA_RELEASE() ((void)0)
{{ schedule.types("m") }}
{% for c in calls %}
{{ schedule.call_function(c) }}
{% endfor %}
static void *const m_args_op0[3] = {(void *)m_state, NULL, NULL};
static const m_op_t m_ops[{{ calls | length + 1 }}] = {
{% for c in calls %}
    {m_args_op0, {{ loop.index0 }}},
{% endfor %}
    {NULL, 0},
};
{% if fills %}
static const uint32_t m_fills[2][3] = { {0, 0, 16}, {0, 0, 0} };
{% endif %}
{{ schedule.init_function("m") }}
{{ schedule.reset_function("m", fills) }}
{{ schedule.invoke_function("m", calls) }}
"""


def _probe(flags: list[str], tmp: Path, name: str, arities: list[int], fills: bool) -> dict:
    """Compile a probe model.c with one call function per entry of `arities` (its argument
    count) and read it back as the table holds objects; local references by section name."""
    from tinyengine.codegen.project import call_name, template_env

    calls = [{"name": call_name("m", f"te_probe{j}", n), "kernel": f"te_probe{j}",
              "args": ["const void"] * n, "proto": ", ".join(["const void *"] * n)}
             for j, n in enumerate(arities)]
    src = tmp / f"{name}.c"
    src.write_text(template_env().from_string(_PROBE).render(calls=calls, fills=fills))
    obj = tmp / f"{name}.o"
    _run(["arm-none-eabi-gcc", *flags, "-fstack-usage", f"-I{CSRC}", "-c", str(src), "-o",
          str(obj)])
    probe = read_object(obj, obj.with_suffix(".su"), "arm-none-eabi-objdump")
    names = [sec[0].split(".", 2)[-1] for sec in probe["sections"]]
    for sec in probe["sections"]:
        sec[4] = [names[r] if isinstance(r, int) else r for r in sec[4]]
    probe["by_name"] = {n: sec for n, sec in zip(names, probe["sections"])}
    probe["calls_list"] = calls
    return probe


def _measure_schedule(core: str, opt: str, simd: bool, tmp: Path) -> dict:
    """The schedule code of model.c (model_schedule.j2) at these flags: each call function by
    its argument count, invoke by the number of call functions, init and reset with and
    without a state table; and the entry sizes of the op, argument and state tables."""
    flags = [f for f in firmware_flags(resolve_board(core), simd, opt) if f != "-Werror"]
    calls = _probe(flags, tmp, "calls", list(range(1, MAX_CALL_ARGS + 1)), False)
    call_sizes = {}
    for n, c in enumerate(calls["calls_list"], start=1):
        sec = calls["by_name"][c["name"]]
        call_sizes[str(n)] = [sec[1], sec[2], calls["frames"][c["name"]]]
    invoke = {}
    for k in range(MAX_CALLS + 1):
        probe = _probe(flags, tmp, f"invoke{k}", [2] * k, False)
        sec = probe["by_name"]["m_invoke"]
        invoke[str(k)] = [sec[1], sec[2], probe["frames"]["m_invoke"]]
    init = {}
    for fills in (False, True):
        probe = _probe(flags, tmp, f"init{int(fills)}", [2], fills)
        order = [sec[0].split(".", 2)[-1] for sec in probe["sections"]]
        # In the order GCC emits them (at -Os reset comes first once it has a loop).
        init["fills" if fills else "none"] = [
            {"function": f, "section": probe["by_name"][f], "frame": probe["frames"][f],
             "calls": probe["calls"][f]} for f in sorted(("m_init", "m_reset"), key=order.index)]
    ops, args = probe["by_name"]["m_ops"], probe["by_name"]["m_args_op0"]
    fills_sec = probe["by_name"]["m_fills"]
    return {"calls": call_sizes, "invoke": invoke, "init": init,
            "op_entry": [ops[1] // 2, ops[2]], "pointer": [args[1] // 3, args[2]],
            "fill_entry": [fills_sec[1] // 2, fills_sec[2]]}


def measure(out: Path) -> dict:
    tools = find_toolchain("arm")
    runtime = _runtime_project(out / "runtime")
    entries = {}
    for core, opt, simd in CONFIGS:
        board = resolve_board(core)
        flags = firmware_flags(board, simd, opt)
        tmp = Path(tempfile.mkdtemp(prefix=f"cs-{core}-{opt}-", dir=out))
        objs: dict[str, dict] = {}
        for src in sorted(CSRC.glob("*.c")):
            obj = tmp / (src.stem + ".o")
            _run([tools.gcc, *flags, "-fstack-usage", f"-I{CSRC}", "-c", str(src), "-o",
                  str(obj)])
            objs[src.name] = read_object(obj, obj.with_suffix(".su"), tools.objdump)
        elf = build_firmware(runtime, board, opt=opt, runtime="bare", simd=simd)
        for name in ("firmware_main", "firmware_startup"):
            o = elf.parent / "obj" / f"{name}.o"
            objs[f"{name}.c"] = read_object(o, o.with_suffix(".su"), tools.objdump)
        library = _library(list(objs.values()), list(board.cpu.cflags), tmp, tools.objdump)
        types, array_align = _probe_types(flags, tmp)
        entries[table_key(core, opt, simd)] = {
            "objects": {**objs, **library}, "library_order": list(library),
            "types": types, "array_align": array_align, "prefix": "m",
            "schedule": _measure_schedule(core, opt, simd, tmp)}
        print(f"measured {table_key(core, opt, simd)}", file=sys.stderr)
    return {"source_hash": source_hash(), "toolchain": tools.version,
            "flags": "build.firmware_flags + -fstack-usage, bare runtime", "entries": entries}


def check(out: Path, table: dict) -> list[tuple]:
    from conftest import MODEL_FILES, MODELS

    from tinyengine.frontend import load_tflite

    projects = []
    for name in MODEL_FILES:
        p = out / "models" / name.removesuffix(".tflite")
        if not (p / "report.json").is_file():
            compile_graph(load_tflite(MODELS / name), p, prefix="m")
        projects.append((name.removesuffix(".tflite"), p))
    digits = out / "digits"
    projects.append(("digits (pipeline)", digits if (digits / "report.json").is_file()
                     else digits_project(digits)))
    rows = []
    for name, p in projects:
        for core, opt, simd in CONFIGS:
            build_firmware(p, core, opt=opt, runtime="bare", simd=simd)
            report = json.loads((p / "report.json").read_text())
            linked = report["firmware_totals"][firmware_key(resolve_board(core), simd, opt,
                                                            "bare")]
            est = estimate_firmware(p, core, opt, simd, table)
            rows.append((name, opt, est, linked))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("out/code_sizes"))
    ap.add_argument("--write", action="store_true", help=f"write the table to {TABLE}")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    table = measure(args.output) if args.write else json.loads(TABLE.read_text())
    text = json.dumps(table, separators=(",", ":"), sort_keys=True)
    if args.write:
        TABLE.write_text(text + "\n")
        print(f"wrote {TABLE} ({len(text):,} B)", file=sys.stderr)
    if args.no_check:
        return
    print("| model | opt | flash est. | flash linked | diff | model code est./linked | "
          "RAM est. | RAM linked | diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, opt, est, linked in check(args.output, table):
        ef, lf = est["flash_parts"]["model_code"], linked["flash_parts"]["model_code"]
        print(f"| {name} | -{opt} | {est['flash']:,} | {linked['flash']:,} | "
              f"{est['flash'] - linked['flash']:+} | {ef}/{lf} | {est['ram']:,} | "
              f"{linked['ram']:,} | {est['ram'] - linked['ram']:+} |")


if __name__ == "__main__":
    main()
