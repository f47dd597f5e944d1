"""The iCEBreaker build with the YoWASP tools: the whole bitstream and report.json (`make
test-fpga`: 10-40 min, the device is nearly full), and synthesis + packing with the fit check
(`make test`, about a minute). Skipped only when the FPGA tools are not installed
(pip install -e '.[fpga]').
"""

from __future__ import annotations

import json
import shutil

import pytest
from sushi_hw.config import PRESETS
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.fpga.fit import plan
from sushi_hw.fpga.flow import missing_tools, tool_env
from sushi_hw.fpga.nextpnr_report import REPORT_KEYS, check_report
from sushi_sched.cli import main


@pytest.mark.fpga_build
def test_icebreaker_bitstream_and_report(tmp_path):
    """The whole board top (preset tiny, 2x2) through synthesis, placement, routing and
    icepack; report.json complete and within the device. Timing is reported, not asserted
    (docs/fpga.md: whether 30 MHz is met depends on the seed)."""
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
    # the placement-independent logic depth of the same netlist is in the detail report
    detail = json.loads((out / "report_detail.json").read_text())
    # the build names exactly the options it was built with: the fit plan's
    assert detail["build_options"] == plan(board, PRESETS["tiny"]).build_options().to_dict()
    depth = detail["logic_depth"]
    assert sum(depth["histogram"].values()) > rep["ffs"]  # every register input is an end
    assert depth["max_levels"] == max(int(k) for k in depth["histogram"]) > 0
    shutil.rmtree(out / "work", ignore_errors=True)


def test_icebreaker_estimate_matches_the_fit_plan(tmp_path):
    """``sushi bitstream --estimate``: synthesis + packing without the fit check (about 30 s).
    The DSP, block RAM and SPRAM counts nextpnr packs must be the ones the fit plan promises
    (the PB and host RAM really land in SPRAM, the requantiser on the DSPs)."""

    board = BOARDS["icebreaker"]
    missing = missing_tools(board, tool_env())
    if missing:
        pytest.skip(f"FPGA tools not installed: {', '.join(missing)}")
    assert main(["bitstream", "--board", "icebreaker", "--estimate", "--out", str(tmp_path)]) == 0
    est = json.loads((tmp_path / "icebreaker" / "estimate.json").read_text())
    p = plan(board, PRESETS["tiny"])
    used = {k: v[0] for k, v in est["used_of_available"].items()}
    assert used["dsps"] == p.dsps and used["sprams"] == p.sprams and used["brams"] == p.brams
    luts, ffs = est["ice40_luts_ffs"]
    assert luts > 0 and ffs > 0 and used["luts"] >= max(luts, ffs)
    assert est["fits"] == (used["luts"] <= 5280)
    assert est["fits"], f"preset tiny no longer fits the iCEBreaker: {used['luts']} of 5280 LCs"
    assert est["logic_depth"]["max_levels"] > 0
    shutil.rmtree(tmp_path / "icebreaker" / "work", ignore_errors=True)
