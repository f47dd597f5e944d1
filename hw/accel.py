"""SushiAccel: the command processor's units, the Persistent Buffer, the dynamic weight buffer,
the activation buffers and the GEMM core, connected.

The host writes a program (docs/isa.md) into off-chip memory and rings the doorbell; the command
processor fetches, checks and executes one command at a time and raises ``done`` or ``error``.
Every check happens before a command touches anything, so an illegal command halts within a few
cycles and never hangs. docs/architecture.md describes the units and the ports.

Unit by unit: :mod:`.sequencer` (which unit runs), :mod:`.fetch`, :mod:`.check`, :mod:`.dma`
(CACHE, LOAD_ACT, STORE_ACT), :mod:`.weight_feed` (the PB, the dynamic buffer and the tile
cursors), :mod:`.output_writer`, :mod:`.act_buffers`, :mod:`.accel_counters`. The resources two
units use in turn are instantiated once, here, and shared by the sequencer's state
(:func:`.ports.share`): the memory request port, the read data, the width converter into the
buffers and the read queue.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .accel_counters import AccelCounters
from .act_buffers import ActBuffers, act_read_latency
from .build_options import SIMULATION, BuildOptions
from .check import CommandCheck
from .config import AccelConfig, clog2
from .control import ControlSignature
from .dma import Dma, RequestIssuer
from .fetch import CommandFetch
from .gemm_core import GemmCore
from .mem_port import mem_port_signature
from .output_writer import OutputWriter
from .pb_tags import PbTags
from .pipeline import CreditedReadQueue
from .ports import share
from .sequencer import Sequencer
from .vector_unit import VectorUnit
from .watchdog import MemWatchdog
from .weight_feed import WeightFeed
from .width import WidthConverter


class SushiAccel(wiring.Component):
    """``mem``: the off-chip memory port (:mod:`.mem_port`); ``ctrl``: the host's control
    port (:class:`.control.ControlSignature`); ``bus_error``: the memory answered a transfer
    with an error (a bus adapter's sticky flag; 0 where memory cannot fail), the program
    halts with BUS_ERROR before its next command."""

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        super().__init__(
            {
                "mem": Out(mem_port_signature(cfg)),
                "ctrl": In(ControlSignature()),
                "bus_error": In(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        R, W = cfg.rows, cfg.mem_width
        word = 8 * R
        # ECP5 timing: every block RAM's read data is registered right at the RAM, before any
        # select (its clock-to-out is 5.8 ns of the 10), in the block's own output register
        # (sushi_hw.bram); not on the iCE40 (BuildOptions.pipeline_regs)
        opts = self.opts
        pipe_regs = opts.pipeline_regs

        m.submodules.seq = seq = Sequencer(with_vec=cfg.conv)

        # the units a memory timeout abandons mid-command: seq.abort returns them to their
        # reset state (no watchdog: nothing is ever abandoned, and nothing is added)
        def unit(name: str, component):
            if opts.mem_timeout:
                component_r = ResetInserter(seq.abort)(component)
            else:
                component_r = component
            m.submodules[name] = component_r
            return component

        m.submodules.fetch = fetch = CommandFetch(cfg)
        m.submodules.check = check = CommandCheck(cfg, opts)
        dma = unit("dma", Dma(cfg))
        feed = unit("feed", WeightFeed(cfg, opts))
        writer = unit("writer", OutputWriter(cfg, opts))
        m.submodules.acts = acts = ActBuffers(cfg, opts)
        m.submodules.ctrs = ctrs = AccelCounters(cfg, opts)
        # no C_in stream (accumulation goes through acc_keep) and A is always all there
        core = unit(
            "core",
            GemmCore(
                cfg,
                with_c_in=False,
                a_flow=False,
                int32_gap=4,
                a_latency=act_read_latency(pipe_regs),
                opts=opts,
            ),
        )

        # ---- the resources units take turns on, one of each -----------------------------
        # the sequencer's states that own them
        cache, load, store, gemm = seq.dma.cache, seq.dma.load, seq.dma.store, seq.feed.run
        # memory requests: the issuer (commands, CACHE, LOAD/STORE) or, during a GEMM, the
        # weight feed's off-chip walker
        issuer = unit("issuer", RequestIssuer(cfg))
        share(m, issuer.cmd, [(fetch.issue.start, fetch.issue), (1, dma.issue)])
        share(m, self.mem.req, [(gemm, feed.req), (1, issuer.req)], gate=False)
        # read data: the command's beats, CACHE/LOAD/GEMM data through the rows-wide
        # converter, or (HALT) drained; with the watchdog also while idle (the late answers of
        # requests a timeout abandoned)
        conv_in = unit("conv_in", WidthConverter(W, R))
        drain = stream.Signature(unsigned(8 * W)).flip().create(path=("drain",))
        m.d.comb += drain.ready.eq(1)
        via_conv = cache | load | gemm
        if opts.mem_timeout:
            # and first of all the stale beats of a command a timeout abandoned (the watchdog
            # counts them): a program started before they are in must not take them
            stale = Signal()
            live = ~stale
            readers = [
                (seq.fetch_data & live, fetch.rdata),
                (seq.halt | ~seq.busy | stale, drain),
                (via_conv & live, conv_in.i),
            ]
        else:
            stale = None
            readers = [(seq.fetch_data, fetch.rdata), (seq.halt, drain), (via_conv, conv_in.i)]
        share(m, self.mem.rdata, readers)
        share(m, conv_in.o, [(cache | load, dma.words), (gemm, feed.words)])
        # synchronous-read buffers (the PB in a GEMM, an activation buffer in a STORE) feed
        # their words through this queue; never both at once, so one queue serves both. With
        # the read data registered, two words are in flight and the queue is twice as deep, so
        # it still takes a word every cycle. A read is issued (readq.issue, its word on
        # readq.data a cycle later, three with the read and address registers) only while
        # readq.room. Its output goes to the weight feed while that feeds (keyed on the feed's
        # own cursor, as in sushi_hw.weight_feed: only during a GEMM), else to STORE.
        readq = unit(
            "readq",
            CreditedReadQueue(
                word, depth=8 if pipe_regs else 4, latency=act_read_latency(pipe_regs)
            ),
        )
        share(m, readq, [(store, dma.rd), (gemm, feed.pb_rd)])
        share(m, readq.o, [(~feed.ctl.done, feed.pb_words), (store, dma.rd_words)], gate=False)

        # ---- the data path ----------------------------------------------------------------
        wiring.connect(m, dma.pb_w, feed.pb_w)
        wiring.connect(m, dma.act_w, acts.load)
        wiring.connect(m, dma.act_r, acts.store)
        wiring.connect(m, dma.wdata, wiring.flipped(self.mem.wdata))
        wiring.connect(m, feed.w, core.w)
        wiring.connect(m, core.out, writer.rows)
        # the GEMM's or the CONV's descriptor to the core (a CONV is an implicit GEMM: M output
        # pixels, K = channel tiles x taps x rows, N output channels; CHECK decoded its sizes)
        g = data.View(isa.GEMM, fetch.cmd[: isa.GEMM.size])
        cv = data.View(isa.CONV, fetch.cmd[: isa.CONV.size])
        is_conv = Const(0, 1)
        if cfg.conv:
            is_conv = fetch.cmd[:4] == isa.Op.CONV
        geom = check.geom
        m.d.comb += [
            acts.a.en.eq(core.a_en),
            acts.a.addr.eq(core.a_addr),
            acts.a.buf.eq(Mux(is_conv, cv.a_buf, g.a_buf)),
            core.a_data.eq(acts.a.data),
            core.a_avail.eq(-1),
        ]
        if cfg.conv:
            # ADD and POOL: the vector unit takes the core's and the writer's buffer ports
            vec = unit("vec", VectorUnit(cfg, opts))
            vec_run = seq.vec.run
            wiring.connect(m, seq.vec, vec.ctl)
            m.d.comb += [vec.cmd.eq(fetch.cmd), acts.gemm.eq(gemm | vec_run)]
            with m.If(vec_run):
                m.d.comb += [
                    acts.a.en.eq(vec.rd.en),
                    acts.a.addr.eq(vec.rd.addr),
                    acts.a.buf.eq(vec.rd.buf),
                ]
            m.d.comb += vec.rd.data.eq(acts.a.data)
            share(m, acts.out, [(vec_run, vec.wr), (1, writer.w)])
        else:
            m.d.comb += acts.gemm.eq(gemm)
            wiring.connect(m, writer.w, acts.out)
        desc = core.cmd.payload
        rq = desc.requant
        m.d.comb += [
            desc.m.eq(Mux(is_conv, geom.out.pixels, g.m)),
            desc.k.eq(Mux(is_conv, geom.kt_n << clog2(R), g.k)),
            desc.n.eq(Mux(is_conv, cv.c_out, g.n)),
            desc.accumulate.eq(0),
            desc.acc_keep.eq(g.accumulate & ~is_conv),
            desc.hold.eq(g.hold & ~is_conv),
            rq.enable.eq(Mux(is_conv, cv.requant, g.requant)),
            rq.relu.eq(Mux(is_conv, cv.relu, g.relu)),
            rq.mult.eq(Mux(is_conv, cv.mult, g.mult)),
            rq.shift.eq(Mux(is_conv, cv.shift, g.shift)),
            desc.a_base.eq(Mux(is_conv, cv.a_word, g.a_word)),
        ]
        if cfg.conv:
            m.d.comb += [desc.conv.eq(is_conv), desc.im2col.eq(check.im2col)]

        # ---- sequencing ---------------------------------------------------------------------
        ctrl = self.ctrl
        wiring.connect(m, seq.fetch, fetch.ctl)
        wiring.connect(m, seq.check, check.ctl)
        wiring.connect(m, seq.dma, dma.ctl)
        wiring.connect(m, seq.feed, feed.ctl)
        wiring.connect(m, seq.writer, writer.ctl)
        m.d.comb += [
            seq.doorbell.eq(ctrl.doorbell),
            fetch.prog_addr.eq(ctrl.prog_addr),
            ctrl.busy.eq(seq.busy),
            ctrl.done.eq(seq.done),
            ctrl.error.eq(seq.error_code != 0),
            ctrl.error_code.eq(seq.error_code),
            seq.op.eq(fetch.cmd[:4]),
            seq.accumulate.eq(g.accumulate),
            seq.hold.eq(g.hold),
            # every unit sees the fetched command; the check decodes its geometry
            check.cmd.eq(fetch.cmd),
            dma.cmd.eq(fetch.cmd),
            writer.geom.eq(check.geom),
            dma.act_bytes.eq(check.act_bytes),
            feed.geom.eq(check.geom),
            core.cmd.valid.eq(seq.core_valid),
            seq.core_ready.eq(core.cmd.ready),
            seq.core_idle.eq(core.idle),
            seq.issuer_busy.eq(issuer.busy),
            seq.bus_error.eq(self.bus_error),
        ]
        if opts.pb_tags:
            # the PB's tags: written beside CACHE's PB writes, checked beside the feed's reads
            m.submodules.pb_tags = tags = PbTags(cfg, opts)
            c_cache = data.View(isa.CACHE, fetch.cmd[: isa.CACHE.size])
            wiring.connect(m, feed.pb_look, tags.look)
            m.d.comb += [
                tags.cache_start.eq(seq.dma.start),
                tags.cache_addr.eq(c_cache.mem_addr),
                tags.pb_we.eq(dma.pb_w.en),
                tags.pb_waddr.eq(dma.pb_w.addr),
                tags.clear.eq(seq.feed.start),
                seq.pb_uncached.eq(tags.uncached),
            ]
        if opts.mem_timeout:
            m.submodules.watchdog = wd = MemWatchdog(cfg, opts.mem_timeout)
            req, rdata, wdata = self.mem.req, self.mem.rdata, self.mem.wdata
            m.d.comb += [
                wd.req_valid.eq(req.valid),
                wd.req_ready.eq(req.ready),
                wd.req_write.eq(req.payload.write),
                wd.req_beats.eq(req.payload.beats),
                wd.rdata_valid.eq(rdata.valid),
                wd.rdata_ready.eq(rdata.ready),
                wd.wdata_valid.eq(wdata.valid),
                wd.wdata_ready.eq(wdata.ready),
                wd.clear.eq(seq.fetch.load | seq.abort),
                seq.mem_timeout.eq(wd.timeout),
                stale.eq(wd.draining),
            ]

        # ---- counters -----------------------------------------------------------------------
        C = isa.Counter
        beat_in = self.mem.rdata.valid & self.mem.rdata.ready
        if stale is not None:
            beat_in &= ~stale  # a stale beat is nobody's
        m.d.comb += [
            ctrs.clear.eq(seq.fetch.load),
            ctrs.sel.eq(ctrl.ctr_sel),
            ctrl.ctr_value.eq(ctrs.value),
            ctrs.inc[C.CYCLES].eq(seq.busy),
            ctrs.inc[C.MAC_ACTIVE].eq(core.issue),
            ctrs.inc[C.RD_WEIGHT_BYTES].eq(beat_in & (cache | gemm)),
            ctrs.inc[C.RD_ACT_BYTES].eq(beat_in & load),
            ctrs.inc[C.WR_BYTES].eq(self.mem.wdata.valid & self.mem.wdata.ready),
            ctrs.inc[C.PB_READ_BYTES].eq(feed.pb_word),
            ctrs.inc[C.COMMANDS].eq(seq.check.start),
            ctrs.inc[C.DOORBELLS_DROPPED].eq(
                seq.doorbell_dropped if opts.count_dropped_doorbells else 0
            ),
        ]
        return m
