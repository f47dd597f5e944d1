"""pytest entry points of the differential fuzzer (:mod:`sushi_sched.fuzz`): a small
fixed-seed slice on both simulators, on the ``sushi_sim`` builds test_accel.py uses (cached in
sim_build/). ``make fuzz`` runs the long tier."""

from __future__ import annotations

import os

import pytest
from sushi_sched.fuzz import run_batch
from sushi_tb.runner import SIM_BUILD, require_simulator

SEED = int(os.environ.get("SUSHI_SEED", "1"))
#: programs per simulator: Icarus runs at a tenth of Verilator's speed
PROGRAMS = {"verilator": 16, "icarus": 4}


@pytest.mark.parametrize("preset", ["tiny", "default"])
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_fuzz_slice(sim: str, preset: str) -> None:
    require_simulator(sim)
    res = run_batch(sim, preset, SEED, PROGRAMS[sim], SIM_BUILD / "fuzz")
    m = res["mismatch"]
    assert m is None, (
        f"seed={SEED} {preset} on {sim}, program {m['index']}:\n{m['program']}\n"
        + "\n".join(m["diffs"])
        + f"\nreplay: python -m sushi_sched.fuzz --presets {preset} --sims {sim} --seed {SEED}"
    )
    assert res["programs_run"] == PROGRAMS[sim] and res["cocotb_failed"] == 0, res
