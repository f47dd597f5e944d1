"""pytest entry points: SushiAccel (command processor, PB, memory model) on both simulators."""

from __future__ import annotations

import os

import pytest
from sushi_hw.build_options import SIMULATION
from sushi_hw.config import PRESETS
from sushi_hw.generate import board_sim_options
from sushi_tb.runner import require_simulator, run

SEED = int(os.environ.get("SUSHI_SEED", "1"))


@pytest.mark.parametrize(
    ("preset", "build"),
    # ice40: the accelerator as the iCEBreaker build elaborates it (no pipeline registers,
    # shared check multiplier), the variant the board top also simulates
    [("tiny", "sim"), ("default", "sim"), ("tiny", "ice40")],
)
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_accel(sim: str, preset: str, build: str) -> None:
    require_simulator(sim)
    cfg = PRESETS[preset]
    opts = board_sim_options(cfg) if build == "ice40" else SIMULATION
    tests, failed, xml = run(
        sim, "sushi_sim", cfg, "accel_tb", env={"SUSHI_SEED": str(SEED)}, opts=opts, quiet=False
    )
    assert tests >= 4, f"only {tests} cocotb tests ran ({xml})"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed, seed={SEED} ({xml})"
