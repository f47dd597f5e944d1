"""pytest entry point: a seeded slice of the soak with faults (``make soak``,
:mod:`sushi_sched.runtime.soak`) on the RTL: the digits MLP served through the server on
``sushi_sim`` while commands are corrupted, the memory stalls and stops answering
(MEM_TIMEOUT) and the accelerator is reset or rung in the middle of programs. Nothing may be
wrong or lost, every fault must end as it must, every first query after a fault must be ok."""

from __future__ import annotations

import pytest
from sushi_hw.config import PRESETS
from sushi_sched.runtime.rtl import run_on_rtl
from sushi_sched.runtime.soak import FAULT_KINDS, SoakJob, problems
from sushi_tb.runner import SIM_BUILD, require_simulator

#: (queries, seed, fault rate): on Icarus a shorter slice, each kind of fault still injected
SLICES = {"verilator": (40, 5, 0.5), "icarus": (16, 5, 0.7)}


@pytest.mark.parametrize("sim", list(SLICES))
def test_rtl_soak_slice(sim: str) -> None:
    require_simulator(sim)
    n, seed, rate = SLICES[sim]
    job = SoakJob(n, seed=seed, fault_rate=rate, supernet="digits-mlp", repin_every=5)
    rep = run_on_rtl(PRESETS["default"], job, sim=sim, workdir=SIM_BUILD / "soak" / sim)
    assert rep["backend"] == f"rtl/{sim}"
    bad = problems(rep, kinds=FAULT_KINDS, cache=True)
    assert not bad, f"seed={seed} ({sim}, {n} queries): " + "\n".join(bad)
    assert rep["passed"] and rep["outcomes"]["reported"] >= 1 and rep["recoveries"] >= 1, rep
    # on the RTL a stray doorbell is counted (the golden model has none to count)
    assert rep["doorbells_dropped"] == sum(rep["faults"]["doorbell"].values()), rep
    # and the recovery without a reset that docs/isa.md allows ran at least once
    assert rep["recoveries_with_reset"] < rep["recoveries"], rep
