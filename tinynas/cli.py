"""The `tinynas` command.

    tinynas space --sram 64KB --flash 256KB [--dataset imagenet|vww|digits] [-o DIR]
        stage one: choose the (width multiplier, resolution) of the search space
    tinynas space --board stm32f412 --latency-ms 5 -o DIR
        the same within a board's memory and a latency limit on it
    tinynas cost ARCH.json [--patch off|auto] [--board NAME]
        what one architecture costs on the MCU (SRAM, flash, MACs; ms on a board) and its
        parameters
    tinynas pipeline | train | search | deploy
        stage two and the whole path to a C project (tinynas/commands.py)

User errors print one line `tinynas: error: ...` and exit with status 2; Ctrl-C prints one line
and exits 130 (tinyengine/cli_common.py: the conventions both commands share).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tinyengine.cli_common import Parser, add_conventions, parse, run_command

from . import __version__
from .errors import TinyNASError

if TYPE_CHECKING:
    from tinyengine.cost import Cost
    from tinyengine.memory.report import PeakStep

    from .arch import Arch
    from .budget import Budget
    from .flexarch import FlexArch

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1 << 20, "MB": 1 << 20,
          "MIB": 1 << 20}


def parse_bytes(text: str, what: str) -> int:
    """'64KB', '64K', '1.5MB', '65536' -> bytes (KB = 1024 B, as MCU datasheets count)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else ""
    if m is None or unit not in _UNITS:
        raise TinyNASError(f"{what} {text!r}: expected a size like 64KB, 1MB or 65536")
    value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value):
        raise TinyNASError(f"{what} {text!r} is too large to be a size")
    if int(value) <= 0:
        raise TinyNASError(f"{what} {text!r} must be positive")
    return int(value)


def parse_count(text: str, what: str) -> int:
    """'10M', '500K', '1e6' -> a count (decimal units)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([KMG]?)\s*", text, re.IGNORECASE)
    if m is None:
        raise TinyNASError(f"{what} {text!r}: expected a count like 10M or 500K")
    scale = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}[m.group(2).upper()]
    value = float(m.group(1)) * scale
    if not math.isfinite(value):
        raise TinyNASError(f"{what} {text!r} is too large to be a count")
    if int(value) <= 0:
        raise TinyNASError(f"{what} {text!r} must be positive")
    return int(value)


def parse_ms(text: str, what: str) -> float:
    """'5', '2.5', '5ms' -> milliseconds (positive, finite)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(ms)?\s*", text, re.IGNORECASE)
    if m is None:
        raise TinyNASError(f"{what} {text!r}: expected milliseconds like 5 or 2.5")
    value = float(m.group(1))
    if not (0 < value < math.inf):
        raise TinyNASError(f"{what} {text!r} must be a positive number of milliseconds")
    return value


def parse_budget(args: argparse.Namespace, sram: str | None = None,
                 flash: str | None = None) -> Budget:
    """The budget of --sram/--flash/--macs/--board/--latency-ms. With --board, SRAM and flash
    default to the board's RAM and flash; without, to `sram`/`flash` (None: required)."""
    from .budget import Budget, board_preset

    board = board_preset(args.board) if getattr(args, "board", None) else None
    latency = getattr(args, "latency_ms", None)

    def size(given: str | None, default: str | None, whole: int | None, flag: str) -> int:
        if given is not None:
            return parse_bytes(given, flag)
        if whole is not None:
            return whole
        if default is None:
            raise TinyNASError(f"{flag} is required (or give --board NAME for its memory)")
        return parse_bytes(default, flag)

    from .firmware import default_scope

    opt = getattr(args, "opt", None) or "O2"
    return Budget(size(args.sram, sram, board.ram.length if board else None, "--sram"),
                  size(args.flash, flash, board.flash.length if board else None, "--flash"),
                  parse_count(args.macs, "--macs") if args.macs else None,
                  parse_ms(latency, "--latency-ms") if latency is not None else None,
                  board.name if board else None,
                  default_scope(getattr(args, "flash_scope", None),
                                board.name if board else None, opt), opt)


def add_board_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", help="a board preset (stm32f746, stm32f412, stm32h743, ...): "
                   "--sram/--flash default to its RAM and flash, and --latency-ms is priced "
                   "on its core and clock")
    p.add_argument("--latency-ms", help="latency limit per inference in ms on --board, from "
                   "tinyengine's per-op latency tables (tinyengine/target/latency.py)")
    p.add_argument("--flash-scope", choices=["model", "firmware"],
                   help="what --sram/--flash bound: model (weights and parameters; the arena; "
                        "the NAS papers' meaning, default without --board) or firmware "
                        "(everything linked: code, runtime, stack; default with a --board "
                        "whose core has a code-size table)")
    p.add_argument("--opt", choices=["O2", "Os"], default="O2",
                   help="optimisation level the firmware scope is estimated at (O2)")


