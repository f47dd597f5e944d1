"""``sushi bitstream --seed 1,2,...``: one synthesis, one place-and-route per seed, the best kept.

The tools are the real YoWASP ones on a small design (a counter on the iCEBreaker's LED), so a
sweep takes seconds rather than the board top's minutes per seed. Skipped only when the FPGA
tools are not installed (pip install -e '.[fpga]').
"""

from __future__ import annotations

import json

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io
from sushi_hw.config import PRESETS
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.fpga.flow import (
    ToolError,
    _split_script,
    build_bitstream,
    missing_tools,
    tool_env,
)
from sushi_hw.fpga.nextpnr_report import REPORT_KEYS, slack_summary


class Blinky(Elaboratable):
    """Counters mixed through an adder: enough logic for placements (and their Fmax) to
    differ by seed."""

    def elaborate(self, platform) -> Module:
        m = Module()
        count, mix = Signal(24), Signal(24)
        m.d.sync += [count.eq(count + 1), mix.eq((mix ^ (count << 3)) + (count >> 2))]
        m.submodules.led = led = io.Buffer("o", platform.request("led_r", 0, dir="-"))
        m.d.comb += led.o.eq(mix[-1])
        return m


@pytest.fixture
def board():
    board = BOARDS["icebreaker"]
    missing = missing_tools(board, tool_env())
    if missing:
        pytest.skip(f"FPGA tools not installed: {', '.join(missing)}")
    return board


def build_blinky(board, out, **kwargs) -> dict:
    """:class:`Blinky` through the board's flow at its 12 MHz input clock."""
    return build_bitstream(
        board, Blinky(), PRESETS["tiny"], out, clock_mhz=12.0, name="blinky", **kwargs
    )


def test_a_seed_sweep_keeps_the_best_and_lists_every_seed(board, tmp_path):
    seen = []
    rep = build_blinky(board, tmp_path, seeds=(3, 1, 2), jobs=2, progress=seen.append)
    summary = json.loads((tmp_path / "seeds.json").read_text())
    runs = {r["seed"]: r for r in summary["seeds"]}
    assert [r["seed"] for r in summary["seeds"]] == [3, 1, 2]
    assert all("error" not in r for r in runs.values())
    # Yosys ran once; each seed placed and routed in its own directory with its own log
    assert (tmp_path / "synth.log").exists() and not (tmp_path / "build.log").exists()
    for s in (1, 2, 3):
        assert f"--seed {s} " in (tmp_path / "work" / f"seed{s}" / "pnr.sh").read_text()
        assert (tmp_path / f"seed{s}.log").exists()
        assert any(msg.startswith(f"seed {s}: ") for msg in seen)
    # the seed reached nextpnr: the placements differ
    ascs = {(tmp_path / "work" / f"seed{s}" / "blinky.asc").read_bytes() for s in (1, 2, 3)}
    assert len(ascs) == 3
    best = max(runs.values(), key=lambda r: (r["timing_met"], r["fmax_mhz"]))
    assert summary["chosen"] == best["seed"]
    assert tuple(rep) == REPORT_KEYS and rep["fmax_mhz"] == best["fmax_mhz"]
    assert json.loads((tmp_path / "report.json").read_text()) == rep
    detail = json.loads((tmp_path / "report_detail.json").read_text())
    assert detail["seed"] == best["seed"]
    # 12 MHz is easy for a counter: every endpoint has slack, and the log's histogram says so
    assert detail["slack"]["failing_endpoints"] == 0 and detail["slack"]["endpoints"] > 24
    assert all(r["slack"]["failing_endpoints"] == 0 for r in runs.values())
    chosen_bit = tmp_path / "work" / f"seed{best['seed']}" / "blinky.bin"
    assert (tmp_path / "blinky.bin").read_bytes() == chosen_bit.read_bytes()


def test_a_sweep_where_every_seed_fails_says_so_for_each(board, tmp_path):
    with pytest.raises(ToolError) as e:
        build_blinky(board, tmp_path, seeds=(1, 2), nextpnr_args=["--no-such-option"])
    assert "every seed" in str(e.value)
    assert "seed 1:" in str(e.value) and "seed 2:" in str(e.value)
    assert not (tmp_path / "report.json").exists()


def test_the_build_script_splits_into_synthesis_and_place_route_pack():
    text = (
        "#!/bin/sh\nset -e\n: ${YOSYS:=yosys}\n"
        '"$YOSYS" -q -l t.rpt t.ys\n'
        '"$NEXTPNR_ICE40" --seed 1 --json t.json --pcf t.pcf --asc t.asc\n'
        '"$ICEPACK" t.asc t.bin\n'
    )
    header, synth, pnr = _split_script(text)
    assert header == ["#!/bin/sh", "set -e", ": ${YOSYS:=yosys}"]
    assert synth == ['"$YOSYS" -q -l t.rpt t.ys']
    assert [ln.split()[0] for ln in pnr] == ['"$NEXTPNR_ICE40"', '"$ICEPACK"']
    with pytest.raises(ToolError, match="unexpected build script"):
        _split_script("#!/bin/sh\n" + '"$ICEPACK" t.asc t.bin\n')


def test_slack_summary_sums_the_last_histogram():
    first = "Info: Slack histogram:\nInfo:  legend: * represents 9 endpoint(s)\n"
    log = (
        first
        + "Info: [ -900,  -100) |*\n"  # discarded: an earlier histogram (placement)
        + "Info: Slack histogram:\n"
        + "Info:  legend: * represents 10 endpoint(s)\n"
        + "Info:          + represents [1,10) endpoint(s)\n"
        + "Info: [ -3000,  -1000) |**+\n"  # 25 endpoints at -2 ns
        + "Info: [ -1000,   1000) |****\n"  # 40, half of them at -0.5 ns
        + "Info: [  1000,   3000) |******\n"
        + "Info: Checksum: 0x1\n"
    )
    got = slack_summary(log)
    assert got == {"endpoints": 125, "failing_endpoints": 45, "negative_slack_ns": -60.0}
    assert slack_summary("Info: Program finished normally.") is None


def test_one_seed_builds_in_place_without_a_sweep_summary(board, tmp_path):
    rep = build_blinky(board, tmp_path, seeds=(2,))
    assert (tmp_path / "build.log").exists() and not (tmp_path / "seeds.json").exists()
    assert "--seed 2 " in (tmp_path / "work" / "build_blinky.sh").read_text()
    detail = json.loads((tmp_path / "report_detail.json").read_text())
    assert detail["seed"] == 2 and detail["report"] == rep
    assert (tmp_path / "blinky.bin").read_bytes() == (tmp_path / "work" / "blinky.bin").read_bytes()
