"""pytest entry points: SushiAccel (command processor, PB, memory model) on both simulators."""

from __future__ import annotations

import os

import pytest
from sushi_hw.config import PRESETS
from sushi_tb.runner import require_simulator, run

SEED = int(os.environ.get("SUSHI_SEED", "1"))


@pytest.mark.parametrize(
    ("preset", "top"),
    # sushi_sim_ice40: the accelerator as the iCEBreaker build elaborates it (no pipeline
    # registers, shared check multiplier), the variant the board top also simulates
    [("tiny", "sushi_sim"), ("default", "sushi_sim"), ("tiny", "sushi_sim_ice40")],
)
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_accel(sim: str, preset: str, top: str) -> None:
    require_simulator(sim)
    tests, failed, xml = run(
        sim, top, PRESETS[preset], "accel_tb", env={"SUSHI_SEED": str(SEED)}, quiet=False
    )
    assert tests >= 4, f"only {tests} cocotb tests ran ({xml})"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed, seed={SEED} ({xml})"
