"""A board top for ``sushi_axi`` alone: its resources and Fmax on an FPGA, without a SoC.

``sushi_axi`` (:class:`sushi_hw.axi.top.SushiAxi`) has 147 input and 236 output port bits on
``default`` (an AXI4 master and an AXI4-Lite slave), more than a board has pins. So every
port is registered at the boundary and reached through two scan chains (:class:`ScanWrap`):

* every input bit is a flip-flop of a shift register fed from one pin (``si``), so no input is
  a constant and synthesis can remove nothing behind it;
* every output bit goes into a flip-flop of a second shift register, which loads them all
  while ``capture`` is high and otherwise shifts them out on one pin (``so``), so every output
  is observed.

Each port is then driven from a register and ends in one, as behind AXI register slices in a
SoC: nextpnr times everything inside ``sushi_axi`` from register to register, and no path of
the wrapper's own (a flip-flop per port bit, a 2:1 mux per output bit) is longer than one
LUT. The wrapper is not a way to use the IP on the board (docs/axi.md: the IP is for an SoC
whose AXI interconnect it joins); it is how its cost is measured.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from ..axi.top import SushiAxi
from ..build_options import SIMULATION, BuildOptions
from ..config import AccelConfig


def port_bits(dut: wiring.Component) -> tuple[list[Signal], list[Signal]]:
    """The input and output port signals of ``dut`` (flattened signature members)."""
    ins, outs = [], []
    for _, member, value in dut.signature.flatten(dut):
        (ins if member.flow == In else outs).append(value)
    return ins, outs


class ScanWrap(wiring.Component):
    """``dut``'s ports through two scan chains: ``si`` shifts into the input register every
    cycle; ``capture`` loads the output register from ``dut``'s outputs, else it shifts out
    on ``so``. ``in_bits`` / ``out_bits`` are the chains' lengths."""

    def __init__(self, dut: wiring.Component):
        self.dut = dut
        ins, outs = port_bits(dut)
        self.in_bits = sum(len(v) for v in ins)
        self.out_bits = sum(len(v) for v in outs)
        super().__init__({"si": In(1), "capture": In(1), "so": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.dut
        ins, outs = port_bits(dut)
        # both chains are data: no reset (the reset net stays the design's own)
        chain_in = Signal(self.in_bits, reset_less=True)
        chain_out = Signal(self.out_bits, reset_less=True)
        m.d.sync += chain_in.eq(Cat(self.si, chain_in[:-1]))
        at = 0
        for v in ins:
            m.d.comb += v.eq(chain_in[at : at + len(v)])
            at += len(v)
        with m.If(self.capture):
            m.d.sync += chain_out.eq(Cat(*outs))
        with m.Else():
            m.d.sync += chain_out.eq(chain_out[1:])
        m.d.comb += self.so.eq(chain_out[0])
        return m


class AxiBoardTop(Elaboratable):
    """``sushi_axi`` of ``cfg`` (built with ``opts``) in a :class:`ScanWrap`, with the board's
    PLL at ``cfg.clock_mhz`` and its reset held until the PLL locks. Pins: ``si`` on the
    UART's receive pin, ``so`` on its transmit pin, ``capture`` on fire button 0 (on the
    iCEBreaker: button 0), ``irq`` on LED 0."""

    def __init__(self, board, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.board, self.cfg, self.opts = board, cfg, opts

    def wrapper(self) -> ScanWrap:
        """The platform-independent part (what a test elaborates)."""
        return ScanWrap(SushiAxi(self.cfg, self.opts))

    def elaborate(self, platform) -> Module:
        from .clocks import PllClock

        m = Module()
        b = self.board
        m.domains.sync = ClockDomain("sync")  # driven by the PLL
        m.submodules.clk = PllClock(b, self.cfg.clock_mhz)
        m.submodules.wrap = wrap = self.wrapper()

        def buf(name: str, resource, direction: str) -> io.Buffer:
            m.submodules[name] = bf = io.Buffer(direction, resource)
            return bf

        uart = platform.request("uart", 0, dir="-")
        si, so = buf("pin_si", uart.rx, "i"), buf("pin_so", uart.tx, "o")
        button = "button_fire" if b.family == "ecp5" else "button"
        capture = buf("pin_capture", platform.request(button, 0, dir="-"), "i")
        irq = buf("pin_irq", platform.request("led", 0, dir="-"), "o")
        m.d.comb += [
            wrap.si.eq(si.i),
            so.o.eq(wrap.so),
            wrap.capture.eq(capture.i),
            irq.o.eq(wrap.dut.irq),
        ]
        if b.family == "ecp5":
            m.d.comb += buf("pin_uart_tx_en", platform.request("uart_tx_enable", 0, dir="-"),
                            "o").o.eq(1)  # fmt: skip
        return m
