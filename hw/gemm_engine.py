"""Stand-alone GEMM engine: the GEMM core plus an activation memory filled from a stream.

Streams (all ``amaranth.lib.stream``, valid/ready):

* ``cmd``: one GEMM descriptor (:func:`gemm_desc_layout`); ``a_base`` is ignored here (0).
* ``a``: A as ``rows``-byte words in ``[mt][kt][m]`` order, K zero-padded to a multiple of rows.
  Rows are written through to the memory and may be consumed while they still arrive.
* ``w``: weight rows, ``cols`` int8 each, tiles in ``[mt][nt][kt]`` order.
* ``c_in``: int32 rows (``cols`` lanes) in ``[mt][nt][m]`` order, only when ``accumulate``.
* ``out``: int32 rows (``cols`` lanes) in ``[mt][nt][m]`` order; int8 range when requantising.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig
from .gemm_core import GemmCore, gemm_desc_layout


class GemmEngine(wiring.Component):
    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        super().__init__(
            {
                "cmd": In(stream.Signature(gemm_desc_layout(cfg))),
                "a": In(stream.Signature(data.ArrayLayout(signed(8), cfg.rows))),
                "w": In(stream.Signature(data.ArrayLayout(signed(8), cfg.cols))),
                "c_in": In(stream.Signature(data.ArrayLayout(signed(32), cfg.cols))),
                "out": Out(stream.Signature(data.ArrayLayout(signed(32), cfg.cols))),
                "idle": Out(1),
                "mac_active": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        m.submodules.core = core = GemmCore(cfg, opts=self.opts)
        m.submodules.act = act = Memory(
            shape=data.ArrayLayout(signed(8), cfg.rows), depth=cfg.act_words, init=[]
        )
        wp = act.write_port()
        rp = act.read_port()

        wiring.connect(m, wiring.flipped(self.w), core.w)
        wiring.connect(m, wiring.flipped(self.c_in), core.c_in)
        wiring.connect(m, core.out, wiring.flipped(self.out))
        m.d.comb += [
            core.cmd.valid.eq(self.cmd.valid),
            core.cmd.payload.eq(self.cmd.payload),
            core.cmd.payload.a_base.eq(0),
            core.cmd.payload.acc_keep.eq(0),
            core.cmd.payload.hold.eq(0),
            self.cmd.ready.eq(core.cmd.ready),
        ]

        # A writer: the running GEMM's rows, in order, each word once.
        written = Signal.like(core.a_avail)
        take = Signal()
        m.d.comb += [
            self.a.ready.eq(core.running & (written < core.a_total)),
            take.eq(self.a.valid & self.a.ready),
            wp.en.eq(take),
            wp.addr.eq(written),
            wp.data.eq(self.a.payload),
            core.a_avail.eq(written),
            rp.en.eq(core.a_en),
            rp.addr.eq(core.a_addr),
            core.a_data.eq(rp.data),
            self.idle.eq(core.idle),
            self.mac_active.eq(core.issue),
        ]
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += written.eq(0)
        with m.Elif(take):
            m.d.sync += written.eq(written + 1)
        return m
