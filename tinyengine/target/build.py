"""Firmware builds: a generated project + a board -> an ELF for the board's core (arm-none-eabi
or riscv64-unknown-elf), and its true size.

The firmware is the project's own sources (<prefix>_model.c, <prefix>_weights.c, kernels/*.c),
exactly what the host build compiles, plus three files rendered from codegen_templates/target/:
a semihosting main (inputs from input.bin, outputs to output.bin), the startup code (vector
table or trap vector, reset handler) and a linker script with the board's real flash and RAM
regions. The main is one for every core; the startup code and linker script are per
instruction set (boards.ARCHES).

Two checks guard the memory: `check_fits` says in plain words, before compiling anything, that
a model cannot fit (its figures are lower bounds, so it never refuses a model that links), and
the linker script makes the linker refuse what the estimate let through.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..codegen.cvalues import c_comment
from ..codegen.project import check_prefix
from ..errors import TinyEngineError
from ..resources import TEMPLATES
from ..runtime.host import load_project_report
from .boards import ARCHES, Board, resolve_board
from .timing import BAUD, timing_context

FIRMWARE_CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffunction-sections",
                   "-fdata-sections")
FIRMWARE_LDFLAGS = ARCHES["arm"].ldflags  # the Cortex-M link flags (benchmarks/ use them)
NO_SIMD_DEFINE = "-DTE_NO_SIMD"

# Optimisation levels a firmware is built at: -O2 (the default: the speed the benchmarks
# measure) or -Os (smaller code; the SIMD loops are kept there too).
OPT_LEVELS = ("O2", "Os")
DEFAULT_OPT = "O2"
# Runtimes: "semihosting" is the QEMU harness (file I/O through newlib-nano and semihosting,
# stack and heap high-water marks printed); "bare" is the firmware a user ships and whose size
# is reported for a board: startup code, vector table, a main that runs init() and invoke(),
# the model and the kernels it calls, and only the libgcc/libc routines those call. No stdio,
# no heap; its stack reserve is the worst call path (-fstack-usage + call graph, sizes.py).
RUNTIMES = ("semihosting", "bare")
BARE_LDFLAGS = ("--specs=nano.specs", "-nostartfiles", "-Wl,--gc-sections")

# Lower bounds of what the firmware needs besides the model, measured on the smallest model
# (tflm_hello_world, -O2, any of the three cores): startup, main, newlib-nano stdio and
# semihosting took about 10 KB of flash and 0.3 KB of static RAM. The check uses less than that
# on purpose: it must never refuse a model that links, and the linker has the last word anyway.
RUNTIME_FLASH_FLOOR = 8 * 1024
RUNTIME_RAM_FLOOR = 256
# The bare runtime (vector table, reset handler, main) is a few hundred bytes of flash, no RAM
# of its own, and its stack reserve is only known once its code is (the linker decides).
BARE_FLASH_FLOOR = 128

# The Makefile fragment and CMake files name the Arm toolchain and QEMU: Arm cores only.
# The timing firmware (timing.py) is a project file too: its main and the bare startup code.
ARM_BUILD_FILES = {"firmware.mk.j2": "firmware.mk", "firmware.cmake.j2": "firmware.cmake",
                   "arm-none-eabi.cmake.j2": "arm-none-eabi.cmake",
                   "firmware_timing.c.j2": "firmware_timing.c",
                   "firmware_bare_startup.c.j2": "firmware_timing_startup.c"}


def firmware_templates(board: Board, project: bool = False,
                       runtime: str = "semihosting") -> dict[str, str]:
    """Template -> file name: the firmware's own files for the board's instruction set, and
    with `project` the build files a generated project also gets (Arm only, for now)."""
    arch = board.cpu.tools
    if runtime == "bare":
        if arch.name != "arm":
            raise TinyEngineError(f"the bare runtime is for Arm cores only for now; {board.name} "
                                  f"is {arch.name}: use the semihosting runtime")
        return {"firmware_bare_main.c.j2": "firmware_main.c",
                "firmware_bare_startup.c.j2": "firmware_startup.c",
                arch.linker_template: "firmware.ld"}
    files = {"firmware_main.c.j2": "firmware_main.c", arch.startup_template: "firmware_startup.c",
             arch.linker_template: "firmware.ld"}
    return {**files, **ARM_BUILD_FILES} if project and arch.name == "arm" else files


@dataclass(frozen=True)
class Toolchain:
    gcc: str
    size: str
    nm: str
    objdump: str = ""

    @property
    def version(self) -> str:
        out = subprocess.run([self.gcc, "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0] if out.stdout else "?"


def find_toolchain(arch: str = "arm") -> Toolchain:
    """The cross gcc, size and nm of an instruction set (boards.ARCHES), or an error saying
    which Debian packages hold them."""
    a = ARCHES[arch]
    tools = {t: shutil.which(f"{a.cross}{t}") for t in ("gcc", "size", "nm", "objdump")}
    missing = [f"{a.cross}{t}" for t, path in tools.items() if path is None]
    if missing:
        raise TinyEngineError(f"{', '.join(missing)} not found; install the {arch} toolchain: "
                              f"apt-get install --no-install-recommends {a.toolchain_packages}")
    return Toolchain(gcc=str(tools["gcc"]), size=str(tools["size"]), nm=str(tools["nm"]),
                     objdump=str(tools["objdump"]))


def model_sources(report: dict[str, Any], project: Path) -> list[str]:
    """The project's C sources, relative to it, in a fixed order."""
    p = report["prefix"]
    kernels = sorted(f"kernels/{f.name}" for f in (project / "kernels").glob("*.c"))
    return [f"{p}_model.c", f"{p}_weights.c", *kernels]


