"""Simulation model of off-chip memory behind the memory port, written in HDL.

Latency, bandwidth and random stalls are run-time inputs, so one simulator build covers every
memory setting. Requests are accepted into a queue stamped with ``now + latency``; a request is
served once its stamp has passed, one beat whenever the bandwidth token bucket holds a full beat
and the LFSR does not stall. Reads return in order; write data is consumed at the same rate.
The host loads and reads the contents through the simulator (VPI) while the memory is idle
(``busy`` low): the array is :data:`STORE`, one ``mem_width`` word per entry.

Fault injection (``hang_en``): a memory that stops answering. The first request whose bytes
cover ``hang_addr`` is accepted but never served, and neither is anything after it (no read
beat, no write beat taken, the request queue fills) until ``hang_en`` falls or a reset. The
requests before it are served as usual, so the hang lands at a chosen point of a program (the
fetch of one of its commands, say).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import AccelConfig
from .mem_port import MEM_BEATS_BITS, MemReq, mem_port_signature

#: name of the memory array in the generated Verilog (the host's backdoor)
STORE = "store"


class SimMemory(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        self.words = cfg.mem_bytes // cfg.mem_width
        super().__init__(
            {
                "port": In(mem_port_signature(cfg)),  # the memory's side of the port
                "latency": In(16),  # cycles from request accepted to its first beat
                "bytes_per_cycle": In(range(cfg.mem_width + 1)),
                "stall_prob": In(8),  # a beat is held back with probability stall_prob/256
                "seed": In(16),
                "seed_load": In(1),
                "busy": Out(1),
                "hang_en": In(1),
                "hang_addr": In(32),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        W = cfg.mem_width
        lw = W.bit_length() - 1
        m.submodules[STORE] = store = Memory(shape=unsigned(8 * W), depth=self.words, init=[])
        wp = store.write_port()
        rp = store.read_port()

        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        # request queue, stamped with the cycle it may start
        entry = data.StructLayout({"req": MemReq, "due": unsigned(32)})
        m.submodules.reqq = reqq = fifo.SyncFIFOBuffered(width=entry.size, depth=8)
        in_entry = Signal(entry)
        m.d.comb += [
            in_entry.req.eq(self.port.req.payload),
            in_entry.due.eq(now + self.latency),
            reqq.w_en.eq(self.port.req.valid),
            reqq.w_data.eq(in_entry),
            self.port.req.ready.eq(reqq.w_rdy),
        ]
        head = data.View(entry, reqq.r_data)
        since_due = Signal(32)  # wraps; bit 31 set means "not yet"
        m.d.comb += since_due.eq(now - head.due)

        # bandwidth tokens and random stalls
        tokens = Signal(range(2 * W + 1))
        lfsr = Signal(16, init=0xACE1)
        with m.If(self.seed_load):
            m.d.sync += lfsr.eq(self.seed | 1)
        with m.Else():
            m.d.sync += lfsr.eq((lfsr >> 1) ^ Mux(lfsr[0], 0xB400, 0))
        stalled = lfsr[:8] < self.stall_prob

        # response queue: reads are issued only when a slot is guaranteed. Depth 8: a beat takes
        # about 4 cycles from issue to the reader, so at one beat per cycle (bytes_per_cycle ==
        # mem_width) up to 4 are in flight; a depth of 4 (3 in flight) capped such a port at 3/4
        # of its configured bandwidth (measured: zcu104, 16 of 16 B/cycle, gave 11.9)
        m.submodules.respq = respq = fifo.SyncFIFOBuffered(width=8 * W, depth=8)
        rd_pending = Signal()
        m.d.sync += rd_pending.eq(0)
        m.d.comb += [
            self.port.rdata.valid.eq(respq.r_rdy),
            self.port.rdata.payload.eq(respq.r_data),
            respq.r_en.eq(self.port.rdata.ready),
            respq.w_en.eq(rd_pending),
            respq.w_data.eq(rp.data),
        ]

        active = Signal()
        cur = Signal(MemReq)
        left = Signal(MEM_BEATS_BITS)
        word = Signal(range(self.words))
        can_beat = (tokens >= W) & ~stalled
        beat = Signal()
        # the hang: the head request covers hang_addr (addresses in beats, an inclusive range)
        head_first = head.req.addr >> lw
        hang_beat = self.hang_addr >> lw
        hits = (
            self.hang_en
            & (head.req.beats != 0)
            & (head_first <= hang_beat)
            & (hang_beat < head_first + head.req.beats)
        )
        with m.If(~active):
            m.d.comb += reqq.r_en.eq(reqq.r_rdy & ~since_due[31] & ~hits)
            with m.If(reqq.r_en):
                m.d.sync += [
                    active.eq(head.req.beats != 0),
                    cur.eq(head.req),
                    left.eq(head.req.beats),
                    word.eq(head.req.addr >> lw),
                ]
        with m.Else():
            with m.If(cur.write):
                m.d.comb += [
                    self.port.wdata.ready.eq(can_beat),
                    beat.eq(can_beat & self.port.wdata.valid),
                    wp.en.eq(beat),
                    wp.addr.eq(word),
                    wp.data.eq(self.port.wdata.payload),
                ]
            with m.Else():
                room = respq.level + rd_pending < respq.depth - 1
                m.d.comb += [beat.eq(can_beat & room), rp.en.eq(1), rp.addr.eq(word)]
                m.d.sync += rd_pending.eq(beat)
            with m.If(beat):
                m.d.sync += [word.eq(word + 1), left.eq(left - 1)]
                with m.If(left == 1):
                    m.d.sync += active.eq(0)

        refill = tokens + self.bytes_per_cycle
        capped = Signal.like(tokens)
        m.d.comb += capped.eq(refill)
        with m.If(refill > 2 * W):
            m.d.comb += capped.eq(2 * W)
        m.d.sync += tokens.eq(capped - (beat * W))

        m.d.comb += self.busy.eq(active | reqq.r_rdy | respq.r_rdy)
        return m
