"""The AXI board top (``sushi bitstream --top axi``): sushi_axi with its ports through scan
chains elaborates for the ULX3S, and the chains reach every port bit in order."""

from __future__ import annotations

import random

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from sushi_hw.axi.top import SushiAxi
from sushi_hw.config import PRESETS
from sushi_hw.fpga.axi_board import AxiBoardTop, ScanWrap, port_bits
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.fpga.fit import check_fit


class _Dut(wiring.Component):
    """Two inputs and two outputs: a = x + y (registered), b = ~x."""

    def __init__(self):
        super().__init__({"x": In(3), "y": In(2), "a": Out(4), "b": Out(3)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.d.sync += self.a.eq(self.x + self.y)
        m.d.comb += self.b.eq(~self.x)
        return m


def test_scan_chains_drive_every_input_and_observe_every_output():
    rng = random.Random(3)
    wrap = ScanWrap(_Dut())
    assert (wrap.in_bits, wrap.out_bits) == (5, 7)
    bits = [rng.randint(0, 1) for _ in range(40)]
    seen: list[tuple[int, int, int]] = []  # (x, y, so bits shifted out after a capture)

    async def bench(ctx):
        for i, b in enumerate(bits):
            ctx.set(wrap.si, b)
            await ctx.tick()
            if i >= 4:  # the input chain holds the last five bits, the newest at bit 0
                x, y = ctx.get(wrap.dut.x), ctx.get(wrap.dut.y)
                want = sum(bits[i - j] << j for j in range(5))
                assert x | y << 3 == want, f"after bit {i}: inputs {x}, {y}"
        x, y = ctx.get(wrap.dut.x), ctx.get(wrap.dut.y)
        await ctx.tick()  # a = x + y registers
        ctx.set(wrap.capture, 1)
        a, b = ctx.get(wrap.dut.a), ctx.get(wrap.dut.b)
        await ctx.tick()
        ctx.set(wrap.capture, 0)
        out = 0
        for j in range(7):
            out |= ctx.get(wrap.so) << j
            await ctx.tick()
        seen.append((a | b << 4, out, (x + y) & 15))

    sim = Simulator(wrap)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    ((want, got, sum_xy),) = seen
    assert got == want and want & 15 == sum_xy


def test_axi_board_top_elaborates_for_the_ulx3s(tmp_path):
    """The ULX3S default build's top: every sushi_axi port bit on a chain, the pins exist."""
    board, cfg = BOARDS["ulx3s"], PRESETS["default"]
    opts = check_fit(board, cfg, host=False).build_options()
    top = AxiBoardTop(board, cfg, opts)
    wrap = top.wrapper()
    wrap._MustUse__silence = wrap.dut._MustUse__silence = True  # counted, not elaborated
    ins, outs = port_bits(wrap.dut)
    assert isinstance(wrap.dut, SushiAxi)
    assert (wrap.in_bits, wrap.out_bits) == (sum(map(len, ins)), sum(map(len, outs)))
    plan = board.platform().prepare(top, "sushi_ulx3s_axi")
    plan.extract(str(tmp_path))
    rtlil = (tmp_path / "sushi_ulx3s_axi.il").read_text()
    assert "EHXPLLL" in rtlil
    assert "chain_in" in rtlil and "chain_out" in rtlil and "im2col" in rtlil
