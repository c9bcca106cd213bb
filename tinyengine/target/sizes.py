"""What a linked firmware takes, part by part, and the stack its worst call path needs.

Flash and RAM totals come from the cross toolchain's `size`; the parts come from the linker's map
file: every input section the linker kept (after --gc-sections), by the object it came from and
its name. The parts add up to the totals exactly: whatever the linker spent on alignment between
sections is its own line ("alignment").

    flash = weights (the model's constant arrays) + params (its per-op parameter structs)
          + model code (<prefix>_model.c: invoke, init, ...) + kernel code (kernels/*.c, per file)
          + runtime (startup code, vector table, main) + library (libgcc, libc) + alignment
    ram   = arena + persistent state + static data (everything else in .data/.bss)
          + stack reserve + heap reserve

The stack reserve of the bare runtime is the deepest call path from the reset handler: the frame
of every function compiled here comes from GCC's -fstack-usage (.su files), the frame of a library
routine from its prologue (push, vpush, sub sp), and the call graph from the disassembly of the
linked ELF (bl and b to the start of a function). An indirect call (a callback such as the element
functions of te_add.c) is taken to reach every function whose address the code loads. A recursion
makes the figure unknowable from the code alone, and says so. Exception entry frames are not
counted: the bare firmware enables no interrupt.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from ..errors import TinyEngineError

# Output sections that hold nothing of the program (debug information, attributes).
_NOT_LOADED = re.compile(r"^\.(debug|comment|ARM\.attributes|stab|note)")
_INPUT = re.compile(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_INPUT_NAME = re.compile(r"^ (\.\S+)$")
_CONT = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_OUTPUT = re.compile(r"^(\.\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)")


def map_sections(map_file: str | Path) -> list[dict[str, Any]]:
    """The input sections the linker placed (size > 0), in address order: output section,
    input section name, size, and the object (or `archive(member)`) they came from."""
    text = Path(map_file).read_text()
    start = text.find("Linker script and memory map")
    if start < 0:
        raise TinyEngineError(f"{map_file} is not a GNU ld map file; rebuild the firmware")
    out: list[dict[str, Any]] = []
    output = ""
    pending = ""
    for line in text[start:].splitlines():
        m = _OUTPUT.match(line) or (re.match(r"^(\.\S+)$", line))
        if m:
            output = m.group(1)
            pending = ""
            continue
        if _NOT_LOADED.match(output):
            continue
        m = _INPUT.match(line)
        if m and not m.group(1).startswith("*"):
            name, size, obj = m.group(1), int(m.group(3), 16), m.group(4).strip()
        elif _INPUT_NAME.match(line):
            pending = line.strip()
            continue
        elif pending and (c := _CONT.match(line)):
            name, size, obj = pending, int(c.group(2), 16), c.group(3).strip()
        else:
            pending = ""
            continue
        pending = ""
        if size:
            out.append({"output": output, "section": name, "bytes": size, "object": obj})
    return out


def _part(sec: dict[str, Any], prefix: str) -> tuple[str, str]:
    """(part, detail) of one placed input section; see the module's formula."""
    obj = sec["object"]
    base = Path(obj.split("(")[0]).name
    name = sec["section"]
    if "(" in obj or base.endswith(".a"):
        return "library", Path(obj.split("(")[0]).stem
    if base == f"{prefix}_weights.o":
        return "weights", ""
    if base == f"{prefix}_model.o":
        if re.fullmatch(rf"\.rodata\.{re.escape(prefix)}_op\d+_params", name):
            return "params", ""
        if re.fullmatch(rf"\.rodata\.{re.escape(prefix)}_op\d+_\w+", name):
            return "weights", ""
        if name.endswith(f".{prefix}_arena"):
            return "arena", ""
        if name.endswith(f".{prefix}_state"):
            return "state", ""
        return ("model_code" if name.startswith(".text") else "model_data"), ""
    if base.startswith("kernels__"):
        return "kernel_code", base[len("kernels__"):-2] + ".c"
    if base in ("firmware_main.o", "firmware_startup.o"):
        return "runtime", ""
    return "other", base


def linked_parts(map_file: str | Path, prefix: str, flash: int, ram: int, stack_bytes: int,
                 heap_bytes: int) -> dict[str, Any]:
    """Flash and RAM of a linked firmware by part (see the module's formula), from its map file
    and the totals of `size` (flash = text + data, ram = data + bss)."""
    flash_parts = dict.fromkeys(("weights", "params", "model_code", "kernel_code", "runtime",
                                 "library"), 0)
    ram_parts = dict.fromkeys(("arena", "state", "static_data"), 0)
    kernels: dict[str, int] = {}
    library: dict[str, int] = {}
    for sec in map_sections(map_file):
        part, detail = _part(sec, prefix)
        n, output = sec["bytes"], sec["output"]
        if output in (".heap", ".stack"):
            continue  # the reserves: counted below as the linker script sets them
        if output == ".data":  # the variables in RAM, their initial values in flash
            flash_parts["data_init"] = flash_parts.get("data_init", 0) + n
        if output in (".data", ".bss") or part in ("arena", "state"):
            ram_parts[part if part in ("arena", "state") else "static_data"] += n
            continue
        part = {"model_data": "model_code", "other": "runtime"}.get(part, part)
        flash_parts[part] += n
        if part == "kernel_code":
            kernels[detail] = kernels.get(detail, 0) + n
        elif part == "library":
            library[detail] = library.get(detail, 0) + n
    flash_parts["alignment"] = flash - sum(flash_parts.values())
    ram_parts["stack"] = stack_bytes
    ram_parts["heap"] = heap_bytes
    ram_parts["alignment"] = ram - sum(ram_parts.values())
    return {"flash": flash, "ram": ram, "flash_parts": flash_parts, "ram_parts": ram_parts,
            "kernel_code_by_file": dict(sorted(kernels.items())),
            "library_by_archive": dict(sorted(library.items()))}


