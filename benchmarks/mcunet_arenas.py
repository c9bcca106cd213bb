"""Arena sizes of MCUNet's released architectures and of the shared models, per patch mode.

    .venv/bin/python benchmarks/mcunet_arenas.py [--patch off,auto] [--shared] [--json OUT]
        [--compare BEFORE.json]

Each examples/mcunet/*.json architecture is priced as `tinynas cost ARCH --int8-input` prices
it (tinynas.resources.estimate_arch: the engine's real schedule), with the peak step (its op),
the live-set lower bound of the plan and how many inverted-residual blocks the planner fused
(run row by row, tinyengine/memory/fuse.py). --shared adds the models of tests/conftest.py's
MODEL_FILES (../shared/models), priced as `tinyengine compile` prices them. --json writes the
figures; --compare reads such a file and prints before -> after, and exits 1 if a shared
model's arena grew.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import MODEL_FILES, MODELS  # noqa: E402
from tinyengine.cost import with_placeholders  # noqa: E402
from tinyengine.ir import Graph, verify  # noqa: E402
from tinyengine.memory.report import peak_summary  # noqa: E402
from tinyengine.memory.schedule import schedule  # noqa: E402

# TinyEngine's released scheduler (MCUNet's model zoo README, int8 input, no patches), where the
# issue quotes it.
TINYENGINE = {"mcunet-in3": 247_808}


def figures(graph: Graph, patch: str) -> dict:
    graph = with_placeholders(graph)
    verify(graph)
    t0 = time.perf_counter()
    sched = schedule(graph, patch)
    peak = peak_summary(sched.graph, sched.plan)
    fused = sum(op.kind == "FUSED_BLOCK" for op in sched.graph.ops)
    return {"arena": sched.plan.arena_bytes, "bound": peak.bound, "peak_op": peak.op,
            "peak_kind": peak.kind, "fused": fused,
            "seconds": round(time.perf_counter() - t0, 2)}


def mcunet(patches: list[str]) -> dict[str, dict]:
    from tinynas.arch import Arch
    from tinynas.resources import build_graph

    out: dict[str, dict] = {}
    for path in sorted((ROOT / "examples" / "mcunet").glob("*.json")):
        graph = build_graph(Arch.load(path), int8_input=True)
        out[path.stem] = {p: figures(graph, p) for p in patches}
    return out


def shared(patches: list[str]) -> dict[str, dict]:
    from tinyengine.frontend import load_model

    return {name: {p: figures(load_model(MODELS / name), p) for p in patches}
            for name in MODEL_FILES if (MODELS / name).is_file()}


def table(title: str, rows: dict[str, dict], before: dict[str, dict] | None) -> str:
    lines = [f"| {title} | patch | arena (B) | live lower bound (B) | fused blocks | peak op |",
             "|---|---|---|---|---|---|"]
    for name, by_patch in rows.items():
        for patch, f in by_patch.items():
            arena = f"{f['arena']:,}"
            old = (before or {}).get(name, {}).get(patch)
            if old is not None:
                arena = f"{old['arena']:,} -> {arena}"
            lines.append(f"| {name} | {patch} | {arena} | {f['bound']:,} | "
                         f"{f.get('fused', 0)} | {f['peak_op']} ({f['peak_kind']}) |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patch", default="off,auto", help="comma-separated patch modes")
    ap.add_argument("--shared", action="store_true", help="also the shared models")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--compare", type=Path, help="figures from an earlier run")
    args = ap.parse_args()
    patches = args.patch.split(",")
    before = json.loads(args.compare.read_text()) if args.compare else {}
    result = {"mcunet": mcunet(patches)}
    print(table("model", result["mcunet"], before.get("mcunet")))
    if args.shared:
        result["shared"] = shared(patches)
        print()
        print(table("shared model", result["shared"], before.get("shared")))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    grew = [f"{name} ({p})" for name, by_patch in result.get("shared", {}).items()
            for p, f in by_patch.items()
            if f["arena"] > before.get("shared", {}).get(name, {}).get(p, f)["arena"]]
    if grew:
        print("arena grew: " + ", ".join(grew))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
