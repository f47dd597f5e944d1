"""BuildOptions: one value from the fit plan to the constructors and the design hash."""

from __future__ import annotations

import pytest
from sushi_hw.build_options import SIMULATION, BuildOptions
from sushi_hw.config import PRESETS
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.fpga.fit import plan
from sushi_hw.generate import TOPS, board_sim_options, design_hash


def test_icebreaker_plan_gives_the_ice40_build():
    p = plan(BOARDS["icebreaker"], PRESETS["tiny"])
    opts = p.build_options()
    assert opts.pipeline_regs is False  # 30 MHz: no registers for the ECP5's clock
    assert opts.shared_check_mul is True
    assert opts.spram == {"pb", "host_ram"}  # the plan's SPRAM placement
    assert opts.dsp_pes == p.array_dsp_pes
    assert not (opts.ecp5_dsp or opts.ecp5_bram)


def test_ulx3s_plan_gives_the_ecp5_build():
    p = plan(BOARDS["ulx3s"], PRESETS["large"])
    opts = p.build_options()
    assert opts.pipeline_regs and opts.ecp5_dsp and opts.ecp5_bram and opts.shared_check_mul
    assert opts.spram == frozenset()
    # large has more PEs than DSPs: the rest get LUT multipliers
    assert opts.dsp_pes == p.array_dsp_pes < PRESETS["large"].rows * PRESETS["large"].cols


def test_the_simulated_board_build_keeps_everything_but_vendor_primitives():
    cfg = PRESETS["tiny"]
    built = plan(BOARDS["icebreaker"], cfg).build_options()
    simulated = board_sim_options(cfg)
    assert simulated.spram == frozenset()
    assert (simulated.pipeline_regs, simulated.shared_check_mul, simulated.dsp_pes) == (
        built.pipeline_regs,
        built.shared_check_mul,
        built.dsp_pes,
    )


def test_options_are_part_of_the_design_hash():
    cfg = PRESETS["default"]
    hashes = {
        design_hash(cfg, "sushi_sim", o)
        for o in (SIMULATION, BuildOptions(pipeline_regs=False), BuildOptions(dsp_pes=3))
    }
    assert len(hashes) == 3
    assert design_hash(cfg, "sushi_sim", BuildOptions()) == design_hash(
        cfg, "sushi_sim", SIMULATION
    )
    assert TOPS["sushi_board"].default_options(PRESETS["tiny"]) == board_sim_options(
        PRESETS["tiny"]
    )


def test_dsp_pe_count_and_bad_values():
    assert SIMULATION.dsp_pe_count(64) == 64
    assert BuildOptions(dsp_pes=10).dsp_pe_count(64) == 10
    assert BuildOptions(dsp_pes=100).dsp_pe_count(64) == 64
    with pytest.raises(ValueError, match="dsp_pes"):
        BuildOptions(dsp_pes=-1)
    # a set is frozen and compares by content; the dict form is JSON-friendly
    assert BuildOptions(spram={"pb"}) == BuildOptions(spram=frozenset({"pb"}))
    assert BuildOptions(spram={"pb", "a"}).to_dict()["spram"] == ["a", "pb"]
