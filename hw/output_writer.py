"""The output writer: the core's output rows into an activation buffer."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .act_buffers import BANKS
from .config import AccelConfig
from .ports import buffer_write, run_control


class OutputWriter(wiring.Component):
    """Writes the GEMM's (``cmd``) output rows from ``rows`` to buffer ``o_buf`` from word
    ``o_word`` on: one word per row with requantisation (int8 lanes), else four words per row
    (int32 lanes, little-endian bytes). ``ctl.start``: the GEMM's first cycle is next;
    ``ctl.run``: the GEMM runs."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        R = cfg.rows
        super().__init__(
            {
                "cmd": In(isa.CMD_BITS),
                "ctl": In(run_control()),
                "rows": In(stream.Signature(data.ArrayLayout(signed(32), cfg.cols))),
                "w": Out(buffer_write(cfg.act_words, 8 * R, banks=BANKS)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        R = self.cfg.rows
        word_bits = 8 * R
        g = data.View(isa.GEMM, self.cmd[: isa.GEMM.size])
        rows = self.rows
        o_addr = self.w.addr  # a register: the buffer's next word
        o_part = Signal(2)  # int32: the row's next word
        with m.If(self.ctl.start):
            m.d.sync += [o_addr.eq(g.o_word), o_part.eq(0)]
        m.d.comb += self.w.buf.eq(g.o_buf)
        out_row = data.ArrayLayout(signed(32), R)(rows.payload.as_value())
        int8_word = Cat(*(out_row[i][:8] for i in range(R)))
        with m.If(self.ctl.run):
            with m.If(g.requant):
                m.d.comb += [rows.ready.eq(1), self.w.en.eq(rows.valid), self.w.data.eq(int8_word)]
                with m.If(rows.valid):
                    m.d.sync += o_addr.eq(o_addr + 1)
            with m.Else():
                # int32 rows: 4 words each, lane bytes little-endian
                m.d.comb += [
                    rows.ready.eq(o_part == 3),
                    self.w.en.eq(rows.valid),
                    self.w.data.eq(rows.payload.as_value().word_select(o_part, word_bits)),
                ]
                with m.If(rows.valid):
                    m.d.sync += [o_part.eq(o_part + 1), o_addr.eq(o_addr + 1)]
        return m
