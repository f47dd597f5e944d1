"""The sequencer: which unit runs, their start/done handshakes, and the halt on an error.

One command at a time: FETCH it, DECODE and CHECK it, then run it (CACHE, LOAD, STORE or
GEMM) and move on (NEXT), or halt: done at DONE, error at the first failing check. After an
error it waits in HALT until the failed fetch's memory traffic has drained.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .check import ERR_SHAPE


class Sequencer(wiring.Component):
    """Outputs named after a state are high in that state (the owner of the shared data
    paths); ``*_start`` are high in the cycle before the unit runs."""

    def __init__(self):
        super().__init__(
            {
                "doorbell": In(1),
                "ring": Out(1),  # the doorbell rang in IDLE: a program starts
                "busy": Out(1),
                "done": Out(1),
                "error_code": Out(ERR_SHAPE),
                "op": In(4),  # the fetched command's opcode
                # command fetch
                "fetch_error": In(ERR_SHAPE),
                "fetch_start": Out(1),
                "fetch_data": Out(1),
                "fetch_done": In(1),
                "next": Out(1),
                # command check
                "decode": Out(1),
                "check_ready": In(1),
                "check_error": In(ERR_SHAPE),
                # DMA
                "dma_start": Out(1),
                "cache": Out(1),
                "load": Out(1),
                "store": Out(1),
                "dma_done": In(1),
                # GEMM: the descriptor to the core, then the weight feed and the core finish
                "gemm_start": Out(1),
                "gemm": Out(1),
                "core_valid": Out(1),
                "core_ready": In(1),
                "core_idle": In(1),
                "feed_done": In(1),
                # halt after an error: wait for the memory requests to drain
                "halt": Out(1),
                "issuer_busy": In(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        err = self.error_code
        core_started = Signal()  # the GEMM's descriptor has been taken

        with m.FSM(name="cp"):
            with m.State("IDLE"):
                with m.If(self.doorbell):
                    m.d.comb += self.ring.eq(1)
                    m.d.sync += [err.eq(0), self.done.eq(0), self.busy.eq(1)]
                    m.next = "FETCH"

            with m.State("FETCH"):
                with m.If(self.fetch_error != 0):
                    m.d.sync += err.eq(self.fetch_error)
                    m.next = "HALT"
                with m.Else():
                    m.d.comb += self.fetch_start.eq(1)
                    m.next = "FETCH_DATA"

            with m.State("FETCH_DATA"):
                m.d.comb += self.fetch_data.eq(1)
                with m.If(self.fetch_done):
                    m.next = "DECODE"

            with m.State("DECODE"):
                m.d.comb += self.decode.eq(1)
                m.next = "CHECK_PREP"

            with m.State("CHECK_PREP"):
                with m.If(self.check_ready):
                    m.next = "CHECK_WAIT"

            with m.State("CHECK_WAIT"):  # the checks' second register stage
                m.next = "CHECK"

            with m.State("CHECK"):
                op = self.op
                with m.If(self.check_error != 0):
                    m.d.sync += err.eq(self.check_error)
                    m.next = "HALT"
                with m.Elif(op == isa.Op.DONE):
                    m.d.sync += [self.done.eq(1), self.busy.eq(0)]
                    m.next = "IDLE"
                with m.Elif(op == isa.Op.CACHE):
                    m.d.comb += self.dma_start.eq(1)
                    m.next = "CACHE"
                with m.Elif(op == isa.Op.LOAD_ACT):
                    m.d.comb += self.dma_start.eq(1)
                    m.next = "LOAD"
                with m.Elif(op == isa.Op.STORE_ACT):
                    m.d.comb += self.dma_start.eq(1)
                    m.next = "STORE"
                with m.Else():  # GEMM: any other opcode failed its checks as ILLEGAL_OPCODE
                    m.d.comb += self.gemm_start.eq(1)
                    m.d.sync += core_started.eq(0)
                    m.next = "GEMM"

            for state in ("CACHE", "LOAD", "STORE"):
                with m.State(state):
                    m.d.comb += getattr(self, state.lower()).eq(1)
                    with m.If(self.dma_done):
                        m.next = "NEXT"

            with m.State("GEMM"):
                m.d.comb += [self.gemm.eq(1), self.core_valid.eq(~core_started)]
                with m.If(self.core_valid & self.core_ready):
                    m.d.sync += core_started.eq(1)
                with m.If(core_started & self.core_idle & self.feed_done):
                    m.next = "NEXT"

            with m.State("NEXT"):
                m.d.comb += self.next.eq(1)
                m.next = "FETCH"

            with m.State("HALT"):
                m.d.comb += self.halt.eq(1)
                with m.If(~self.issuer_busy):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
        return m
