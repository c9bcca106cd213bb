"""The `tinyengine` command: compile, run, verify, demo.

User errors (TinyEngineError) print one line `tinyengine: error: ...` and exit 2; Ctrl-C prints
one line and exits 130 (cli_common.py: the conventions both commands share).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .cli_common import Parser, add_conventions, parse, run_command
from .errors import TinyEngineError


def _schedule_options(args: argparse.Namespace) -> dict:
    return {"planner": args.planner, "patch": args.patch,
            "max_mac_overhead": args.max_mac_overhead, "stream_input": args.stream_input}


def _target(args: argparse.Namespace) -> str | None:
    return getattr(args, "board", None) or getattr(args, "target", None)


def _add_target_options(p: argparse.ArgumentParser) -> None:
    from .target import BOARDS, TARGETS

    p.add_argument("--target", choices=list(TARGETS), help="core to build for (default: host)")
    p.add_argument("--board", choices=sorted(BOARDS), help="board preset (memory sizes)")


def _input_shape(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(d) for d in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise TinyEngineError(f"--input-shape {text!r}: expected numbers like 1,1,8,8") from None


def _print_json(obj: Any) -> None:
    """--json: one object on stdout, nothing else there."""
    print(json.dumps(obj, indent=1))


def _patches_json(report: dict) -> dict | None:
    p = report.get("patches")
    return None if not p else {"grid": p["grid"], "stage_ops": len(p["stage_ops"]),
                               "mac_overhead": p["mac_overhead"]}


def _cmd_compile(args: argparse.Namespace) -> int:
    from .api import compile_model
    from .convert import activations_note
    from .target.code_size import estimate_phrase

    report = compile_model(args.model, args.output, prefix=args.prefix, calib=args.calib,
                           calib_method=args.calib_method, io=args.io,
                           activations=args.activations,
                           input_shape=_input_shape(args.input_shape), target=_target(args),
                           **_schedule_options(args))
    totals = _firmware_totals(args)
    if args.json:
        _print_json({"project": str(args.output), "report": str(args.output / "report.json"),
                     "ops": len(report["ops"]), "arena_bytes": report["arena_bytes"],
                     "arena_counts": report["arena_counts"],
                     "persistent_bytes": report["persistent_bytes"],
                     "activations": report.get("source_model", {}).get("activations"),
                     "flash_bytes": report["flash_bytes"], "macs": report["macs"],
                     "patches": _patches_json(report), "firmware": totals})
        return 0
    streamed = report["arena_counts"]["streamed_inputs"]
    note = f" (input streamed from the caller: {streamed})" if streamed else ""
    if report["persistent_bytes"]:
        note += f" + persistent state {report['persistent_bytes']} B"
    print(f"{args.output}: {len(report['ops'])} ops, arena {report['arena_bytes']} B{note}, "
          f"flash {report['flash_bytes']} B, {report['macs']} MACs{_patch_note(report)}"
          f"{activations_note(report)}{estimate_phrase(report)}")
    if totals:
        f, r = totals["flash_parts"], totals["ram_parts"]
        print(f"firmware ({totals['board']}, -{args.opt}, bare runtime, linked): flash "
              f"{totals['flash']} B (weights {f['weights']}, params {f['params']}, code "
              f"{f['model_code'] + f['kernel_code']}, runtime and library "
              f"{f['runtime'] + f['library']}), RAM {totals['ram']} B (arena {r['arena']}, "
              f"stack {r['stack']}, static {r['static_data'] + r['state']})")
    return 0


def _firmware_totals(args: argparse.Namespace) -> dict | None:
    """With --target/--board and the cross toolchain here: link the bare firmware (what a user
    ships) and return its totals, also in report.json "firmware_totals"."""
    target = _target(args)
    if target in (None, "host"):
        return None
    from .target import build_firmware, find_toolchain, resolve_board
    from .target.build import firmware_key

    board = resolve_board(target)
    try:
        find_toolchain(board.cpu.arch)
    except TinyEngineError as e:
        print(f"note: no linked firmware size: {e}", file=sys.stderr)
        return None
    if board.cpu.arch != "arm":
        return None
    build_firmware(args.output, board, opt=args.opt, runtime="bare", simd=not args.portable)
    report = json.loads((args.output / "report.json").read_text())
    return report["firmware_totals"][firmware_key(board, not args.portable, args.opt, "bare")]


def _patch_note(report: dict) -> str:
    p = report.get("patches")
    if not p:
        return ""
    return (f"; patches {p['grid'][0]}x{p['grid'][1]} over the first {len(p['stage_ops'])} ops "
            f"(+{100 * p['mac_overhead']:.1f}% MACs)")


def _add_schedule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ops", type=Path, action="append", default=[], metavar="FILE.py",
                   help="register user-defined ops from a Python file (repeatable); see the "
                        "README, 'User-defined ops'")
    p.add_argument("--planner", default="auto", help="arena planner (default: auto)")
    p.add_argument("--patch", default="auto",
                   help="patch-based inference: off, auto (default), or RxC@N: an RxC grid "
                        "over the output of the first N ops")
    p.add_argument("--max-mac-overhead", type=float, default=0.2,
                   help="MAC budget of --patch auto, as a fraction (default: 0.2)")
    p.add_argument("--stream-input", action="store_true",
                   help="with patches: read the input window by window from the caller's "
                        "buffer, outside the arena (the arena figure then excludes the input)")


def _cmd_run(args: argparse.Namespace) -> int:
    from .inputs import check_input_count, check_input_order, load_npy, split_records
    from .runtime import HostModel, load_project_report
    from .source_forms import source_input_batches, source_outputs

    report = load_project_report(args.project)
    # The shapes the user gives: the source model's (e.g. NCHW for ONNX) where it has its own.
    src = {s["name"]: s for s in report.get("source_model", {}).get("inputs", [])}
    specs = [{**s, "shape": src.get(s["name"], s)["shape"]} for s in report["inputs"]]
    check_input_count(len(args.input), specs)
    _check_output_paths(args.output, len(report["outputs"]))
    for path in args.output:  # before the run, not after it
        _check_writable(path)
    arrays = [load_npy(p) for p in args.input]
    names = [str(p) for p in args.input]
    check_input_order(arrays, specs, names)
    batches, batched = source_input_batches(report, arrays, names)
    records = split_records(batches, names)
    target = _target(args)
    if target not in (None, "host"):
        from .target import run_records

        if args.independent and report.get("persistent_bytes"):
            # The firmware inits once and runs its records as one stream: one start per record.
            results = [run_records(args.project, [r], target, simd=not args.portable).outputs[0]
                       for r in records]
        else:
            results = run_records(args.project, records, target,
                                  simd=not args.portable).outputs
    else:
        host = HostModel(args.project)
        results = []
        for r in records:
            if args.independent:
                host.reset()
            results.append(host.invoke(r))
    outs = [np.stack([r[i] for r in results]) for i in range(len(report["outputs"]))]
    outs = source_outputs(report, outs, args.raw)
    if not batched:
        outs = [o[0] for o in outs]
    if len(args.output) == 1 and args.output[0].suffix == ".npz":
        _write_array(args.output[0], lambda f: np.savez(f, *outs))
    else:
        for path, o in zip(args.output, outs):
            _write_array(path, lambda f, o=o: np.save(f, o))
    print(f"wrote {', '.join(map(str, args.output))}")
    return 0


def _check_writable(path: Path) -> None:
    try:
        path.exists()  # raises for a name the file system cannot hold
    except OSError as e:
        raise TinyEngineError(f"cannot write {path}: {e.strerror}") from None
    if path.is_dir():
        raise TinyEngineError(f"cannot write {path}: it is a directory; name a file")
    if not path.parent.is_dir():
        raise TinyEngineError(f"cannot write {path}: {path.parent} is not a directory")


def _write_array(path: Path, save: Any) -> None:
    """Through a file object: np.save and np.savez would add a suffix the user did not ask for,
    and the line `wrote ...` would then name a file that is not there. A file left part-written
    (a full disk) is removed."""
    created = False
    try:
        created = not path.exists()
        with open(path, "wb") as f:
            save(f)
    except OSError as e:
        if created and path.is_file():
            path.unlink()
        raise TinyEngineError(f"cannot write {path}: {e.strerror}") from None


def _check_output_paths(paths: list[Path], n_outputs: int) -> None:
    """--output once per output (an .npy each), or once as an .npz holding every output."""
    if len(paths) == n_outputs and (n_outputs > 1 or paths[0].suffix != ".npz"):
        return
    if len(paths) == 1 and paths[0].suffix == ".npz":
        return
    raise TinyEngineError(f"the model has {n_outputs} output(s); got {len(paths)} --output: "
                          "pass --output once per output (.npy each), or once with an .npz "
                          "path for all of them (arr_0, arr_1, ... in output order)")


def _cmd_verify(args: argparse.Namespace) -> int:
    from .frontend import load_model
    from .inputs import (
        as_batch,
        check_input_count,
        check_input_order,
        input_specs,
        load_npy,
        split_records,
    )
    from .verify import verify_model

    given: list[list[np.ndarray]] = []
    if args.input:
        specs = input_specs(load_model(args.model))
        check_input_count(len(args.input), specs)
        arrays = [load_npy(p) for p in args.input]
        names = [str(p) for p in args.input]
        check_input_order(arrays, specs, names)
        batches = [as_batch(x, s, w)[0] for x, s, w in zip(arrays, specs, names)]
        given = split_records(batches, names)
    verdicts, report = verify_model(args.model, given, n_random=args.random, seed=args.seed,
                                    use_tflm=not args.no_tflm, progress=not args.quiet,
                                    compile_options=_schedule_options(args),
                                    stream=not args.independent)
    exact = all(v.exact for v in verdicts)
    if args.json:
        _print_json({"model": str(args.model), "exact": exact,
                     "arena_bytes": report["arena_bytes"],
                     "persistent_bytes": report["persistent_bytes"],
                     "stream": report["verify_stream"], "flash_bytes": report["flash_bytes"],
                     "macs": report["macs"], "patches": _patches_json(report),
                     "outputs": [{"index": v.index, "name": v.name, "inputs": v.n_inputs,
                                  "exact": v.exact, "max_diff_reference": v.max_diff_reference,
                                  "max_diff_tflm": v.max_diff_tflm} for v in verdicts]})
        return 0 if exact else 1
    for v in verdicts:
        print(f"{args.model}: {v.line(report['arena_bytes'])}{_patch_note(report)}")
    if report["persistent_bytes"]:
        st = report["verify_stream"]
        how = (f"one stream with the state carried, then {st['replayed_after_reset']} again "
               "after reset()" if st["stream"] else "each from a reset state")
        print(f"{args.model}: {st['invocations']} invocations, {how}; persistent state "
              f"{report['persistent_bytes']} B beside the arena")
    return 0 if exact else 1


def _cmd_plan(args: argparse.Namespace) -> int:
    from .frontend import load_model
    from .ir import verify
    from .memory.report import live_table, peak_summary, plot_timeline
    from .memory.schedule import schedule

    graph = load_model(args.model)
    verify(graph)
    sched = schedule(graph, args.patch, planner=args.planner,
                     max_mac_overhead=args.max_mac_overhead, stream_input=args.stream_input)
    print(live_table(sched.graph, sched.plan))
    print(peak_summary(sched.graph, sched.plan).line())
    fused = [op.name for op in sched.graph.ops if op.kind == "FUSED_BLOCK"]
    if fused:  # memory/fuse.py: taken only where the arena needs it (they run slower)
        print(f"fused blocks, expansion held a window of rows at a time ({len(fused)}): "
              + ", ".join(fused))
    for kind, names in (("inputs", sched.graph.inputs), ("outputs", sched.graph.outputs)):
        print(f"graph {kind}: " + ", ".join(
            f"{i} {n} ({'x'.join(map(str, sched.graph.tensor(n).shape))})"
            for i, n in enumerate(names)))
    if sched.plan.state_bytes:
        print(f"persistent state: {sched.plan.state_bytes} B beside the arena, never reused "
              "(" + ", ".join(sched.plan.state_offsets) + ")")
    if sched.patches:
        p = sched.patches
        print(f"patches: {p.grid[0]}x{p.grid[1]} grid over the output of the first "
              f"{len(p.stage_ops)} ops ({p.output}), +{100 * p.mac_overhead:.1f}% MACs")
    png = args.png or Path(f"{args.model.stem}_memory.png")
    plot_timeline(sched.graph, sched.plan, png, title=f"{args.model.name}: arena "
                  f"{sched.plan.arena_bytes} B ({sched.plan.algorithm})")
    print(f"wrote {png}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .target import bench, format_bench
    from .target.icount import record_bench

    result = bench(args.project, _target(args) or "cortex-m4", simd=not args.portable)
    record_bench(args.project, result)  # per-op and total cycles (and ms) in report.json
    if args.json == "-":
        _print_json(result.to_json())
        return 0
    print(format_bench(result, args.top))
    if args.json:
        try:
            Path(args.json).write_text(json.dumps(result.to_json(), indent=1))
        except OSError as e:
            raise TinyEngineError(f"cannot write {args.json}: {e.strerror}") from None
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(Path(args.output))


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tinyengine", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile an int8 .tflite model into a C project")
    c.add_argument("model", type=Path)
    c.add_argument("-o", "--output", type=Path, required=True, help="project directory")
    c.add_argument("--prefix", default="model", help="C symbol prefix (default: model)")
    c.add_argument("--calib", type=Path,
                   help="float models (ONNX, float32 TFLite): calibration data (image "
                        "directory, .npy or .npz, in the model's own layout)")
    c.add_argument("--io", choices=["float", "int", "int8", "int16"],
                   help="float models: float inputs/outputs converted inside the engine "
                        "(default), or the quantised tensors themselves: int (of the "
                        "activations' type), int8 or int16 (that type only)")
    c.add_argument("--activations", choices=["int8", "int16", "mixed"], default="int8",
                   help="float models: activation type (default: int8); int16 is TFLite's "
                        "16x8 mode (int8 weights); mixed: int16 only in the layers where "
                        "int8 loses accuracy on the calibration data")
    c.add_argument("--calib-method", default="minmax", choices=["minmax", "percentile", "mse"],
                   help="activation range estimate (default: minmax)")
    c.add_argument("--input-shape", help="ONNX: fix a dynamic input shape, e.g. 1,1,8,8")
    c.add_argument("--opt", choices=["O2", "Os"], default="O2",
                   help="with --target/--board: optimisation level of the firmware whose linked "
                        "flash and RAM are reported (default: O2)")
    c.add_argument("--portable", action="store_true",
                   help="with --target/--board: portable kernels, no SIMD (smaller code)")
    c.add_argument("--json", action="store_true",
                   help="print the result as one JSON object on stdout")
    _add_schedule_options(c)
    _add_target_options(c)
    c.set_defaults(func=_cmd_compile)

    r = sub.add_parser("run", help="run a compiled project on the host")
    r.add_argument("project", type=Path)
    r.add_argument("--input", type=Path, action="append", required=True,
                   help=".npy: one input in the model's shape, or a batch along a new axis; "
                        "once per model input, in the model's order")
    r.add_argument("--output", type=Path, action="append", required=True,
                   help=".npy to write, once per model output; or once, an .npz with every "
                        "output (arr_0, arr_1, ...)")
    r.add_argument("--raw", action="store_true",
                   help="for a float source model: the int8 outputs before dequantisation")
    _add_target_options(r)
    r.add_argument("--portable", action="store_true", help="Cortex-M: portable kernels, no SIMD")
    r.add_argument("--independent", action="store_true",
                   help="stateful models: reset the state before every record of the batch "
                        "(default: the records are one stream, in order, state carried)")
    r.set_defaults(func=_cmd_run)

    v = sub.add_parser("verify", help="compile and check C == reference == TFLM")
    v.add_argument("model", type=Path)
    v.add_argument("--input", type=Path, action="append",
                   help="extra .npy inputs to check (one sample or a batch), once per model "
                        "input, in the model's order")
    v.add_argument("--random", type=int, default=20, help="random inputs (default: 20)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--no-tflm", action="store_true", help="skip the TFLM comparison")
    v.add_argument("--independent", action="store_true",
                   help="stateful models (SVDF, LSTM): reset the state before every input "
                        "instead of feeding the inputs as one stream (the default)")
    v.add_argument("--json", action="store_true",
                   help="print the verdicts as one JSON object on stdout")
    _add_schedule_options(v)
    v.set_defaults(func=_cmd_verify)

    pl = sub.add_parser("plan", help="print the memory plan per op and draw its timeline")
    pl.add_argument("model", type=Path)
    pl.add_argument("--png", type=Path, help="timeline image (default: MODEL_memory.png)")
    _add_schedule_options(pl)
    pl.set_defaults(func=_cmd_plan)

    b = sub.add_parser("bench", help="instructions and estimated cycles per op on an emulated "
                       "core; milliseconds with --board (e.g. stm32f746)")
    b.add_argument("project", type=Path)
    _add_target_options(b)
    b.add_argument("--portable", action="store_true", help="portable kernels, no SIMD")
    b.add_argument("--top", type=int, help="show only the N most expensive ops")
    b.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help="the counts as one JSON object: on stdout instead of the table, or "
                        "written to FILE as well as the table")
    b.set_defaults(func=_cmd_bench)

    d = sub.add_parser("demo", help="end-to-end demo on a built-in int8 CNN (no download)")
    d.add_argument("-o", "--output", type=Path, default=Path("out/demo"))
    d.set_defaults(func=_cmd_demo)
    add_conventions(p, __version__)
    return p


def _main(argv: list[str] | None) -> int:
    args = parse(build_parser(), argv)
    if getattr(args, "ops", None):
        from .ops import load_op_library

        for path in args.ops:
            load_op_library(path)
    return int(args.func(args))


def main(argv: list[str] | None = None) -> int:
    return run_command("tinyengine", lambda: _main(argv))


if __name__ == "__main__":
    sys.exit(main())