# --- stack: -fstack-usage frames + the call graph of the linked ELF ----------------------------

_FUNC = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
_CALL = re.compile(r"\t(bl|blx|b|b\.w|b\.n|bx)(?:\.w)?\s+([0-9a-f]+) <([^>+]+)>")
_INDIRECT = re.compile(r"\tblx\s+(r\d+|ip|lr)\b")
_PUSH = re.compile(r"\t(?:push|stmdb)(?:\.w)?\s+(?:sp!,\s*)?\{([^}]*)\}")
_VPUSH = re.compile(r"\tvpush\s+\{([^}]*)\}")
_WORD = re.compile(r"\t\.word\s+0x([0-9a-f]+)")
_SUBSP = re.compile(r"\tsub(?:w|\.w)?\s+sp,\s*(?:sp,\s*)?#(\d+)")


def stack_usage_files(obj_dir: str | Path) -> dict[str, int]:
    """Function -> frame bytes from every .su file GCC wrote (-fstack-usage) in obj_dir; a
    name defined in several files (static helpers) gets the largest frame."""
    frames: dict[str, int] = {}
    for su in sorted(Path(obj_dir).glob("*.su")):
        for line in su.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            name = parts[0].rsplit(":", 1)[-1]
            if "dynamic" in parts[2] and "bounded" not in parts[2]:
                raise TinyEngineError(f"{su}: {name} has a stack frame of unbounded size; the "
                                      "stack figure cannot be computed")
            frames[name] = max(frames.get(name, 0), int(parts[1]))
    return frames


def _regs(text: str) -> int:
    n = 0
    for r in text.split(","):
        r = r.strip()
        if "-" in r:
            a, b = (int(re.sub(r"\D", "", x)) for x in r.split("-"))
            n += b - a + 1
        elif r:
            n += 1
    return n


def call_graph(elf: str | Path, objdump: str) -> tuple[dict[str, set[str]], dict[str, int],
                                                        set[str]]:
    """From the disassembly of the linked ELF: callees of each function, the frame its
    prologue sets up (push, vpush, sub sp: for library code without .su), and the functions
    with an indirect call."""
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(elf)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise TinyEngineError(f"{elf}: {Path(objdump).name} failed: {out.stderr[-500:]}")
    calls: dict[str, set[str]] = {}
    frames: dict[str, int] = {}
    indirect: set[str] = set()
    starts: dict[int, str] = {}
    words: set[int] = set()
    func = ""
    prologue = 0
    for line in out.stdout.splitlines():
        m = _FUNC.match(line)
        if m:
            func = m.group(2)
            starts[int(m.group(1), 16)] = func
            calls.setdefault(func, set())
            frames.setdefault(func, 0)
            prologue = 0
            continue
        if not func:
            continue
        prologue += 1
        c = _CALL.search(line)
        if c and c.group(3) != func:
            calls[func].add(c.group(3))
        if _INDIRECT.search(line):
            indirect.add(func)
        if w := _WORD.search(line):
            words.add(int(w.group(1), 16) & ~1)
        if prologue <= 6:
            if p := _PUSH.search(line):
                frames[func] += 4 * _regs(p.group(1))
            elif v := _VPUSH.search(line):
                size = 8 if "d" in v.group(1) else 4
                frames[func] += size * _regs(v.group(1))
            elif s := _SUBSP.search(line):
                frames[func] += int(s.group(1))
    # An indirect call may reach any function whose address the code loads (a literal-pool
    # word equal to the function's start, the Thumb bit cleared): callbacks are passed that way.
    taken = {starts[a] for a in words if a in starts}
    for f in indirect:
        calls[f] |= taken - {f}
    return calls, frames, indirect


def stack_need(elf: str | Path, objdump: str, obj_dir: str | Path,
               root: str = "Reset_Handler") -> dict[str, Any]:
    """The deepest call path from `root`: its bytes and the path, function by function."""
    calls, prologue_frames, indirect = call_graph(elf, objdump)
    su = stack_usage_files(obj_dir)
    if root not in calls:
        raise TinyEngineError(f"{elf} has no function {root}; rebuild the firmware")

    def frame(f: str) -> int:
        return su[f] if f in su else prologue_frames.get(f, 0)

    depth: dict[str, tuple[int, list[str]]] = {}
    visiting: set[str] = set()

    def walk(f: str) -> tuple[int, list[str]]:
        if f in depth:
            return depth[f]
        if f in visiting:
            raise TinyEngineError(f"{elf}: {f} is recursive; the stack figure cannot be computed")
        visiting.add(f)
        best: tuple[int, list[str]] = (0, [])
        for g in sorted(calls.get(f, ())):
            if g in calls:
                best = max(best, walk(g), key=lambda t: t[0])
        visiting.discard(f)
        depth[f] = (frame(f) + best[0], [f, *best[1]])
        return depth[f]

    total, path = walk(root)
    return {"bytes": total, "path": [{"function": f, "frame": frame(f)} for f in path],
            "method": "-fstack-usage frames + call graph of the linked ELF"}
