"""``verilator --lint-only -Wall`` on the generated Verilog of every preset and top.

The waivers are listed and explained in ``sushi_tb.runner.VERILATOR_WAIVERS``.
"""

from __future__ import annotations

import pytest
from sushi_hw.config import PRESETS
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.generate import (
    BOARD_SIM_BOARD,
    TOPS,
    board_sim_options,
    generate_verilog,
    top_skip_reason,
)
from sushi_tb.runner import SIM_BUILD, lint_verilog, require_simulator


@pytest.mark.parametrize("top", sorted(TOPS))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_verilator_lint(preset: str, top: str) -> None:
    why = top_skip_reason(top, PRESETS[preset])  # the tops `make verilog` generates
    if why:
        pytest.skip(f"{preset}/{top}: {why}")
    require_simulator("verilator")
    v = generate_verilog(PRESETS[preset], top, SIM_BUILD / "lint" / preset)
    res = lint_verilog(v)
    assert res.returncode == 0, f"verilator lint failed for {preset}/{top}:\n{res.stderr[-4000:]}"


def test_verilator_lint_board_build() -> None:
    """The accelerator as the board build elaborates it (its :class:`BuildOptions`)."""
    require_simulator("verilator")
    cfg = PRESETS[BOARDS[BOARD_SIM_BOARD].preset]
    out = SIM_BUILD / "lint" / f"{cfg.name}-{BOARD_SIM_BOARD}"
    v = generate_verilog(cfg, "sushi_sim", out, board_sim_options(cfg))
    res = lint_verilog(v)
    what = f"the {BOARD_SIM_BOARD} build"
    assert res.returncode == 0, f"verilator lint failed for {what}:\n{res.stderr[-4000:]}"
