"""The im2col address generator: a convolution's input rows, as the GEMM core issues them.

A CONV runs on the GEMM datapath as an implicit GEMM (docs/isa.md): row ``m`` of M-tile ``mt`` is
output pixel ``p = mt*acc_depth + m``, and K-tile ``kt = ct*taps + t`` is channel tile ``ct`` of
the input at kernel tap ``t`` (ring order, :func:`sushi_hw.isa.ring_taps`). The im2col row for
(p, kt) is the input word of channel tile ``ct`` at pixel ``(oy*stride + dy_t + c, ox*stride +
dx_t + c)``, ``c = k//2 - pad``, or zero where that falls in the padding. This unit keeps the
address of the row the core issues next in a register, and steps it as the core issues; the
expanded matrix exists nowhere.

It follows the core's loop (M-tile, N-tile, K-tile, row) from the core's own "last" flags,
so the two cannot disagree on the order.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .config import AccelConfig, clog2

MAX_RING = max(isa.KERNELS) // 2  # tap offsets dy, dx lie in [-MAX_RING, MAX_RING]
TAPS = isa.ring_taps(max(isa.KERNELS))  # every kernel's taps are a prefix of the largest one's


def im2col_layout(cfg: AccelConfig) -> data.StructLayout:
    """A convolution's input geometry, as the core's descriptor carries it."""
    return data.StructLayout(
        {
            "h": unsigned(8),  # input height, width
            "w": unsigned(8),
            "w_out": unsigned(8),  # output width
            "stride": unsigned(2),
            "c_off": unsigned(2),  # k//2 - pad: the kernel's centre offset into the input
            "taps": unsigned(6),  # k*k
            "plane": unsigned(clog2(cfg.act_words) + 1),  # h*w words per channel tile
        }
    )


class Im2col(wiring.Component):
    """``begin``: the cycle before a convolution's first row may issue (``geo`` and ``base``
    valid from then on, and held); ``fire``: the core issues the row at ``addr`` (zero if
    ``pad``) this cycle, with its loop flags: ``m_last`` (the row ends its M-tile),
    ``kt_last`` (in the last K-tile) and ``nt_last`` (in the last N-tile)."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        super().__init__(
            {
                "geo": In(im2col_layout(cfg)),
                "base": In(range(cfg.act_words)),
                "begin": In(1),
                "fire": In(1),
                "m_last": In(1),
                "kt_last": In(1),
                "nt_last": In(1),
                "addr": Out(range(cfg.act_words)),
                "pad": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:  # noqa: C901 - one next-state function
        m = Module()
        cfg = self.cfg
        geo = self.geo
        aw = clog2(cfg.act_words) + 2  # addresses, signed: a padding tap can point before 0
        lin = signed(aw + 1)
        coord = signed(11)  # input coordinates, 8-bit sizes and taps up to 7 away

        # per command (geo is held): stride * w, and (dy + c_off) * w for every row offset of a
        # tap (constant multiples: shifts and adds)
        s_w = Signal(lin)
        row_off = [Signal(lin, name=f"row_off{i}") for i in range(-MAX_RING, 2 * MAX_RING + 1)]
        w_out_m1 = Signal(8)
        m.d.comb += [s_w.eq(Mux(geo.stride == 2, geo.w << 1, geo.w)), w_out_m1.eq(geo.w_out - 1)]
        for i, r in zip(range(-MAX_RING, 2 * MAX_RING + 1), row_off, strict=True):
            # |i| * w as shifts and adds (Yosys would put a constant product on a DSP)
            mag = sum((geo.w << b for b in range(abs(i).bit_length()) if abs(i) >> b & 1), Const(0))
            m.d.comb += r.eq(-mag if i < 0 else mag)

        # the tap table (constants): dy, dx of tap t
        dys = Array(Const(dy, signed(4)) for dy, _ in TAPS)
        dxs = Array(Const(dx, signed(4)) for _, dx in TAPS)

        # state of the row at addr: its output pixel, tap and channel tile
        ox = Signal(8)
        px, py = Signal(coord), Signal(coord)  # ox*stride, oy*stride
        row_lin = Signal(lin)  # py * w
        t = Signal(6)
        ct_base = Signal(lin)  # base + ct * plane
        # the M-tile's first pixel: every K-tile and N-tile restarts there
        ox0, px0, py0, row_lin0 = Signal(8), Signal(coord), Signal(coord), Signal(lin)

        n_ox, n_px, n_py, n_row = Signal(8), Signal(coord), Signal(coord), Signal(lin)
        n_t, n_ct_base = Signal(6), Signal(lin)
        m.d.comb += [
            n_ox.eq(ox),
            n_px.eq(px),
            n_py.eq(py),
            n_row.eq(row_lin),
            n_t.eq(t),
            n_ct_base.eq(ct_base),
        ]
        step_pixel = Signal()  # the next row is the next output pixel
        restart = Signal()  # the next row is the M-tile's first pixel again
        new_mtile = Signal()  # ... of the next M-tile
        with m.If(self.begin):
            m.d.comb += [
                n_ox.eq(0),
                n_px.eq(0),
                n_py.eq(0),
                n_row.eq(0),
                n_t.eq(0),
                n_ct_base.eq(self.base),
            ]
        with m.Elif(self.fire):
            with m.If(~self.m_last):
                m.d.comb += step_pixel.eq(1)
            with m.Elif(~self.kt_last):  # the next K-tile: next tap, or next channel tile
                m.d.comb += restart.eq(1)
                with m.If(t == geo.taps - 1):
                    m.d.comb += [n_t.eq(0), n_ct_base.eq(ct_base + geo.plane)]
                with m.Else():
                    m.d.comb += n_t.eq(t + 1)
            with m.Else():  # the next N-tile (same pixels) or the next M-tile
                m.d.comb += [n_t.eq(0), n_ct_base.eq(self.base)]
                with m.If(self.nt_last):
                    m.d.comb += [step_pixel.eq(1), new_mtile.eq(1)]
                with m.Else():
                    m.d.comb += restart.eq(1)
        with m.If(step_pixel):
            with m.If(ox == w_out_m1):
                m.d.comb += [
                    n_ox.eq(0),
                    n_px.eq(0),
                    n_py.eq(py + geo.stride),
                    n_row.eq(row_lin + s_w),
                ]
            with m.Else():
                m.d.comb += [n_ox.eq(ox + 1), n_px.eq(px + geo.stride)]
        with m.If(restart):
            m.d.comb += [n_ox.eq(ox0), n_px.eq(px0), n_py.eq(py0), n_row.eq(row_lin0)]
        with m.If(self.begin | new_mtile):
            m.d.sync += [ox0.eq(n_ox), px0.eq(n_px), py0.eq(n_py), row_lin0.eq(n_row)]
        with m.If(self.begin | self.fire):
            m.d.sync += [
                ox.eq(n_ox),
                px.eq(n_px),
                py.eq(n_py),
                row_lin.eq(n_row),
                t.eq(n_t),
                ct_base.eq(n_ct_base),
            ]

        # the next row's input pixel and word
        dyc = Signal(signed(5))
        dxc = Signal(signed(5))
        m.d.comb += [dyc.eq(dys[n_t] + geo.c_off), dxc.eq(dxs[n_t] + geo.c_off)]
        iy, ix = Signal(coord), Signal(coord)
        m.d.comb += [iy.eq(n_py + dyc), ix.eq(n_px + dxc)]
        addr = Signal(lin)
        m.d.comb += addr.eq(n_ct_base + n_row + Array(row_off)[dyc + MAX_RING] + n_px + dxc)
        with m.If(self.begin | self.fire):
            m.d.sync += [
                self.addr.eq(addr[: len(self.addr)]),
                self.pad.eq((iy < 0) | (iy >= geo.h) | (ix < 0) | (ix >= geo.w)),
            ]
        return m
