"""The ``sync`` clock domain of a board top, from the board's PLL.

The reset of ``sync`` is held while the PLL is not locked (and while ``ext_rst`` is high), then
released synchronously. nextpnr derives the PLL output's clock constraint from the input
clock's, so it reports Fmax for ``sync``.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from .boards import Board


class PllClock(Elaboratable):
    """Drives domain ``sync`` (defined by the parent, the board top) at ``mhz`` from
    ``board``'s input clock through its PLL."""

    def __init__(self, board: Board, mhz: float):
        self.board = board
        self.setting = board.pll(mhz)
        self.ext_rst = Signal()

    def elaborate(self, platform) -> Module:
        m = Module()
        b, p = self.board, self.setting.params
        pll_out, locked = Signal(), Signal()
        m.d.comb += ClockSignal("sync").eq(pll_out)
        if b.family == "ice40":
            clk_pin = platform.request(platform.default_clk, dir="-")
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=p["DIVR"],
                p_DIVF=p["DIVF"],
                p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                i_PACKAGEPIN=clk_pin.io,
                i_RESETB=1,
                i_BYPASS=0,
                o_PLLOUTGLOBAL=pll_out,
                o_LOCK=locked,
            )
        elif b.family == "ecp5":
            m.submodules.clk_buf = clk_buf = io.Buffer(
                "i", platform.request(platform.default_clk, dir="-")
            )
            clk_in = clk_buf.i
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{b.clock_in_mhz:g}",
                a_FREQUENCY_PIN_CLKOP=f"{self.setting.out_mhz:g}",
                a_ICP_CURRENT="12",
                a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC",
                p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p["CLKI_DIV"],
                p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
                p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=p["CLKFB_DIV"],
                i_RST=0,
                i_STDBY=0,
                i_CLKI=clk_in,
                i_CLKFB=ClockSignal("sync"),
                i_PHASESEL0=0,
                i_PHASESEL1=0,
                i_PHASEDIR=1,
                i_PHASESTEP=1,
                i_PHASELOADREG=1,
                i_PLLWAKESYNC=0,
                i_ENCLKOP=0,
                o_CLKOP=pll_out,
                o_LOCK=locked,
            )
        else:  # pragma: no cover - the registry only has the two families
            raise ValueError(f"no PLL for family {b.family!r}")
        # nextpnr derives the PLL output's constraint from the input pin's (the board file
        # constrains it); an explicit one would name a net Yosys may have renamed.
        m.submodules.rst_sync = ResetSynchronizer(~locked | self.ext_rst, domain="sync")
        return m
