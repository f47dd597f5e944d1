"""The soak with faults (:mod:`sushi_sched.runtime.soak`) on the golden model: a seeded slice of
the ``make soak`` run, and that the soak does catch a wrong result and a broken recovery.
The RTL slice is ``tb/test_soak.py``."""

from __future__ import annotations

import pytest
from sushi_hw.config import PRESETS
from sushi_sched.runtime.golden import GoldenBackend
from sushi_sched.runtime.server import Server
from sushi_sched.runtime.soak import FAULT_KINDS, SoakJob, problems

SEED = 11


def check_soak(rep: dict, seed: int, *, kinds=FAULT_KINDS, cache: bool = True) -> None:  # noqa: ANN001
    """What every soak must show (``soak.problems``), every kind injected, and reported
    failures (so recoveries) where a kind must report."""
    where = f"seed={seed} ({rep['backend']}, {rep['queries']} queries): "
    bad = problems(rep, kinds=kinds, cache=cache)
    assert not bad, where + "\n".join(bad)
    assert rep["passed"] and rep["post_fault_queries"] > 0, where + "no query after a fault"
    if {"illegal", "hang", "reset"} & set(kinds):
        o = rep["outcomes"]
        assert o["reported"] >= 1 and rep["recoveries"] >= 1, where + f"{o}"


def test_golden_soak_slice() -> None:
    """200 CNN queries, a fault in about a quarter of the program runs."""
    cfg = PRESETS["default"]
    rep = SoakJob(200, seed=SEED, fault_rate=0.25, supernet="digits-cnn", repin_every=8)(
        GoldenBackend(cfg)
    )
    check_soak(rep, SEED)
    # each kind reports what it must: a corrupted command its check's error, a hang
    # MEM_TIMEOUT, a reset an interrupted run; a stall and a stray doorbell nothing
    errors = rep["errors_reported"]
    assert errors.get("MEM_TIMEOUT") and errors.get("interrupted by a reset"), errors
    for kind in ("stall", "doorbell"):
        assert set(rep["outcomes_by_fault"][kind]) == {"ok"}, (SEED, rep["outcomes_by_fault"])
    assert rep["outcomes_by_fault"]["none"] == {"ok": rep["outcomes_by_fault"]["none"]["ok"]}


class _FlipsALogit(GoldenBackend):
    """A golden model whose output read flips one bit of the 5th query's logits."""

    def __init__(self, cfg) -> None:  # noqa: ANN001
        super().__init__(cfg)
        self.reads, self.out_addr = 0, None

    def read(self, addr: int, n: int) -> bytes:
        data = super().read(addr, n)
        if addr == self.out_addr:
            self.reads += 1
            if self.reads == 5:
                data = bytes([data[0] ^ 4, *data[1:]])
        return data


def test_soak_counts_a_wrong_result() -> None:
    cfg = PRESETS["default"]
    backend = _FlipsALogit(cfg)
    backend.out_addr = Server(GoldenBackend(cfg)).mem.output  # the MLP's memory map
    rep = SoakJob(12, seed=SEED, fault_rate=0.0, supernet="digits-mlp")(backend)
    assert rep["outcomes"]["wrong"] == 1 and not rep["passed"], rep["outcomes"]


def test_soak_catches_a_recovery_that_keeps_a_corrupted_program(monkeypatch) -> None:  # noqa: ANN001
    """Without step 2 of Server.recover (forget the program slots) a corrupted program stays
    in memory: the first query after the fault fails again, and the soak says so."""
    real = Server.recover

    def keeps_programs(self, layout=None, *, reset=True):  # noqa: ANN001, ANN202
        slots = (dict(self._slot_of), list(self._in_slot), self._next_slot)
        out = real(self, layout, reset=reset)
        self._slot_of, self._in_slot, self._next_slot = slots
        return out

    monkeypatch.setattr(Server, "recover", keeps_programs)
    rep = SoakJob(40, seed=SEED, fault_rate=0.3, supernet="digits-mlp", kinds=("illegal",))(
        GoldenBackend(PRESETS["default"])
    )
    assert not rep["passed"] and rep["post_fault_ok"] < rep["post_fault_queries"], rep


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_kind_alone(kind: str) -> None:
    """One kind at a time, on the MLP, with its CACHE runs faulted too."""
    rep = SoakJob(40, seed=SEED, fault_rate=0.4, supernet="digits-mlp", kinds=(kind,),
                  repin_every=4)(GoldenBackend(PRESETS["default"]))  # fmt: skip
    check_soak(rep, SEED, kinds=(kind,), cache=True)
