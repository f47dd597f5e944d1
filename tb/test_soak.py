"""pytest entry point: a seeded slice of the soak with faults (``make soak``,
:mod:`sushi_sched.runtime.soak`) on the RTL: the digits MLP served through the server on
``sushi_sim`` while commands are corrupted, the memory stalls and stops answering
(MEM_TIMEOUT) and the accelerator is reset or rung in the middle of programs. Nothing may be
wrong or lost, every fault must end as it must, every first query after a fault must be ok."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sushi_hw.config import PRESETS
from sushi_sched.runtime.rtl import run_on_rtl
from sushi_sched.runtime.soak import FAULT_KINDS, SoakJob
from sushi_tb.runner import SIM_BUILD, require_simulator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "sched"))
from test_soak import check_soak  # noqa: E402

#: (queries, seed, fault rate, whether every kind must come): Icarus runs a few
SLICES = {"verilator": (30, 5, 0.5, True), "icarus": (10, 5, 0.5, False)}


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_rtl_soak_slice(sim: str) -> None:
    require_simulator(sim)
    n, seed, rate, every = SLICES[sim]
    job = SoakJob(n, seed=seed, fault_rate=rate, supernet="digits-mlp", repin_every=5)
    rep = run_on_rtl(PRESETS["default"], job, sim=sim, workdir=SIM_BUILD / "soak" / sim)
    assert rep["backend"] == f"rtl/{sim}"
    check_soak(rep, seed, kinds=FAULT_KINDS if every else tuple(rep["faults"]), cache=every)
    # on the RTL a stray doorbell is counted (the golden model has none to count)
    if "doorbell" in rep["faults"]:
        assert rep["doorbells_dropped"] == sum(rep["faults"]["doorbell"].values()), rep
