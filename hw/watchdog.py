"""The memory watchdog: a memory that stops answering halts the program instead of hanging it.

The memory owes the core an answer while read beats it accepted a request for have not all
arrived, or while a request or a write beat waits for its ``ready``. Every cycle in which it
owes one and nothing crosses the port counts; any handshake (or read data offered and held
back by the core) restarts the count. ``timeout`` rises after ``limit`` such cycles in a row,
and the sequencer halts with ``ErrorCode.MEM_TIMEOUT`` (:mod:`.sequencer`). A computation that
uses no memory (a GEMM from the PB) owes nothing, so it never counts.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
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
    """Watches the memory port's handshakes (all inputs: it only listens). ``clear`` (the
    doorbell, or the abort after a timeout) forgets what was owed."""

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
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        owed = Signal(outstanding_bits(self.cfg))  # read beats requested, not yet received
        timer = Signal(range(self.limit + 1))
        req = self.req_valid & self.req_ready
        beat = self.rdata_valid & self.rdata_ready
        read_req = req & ~self.req_write
        with m.If(self.clear):
            m.d.sync += owed.eq(0)
        with m.Elif(read_req):
            m.d.sync += owed.eq(owed + self.req_beats - beat)
        with m.Elif(beat):
            m.d.sync += owed.eq(owed - 1)

        progress = req | beat | (self.wdata_valid & self.wdata_ready) | self.rdata_valid
        waiting = (owed != 0) | self.req_valid | self.wdata_valid
        with m.If(self.clear | progress | ~waiting):
            m.d.sync += timer.eq(0)
        # compares, not equality: no state of the counter (reachable or not) escapes them
        with m.Elif(timer < self.limit):
            m.d.sync += timer.eq(timer + 1)
        m.d.comb += self.timeout.eq(timer >= self.limit)
        return m
