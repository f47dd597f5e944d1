"""pytest entry points: convolutions on SushiAccel, on both simulators."""

from __future__ import annotations

import os

import pytest
from sushi_hw.config import PRESETS
from sushi_tb.runner import require_simulator, run

SEED = int(os.environ.get("SUSHI_SEED", "1"))
# default, and default with 16-row M-tiles: maps of more than one M-tile
CONFIGS = {"default": PRESETS["default"], "default-m16": PRESETS["default"].replace(acc_depth=16)}
# Icarus runs about 10x slower: fewer and smaller convolutions there
BUDGET = {"verilator": ("6", "20000"), "icarus": ("3", "3000")}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_conv(sim: str, config: str) -> None:
    require_simulator(sim)
    convs, rows = BUDGET[sim]
    env = {"SUSHI_SEED": str(SEED), "SUSHI_CONVS": convs, "SUSHI_CONV_ROWS": rows}
    tests, failed, xml = run(sim, "sushi_sim", CONFIGS[config], "conv_tb", env=env, quiet=False)
    assert tests >= 2, f"only {tests} cocotb tests ran ({xml})"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed, seed={SEED} ({xml})"
