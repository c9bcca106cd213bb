"""Issue 16's acceptance line for latency in the search, end to end: `tinynas pipeline --board
stm32f412 --latency-ms X`, with a limit that binds, returns a network whose `bench` latency on
the compiled project is within the limit and within 5% of the search's own estimate, and whose
linked firmware fits the board.

The limit binds by construction: it is the median estimated latency of the largest stage-one
configuration's subnets, so the search must turn down about half of what it would take without
it (tests/test_tinynas_latency.py checks that such a limit changes stage one's answer)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyengine.target import bench
from tinyengine.target.boards import BOARDS
from tinyengine.target.build import build_firmware, firmware_key
from tinynas.budget import arch_latency_ms
from tinynas.cli import main
from tinynas.space import get_space

from .conftest import require

BOARD = "stm32f412"


@pytest.mark.slow
def test_pipeline_under_a_binding_latency_limit_meets_it_on_bench(tmp_path, capsys):
    require(shutil.which("qemu-system-arm") is not None
            and shutil.which("arm-none-eabi-gcc") is not None,
            "arm-none-eabi-gcc and qemu-system-arm are needed to link and bench the winner")
    space = get_space("digits")
    rng = np.random.default_rng(5)
    w, r = max(space.width_mults), max(space.resolutions)
    limit = float(np.median([arch_latency_ms(space.sample(rng, w, r), BOARD)
                             for _ in range(20)]))
    out = tmp_path / "run"
    assert main(["pipeline", "--board", BOARD, "--latency-ms", f"{limit:.4f}", "--quick",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    project = summary["project"]

    measured = bench(project, BOARD).ms
    assert measured is not None
    assert measured <= limit, f"bench {measured:.3f} ms over the limit {limit:.3f} ms"
    estimate = summary["latency_ms"]
    assert abs(estimate / measured - 1) < 0.05, (estimate, measured)

    board = BOARDS[BOARD]
    build_firmware(project, BOARD, opt="O2", runtime="bare")
    report = json.loads((Path(project) / "report.json").read_text())
    linked = report["firmware_totals"][firmware_key(board, True, "O2", "bare")]
    assert linked["flash"] <= board.flash.length and linked["ram"] <= board.ram.length, linked
    # With a board the search bounds the whole firmware; what it promised for the winner is
    # what the linker gives (tests/test_code_size.py: within one section's alignment).
    promised = summary["firmware"]["cortex-m4-O2"]
    assert abs(promised["flash_bytes"] - linked["flash"]) <= 8, (promised, linked)
    assert promised["ram_bytes"] == linked["ram"], (promised, linked)
