"""What a candidate's whole firmware takes: flash and RAM of the bare firmware a user links
(weights, parameters, the kernels the model reaches, runtime and library; arena, state, static
data and stack), as tinyengine's code-size table estimates them (tinyengine/target/code_size.py,
equal to the linker's figures on the shared models).

The candidate's weightless graph is generated as a C project (placeholder weights: no size
depends on their values) into a temporary folder and estimated there; about 0.1 s a candidate,
memoised, and asked only of candidates whose model-scope figures already fit (the model's flash
and arena are lower bounds of the firmware's).
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from typing import Any

from tinyengine.errors import TinyEngineError

from .errors import TinyNASError

SCOPES = ("model", "firmware")


def table_cores() -> list[str]:
    """The (core, opt) pairs the code-size table was measured for, as 'core-opt' keys."""
    from tinyengine.target.code_size import load_table

    try:
        return sorted(load_table()["entries"])
    except TinyEngineError:
        return []


def has_table(core: str, opt: str) -> bool:
    return f"{core}-{opt}" in table_cores()


@lru_cache(maxsize=1 << 12)
def firmware_figures(arch: Any, core: str, opt: str, patch: str = "off",
                     int8_input: bool = False) -> tuple[int, int]:
    """(flash, RAM) bytes of the bare firmware of `arch` on `core` at -`opt`."""
    from tinyengine.codegen import compile_graph
    from tinyengine.cost import with_placeholders
    from tinyengine.target.code_size import estimate_firmware

    from . import flexcost, resources
    from .arch import Arch

    if not has_table(core, opt):
        raise TinyNASError(f"no code-size table for {core} at -{opt} (measured: "
                           f"{', '.join(table_cores()) or 'none'}; benchmarks/code_sizes.py "
                           "measures more): use --flash-scope model")
    graph = resources.build_graph(arch, int8_input) if isinstance(arch, Arch) else \
        flexcost.build_graph(arch, int8_input)
    with tempfile.TemporaryDirectory() as tmp:
        report = compile_graph(with_placeholders(graph), tmp, patch=patch)
        est = estimate_firmware(tmp, core, opt, report=report)
    return int(est["flash"]), int(est["ram"])


def default_scope(scope: str | None, board: str | None, opt: str) -> str:
    """--flash-scope as given; else "firmware" with a board whose core the code-size table
    covers (what the search promises is then what fits the part), "model" otherwise."""
    if scope is not None:
        return scope
    if board is None:
        return "model"
    from .budget import board_preset

    return "firmware" if has_table(board_preset(board).core, opt) else "model"