def _cmd_space(args: argparse.Namespace) -> int:
    from tinyengine.progress import progress_bar

    from .space import SearchSpace, get_space
    from .stage1 import CHUNK, check_feasible, run_stage_one
    from .stage1_report import summary, table, write

    space = SearchSpace.load(args.space) if args.space else get_space(args.dataset)
    budget = parse_budget(args)
    if args.samples < 1 or args.workers < 1:
        raise TinyNASError("--samples and --workers must be >= 1")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TinyNASError(f"{out}: cannot create the output directory ({e.strerror})") from None
    check_feasible(space, budget, args.patch, args.int8_input)  # fail before the progress bar
    chunks = len(space.configs) * ((args.samples + CHUNK - 1) // CHUNK)
    with progress_bar(total=chunks, unit="chunk", enabled=not args.quiet,
                      desc=f"stage one ({len(space.configs)} configs x {args.samples})") as bar:
        result = run_stage_one(space, budget, args.samples, args.seed, args.workers, args.patch,
                               args.min_fraction, args.int8_input, progress=bar.update)
    js, png = write(result, out)
    print(table(result))
    print(summary(result))
    print(f"{result.evaluations} subnets in {result.seconds:.1f} s "
          f"({result.evaluations / result.seconds:.0f}/s, {result.plans} memory plans); "
          f"wrote {js} and {png}")
    return 0


def priced(arch: Arch | FlexArch, patch: str, int8_input: bool) -> tuple[Cost, PeakStep]:
    """tinyengine.cost.estimate's figures and the peak step of the same schedule, scheduled
    once (tests hold the figures equal to estimate_arch's)."""
    from tinyengine.cost import estimate_schedule
    from tinyengine.memory.report import peak_summary

    from . import flexcost, resources
    from .arch import Arch

    if isinstance(arch, Arch):
        resources.check_patch_search(arch, patch)
        graph = resources.build_graph(arch, int8_input)
    else:
        graph = flexcost.build_graph(arch, int8_input)
    cost, sched = estimate_schedule(graph, patch)
    return cost, peak_summary(sched.graph, sched.plan)


def _cmd_cost(args: argparse.Namespace) -> int:
    from .arch import Arch
    from .budget import arch_latency_ms, board_preset, fmt_bytes
    from .flexarch import load_any
    from .flexnet import FlexNet
    from .subnet import SubNet, count_params

    board = board_preset(args.board).name if args.board else None
    arch = load_any(args.arch)
    cost, peak = priced(arch, args.patch, args.int8_input)
    ms = arch_latency_ms(arch, board, args.patch, args.int8_input) if board else None
    params = count_params(SubNet(arch) if isinstance(arch, Arch) else FlexNet(arch))
    if args.json:
        p = cost.patches
        print(json.dumps({
            "arch": str(args.arch), "summary": arch.summary(), "peak_sram": cost.peak_sram,
            "flash_bytes": cost.flash_bytes, "macs": cost.macs, "parameters": params,
            "patches": None if p is None else {"grid": list(p.grid), "stage_ops": len(p.stage_ops),
                                               "mac_overhead": p.mac_overhead},
            "peak": peak.to_json(), "board": board, "latency_ms": ms}, indent=1))
        return 0
    patches = ""
    if cost.patches is not None:
        p = cost.patches
        patches = f", patches {p.grid[0]}x{p.grid[1]} over {len(p.stage_ops)} ops"
    latency = f"; {ms:.3f} ms on {board} (estimate)" if ms is not None else ""
    print(f"{arch.summary()}\nSRAM {fmt_bytes(cost.peak_sram)} ({cost.peak_sram} B), flash "
          f"{fmt_bytes(cost.flash_bytes)} ({cost.flash_bytes} B), {cost.macs:,} MACs, "
          f"{params:,} parameters{patches}{latency}\n{peak.line()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="tinynas", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("space", help="stage one: choose width multiplier and resolution")
    sp.add_argument("--sram", help="SRAM budget, e.g. 64KB (required without --board)")
    sp.add_argument("--flash", help="flash budget, e.g. 256KB or 1MB (required without --board)")
    sp.add_argument("--macs", help="optional MAC budget, e.g. 20M")
    add_board_args(sp)
    sp.add_argument("--dataset", default="digits", help="imagenet, vww or digits (default)")
    sp.add_argument("--space", help="a search space JSON (SearchSpace.to_json) instead of a "
                    "preset; see tinynas/space.py")
    sp.add_argument("--samples", type=int, default=1000, help="subnets per configuration")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    sp.add_argument("--patch", choices=["off", "auto"], default="off",
                    help="price SRAM with patch-based inference (auto: ~100x slower)")
    sp.add_argument("--min-fraction", type=float, default=0.0,
                    help="ignore configurations where fewer subnets fit (default 0: MCUNet)")
    sp.add_argument("--int8-input", action="store_true",
                    help="the model takes int8 pixels (no float32 input buffer in SRAM)")
    sp.add_argument("-o", "--output", required=True, help="directory for stage1.json and PNG")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sp.set_defaults(func=_cmd_space)
    cp = sub.add_parser("cost", help="SRAM, flash and MACs of an architecture JSON")
    cp.add_argument("arch", help="architecture JSON (e.g. examples/mcunet/mcunet-in3.json)")
    cp.add_argument("--patch", choices=["off", "auto"], default="off")
    cp.add_argument("--int8-input", action="store_true")
    cp.add_argument("--board", help="also print the latency estimate (ms) on this board preset")
    cp.add_argument("--json", action="store_true",
                    help="print the cost as one JSON object on stdout")
    cp.set_defaults(func=_cmd_cost)
    from .commands import add_commands

    add_commands(sub)
    add_conventions(ap, __version__)
    return ap


def _main(argv: list[str] | None) -> int:
    args = parse(build_parser(), argv)
    return int(args.func(args))


def main(argv: list[str] | None = None) -> int:
    return run_command("tinynas", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
