"""The memory watchdog: a memory that stops answering halts the program instead of hanging it.

The memory owes the core an answer while read beats it accepted a request for have not all
arrived, or while a request or a write beat waits for its ``ready``. Every cycle in which it
owes one and nothing crosses the port counts; any handshake (or read data offered and held
back by the core) restarts the count. ``timeout`` rises after ``limit`` such cycles in a row,
and the sequencer halts with ``ErrorCode.MEM_TIMEOUT`` (:mod:`.sequencer`). A computation that
uses no memory (a GEMM from the PB) owes nothing, so it never counts.

The read beats still owed when the command is abandoned (``clear``) are **stale**: the memory
may still deliver them, later, and reads return in order, so they are the next beats to come.
``draining`` is high until they have all arrived; the core drains them meanwhile, so that a
program started before they are in (the next doorbell comes when it likes) never takes them
for its own data. Stale beats are progress (the memory answers), but nothing the program owes.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import AccelConfig
from .dma import issue_widths
from .mem_port import MEM_BEATS_BITS


def outstanding_bits(cfg: AccelConfig) -> int:
    """Width of the count of read beats owed: the longest transfer (a buffer's worth of
    beats, :func:`.dma.issue_widths`) plus the weight prefetch's requests, with margin."""
    return max(issue_widths(cfg)[1], MEM_BEATS_BITS) + 2


class MemWatchdog(wiring.Component):
    """Watches the memory port's handshakes (all inputs but ``draining``: it only listens).
    ``clear`` (the doorbell, or the abort after a timeout) turns the read beats owed into
    stale ones; ``draining``: the next read beat is stale (module doc)."""

    def __init__(self, cfg: AccelConfig, limit: int):
        if limit < 2:
            self._MustUse__silence = True
            raise ValueError(f"watchdog limit must be >= 2 cycles, got {limit}")
        self.cfg, self.limit = cfg, limit
        super().__init__(
            {
                "req_valid": In(1),
                "req_ready": In(1),
                "req_write": In(1),
                "req_beats": In(MEM_BEATS_BITS),
                "rdata_valid": In(1),
                "rdata_ready": In(1),
                "wdata_valid": In(1),
                "wdata_ready": In(1),
                "clear": In(1),
                "timeout": Out(1),
                "draining": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        bits = outstanding_bits(self.cfg)
        owed = Signal(bits)  # read beats requested, not yet received
        stale = Signal(bits + 1)  # read beats an abandoned command still has coming
        timer = Signal(range(self.limit + 1))
        req = self.req_valid & self.req_ready
        beat = self.rdata_valid & self.rdata_ready
        read_req = req & ~self.req_write
        m.d.comb += self.draining.eq(stale != 0)
        own = beat & ~self.draining  # a beat of the running program's
        owed_next = Signal(bits)
        m.d.comb += owed_next.eq(owed + Mux(read_req, self.req_beats, 0) - own)
        stale_next = Signal(bits + 1)
        m.d.comb += stale_next.eq(stale - (beat & self.draining))
        with m.If(self.clear):
            m.d.sync += [owed.eq(0), stale.eq(stale_next + owed_next)]
        with m.Else():
            m.d.sync += [owed.eq(owed_next), stale.eq(stale_next)]

        progress = req | beat | (self.wdata_valid & self.wdata_ready) | self.rdata_valid
        waiting = (owed != 0) | self.req_valid | self.wdata_valid
        with m.If(self.clear | progress | ~waiting):
            m.d.sync += timer.eq(0)
        # compares, not equality: no state of the counter (reachable or not) escapes them
        with m.Elif(timer < self.limit):
            m.d.sync += timer.eq(timer + 1)
        m.d.comb += self.timeout.eq(timer >= self.limit)
        return m
