"""Board registry, fit check, nextpnr report parsing, and the DSP/LUT multiplier split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.sim import Simulator
from sushi_hw.array import SystolicArray, lut_mul_s8
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS, make_config
from sushi_hw.fpga.boards import BOARDS, BoardError, get_board
from sushi_hw.fpga.fit import FitError, bram_blocks, check_fit, plan
from sushi_hw.fpga.nextpnr_report import (
    REPORT_KEYS,
    check_report,
    make_report,
    parse_nextpnr_report,
)
from sushi_sched.cli import main


def test_unknown_board_is_rejected():
    with pytest.raises(BoardError, match="unknown board 'de10'.*icebreaker"):
        get_board("de10")
    assert main(["bitstream", "--board", "de10"]) == 2


def test_oversized_preset_names_what_does_not_fit(capsys):
    with pytest.raises(FitError, match=r"zcu104.*ulx3s.*block RAM: needs \d+ of 208"):
        check_fit(BOARDS["ulx3s"], PRESETS["zcu104"])
    with pytest.raises(FitError, match=r"DSPs: .*the device has 8"):
        check_fit(BOARDS["icebreaker"], PRESETS["large"])
    assert main(["bitstream", "--board", "ulx3s", "--preset", "zcu104"]) == 2
    assert "does not fit ulx3s" in capsys.readouterr().err


def test_large_fits_ulx3s_with_a_dsp_lut_split():
    p = check_fit(BOARDS["ulx3s"], PRESETS["large"])
    assert p.dsps == 156 and p.array_dsp_pes + p.array_lut_pes == 256
    assert p.array_lut_pes > 0 and p.brams <= 208
    assert main(["bitstream", "--board", "ulx3s", "--check-only"]) == 0


def test_small_ecp5_config_needs_no_lut_multipliers():
    p = plan(BOARDS["ulx3s"], make_config("default"))
    assert p.array_lut_pes == 0 and not p.problems


def test_bram_geometry():
    assert bram_blocks("ice40", 16, 256) == 1
    assert bram_blocks("ice40", 128, 64) == 8  # 256x16 is the widest iCE40 EBR
    assert bram_blocks("ecp5", 36, 512) == 1
    assert bram_blocks("ecp5", 128, 8192) == 60


def _fake_report(board, achieved: float, constraint: float) -> dict:
    util = {}
    for cells in board.resources.cells.values():
        for c in cells:
            util[c] = {"used": 10, "available": 100}
    return {
        "utilization": util,
        "fmax": {"clk": {"achieved": achieved, "constraint": constraint}},
        "critical_paths": [],
    }


@pytest.mark.parametrize("board", list(BOARDS))
def test_report_parser_and_schema(board):
    b = BOARDS[board]
    cfg = PRESETS[b.preset]
    parsed = parse_nextpnr_report(_fake_report(b, 31.5, 30.0), b)
    rep = make_report(b, cfg, parsed, cfg.clock_mhz)
    assert tuple(rep) == REPORT_KEYS
    check_report(json.loads(json.dumps(rep)))
    assert rep["timing_met"] is True and rep["fmax_mhz"] == 31.5
    assert rep["dsps"] == 10 and rep["rows"] == cfg.rows and rep["pb_bytes"] == cfg.pb_bytes
    slow = make_report(b, cfg, parse_nextpnr_report(_fake_report(b, 20.0, 30.0), b), 30.0)
    assert slow["timing_met"] is False
    bad = dict(rep)
    del bad["luts"]
    with pytest.raises(ValueError, match="keys"):
        check_report(bad)
    with pytest.raises(ValueError, match="fmax_mhz"):
        check_report({**rep, "fmax_mhz": "fast"})


def test_ice40_lut_ff_split_from_log():
    b = BOARDS["icebreaker"]
    log = """Info: Packing LUT-FFs..
