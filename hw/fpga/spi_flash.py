"""SPI flash as the read side of the memory port (weights live in the board's flash).

A read burst becomes one FAST READ (0x0B, 24-bit address, 8 dummy clocks) that streams
``beats * mem_width`` bytes, packed little-endian into beats (the byte at the lower address in
the low bits). SCLK is ``clk / (2 * half_period)``, mode 0; when the accelerator does not take
a beat the clock pauses, which SPI flash allows. Write bursts are consumed and dropped and set
``write_error``: the flash is programmed with the board's programmer (docs/fpga.md).

After reset the controller sends RELEASE POWER-DOWN (0xAB) and waits ``wake_cycles`` (tRES1,
3 us on common parts) before it accepts requests.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from sushi_hw.config import AccelConfig
from sushi_hw.mem_port import mem_port_signature

CMD_FAST_READ = 0x0B
CMD_RELEASE_PD = 0xAB


class SPIFlashReader(wiring.Component):
    def __init__(
        self,
        cfg: AccelConfig,
        *,
        flash_offset: int = 0,
        half_period: int = 1,
        wake_cycles: int = 100,
    ):
        if half_period < 1:
            raise ValueError("half_period must be >= 1 cycle")
        if not 0 <= flash_offset < (1 << 24):
            raise ValueError("flash_offset must be a 24-bit byte offset")
        self.cfg = cfg
        self.flash_offset, self.half, self.wake_cycles = flash_offset, half_period, wake_cycles
        super().__init__(
            {
                "bus": In(mem_port_signature(cfg)),
                "sclk": Out(1),
                "cs_n": Out(1, init=1),
                "copi": Out(1),
                "cipo": In(1),
                "write_error": Out(1),
                "ready": Out(1),  # woken up, accepting requests
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        mw = self.cfg.mem_width
        half = Signal(range(self.half + 1))
        tick = Signal()  # one SCLK half period elapsed
        m.d.comb += tick.eq(half == self.half - 1)

        shift_out = Signal(40)
        bits = Signal(range(41))  # bits left in this phase
        rx = Signal(8 * mw)
        rx_bits = Signal(range(8 * mw + 1))
        byte_sr = Signal(8)
        left = Signal(17)
        wait = Signal(range(max(2, self.wake_cycles + 1)))
        m.d.comb += self.copi.eq(shift_out[39])

        # a beat waiting for the accelerator
        out_valid = Signal()
        out_data = Signal(8 * mw)
        m.d.comb += [self.bus.rdata.valid.eq(out_valid), self.bus.rdata.payload.eq(out_data)]
        with m.If(self.bus.rdata.valid & self.bus.rdata.ready):
            m.d.sync += out_valid.eq(0)

        def clocking(on_rise, on_fall):
            """Run SCLK; ``on_rise``/``on_fall`` add the statements of each edge."""
            m.d.sync += half.eq(Mux(tick, 0, half + 1))
            with m.If(tick):
                m.d.sync += self.sclk.eq(~self.sclk)
                with m.If(~self.sclk):
                    on_rise()
                with m.Else():
                    on_fall()

        with m.FSM():
            with m.State("RESET"):
                m.d.sync += [
                    self.cs_n.eq(0),
                    shift_out.eq(CMD_RELEASE_PD << 32),
                    bits.eq(8),
                    half.eq(0),
                    self.sclk.eq(0),
                ]
                m.next = "WAKE_SEND"
            with m.State("WAKE_SEND"):

                def rise():
                    m.d.sync += bits.eq(bits - 1)

                def fall():
                    m.d.sync += shift_out.eq(shift_out << 1)
                    with m.If(bits == 0):
                        m.d.sync += [self.cs_n.eq(1), wait.eq(self.wake_cycles)]
                        m.next = "WAKE_WAIT"

                clocking(rise, fall)
            with m.State("WAKE_WAIT"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "IDLE"
            with m.State("IDLE"):
                m.d.comb += [self.ready.eq(1), self.bus.req.ready.eq(~out_valid)]
                with m.If(self.bus.req.valid & self.bus.req.ready):
                    p = self.bus.req.payload
                    m.d.sync += left.eq(p.beats)
                    with m.If(p.write):
                        m.d.sync += self.write_error.eq(1)
                        m.next = "DROP"
                    with m.Elif(p.beats != 0):
                        faddr = (p.addr + self.flash_offset)[:24]
                        m.d.sync += [
                            self.cs_n.eq(0),
                            shift_out.eq((CMD_FAST_READ << 32) | (faddr << 8)),
                            bits.eq(40),  # command, address, 8 dummy clocks
                            half.eq(0),
                            self.sclk.eq(0),
                            rx_bits.eq(0),
                        ]
                        m.next = "SEND"
            with m.State("DROP"):
                m.d.comb += self.bus.wdata.ready.eq(1)
                with m.If(self.bus.wdata.valid):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "IDLE"
            with m.State("SEND"):

                def rise():
                    m.d.sync += bits.eq(bits - 1)

                def fall():
                    m.d.sync += shift_out.eq(shift_out << 1)
                    with m.If(bits == 0):
                        m.next = "RECV"

                clocking(rise, fall)
            with m.State("RECV"):

                def rise():
                    # bytes arrive MSB first; byte i of the word ends in bits [8i, 8i+8)
                    nb = Cat(self.cipo, byte_sr[:7])
                    m.d.sync += [byte_sr.eq(nb), rx_bits.eq(rx_bits + 1)]
                    with m.If(rx_bits[:3] == 7):
                        m.d.sync += rx.eq((rx >> 8) | (nb << (8 * (mw - 1))))

                with m.If((rx_bits == 8 * mw) & ~self.sclk):
                    # a whole word and SCLK low: hand it over, or pause the clock until we can
                    with m.If(~out_valid):
                        m.d.sync += [out_valid.eq(1), out_data.eq(rx), rx_bits.eq(0)]
                        m.d.sync += left.eq(left - 1)
                        with m.If(left == 1):
                            m.d.sync += [self.cs_n.eq(1), wait.eq(3)]
                            m.next = "GAP"
                with m.Else():
                    clocking(rise, lambda: None)
            with m.State("GAP"):  # CS high time between commands
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "IDLE"
        return m
