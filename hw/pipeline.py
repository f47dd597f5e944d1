"""Registers that exist for clock speed: the platform switch and a stream register slice.

On the ECP5 at 100 MHz a block RAM's clock-to-out alone is 5.8 ns, and a valid/ready handshake
that runs through several components (the accelerator's state -> ``rdata.ready`` -> the
interconnect -> the RAM's enables) does not fit a period. On the iCE40 at 30 MHz both fit, and
the flip-flops would be logic cells the UP5K does not have, so the iCE40 flow turns these
registers off (platform attribute :data:`PIPELINE_REGS_ATTR`). Simulation keeps them.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

#: platform attribute: False drops the registers that are there for the ECP5's clock (after
#: block RAM reads; stream register slices); absent, they are kept
PIPELINE_REGS_ATTR = "sushi_pipeline_regs"


def pipeline_regs(platform) -> bool:
    return bool(getattr(platform, PIPELINE_REGS_ATTR, True))


class StreamRegister(wiring.Component):
    """A register slice (skid buffer) for a valid/ready stream: ``o.valid``, ``o.payload`` and
    ``i.ready`` are flip-flops, so neither side's handshake logic reaches the other's. Full
    throughput; one cycle of latency."""

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.o.payload)
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(self.o.ready | ~self.o.valid):  # the output register is free this cycle
            m.d.sync += [
                self.o.valid.eq(skid_valid | take),
                self.o.payload.eq(Mux(skid_valid, skid, self.i.payload)),
                skid_valid.eq(0),
            ]
        with m.Elif(take):  # the output is stalled: the word waits in the skid register
            m.d.sync += [skid_valid.eq(1), skid.eq(self.i.payload)]
        return m
