"""pytest entry points: ``sushi_axi`` (AXI4 master + AXI4-Lite registers) against
cocotbext-axi's ``AxiRam`` and ``AxiLiteMaster`` (tb/axi_tb.py), on both simulators.

``default`` runs the core's 64-bit beats on a 64-bit bus; ``tiny`` packs its 16-bit beats four
to a 64-bit AXI beat (lane offsets, write strobes). Icarus runs fewer random programs.
"""

from __future__ import annotations

import os

import pytest
from sushi_hw.config import PRESETS
from sushi_tb.runner import require_simulator, run

SEED = int(os.environ.get("SUSHI_SEED", "1"))


@pytest.mark.parametrize("preset", ["default", "tiny"])
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_axi(sim: str, preset: str) -> None:
    require_simulator(sim)
    pytest.importorskip("cocotbext.axi", reason="cocotbext-axi (the dev extra) is not installed")
    env = {"SUSHI_SEED": str(SEED)}
    if sim == "icarus":
        env.update(SUSHI_AXI_TRIALS="3")
    tests, failed, xml = run(sim, "sushi_axi", PRESETS[preset], "axi_tb", env=env)
    assert tests >= 5, f"only {tests} cocotb tests ran ({xml})"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed, seed={SEED} ({xml})"
