"""CI: build the iCEBreaker bitstream with the YoWASP tools and check report.json.

Takes a minute or two (the first YoWASP call also compiles the WebAssembly). Skipped only when
the FPGA tools are not installed (pip install -e '.[fpga]').
"""

from __future__ import annotations

import json
import shutil

import pytest
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.fpga.flow import REPORT_KEYS, check_report, missing_tools, tool_env
from sushi_sched.cli import main


@pytest.mark.xfail(
    strict=True,
    reason="issue 6 open: preset 'tiny' does not fit the iCE40UP5K yet (DSPs 8/8, EBR 28/30 and "
    "SPRAM 4/4 fit, but the logic packs into ~14.5k of 5280 LCs; sushi bitstream rejects it before "
    "synthesis, see docs/fpga.md). Runs in CI so it flags as soon as it fits.",
)
def test_icebreaker_bitstream_and_report(tmp_path):
    board = BOARDS["icebreaker"]
    missing = missing_tools(board, tool_env())
    if missing:
        pytest.skip(f"FPGA tools not installed: {', '.join(missing)}")
    assert main(["bitstream", "--board", "icebreaker", "--out", str(tmp_path)]) == 0
    out = tmp_path / "icebreaker"
    rep = json.loads((out / "report.json").read_text())
    assert tuple(rep) == REPORT_KEYS
    check_report(rep)
    assert rep["board"] == "icebreaker" and rep["preset"] == "tiny"
    assert rep["device"] == "iCE40UP5K-SG48" and rep["fmax_mhz"] > 0
    assert 0 < rep["luts"] <= 5280 and rep["sprams"] <= 4 and rep["dsps"] <= 8
    assert (out / "sushi_icebreaker.bin").stat().st_size > 100_000
    shutil.rmtree(out / "work", ignore_errors=True)
