"""The two activation buffers and the users that take turns on their ports.

LOAD_ACT writes and STORE_ACT reads them (the DMA); a GEMM or CONV reads its A operand (the core)
and writes its output (the output writer), ADD and POOL read and write them (the vector unit, on
the same two ports). Each buffer has one write and one read port; ``gemm`` (the sequencer's GEMM
or vector state) picks the compute users, the DMA's otherwise (the DMA drives nothing outside its
own states).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .bram import RegisteredRam
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig
from .ports import buffer_read, buffer_write, share

BANKS = 2


def act_ram_options(pipe_regs: bool) -> dict[str, bool]:
    """The activation buffers' :class:`RegisteredRam` options. With pipeline registers (ECP5
    timing) the read data, the write port and the read address are all registered: the read
    address of a buffer spread over 15 block RAMs (`large`) was a critical path. A read follows
    a write by a command at least (its fetch), so the registered write changes no cycle."""
    return dict(registered=pipe_regs, write_registered=pipe_regs, addr_registered=pipe_regs)


def act_read_latency(pipe_regs: bool = True) -> int:
    """Cycles from an activation buffer's read to its word (``pipe_regs=True``: simulation and
    the ECP5; the iCE40 builds without)."""
    opts = act_ram_options(pipe_regs)
    return RegisteredRam.latency_for(opts["registered"], opts["addr_registered"])


class ActBuffers(wiring.Component):
    """``load``/``out`` write and ``store``/``a`` read buffer ``buf`` of two; ``gemm`` gives
    the ports to ``out`` and ``a``. Read data follows :func:`act_read_latency`."""

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        width, depth = 8 * cfg.rows, cfg.act_words
        wr, rd = buffer_write(depth, width, banks=BANKS), buffer_read(depth, width, banks=BANKS)
        super().__init__(
            {"gemm": In(1), "load": In(wr), "out": In(wr), "store": In(rd), "a": In(rd)}
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        pipe_regs = self.opts.pipeline_regs
        width, depth = 8 * cfg.rows, cfg.act_words
        wr = buffer_write(depth, width, banks=BANKS).create(path=("wr",))
        rd = buffer_read(depth, width, banks=BANKS).flip().create(path=("rd",))
        share(m, wr, [(self.gemm, wiring.flipped(self.out)), (1, wiring.flipped(self.load))])
        for port in ("en", "addr", "buf"):  # only the requests: each user has its own data mux
            with m.If(self.gemm):
                m.d.comb += getattr(rd, port).eq(getattr(self.a, port))
            with m.Else():
                m.d.comb += getattr(rd, port).eq(getattr(self.store, port))
        rdata = []
        for b in range(BANKS):
            m.submodules[f"act{b}"] = ram = RegisteredRam(
                width, depth, **act_ram_options(pipe_regs), opts=self.opts
            )
            assert ram.read_latency == act_read_latency(pipe_regs)
            m.d.comb += [
                ram.write.en.eq(wr.en & (wr.buf == b)),
                ram.write.addr.eq(wr.addr),
                ram.write.data.eq(wr.data),
                ram.read.en.eq(rd.en & (rd.buf == b)),
                ram.read.addr.eq(rd.addr),
            ]
            rdata.append(ram.read.data)
        # the data of a read comes from the buffer that read named (the vector unit alternates
        # buffers read by read): its buf, delayed as the data is
        buf_at = rd.buf
        for i in range(act_read_latency(pipe_regs)):
            buf_q = Signal.like(rd.buf, name=f"rd_buf_q{i}")
            m.d.sync += buf_q.eq(buf_at)
            buf_at = buf_q
        m.d.comb += [
            self.store.data.eq(Mux(buf_at, rdata[1], rdata[0])),
            self.a.data.eq(Mux(buf_at, rdata[1], rdata[0])),
        ]
        return m
