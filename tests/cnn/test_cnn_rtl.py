"""CNN SubNet queries on the RTL (``sushi_sim``, default preset, Verilator), bit-exact against the
int8 reference, with the golden model's counters; the same job on the golden model."""

from __future__ import annotations

from sushi_hw.config import PRESETS
from sushi_sched.cnn.check import QueryCheck
from sushi_sched.runtime.golden import GoldenBackend
from sushi_sched.runtime.rtl import run_on_rtl
from sushi_tb.runner import SIM_BUILD, require_simulator

#: the largest, the smallest and a mid SubNet, each without and with a shared SubGraph cached
CASES = [(0, None), (0, (0, 5)), (1, None), (1, (1, 7)), (12, None), (12, (12, 3))]


def _check(records: list[dict]) -> None:
    assert len(records) == 2 * len(CASES)
    for r in records:
        assert r["match"], r
        assert r["counters_match"], r
        if r["cached"]:
            assert r["pb_read_bytes"] > 0, r


def test_cnn_queries_on_the_golden_model():
    _check(QueryCheck(CASES)(GoldenBackend(PRESETS["default"])))


def test_cnn_queries_on_the_rtl():
    require_simulator("verilator")
    cfg = PRESETS["default"]
    records = run_on_rtl(cfg, QueryCheck(CASES), sim="verilator",
                         workdir=SIM_BUILD / "cnn" / "verilator")  # fmt: skip
    _check(records)
    for r in records:
        err = (r["model_cycles"] - r["cycles"]) / r["cycles"]
        print(f"{r['subnet']:34s} cached={bool(r['cached'])!s:5s} cycles {r['cycles']:6d} "
              f"model {r['model_cycles']:6d} ({100 * err:+.1f}%)")  # fmt: skip
