"""The long fuzzing run of issue 17: seeded mutants of the shared .tflite models (the int8 ones
the engine claims, plus the PyTorch MobileNetV2), of tiny ONNX models and their calibration
arrays, and malformed input arrays for `tinyengine run`; see tests/fuzz_models.py for the
mutators and the property.

    .venv/bin/python benchmarks/fuzz.py [--tflite 2000] [--onnx 200] [--run 100]
        [--c-fraction 0.5] [--cli-fraction 0.1] [--findings FILE]

Every case runs through the CLI's own `main` in this process; a `--cli-fraction` of them also
as the real `tinyengine` command (the two must agree), and a `--c-fraction` of the accepted
compiles are built with -Werror and run under ASan/UBSan against the numpy reference. Prints a
table of outcomes and every finding with its case id and a one-line reproduction; exits 1 if
there was any finding.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz_models import (  # noqa: E402
    LARGE_MODEL,
    MODEL_FILES,
    MODEL_FILES_16X8,
    ONNX_MODELS,
    RUN_MODELS,
    Case,
    Outcome,
    append_finding,
    check_case,
    export_onnx_models,
    fresh_dir,
)

ROWS = [("refused", "refused cleanly (one line, exit 2, nothing written)"),
        ("exact", "accepted and exact (C -Werror, == reference, ASan/UBSan clean)"),
        ("accepted", "accepted, C not sampled"),
        ("traceback", "tracebacks"),
        ("sanitizer", "sanitizer reports"),
        ("difference", "differences from the reference"),
        ("no-build", "projects that do not build"),
        ("run-fails", "projects whose demo fails at run time"),
        ("bad-refusal", "refusals not in one line / leaving files"),
        ("cli-disagrees", "command and in-process verdicts differ"),
        ("silent-reshape", "run takes an array not in the model's shape"),
        ("hang", "no answer within the time limit")]


def cases(n_tflite: int, n_onnx: int, n_run: int) -> list[Case]:
    """The campaign: MobileNetV2 gets 3% of the TFLite mutants (it compiles in seconds), the
    five small int8 models and the ten 16x8 / recurrent ones share the rest."""
    out: list[Case] = []
    n_large = max(1, n_tflite * 3 // 100)
    models = MODEL_FILES + MODEL_FILES_16X8
    per = -(-(n_tflite - n_large) // len(models))
    out += [Case("tflite", m, s) for s in range(per) for m in models]
    out = out[: n_tflite - n_large]
    out += [Case("tflite", LARGE_MODEL, s) for s in range(n_large)]
    per = -(-n_onnx // len(ONNX_MODELS))
    out += [Case("onnx", m, s) for s in range(per) for m in ONNX_MODELS][:n_onnx]
    per = -(-n_run // len(RUN_MODELS))
    out += [Case("run", m, s) for s in range(per) for m in RUN_MODELS][:n_run]
    return out


def table(counts: collections.Counter, by_kind: dict[str, collections.Counter]) -> str:
    kinds = sorted(by_kind)
    head = f"| outcome | {' | '.join(kinds)} | total |"
    lines = [head, "|" + " --- |" * (len(kinds) + 2)]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(str(by_kind[k][key]) for k in kinds)
                     + f" | {counts[key]} |")
    lines.append("| cases | " + " | ".join(str(sum(by_kind[k].values())) for k in kinds)
                 + f" | {sum(counts.values())} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tflite", type=int, default=2000, help="TFLite mutants (default: 2000)")
    p.add_argument("--onnx", type=int, default=200, help="ONNX cases (default: 200)")
    p.add_argument("--run", type=int, default=100, help="`run` array cases (default: 100)")
    p.add_argument("--c-fraction", type=float, default=0.5,
                   help="share of accepted compiles built and run under ASan/UBSan")
    p.add_argument("--cli-fraction", type=float, default=0.1,
                   help="share of compile cases also run as the real command")
    p.add_argument("--findings", type=Path, help="append each finding to this file as found")
    args = p.parse_args(argv)
    from tqdm import tqdm

    import tinyengine

    todo = cases(args.tflite, args.onnx, args.run)
    pick = random.Random("fuzz-sample")
    counts: collections.Counter = collections.Counter()
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    findings: list[Outcome] = []
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="tinyengine-fuzz-") as tmp:
        cache = Path(tmp) / "cache"
        export_onnx_models(cache)
        tty = sys.stderr.isatty()
        for k, case in enumerate(tqdm(todo, desc="fuzz", disable=not tty)):
            if not tty and k % 100 == 0:  # plain progress lines in a log
                print(f"[{time.time() - start:.0f} s] {k}/{len(todo)} cases: "
                      f"{dict(counts)}", flush=True)
            build_c = pick.random() < args.c_fraction
            via_cli = pick.random() < args.cli_fraction
            out = check_case(case, fresh_dir(Path(tmp), "case"), cache, build_c, via_cli)
            kind = f"{case.kind}{'*' if case.source == LARGE_MODEL else ''}"
            counts[out.verdict] += 1
            by_kind[kind][out.verdict] += 1
            if not out.ok:
                findings.append(out)
                print(f"FINDING {out.line()}", flush=True)
                if args.findings:
                    append_finding(args.findings, out)
    print(f"\ntinyengine {tinyengine.__version__}: {len(todo)} cases in "
          f"{time.time() - start:.0f} s (tflite* = {LARGE_MODEL}; C built for a "
          f"{args.c_fraction:g} share of accepted compiles, the command run for a "
          f"{args.cli_fraction:g} share)\n")
    print(table(counts, by_kind))
    print(f"\nfindings: {len(findings)}")
    for f in findings:
        print(f"- {f.line()}\n  repro: {f.repro()}")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
