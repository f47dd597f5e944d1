"""``verilator --lint-only -Wall`` on the generated Verilog of every preset and top.

The waivers are listed and explained in ``sushi_tb.runner.VERILATOR_WAIVERS``.
"""

from __future__ import annotations

import pytest
from sushi_hw.config import PRESETS
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.generate import BOARD_SIM_BOARD, TOPS, generate_verilog
from sushi_tb.runner import SIM_BUILD, lint_verilog, require_simulator


@pytest.mark.parametrize("top", sorted(TOPS))
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_verilator_lint(preset: str, top: str) -> None:
    if top == "sushi_sim" and PRESETS[preset].mem_bytes > (16 << 20):
        pytest.skip(
            f"{preset} models {PRESETS[preset].mem_bytes >> 20} MiB of off-chip memory: "
            "an analytical preset, not simulated (its sushi_accel top is linted)"
        )
    if top == "sushi_board" and preset not in {b.preset for b in BOARDS.values()}:
        pytest.skip(f"no board carries preset {preset}: its board top is never built")
    if top == "sushi_sim_ice40" and preset != BOARDS[BOARD_SIM_BOARD].preset:
        pytest.skip(f"the {BOARD_SIM_BOARD} build's variant exists for its own preset only")
    require_simulator("verilator")
    v = generate_verilog(PRESETS[preset], top, SIM_BUILD / "lint" / preset)
    res = lint_verilog(v)
    assert res.returncode == 0, f"verilator lint failed for {preset}/{top}:\n{res.stderr[-4000:]}"
