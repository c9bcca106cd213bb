"""--flash-scope (issue 16 point 2): the search's budget can bound the whole firmware (what is
linked: code, runtime, stack) instead of the model's weights and arena; with a board whose core
the code-size table covers, that is the default. The firmware figures are the engine's estimate
of the candidate's generated project (tests/test_code_size.py holds it equal to the linker)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyengine.codegen import compile_graph
from tinyengine.cost import with_placeholders
from tinyengine.target.code_size import estimate_firmware
from tinynas.budget import Budget, check_budget
from tinynas.errors import TinyNASError
from tinynas.firmware import default_scope, firmware_figures
from tinynas.flexcost import build_graph
from tinynas.flexspace import FLEX_PRESETS


def _arch(seed=0):
    return FLEX_PRESETS["mnist1d"].sample(np.random.default_rng(seed))


def test_firmware_figures_are_the_projects_estimate(tmp_path):
    a = _arch()
    report = compile_graph(with_placeholders(build_graph(a)), tmp_path / "p", patch="off")
    est = estimate_firmware(tmp_path / "p", "cortex-m4", "Os", report=report)
    assert firmware_figures(a, "cortex-m4", "Os") == (est["flash"], est["ram"])


def test_scope_decides_what_fits():
    a = _arch(1)
    model = check_budget(a, Budget(1 << 20, 1 << 20))
    flash, ram = firmware_figures(a, "cortex-m4", "O2")
    assert model.fits and flash > model.flash and ram > model.peak_sram
    # Room for the model, not for the firmware: fits in the model scope only.
    tight = dict(sram=model.peak_sram, flash=(model.flash + flash) // 2)
    assert check_budget(a, Budget(**tight)).fits
    v = check_budget(a, Budget(**tight, flash_scope="firmware"))
    assert not v.fits and v.reason == "flash" and v.firmware_flash == flash
    v = check_budget(a, Budget(ram, flash, flash_scope="firmware"))
    assert v.fits and (v.firmware_flash, v.firmware_ram) == (flash, ram)
    assert not check_budget(a, Budget(ram - 1, flash, flash_scope="firmware")).fits


def test_default_scope_and_bad_scopes():
    assert default_scope(None, None, "O2") == "model"
    assert default_scope(None, "stm32f412", "O2") == "firmware"  # a Cortex-M4 board
    assert default_scope(None, "stm32f746", "O2") == "firmware"  # a Cortex-M7 board
    assert default_scope(None, "mps2-an385-m0plus", "Os") == "model"  # no M0+ table measured
    assert default_scope("model", "stm32f412", "Os") == "model"
    with pytest.raises(TinyNASError, match="no code-size table for cortex-m0plus"):
        Budget(1024, 4096, board="mps2-an385-m0plus", flash_scope="firmware")
    with pytest.raises(TinyNASError, match="--flash-scope model or firmware"):
        Budget(1024, 4096, flash_scope="linked")