# A board's name becomes a build directory and Makefile words; other free text of a board
# (description, region names) only reaches comments, through the `comment` filter.
_BOARD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def _context(report: dict[str, Any], board: Board, sources: list[str],
             opt: str = DEFAULT_OPT, stack_bytes: int | None = None,
             heap_bytes: int | None = None) -> dict[str, Any]:
    if not _BOARD_NAME.fullmatch(board.name):
        raise TinyEngineError(f"board name {board.name!r} cannot name a build directory or a "
                              "Makefile word; use letters, digits and _ . + -")
    check_prefix(report["prefix"])  # report.json is read back from disk: it may be damaged
    return {"prefix": report["prefix"], "PREFIX": report["prefix"].upper(),
            "version": __version__, "board": board, "arena_bytes": report["arena_bytes"],
            "inputs": report["inputs"], "outputs": report["outputs"],
            "cpu_flags": list(board.cpu.cflags), "cflags": list(firmware_cflags(opt)),
            "ldflags": list(board.cpu.tools.ldflags), "model_sources": sources,
            "build_dir": f"build-{board.name}", "fpu": has_fpu(board),
            "stack_bytes": board.stack_bytes if stack_bytes is None else stack_bytes,
            "heap_bytes": board.heap_bytes if heap_bytes is None else heap_bytes,
            "baud": BAUD, **timing_context(board)}


def has_fpu(board: Board) -> bool:
    """Whether the core has an FPU (hard-float ABI; the M55's MVE shares its enable bits)."""
    return board.cpu.arch == "arm" and "-mfloat-abi=soft" not in board.cpu.cflags


def firmware_cflags(opt: str = DEFAULT_OPT) -> tuple[str, ...]:
    """FIRMWARE_CFLAGS at optimisation level `opt` (OPT_LEVELS)."""
    if opt not in OPT_LEVELS:
        raise TinyEngineError(f"optimisation level {opt!r} is not offered; choose one of "
                              f"{', '.join(OPT_LEVELS)}")
    return tuple(f"-{opt}" if f == "-O2" else f for f in FIRMWARE_CFLAGS)


