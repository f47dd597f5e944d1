"""Registers that exist for clock speed: the platform switch and a stream register slice.

On the ECP5 at 100 MHz a block RAM's clock-to-out alone is 5.8 ns, and a valid/ready handshake
that runs through several components (the accelerator's state -> ``rdata.ready`` -> the
interconnect -> the RAM's enables) does not fit a period. On the iCE40 at 30 MHz both fit, and
the flip-flops would be logic cells the UP5K does not have, so the iCE40 flow turns these
registers off (``BuildOptions.pipeline_regs``). Simulation keeps them.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out


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
        # the payload registers have no reset: only the valid bits say what they hold
        skid = Signal.like(self.o.payload, reset_less=True)
        payload = Signal.like(self.o.payload, reset_less=True)
        take = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(~skid_valid), self.o.payload.eq(payload)]
        with m.If(self.o.ready | ~self.o.valid):  # the output register is free this cycle
            m.d.sync += [
                self.o.valid.eq(skid_valid | take),
                payload.eq(Mux(skid_valid, skid, self.i.payload)),
                skid_valid.eq(0),
            ]
        with m.Elif(take):  # the output is stalled: the word waits in the skid register
            m.d.sync += [skid_valid.eq(1), skid.eq(self.i.payload)]
        return m


class HalfRateRegister(wiring.Component):
    """A one-word buffer for a slow stream: ``i.ready`` is "empty" and ``o.valid`` is "full",
    both the same flip-flop, so neither side's handshake logic reaches the other's, with nine
    fewer flip-flops than :class:`StreamRegister`. It passes at most a word every two cycles,
    which costs nothing on the UART host link (a byte takes hundreds of cycles on the line)."""

    def __init__(self, shape):
        self.shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform) -> Module:
        m = Module()
        word = Signal(self.shape, reset_less=True)  # data: no reset (``o.valid`` has one)
        m.d.comb += [self.i.ready.eq(~self.o.valid), self.o.payload.eq(word)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.valid.eq(1), word.eq(self.i.payload)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


class CreditedReadQueue(wiring.Component):
    """Reads of a synchronous RAM, queued: ``issue`` says a read was issued this cycle, and its
    word must be on ``data`` ``latency`` cycles later; the words leave through ``o``.

    Reads are issued only while ``room`` is high: a credit count of the queue's free entries
    less the reads in flight, a register, so the issuer decides on flip-flops (a level's adder
    and compare sat between the queue and the RAM's enables, an ECP5 critical path) and still
    streams a word per cycle if ``depth`` covers ``latency`` and the queue's own latency.
    ``drained``: nothing queued or in flight (a register too).
    """

    def __init__(self, width: int, depth: int, latency: int):
        if latency < 1:
            self._MustUse__silence = True  # never elaborated: no "unused" warning
            raise ValueError(f"read latency must be >= 1, got {latency}")
        self.width, self.depth, self.latency = width, depth, latency
        super().__init__(
            {
                "issue": In(1),
                "data": In(width),
                "room": Out(1),
                "drained": Out(1, init=1),
                "o": Out(stream.Signature(width)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        depth = self.depth
        m.submodules.q = q = fifo.SyncFIFOBuffered(width=self.width, depth=depth)
        pend = self.issue
        for i in range(self.latency):  # the read's word lands when its issue gets here
            d = Signal(name=f"pend{i + 1}")
            m.d.sync += d.eq(pend)
            pend = d
        credits = Signal(range(depth), init=depth - 1)
        credits_next = credits - self.issue + (q.r_en & q.r_rdy)
        m.d.sync += [credits.eq(credits_next), self.drained.eq(credits_next == depth - 1)]
        m.d.comb += [
            self.room.eq(credits != 0),
            q.w_en.eq(pend),
            q.w_data.eq(self.data),
            self.o.valid.eq(q.r_rdy),
            self.o.payload.eq(q.r_data),
            q.r_en.eq(self.o.ready),
        ]
        return m
