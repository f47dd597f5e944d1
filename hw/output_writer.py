"""The output writer: the core's output rows into an activation buffer."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .act_buffers import BANKS
from .build_options import SIMULATION, BuildOptions
from .check import geometry_layout
from .config import AccelConfig
from .ports import buffer_write, run_control


class OutputWriter(wiring.Component):
    """Writes a GEMM's or a CONV's output rows from ``rows`` to buffer ``out.o_buf`` from word
    ``out.o_word`` on (``geom``: :func:`~.check.geometry_layout`): one word per row with
    requantisation (int8 lanes), else four words per row (int32 lanes, little-endian bytes).
    A GEMM's rows go to consecutive words ([mt][nt][m]); a CONV's to its output feature map
    ([channel tile][pixel]), N-tile by N-tile within each M-tile of pixels.
    ``ctl.start``: the first cycle is next; ``ctl.run``: the command runs."""

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.opts = opts
        self.cfg = cfg
        R = cfg.rows
        super().__init__(
            {
                "geom": In(geometry_layout(cfg)),
                "ctl": In(run_control()),
                "rows": In(stream.Signature(data.ArrayLayout(signed(32), cfg.cols))),
                "w": Out(buffer_write(cfg.act_words, 8 * R, banks=BANKS)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        R, D = cfg.rows, cfg.acc_depth
        word_bits = 8 * R
        geom, out = self.geom, self.geom.out
        rows = self.rows
        o_addr = self.w.addr  # a register: the buffer's next word
        o_part = Signal(2)  # int32: the row's next word
        m.d.comb += self.w.buf.eq(out.o_buf)

        # a CONV's feature map: the group of rows of one (M-tile, N-tile) starts at grp
        group = Signal.like(o_addr)  # its first word
        mtile = Signal.like(o_addr)  # the M-tile's first group
        row, rows_m1 = Signal(range(D)), Signal(range(D))  # row in the group, rows less one
        nt, mt = Signal.like(geom.nt_n), Signal.like(geom.mt_n)
        # nt is the last N-tile, and the M-tile after mt is the last, kept in registers: the
        # count compares sat between a row's arrival and the address registers (ULX3S default).
        # next_mt_last follows mt a cycle late: an M-tile before the last has acc_depth rows
        # per N-tile, so mt has settled long before the M-tile ends
        # (registered with pipeline_regs; the iCE40 has no logic cells to spare for them)
        nt_last, next_mt_last = Signal(), Signal()
        regs = self.opts.pipeline_regs
        if regs:
            m.d.sync += next_mt_last.eq(mt + 2 == geom.mt_n)
        else:
            m.d.comb += [next_mt_last.eq(mt + 2 == geom.mt_n), nt_last.eq(nt == geom.nt_n - 1)]

        def set_nt_last(value) -> list:  # noqa: ANN001
            return [nt_last.eq(value)] if regs else []

        last_m1 = Signal(range(D))  # rows of the last M-tile, less one
        m.d.comb += last_m1.eq((out.pixels - 1) & (D - 1))
        mtile_words = Mux(out.requant, D, 4 * D)  # an M-tile of one channel tile
        plane_words = Mux(out.requant, out.pixels, out.pixels << 2)  # a whole channel tile
        with m.If(self.ctl.start):
            m.d.sync += [
                o_addr.eq(out.o_word),
                o_part.eq(0),
                group.eq(out.o_word),
                mtile.eq(out.o_word),
                row.eq(0),
                rows_m1.eq(Mux(geom.mt_n == 1, last_m1, D - 1)),
                nt.eq(0),
                *set_nt_last(geom.nt_n == 1),
                mt.eq(0),
            ]

        out_row = data.ArrayLayout(signed(32), R)(rows.payload.as_value())
        int8_word = Cat(*(out_row[i][:8] for i in range(R)))
        row_done = Signal()
        with m.If(self.ctl.run):
            with m.If(out.requant):
                m.d.comb += [rows.ready.eq(1), self.w.en.eq(rows.valid), self.w.data.eq(int8_word)]
                with m.If(rows.valid):
                    m.d.comb += row_done.eq(1)
                    m.d.sync += o_addr.eq(o_addr + 1)
            with m.Else():
                # int32 rows: 4 words each, lane bytes little-endian
                m.d.comb += [
                    rows.ready.eq(o_part == 3),
                    self.w.en.eq(rows.valid),
                    self.w.data.eq(rows.payload.as_value().word_select(o_part, word_bits)),
                ]
                with m.If(rows.valid):
                    m.d.comb += row_done.eq(o_part == 3)
                    m.d.sync += [o_part.eq(o_part + 1), o_addr.eq(o_addr + 1)]
        if cfg.conv:
            with m.If(row_done & out.conv):
                m.d.sync += row.eq(row + 1)
                with m.If(row == rows_m1):  # the group ends: the next N-tile, or the next M-tile
                    m.d.sync += row.eq(0)
                    with m.If(nt_last):
                        nxt = mtile + mtile_words
                        m.d.sync += [
                            nt.eq(0),
                            *set_nt_last(geom.nt_n == 1),
                            mt.eq(mt + 1),
                            o_addr.eq(nxt),
                            group.eq(nxt),
                            mtile.eq(nxt),
                            rows_m1.eq(Mux(next_mt_last, last_m1, D - 1)),
                        ]
                    with m.Else():
                        nxt = group + plane_words
                        m.d.sync += [
                            nt.eq(nt + 1),
                            *set_nt_last(nt + 2 == geom.nt_n),
                            o_addr.eq(nxt),
                            group.eq(nxt),
                        ]
        return m