def render_target_files(report: dict[str, Any], board: str | Board, sources: list[str],
                        templates: dict[str, str] | None = None, opt: str = DEFAULT_OPT,
                        stack_bytes: int | None = None,
                        heap_bytes: int | None = None) -> dict[str, str]:
    """The target files for one board: file name -> text (by default every file a project
    gets for the board: firmware_templates(board, project=True))."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / "target")),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["comment"] = c_comment
    b = resolve_board(board)
    ctx = _context(report, b, sources, opt, stack_bytes, heap_bytes)
    if templates is None:
        templates = firmware_templates(b, project=True)
    return {name: env.get_template(t).render(**ctx) for t, name in templates.items()}


def target_files(report: dict[str, Any], board: str | Board,
                 kernel_sources: list[str]) -> dict[str, bytes]:
    """For compile_graph(extra_files=...): the firmware sources, linker script, Makefile fragment
    (firmware.mk) and CMake files (arm-none-eabi.cmake, firmware.cmake; Arm cores only) of
    `board`, as bytes.
    kernel_sources: the kernel .c file names the project gets (e.g. "te_conv.c")."""
    p = report["prefix"]
    sources = [f"{p}_model.c", f"{p}_weights.c", *sorted(f"kernels/{k}" for k in kernel_sources)]
    return {k: v.encode() for k, v in render_target_files(report, board, sources).items()}


@dataclass(frozen=True)
class FitEstimate:
    """What the model needs at least, by region, before anything is compiled."""

    board: str
    flash_needed: int
    flash_available: int
    ram_needed: int
    ram_available: int
    ram_parts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"board": self.board, "flash_needed_at_least": self.flash_needed,
                "flash_available": self.flash_available, "ram_needed_at_least": self.ram_needed,
                "ram_available": self.ram_available, "ram_parts": self.ram_parts}


def estimate_fit(report: dict[str, Any], board: str | Board,
                 runtime: str = "semihosting") -> FitEstimate:
    b = resolve_board(board)
    bare = runtime == "bare"
    streamed = sum(t["bytes"] for t in report["inputs"] if t.get("streamed"))
    parts = {"arena": report["arena_bytes"], "streamed inputs": streamed,
             "stack": 0 if bare else b.stack_bytes, "heap": 0 if bare else b.heap_bytes,
             "runtime": 0 if bare else RUNTIME_RAM_FLOOR}
    floor = BARE_FLASH_FLOOR if bare else RUNTIME_FLASH_FLOOR
    return FitEstimate(b.name, report["flash_bytes"] + floor, b.flash.length,
                       sum(parts.values()), b.ram.length,
                       {k: v for k, v in parts.items() if v})


def check_fits(report: dict[str, Any], board: str | Board,
               runtime: str = "semihosting") -> FitEstimate:
    """Raise TinyEngineError naming the region and the overflow when the model cannot fit."""
    b = resolve_board(board)
    est = estimate_fit(report, b, runtime)
    if est.ram_needed > est.ram_available:
        parts = " + ".join(f"{k} {v}" for k, v in est.ram_parts.items())
        raise TinyEngineError(
            f"model needs {est.ram_needed} B of SRAM, board {b.name} has {est.ram_available} B: "
            f"over by {est.ram_needed - est.ram_available} B ({parts}); choose a larger board, "
            f"or reduce the arena (--patch auto, a smaller model)")
    if est.flash_needed > est.flash_available:
        raise TinyEngineError(
            f"model needs {est.flash_needed} B of flash, board {b.name} has "
            f"{est.flash_available} B: over by {est.flash_needed - est.flash_available} B "
            f"(weights {report['flash_bytes']} + runtime code "
            f"{est.flash_needed - report['flash_bytes']} at least); "
            f"choose a board with more flash or a smaller model")
    return est


def firmware_flags(board: Board, simd: bool, opt: str = DEFAULT_OPT) -> list[str]:
    return [*board.cpu.cflags, *firmware_cflags(opt), *([] if simd else [NO_SIMD_DEFINE])]


def build_firmware(project_dir: str | Path, target_or_board: str | Board,
                   build_dir: str | Path | None = None, simd: bool = True,
                   opt: str = DEFAULT_OPT, runtime: str = "semihosting") -> Path:
    """Build the project as a firmware for a board; returns the ELF. Cached by a hash of every
    source, the rendered target files, the flags and the compiler version: a second call with
    nothing changed returns at once. The true size goes to report.json: the semihosting
    harness's under "firmware", the bare runtime's, part by part, under "firmware_totals"
    (see firmware_key and sizes.py)."""
    if runtime not in RUNTIMES:
        raise TinyEngineError(f"runtime {runtime!r} is not offered; choose one of "
                              f"{', '.join(RUNTIMES)}")
    project = Path(project_dir).resolve()
    report = load_project_report(project)
    board = resolve_board(target_or_board)
    bare = runtime == "bare"
    templates = firmware_templates(board, runtime=runtime)
    check_fits(report, board, runtime)
    tools = find_toolchain(board.cpu.arch)
    sources = model_sources(report, project)
    files = render_target_files(report, board, sources, templates, opt,
                                *((0, 0) if bare else (None, None)))
    flags = [*firmware_flags(board, simd, opt), *(["-fstack-usage"] if bare else [])]
    ldflags = list(BARE_LDFLAGS if bare else board.cpu.tools.ldflags)

    h = hashlib.sha256()
    for rel in [*sources, *sorted(str(f.relative_to(project)) for f in project.glob("*.h")),
                *sorted(f"kernels/{f.name}" for f in (project / "kernels").glob("*.h"))]:
        h.update(rel.encode() + b"\0" + (project / rel).read_bytes())
    for name, text in sorted(files.items()):
        h.update(name.encode() + b"\0" + text.encode())
    h.update(" ".join([*flags, *ldflags, tools.version]).encode())
    digest = h.hexdigest()[:16]

    variant = firmware_key(board, simd, opt, runtime)
    out = Path(build_dir) if build_dir else project / ".target" / f"{variant}-{digest}"
    if out.is_dir() and any(out.iterdir()) and not (out / "hash").is_file():
        # A build replaces its whole directory; never one that holds something else.
        raise TinyEngineError(f"{out} is not empty and is not a firmware build directory; "
                              "choose a new or empty build directory")
    elf = out / f"{report['prefix']}_firmware.elf"
    if not (elf.is_file() and (out / "hash").is_file() and (out / "hash").read_text() == digest):
        relink = None
        if bare:
            def relink(stack: int) -> str:  # the linker script with the measured stack
                return render_target_files(report, board, sources, templates, opt, stack,
                                           0)["firmware.ld"]
        _build_atomically(tools, project, board, sources, files, flags, ldflags, out,
                          elf.name, digest, relink)
        if build_dir is None:  # older builds of this board and variant are stale
            for old in (project / ".target").glob(f"{variant}-*"):
                if old != out and old.is_dir() and re.fullmatch(r"[0-9a-f]{16}",
                                                                old.name[len(variant) + 1:]):
                    shutil.rmtree(old, ignore_errors=True)
    if bare:
        record_firmware_totals(project, board, simd, opt, elf, report["prefix"])
    else:
        record_firmware_size(project, board, simd, size_report(elf, report["prefix"]))
    return elf


def firmware_key(board: Board, simd: bool = True, opt: str = DEFAULT_OPT,
                 runtime: str = "semihosting") -> str:
    """The build's name in report.json and under .target/: the board, "-portable" without SIMD,
    and for the bare runtime "-bare-<opt>" (the harness at another level: "-<opt>")."""
    key = board.name if simd else f"{board.name}-portable"
    if runtime == "bare":
        return f"{key}-bare-{opt}"
    return key if opt == DEFAULT_OPT else f"{key}-{opt}"


def _build_atomically(tools: Toolchain, project: Path, board: Board, sources: list[str],
                      files: dict[str, str], flags: list[str], ldflags: list[str], out: Path,
                      elf_name: str, digest: str,
                      relink: Callable[[int], str] | None = None) -> None:
    """Build into a temporary sibling and rename it into place: a failed or interrupted build
    never leaves a directory that looks complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _compile_and_link(tools, project, board, sources, files, flags, ldflags, tmp, elf_name,
                          relink)
        (tmp / "hash").write_text(digest)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _compile_and_link(tools: Toolchain, project: Path, board: Board, sources: list[str],
                      files: dict[str, str], flags: list[str], ldflags: list[str], out: Path,
                      elf_name: str, relink: Callable[[int], str] | None = None) -> None:
    """Compile and link. With `relink` (the bare runtime): link once with no stack reserve,
    measure the deepest call path (sizes.stack_need), and link again with that reserve."""
    for name, text in files.items():
        (out / name).write_text(text)
    units = [(project / s, out / "obj" / (s.replace("/", "__")[:-2] + ".o")) for s in sources]
    units += [(out / "firmware_main.c", out / "obj" / "firmware_main.o"),
              (out / "firmware_startup.c", out / "obj" / "firmware_startup.o")]
    (out / "obj").mkdir()
    includes = [f"-I{project}", f"-I{project / 'kernels'}"]

    def compile_one(unit: tuple[Path, Path]) -> None:
        src, obj = unit
        _run([tools.gcc, *flags, *includes, "-c", str(src), "-o", str(obj)],
             f"{project}: compiling {src.name} for {board.name} failed")

    # At most two compilers at a time: the machines this runs on are shared.
    workers = min(len(units), os.cpu_count() or 1, 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(compile_one, units))
    _link(tools, project, board, ldflags, out, elf_name, [o for _, o in units])
    if relink is not None:
        from .sizes import stack_need

        need = stack_need(out / elf_name, tools.objdump, out / "obj")
        stack = -(-need["bytes"] // 8) * 8
        (out / "firmware.ld").write_text(relink(stack))
        (out / "stack.json").write_text(json.dumps({**need, "reserve_bytes": stack}, indent=1))
        _link(tools, project, board, ldflags, out, elf_name, [o for _, o in units])


def _link(tools: Toolchain, project: Path, board: Board, ldflags: list[str], out: Path,
          elf_name: str, objects: list[Path]) -> None:
    link = [tools.gcc, *board.cpu.cflags, *ldflags, "-T", str(out / "firmware.ld"),
            f"-Wl,-Map={out / (elf_name + '.map')}", "-o", str(out / elf_name),
            *[str(o) for o in objects]]
    result = subprocess.run(link, capture_output=True, text=True)
    if result.returncode != 0:
        overflow = [m.group(1) for m in re.finditer(r"((?:section|region) `.*)",
                                                     result.stderr)]
        if overflow:
            raise TinyEngineError(
                f"{project}: the firmware does not fit {board.name} (RAM = {board.ram.name}, "
                f"{board.ram.length} B; FLASH = {board.flash.name}, {board.flash.length} B); the "
                f"linker says: {'; '.join(dict.fromkeys(overflow))}")
        raise TinyEngineError(f"{project}: linking the firmware for {board.name} failed:\n"
                              f"{result.stderr[-3000:]}")


def _run(cmd: list[str], what: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise TinyEngineError(f"{what}:\n{result.stderr[-3000:]}")
    return result.stdout


# ELF e_machine values (the 16-bit field at byte 18 of the header) of the instruction sets.
_ELF_MACHINES = {40: "arm", 243: "riscv32"}


def elf_arch(elf: str | Path) -> str:
    """The instruction set an ELF is for, by its header: the binutils that read it."""
    with open(elf, "rb") as f:
        header = f.read(20)
    machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else -1
    if machine not in _ELF_MACHINES:
        raise TinyEngineError(f"{elf} is not an Arm or RISC-V ELF file; rebuild the firmware")
    return _ELF_MACHINES[machine]


def symbol_sizes(elf: str | Path) -> dict[str, tuple[int, int]]:
    """name -> (address, size) of every sized symbol, from the cross toolchain's nm."""
    nm = find_toolchain(elf_arch(elf)).nm
    out = _run([nm, "-S", "--defined-only", str(elf)], f"{elf}: {Path(nm).name} failed")
    symbols = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            symbols[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    return symbols


def size_report(elf: str | Path, prefix: str | None = None) -> dict[str, int]:
    """The true size of a firmware, from the cross toolchain's size (Berkeley format): flash =
    text + data (code, constants, .data's initial values), ram = data + bss (.bss here includes
    the linker script's heap and stack reserves). With the symbol prefix, also what the model's
    own symbols take: weights and parameter structs in flash, the arena in RAM."""
    size = find_toolchain(elf_arch(elf)).size
    out = _run([size, "-B", "-d", str(elf)], f"{elf}: {Path(size).name} failed")
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    sizes = {"flash": text + data, "ram": data + bss, "text": text, "data": data, "bss": bss}
    if prefix:
        syms = symbol_sizes(elf)
        p = re.escape(prefix)
        params = re.compile(rf"^{p}_op\d+_params$")
        consts = re.compile(rf"^{p}_op\d+_\w+$")
        sizes["weights"] = sum(s for n, (_, s) in syms.items()
                               if consts.match(n) and not params.match(n))
        sizes["params"] = sum(s for n, (_, s) in syms.items() if params.match(n))
        sizes["code_and_runtime"] = sizes["flash"] - sizes["weights"] - sizes["params"]
        sizes["arena"] = syms.get(f"{prefix}_arena", (0, 0))[1]
    return sizes


def record_firmware_size(project: Path, board: Board, simd: bool, sizes: dict[str, int],
                         measured: dict[str, int] | None = None) -> dict[str, Any]:
    """Put the true size of the last build for `board` in report.json, next to the planner's
    arena, with what makes up the difference; rewritten atomically."""
    path = project / "report.json"
    report = json.loads(path.read_text())
    key = board.name if simd else f"{board.name}-portable"
    entry = dict(report.get("firmware", {}).get(key, {}))
    if entry.get("sizes") != sizes:
        entry.pop("measured", None)  # measured on an older build
    entry.update({"board": board.name, "core": board.core, "simd": simd,
                  "flash_region_bytes": board.flash.length, "ram_region_bytes": board.ram.length,
                  "planner_arena_bytes": report["arena_bytes"], "sizes": sizes,
                  "stack_reserve_bytes": board.stack_bytes, "heap_reserve_bytes": board.heap_bytes,
                  "explained": "ram = arena (+4 B of alignment slack) + stack and heap reserves "
                               "+ the runtime's static data (newlib, semihosting, streamed "
                               "input buffers); flash = weights + parameter structs + kernel, "
                               "runtime and libc code + .data initial values"})
    if "arena" in sizes:
        entry["ram_besides_arena_bytes"] = sizes["ram"] - sizes["arena"]
        entry["runtime_static_ram_bytes"] = (sizes["ram"] - sizes["arena"] - board.stack_bytes
                                             - board.heap_bytes)
    if measured:
        entry["measured"] = measured
    firmware = dict(report.get("firmware", {}))
    firmware[key] = entry
    report["firmware"] = firmware
    fd, tmp = tempfile.mkstemp(prefix=".report.", dir=project)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return entry


def record_firmware_totals(project: Path, board: Board, simd: bool, opt: str, elf: Path,
                           prefix: str) -> dict[str, Any]:
    """Put the bare firmware's flash and RAM, part by part (sizes.linked_parts), and its stack
    path in report.json under "firmware_totals"; rewritten atomically."""
    from .sizes import linked_parts

    sizes = size_report(elf)
    stack = json.loads((elf.parent / "stack.json").read_text())
    entry = {"board": board.name, "core": board.core, "simd": simd, "opt": opt,
             "runtime": "bare", "toolchain": find_toolchain(board.cpu.arch).version,
             **linked_parts(f"{elf}.map", prefix, sizes["flash"], sizes["ram"],
                            stack["reserve_bytes"], 0),
             "stack_path": stack["path"], "stack_method": stack["method"],
             "counted": "flash = every byte the linker places in flash (vector table, code, "
                        "weights, parameter structs, .data initial values); ram = .data + "
                        ".bss (arena, state, static data) + the stack reserve (the deepest "
                        "call path, no interrupts); no heap, no stdio"}
    _update_report(project, "firmware_totals", firmware_key(board, simd, opt, "bare"), entry)
    return entry


def _update_report(project: Path, field: str, key: str, entry: dict[str, Any]) -> None:
    path = project / "report.json"
    report = json.loads(path.read_text())
    table = dict(report.get(field, {}))
    table[key] = entry
    report[field] = table
    fd, tmp = tempfile.mkstemp(prefix=".report.", dir=project)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
