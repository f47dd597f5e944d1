"""pytest entry points: SushiAccel (command processor, PB, memory model) on both simulators."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from sushi_hw.build_options import SIMULATION
from sushi_hw.config import PRESETS
from sushi_hw.generate import board_sim_options
from sushi_tb.runner import SIM_BUILD, require_simulator, run

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


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_pb_tags_cost_no_cycle(sim: str) -> None:
    """accel_tb's pb_uncached_halts on ``default`` with and without BuildOptions.pb_tags: each
    passes (with tags the misuses halt with PB_UNCACHED, without they run to DONE as before),
    and every program that is legal takes the same cycles in both builds."""
    require_simulator(sim)
    cfg = PRESETS["default"]
    cycles = {}
    for tags in (True, False):
        out = SIM_BUILD / f"pb_tags_cycles-{sim}-{tags}.json"
        out.unlink(missing_ok=True)
        env = {"SUSHI_SEED": str(SEED), "SUSHI_CYCLES_OUT": str(out)}
        opts = dataclasses.replace(SIMULATION, pb_tags=tags)
        tests, failed, xml = run(
            sim, "sushi_sim", cfg, "accel_tb", env=env, testcase="pb_uncached_halts", opts=opts
        )
        assert tests == 1 and failed == 0, f"pb_tags={tags}: seed={SEED} ({xml})"
        cycles[tags] = json.loads(out.read_text())
    legal = [w for w, (err, _) in cycles[True].items() if err == 0]
    assert len(legal) >= 3 and len(legal) < len(cycles[True]), cycles
    for what in legal:
        assert cycles[True][what][1] == cycles[False][what][1], f"{what}: {cycles}"
    assert all(err == 0 for err, _ in cycles[False].values()), cycles
