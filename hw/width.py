"""Stream width conversion between power-of-two byte widths (little-endian, no gaps)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class WidthConverter(wiring.Component):
    """``i`` beats of ``in_bytes`` -> ``o`` beats of ``out_bytes``; full throughput.

    Splitting emits the low bytes first; gathering puts the first beat in the low bytes. The
    total byte count must be a multiple of the larger width (the ISA checks that).
    """

    def __init__(self, in_bytes: int, out_bytes: int):
        self.in_bytes, self.out_bytes = in_bytes, out_bytes
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(8 * in_bytes))),
                "o": Out(stream.Signature(unsigned(8 * out_bytes))),
                "clear": In(1),  # drop any partial state (between transfers)
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        ib, ob = 8 * self.in_bytes, 8 * self.out_bytes
        if ib == ob:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
            return m
        if ib > ob:
            ratio = ib // ob
            buf = Signal(ib)
            left = Signal(range(ratio + 1))
            m.d.comb += [
                self.o.valid.eq(left != 0),
                self.o.payload.eq(buf[:ob]),
                self.i.ready.eq((left == 0) | ((left == 1) & self.o.ready)),
            ]
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [buf.eq(self.i.payload), left.eq(ratio)]
            with m.Elif(self.o.valid & self.o.ready):
                m.d.sync += [buf.eq(buf >> ob), left.eq(left - 1)]
        else:
            ratio = ob // ib
            buf = Signal(ob)
            have = Signal(range(ratio + 1))
            full = have == ratio
            m.d.comb += [
                self.o.valid.eq(full),
                self.o.payload.eq(buf),
                self.i.ready.eq(~full | self.o.ready),
            ]
            shifted_in = (buf >> ib) | (self.i.payload << (ob - ib))
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += buf.eq(shifted_in)
                with m.If(full):
                    m.d.sync += have.eq(1)
                with m.Else():
                    m.d.sync += have.eq(have + 1)
            with m.Elif(self.o.valid & self.o.ready):
                m.d.sync += have.eq(0)
        with m.If(self.clear):
            m.d.sync += (left if ib > ob else have).eq(0)
        return m
