"""The sequencer: which unit runs, their start/done handshakes, and the halt on an error.

One command at a time: FETCH it, DECODE and CHECK it, then run it (CACHE, LOAD, STORE, GEMM or
CONV, ADD or POOL) and move on (NEXT), or halt: done at DONE, error at the first failing check.
After an error it waits in HALT until the failed command's memory requests have drained.

Two errors come from the memory rather than a check. ``mem_timeout`` (the watchdog,
:mod:`.watchdog`) halts at once, in any state, with MEM_TIMEOUT and pulses ``abort``, which
returns the units of the command to their reset state (the memory will not finish it).
``bus_error`` (a memory that answered with an error: the AXI master's SLVERR/DECERR) halts
with BUS_ERROR at the next command boundary: before the next fetch, or before a fetched
command runs (its own fetch may have failed). The bus adapter answers the failing command's
remaining reads with zeros and drops its writes, so it ends within its own bounded time, and
nothing more is fetched.

``pb_uncached`` (:mod:`.pb_tags`: the GEMM/CONV read a PB tile not cached for it) is checked
as the command's tiles are read, so it halts with PB_UNCACHED when the command ends, instead
of moving on; its accumulator does not count as held.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .ports import ERR_SHAPE, check_control, dma_control, fetch_control, run_control


class Sequencer(wiring.Component):
    """The units' handshakes (:mod:`.ports`) and the states that own the shared data paths:
    ``fetch_data`` (the fetch's beats arrive), ``halt``, and the DMA's and the GEMM's run
    levels (``dma.cache``/``load``/``store``, ``feed.run``)."""

    def __init__(self, with_vec: bool = True):
        """``with_vec=False``: no ADD/POOL state (configurations without ``conv``, where the
        check rejects both opcodes)."""
        self.with_vec = with_vec
        super().__init__(
            {
                "doorbell": In(1),
                "busy": Out(1),
                "doorbell_dropped": Out(1),  # a doorbell while busy: ignored, and counted
                "done": Out(1),
                "error_code": Out(ERR_SHAPE),
                "op": In(4),  # the fetched command's opcode
                # a GEMM's accumulate and hold bits (the fetched command's, when it is a GEMM)
                "accumulate": In(1),
                "hold": In(1),
                "fetch": Out(fetch_control()),
                "fetch_data": Out(1),
                "check": Out(check_control()),
                "dma": Out(dma_control()),
                # a GEMM: the weight feed and the output writer run; the descriptor goes to the
                # core, and the GEMM is over when the core is idle and every weight was fed
                "feed": Out(run_control(done=True)),
                "writer": Out(run_control()),
                # ADD and POOL: the vector unit runs until done
                "vec": Out(run_control(done=True)),
                "core_valid": Out(1),
                "core_ready": In(1),
                "core_idle": In(1),
                # halt after an error: wait for the memory requests to drain
                "halt": Out(1),
                "issuer_busy": In(1),
                # errors from the memory side (see the module's docstring)
                "mem_timeout": In(1),
                "abort": Out(1),
                "bus_error": In(1),
                "pb_uncached": In(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        err = self.error_code
        fetch, check, dma = self.fetch, self.check, self.dma
        core_started = Signal()  # the GEMM's descriptor has been taken
        # the accumulator holds a result to accumulate onto: the last GEMM/CONV held it. It
        # survives programs (a program may accumulate onto the previous one's held result),
        # not a reset or an abandoned command
        acc_held = Signal()
        with m.If(self.abort):
            m.d.sync += acc_held.eq(0)
        gemm_start, gemm = Signal(), Signal()
        # busy is low exactly in IDLE, where a doorbell is taken
        m.d.comb += self.doorbell_dropped.eq(self.doorbell & self.busy)
        m.d.comb += [
            self.feed.start.eq(gemm_start),
            self.writer.start.eq(gemm_start),
            self.feed.run.eq(gemm),
            self.writer.run.eq(gemm),
        ]

        def watchdog() -> None:
            """In a state that waits on memory: halt at once on a timeout (called last in the
            state, so it overrides the state's own next state and error)."""
            with m.If(self.mem_timeout):
                m.d.comb += self.abort.eq(1)
                m.d.sync += err.eq(isa.ErrorCode.MEM_TIMEOUT)
                m.next = "HALT"

        with m.FSM(name="cp"):
            with m.State("IDLE"):
                with m.If(self.doorbell):
                    m.d.comb += fetch.load.eq(1)
                    m.d.sync += [err.eq(0), self.done.eq(0), self.busy.eq(1)]
                    m.next = "FETCH"

            with m.State("FETCH"):
                with m.If(self.bus_error):
                    m.d.sync += err.eq(isa.ErrorCode.BUS_ERROR)
                    m.next = "HALT"
                with m.Elif(fetch.error != 0):
                    m.d.sync += err.eq(fetch.error)
                    m.next = "HALT"
                with m.Else():
                    m.d.comb += fetch.start.eq(1)
                    m.next = "FETCH_DATA"

            with m.State("FETCH_DATA"):
                m.d.comb += self.fetch_data.eq(1)
                with m.If(fetch.done):
                    m.next = "DECODE"
                watchdog()

            with m.State("DECODE"):
                m.d.comb += check.start.eq(1)
                m.next = "CHECK_PREP"

            with m.State("CHECK_PREP"):
                with m.If(check.ready):
                    m.next = "CHECK_WAIT"

            with m.State("CHECK_WAIT"):  # the checks' second register stage
                m.next = "CHECK"

            with m.State("CHECK"):
                # check.error holds this command's checks: conditions registered in the last
                # CHECK_PREP cycle, the choice in CHECK_WAIT
                op = self.op
                with m.If(self.bus_error):  # the command itself may be the failed read's zeros
                    m.d.sync += err.eq(isa.ErrorCode.BUS_ERROR)
                    m.next = "HALT"
                with m.Elif(check.error != 0):
                    m.d.sync += err.eq(check.error)
                    m.next = "HALT"
                with m.Elif((op == isa.Op.GEMM) & self.accumulate & ~acc_held):
                    m.d.sync += err.eq(isa.ErrorCode.STALE_ACCUMULATE)
                    m.next = "HALT"
                with m.Elif(op == isa.Op.DONE):
                    m.d.sync += [self.done.eq(1), self.busy.eq(0)]
                    m.next = "IDLE"
                with m.Elif(op == isa.Op.CACHE):
                    m.d.comb += dma.start.eq(1)
                    m.next = "CACHE"
                with m.Elif(op == isa.Op.LOAD_ACT):
                    m.d.comb += dma.start.eq(1)
                    m.next = "LOAD"
                with m.Elif(op == isa.Op.STORE_ACT):
                    m.d.comb += dma.start.eq(1)
                    m.next = "STORE"
                if self.with_vec:
                    with m.Elif((op == isa.Op.ADD) | (op == isa.Op.POOL)):
                        m.d.comb += self.vec.start.eq(1)
                        m.next = "VEC"
                with m.Else():  # GEMM or CONV: any other opcode failed as ILLEGAL_OPCODE
                    m.d.comb += gemm_start.eq(1)
                    m.d.sync += [core_started.eq(0), acc_held.eq((op == isa.Op.GEMM) & self.hold)]
                    m.next = "GEMM"

            for state in ("CACHE", "LOAD", "STORE"):
                with m.State(state):
                    m.d.comb += getattr(dma, state.lower()).eq(1)
                    with m.If(dma.done):
                        m.next = "NEXT"
                    watchdog()

            with m.State("GEMM"):
                m.d.comb += [gemm.eq(1), self.core_valid.eq(~core_started)]
                with m.If(self.core_valid & self.core_ready):
                    m.d.sync += core_started.eq(1)
                # the last PB tile's tag check is in PbTags.latency cycles after its first
                # read; the core is idle only after that tile's R words went through the array
                with m.If(core_started & self.core_idle & self.feed.done):
                    with m.If(self.pb_uncached):
                        m.d.sync += [err.eq(isa.ErrorCode.PB_UNCACHED), acc_held.eq(0)]
                        m.next = "HALT"
                    with m.Else():
                        m.next = "NEXT"
                watchdog()

            if self.with_vec:
                with m.State("VEC"):
                    m.d.comb += self.vec.run.eq(1)
                    with m.If(self.vec.done):
                        m.next = "NEXT"

            with m.State("NEXT"):
                m.d.comb += fetch.advance.eq(1)
                m.next = "FETCH"

            with m.State("HALT"):
                # wait for outstanding memory traffic of the failed command to drain (the read
                # data goes nowhere meanwhile)
                m.d.comb += self.halt.eq(1)
                with m.If(~self.issuer_busy):
                    m.d.sync += self.busy.eq(0)
                    m.next = "IDLE"
        return m