Info:     1499 LCs used as LUT4 only
Info:      474 LCs used as LUT4 and DFF
Info: Packing non-LUT FFs..
Info:     1183 LCs used as DFF only
Info:      234 LCs used as CARRY only
Info:       51 LUTs merged into carry LCs
"""  # from a real nextpnr-ice40 0.11 log
    parsed = parse_nextpnr_report(_fake_report(b, 40.0, 30.0), b, log)
    assert parsed["resources"]["luts"][0] == 1499 + 474 + 51
    assert parsed["resources"]["ffs"][0] == 474 + 1183


def test_lut_multiplier_is_exact():
    a, b, y = Signal(signed(8)), Signal(signed(8)), Signal(signed(16))
    m = Module()
    m.d.comb += y.eq(lut_mul_s8(a, b))
    vals = list(range(-128, 128))
    bad = []

    async def bench(ctx):
        for av in vals:
            for bv in (-128, -127, -1, 0, 1, 2, 85, 127, av):
                ctx.set(a, av)
                ctx.set(b, bv)
                if ctx.get(y) != av * bv:
                    bad.append((av, bv, ctx.get(y)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]


@pytest.mark.parametrize("pipe", [True, False], ids=["pipeline-regs", "no-pipeline-regs"])
def test_array_with_lut_pes_matches_numpy(pipe):
    """A 4x4 array where 11 of 16 PEs use LUT multipliers computes the same tile, with and
    without pipeline registers (3 * w is then a register per copy of the weight bus, or logic
    per column)."""

    R = C = 4
    dut = SystolicArray(R, C, 19, BuildOptions(dsp_pes=5, pipeline_regs=pipe))
    rng = np.random.default_rng(5)
    w = rng.integers(-128, 128, (R, C))
    a = rng.integers(-128, 128, (6, R))
    got = []

    async def bench(ctx):
        for r in range(R):
            ctx.set(dut.w_we, 1)
            ctx.set(dut.w_bank, 0)
            ctx.set(dut.w_row, r)
            ctx.set(dut.w_data, [int(x) for x in w[r]])
            await ctx.tick()
        ctx.set(dut.w_we, 0)
        for i in range(len(a) + dut.latency + 2):
            if i < len(a):
                ctx.set(dut.a_valid, 1)
                ctx.set(dut.a_bank, 0)
                ctx.set(dut.a_data, [int(x) for x in a[i]])
            else:
                ctx.set(dut.a_valid, 0)
            if ctx.get(dut.out_valid):
                got.append(list(ctx.get(dut.out_data)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert np.array_equal(np.array(got), a @ w)


def test_tiny_on_icebreaker_fits():
    """tiny (2x2) fits the UP5K: DSPs, block RAM, SPRAM and the logic estimate (docs/fpga.md)."""
    p = plan(BOARDS["icebreaker"], PRESETS["tiny"])
    assert (p.dsps, p.brams, p.sprams) == (8, 26, 2)
    where = {mu.name: mu.where for mu in p.memories}
    assert where["pb"] == where["host_ram"] == "spram"
    assert where["act0"] == where["act1"] == "bram"
    assert not p.problems, p.problems
    assert p.est_luts <= BOARDS["icebreaker"].resources.luts


def test_single_port_ram_becomes_spram_only_when_named():
    from amaranth.back import rtlil
    from sushi_hw.spram import SinglePortRam

    opts = BuildOptions(spram=frozenset({"pb"}))
    pb = rtlil.convert(SinglePortRam("pb", 32, 4096, opts=opts))
    assert pb.count("SB_SPRAM256KA") == 2
    other = rtlil.convert(SinglePortRam("act0", 32, 1024, opts=opts))
    assert "SB_SPRAM256KA" not in other


def test_single_port_ram_simulates_like_a_ram():
    from sushi_hw.spram import SinglePortRam

    dut = SinglePortRam("x", 16, 64)
    got = []

    async def bench(ctx):
        for a in range(8):
            ctx.set(dut.addr, a)
            ctx.set(dut.we, 1)
            ctx.set(dut.wdata, 1000 + a)
            await ctx.tick()
        ctx.set(dut.we, 0)
        ctx.set(dut.en, 1)
        for a in (3, 0, 7):
            ctx.set(dut.addr, a)
            await ctx.tick()
            got.append(ctx.get(dut.rdata))
        ctx.set(dut.en, 0)  # data holds while not reading
        ctx.set(dut.addr, 1)
        await ctx.tick()
        got.append(ctx.get(dut.rdata))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [1003, 1000, 1007, 1007]


def test_nextpnr_options_follow_the_board_and_replace_by_name():
    import dataclasses

    from sushi_hw.fpga.flow import nextpnr_options

    board = dataclasses.replace(
        BOARDS["ulx3s"], nextpnr_opts={"big": ("--router", "router2", "--placer-heap-beta", "0.6")}
    )
    assert nextpnr_options(board, "big") == ["--router", "router2", "--placer-heap-beta", "0.6"]
    assert nextpnr_options(board, "small", ["--seed", "3"]) == ["--seed", "3"]
    # a repeated option would make nextpnr stop: the user's replaces the board's
    assert nextpnr_options(board, "big", ["--router", "router1", "--tmg-ripup"]) == [
        "--placer-heap-beta",
        "0.6",
        "--router",
        "router1",
        "--tmg-ripup",
    ]
    assert nextpnr_options(board, "big", ["--placer-heap-beta=0.8"]) == [
        "--router",
        "router2",
        "--placer-heap-beta=0.8",
    ]


def test_board_clock_follows_the_config_and_needs_a_pll_setting(capsys):
    p = plan(BOARDS["ulx3s"], make_config("large", clock_mhz=50.0))
    assert not p.problems  # the ULX3S has PLL settings for 50, 75 and 100 MHz
    with pytest.raises(
        FitError, match=r"clock: board ulx3s: no PLL setting for 66 MHz \(have 50, 75, 100"
    ):
        check_fit(BOARDS["ulx3s"], make_config("large", clock_mhz=66.0))
    assert main(["bitstream", "--board", "ulx3s", "--set", "clock_mhz=66", "--check-only"]) == 2
    assert "no PLL setting for 66 MHz" in capsys.readouterr().err


def test_a_tool_run_that_does_not_finish_is_stopped_with_its_log(tmp_path):
    """nextpnr's router has no limit of its own; the flow stops the whole process group."""
    import time

    from sushi_hw.fpga.flow import ToolError, run_script

    script = tmp_path / "tools.sh"
    # a child that outlives its shell if only the shell were killed
    script.write_text("echo routing; sleep 30 & wait\n")
    t0 = time.time()
    with pytest.raises(ToolError, match=r"stopped after 0.02 min \(--timeout\).*\n.*routing"):
        run_script(["sh", str(script)], tmp_path, {"PATH": "/usr/bin:/bin"}, tmp_path / "l", 0.02)
    assert time.time() - t0 < 10
    script.write_text("echo bad; exit 3\n")
    with pytest.raises(ToolError, match=r"failed \(exit 3\).*\n.*bad"):
        run_script(["sh", str(script)], tmp_path, {"PATH": "/usr/bin:/bin"}, tmp_path / "l", 1)
    script.write_text("echo fine\n")
    run_script(["sh", str(script)], tmp_path, {"PATH": "/usr/bin:/bin"}, tmp_path / "l", 1)
    assert (tmp_path / "l").read_text() == "fine\n"
