"""pytest entry point: the whole board top (``sushi_board``) serves digits queries over its
UART, with the weights in an SPI-flash model, on Verilator and Icarus (``tb/board_tb.py``).

The cocotb test serves the queries with the one server of ``sushi_sched.runtime`` on the board
backend (what ``sushi board query`` runs on a real board) and checks each query's logits
bit-exactly against the numpy int8 reference and the accelerator's counters and the flash
model's byte count against the compiler's numbers; here the results it wrote are checked once
more, so a test that silently served nothing fails.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from sushi_hw.config import PRESETS
from sushi_hw.fpga.boards import get_board
from sushi_hw.generate import BOARD_SIM_RAM_BYTES
from sushi_tb.runner import SIM_BUILD, require_simulator, run

SEED = int(os.environ.get("SUSHI_SEED", "1"))


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_board_serves_digits(sim: str) -> None:
    require_simulator(sim)
    cfg = PRESETS["tiny"]
    t0 = time.perf_counter()
    res = _run_board_test(sim, cfg, "board", "serve_digits_over_uart")
    wall = time.perf_counter() - t0
    print(
        f"\n{sim}: {len(res['queries'])} queries, {res['sim_cycles']} cycles, "
        f"cocotb {res['wall_s']:.1f} s, pytest incl. any build {wall:.1f} s"
    )
    # the memory map the server planned from the board's INFO covers the simulated RAM
    ram = res["ram_map"]
    assert ram["ram_bytes"] == ram["scratch"] + ram["scratch_bytes"] == BOARD_SIM_RAM_BYTES
    q = res["queries"]
    assert [r["subnet"] for r in q] == ["i8-d2-8-16", "i8-d2-16-8", "i8-d1-16"]
    assert all(r["match"] for r in q)
    flash_only, cached, after = q
    # the first query has no PB: every weight byte came from the flash
    assert flash_only["pb_read_bytes"] == 0
    assert flash_only["rd_weight_bytes"] == flash_only["flash_bytes"] > 0
    # after CACHE the PB serves part of the SubNet and the flash the uncached rest
    assert res["cache"]["rd_weight_bytes"] == res["cache"]["flash_bytes"] > 0
    for r in (cached, after):
        assert r["pb_read_bytes"] == r["expected_pb_bytes"] > 0
        assert r["flash_bytes"] == r["rd_weight_bytes"] == r["expected_flash_bytes"]
    # the bad program stopped with ILLEGAL_OPCODE and the next query was still served
    bad = res["bad_program"]["status"]
    assert bad["error"] and bad["error_code"] == 1 and not bad["busy"]


@pytest.mark.parametrize("sim", ["verilator"])
def test_board_serves_the_cnn(sim: str) -> None:
    """The CNN over the UART on the ULX3S's preset (16x16 array with conv, its build options):
    a SubNet from the flash, a CACHE of its slices, a SubNet reading the shared ones from the
    PB; logits bit-exact, the flash model's byte counts equal the accelerator's.

    Verilator only: the flash model's Python runs on every SCLK edge (about 300k for these
    queries), minutes on Icarus. Icarus serves the CNN in tb/test_stack.py and the board path
    with the MLP above."""
    require_simulator(sim)
    cfg = PRESETS[get_board("ulx3s").preset]
    res = _run_board_test(sim, cfg, "board-cnn", "serve_cnn_over_uart")
    q = res["queries"]
    assert [r["subnet"] for r in q] == ["16k1-24k1-16k1", "16k1-24k1-16k3"]
    assert all(r["match"] for r in q)
    assert q[0]["pb_read_bytes"] == 0 and q[1]["pb_read_bytes"] > 0
    assert all(r["flash_bytes"] == r["rd_weight_bytes"] for r in q)
    print(f"\n{sim}: {len(q)} CNN queries, {res['sim_cycles']} cycles, {res['wall_s']:.1f} s")


def _run_board_test(sim: str, cfg, where: str, testcase: str) -> dict:  # noqa: ANN001
    """Run one cocotb test of ``tb/board_tb.py`` on the simulated board; the results it wrote."""
    out = SIM_BUILD / where / sim
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "results.json"
    raw.unlink(missing_ok=True)
    log = out / f"board_tb.{testcase}.log"
    why = f"{testcase} failed on {sim} (seed {SEED})"
    try:
        tests, failed, _ = run(
            sim,
            "sushi_board",
            cfg,
            "board_tb",
            test_dir=out,
            env={"SUSHI_SEED": str(SEED), "SUSHI_BOARD_OUT": str(raw)},
            testcase=testcase,
        )
    except SystemExit:  # cocotb's runner exits when a test fails: show why
        pytest.fail(f"{why}:\n{_failure(log)}\nlog: {log}")
    assert tests == 1 and failed == 0, f"{why}:\n{_failure(log)}\nlog: {log}"
    return json.loads(raw.read_text())


def _failure(log) -> str:  # noqa: ANN001
    """The assertion lines of a failed cocotb run."""
    if not log.exists():
        return "(no log)"
    lines = log.read_text(errors="replace").splitlines()
    hits = [ln.strip() for ln in lines if "Error" in ln and "Traceback" not in ln]
    return "\n".join(hits[:10]) or "\n".join(lines[-20:])
