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

Timing (FPGA): the address is split in two registered parts, ``addr = kt_off + lin``: the
K-tile's offset (channel tile base plus the tap's offset ``dy*w + dx``) and the pixel's
linear position ``oy*stride*w + ox*stride``. Every row the core may issue next is one of four
(the next pixel; the M-tile's first pixel at the next K-tile; at the first K-tile; the next
pixel at the first K-tile), and each is one add of two registers, so the core's ``fire`` only
selects among sums that are already settling (the address used to be a five-term sum behind a
mux on ``fire`` and a tap lookup: the ULX3S ``default`` build's critical path, 19.6 ns). The
next K-tile's offset is computed ahead in a register: the cycle after a K-tile starts, from
the tap's (dy, dx) looked up the cycle before and the multiples of ``w`` held per command.
That needs two rows that end a tile to be issued at least :data:`MIN_TILE_GAP` cycles apart,
which the core guarantees (a tile of one row waits ``rows`` cycles for its weights, a longer
tile takes a cycle per row).
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .config import AccelConfig, clog2

MAX_RING = max(isa.KERNELS) // 2  # tap offsets dy, dx lie in [-MAX_RING, MAX_RING]
TAPS = isa.ring_taps(max(isa.KERNELS))  # every kernel's taps are a prefix of the largest one's
#: the fewest cycles between two issued rows that end a tile (``fire & m_last``)
MIN_TILE_GAP = 2


def lin_shape(cfg: AccelConfig) -> signed:
    """Signed word offsets into an activation buffer: a padding tap can point before 0."""
    return signed(clog2(cfg.act_words) + 3)


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
            # the first two K-tiles' offsets from the map's first word (:func:`first_offsets`)
            "off0": lin_shape(cfg),
            "off1": lin_shape(cfg),
        }
    )


def first_offsets(w: int, k: int, pad: int, plane: int) -> tuple[int, int]:
    """(offset of K-tile 0, of K-tile 1) from the input map's first word, at output pixel 0:
    tap 0 is the centre, ``c*(w+1)`` with ``c = k//2 - pad``; tap 1 is ``(-1, -1)`` from it, or
    for a 1x1 kernel channel tile 1 one ``plane`` on."""
    c = k // 2 - pad
    return c * (w + 1), (plane if k == 1 else (c - 1) * (w + 1))


class Im2col(wiring.Component):
    """``begin``: the cycle before a convolution's first row may issue (``geo`` and ``base``
    valid from then on, and held); ``fire``: the core issues the row at ``addr`` (zero if
    ``pad``) this cycle, with its loop flags: ``m_last`` (the row ends its M-tile),
    ``kt_last`` (in the last K-tile) and ``nt_last`` (in the last N-tile). Two fires with
    ``m_last`` are at least :data:`MIN_TILE_GAP` cycles apart."""

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

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        geo = self.geo
        lin = lin_shape(cfg)
        coord = signed(11)  # input coordinates, 8-bit sizes and taps up to 7 away

        # a pixel: output column, input coordinates (ox*stride, oy*stride), oy*stride*w + ox*stride
        # (lin) and oy*stride*w (row)
        pixel = data.StructLayout(
            {"ox": unsigned(8), "px": coord, "py": coord, "lin": lin, "row": lin}
        )
        # a tap's window: the pixel's input coordinates (px, py) are inside the map for this
        # tap when ylo <= py < yhi and xlo <= px < xhi (ylo = -(dy + c), yhi = h - (dy + c))
        bounds = data.StructLayout({"ylo": coord, "yhi": coord, "xlo": coord, "xhi": coord})

        # ---- per command (registered at begin) ---------------------------------------------
        s_w = Signal(lin)  # stride * w: the next output row
        m.d.comb += s_w.eq(Mux(geo.stride == 2, geo.w << 1, geo.w))
        w_out_m1, taps_m1 = Signal(8), Signal(6)
        # dy * w for dy in [-MAX_RING, MAX_RING] (shifts and adds: Yosys would put a constant
        # product on a DSP)
        row_off = [
            Signal(lin, name=f"row_off{i + MAX_RING}") for i in range(-MAX_RING, MAX_RING + 1)
        ]
        kt_first, kt_one = Signal(lin), Signal(lin)  # offsets of K-tiles 0 and 1 (from word 0)
        b_first, b_one = Signal(bounds), Signal(bounds)  # their windows
        t_one = Signal(6)  # K-tile 1's tap

        def window(dyc: Value, dxc: Value) -> list:
            """``bounds`` fields for a tap at (dy + c, dx + c) = (dyc, dxc)."""
            return [-dyc, geo.h - dyc, -dxc, geo.w - dxc]

        def set_bounds(b: data.View, vals: list) -> list:
            return [b.ylo.eq(vals[0]), b.yhi.eq(vals[1]), b.xlo.eq(vals[2]), b.xhi.eq(vals[3])]

        def outside(p: data.View, b: data.View) -> Value:
            return (p.py < b.ylo) | (p.py >= b.yhi) | (p.px < b.xlo) | (p.px >= b.xhi)

        c = Signal(signed(4))  # the centre offset, signed for the windows
        m.d.comb += c.eq(geo.c_off)
        one_tap = geo.taps == 1
        t1 = Mux(one_tap, 0, 1)  # K-tile 1's tap: (-1, -1), or tap 0 of channel tile 1 (1x1)
        b0_now = Signal(bounds)  # K-tile 0's window (begin needs it at once)
        m.d.comb += set_bounds(b0_now, window(c, c))
        with m.If(self.begin):
            m.d.sync += [
                w_out_m1.eq(geo.w_out - 1),
                taps_m1.eq(geo.taps - 1),
                kt_first.eq(self.base + geo.off0),
                kt_one.eq(self.base + geo.off1),
                b_first.eq(b0_now),
                *set_bounds(b_one, window(c - t1, c - t1)),
                t_one.eq(t1),
            ]
            for i, r in zip(range(-MAX_RING, MAX_RING + 1), row_off, strict=True):
                mag = sum(
                    (geo.w << b for b in range(abs(i).bit_length()) if abs(i) >> b & 1), Const(0)
                )
                m.d.sync += r.eq(-mag if i < 0 else mag)

        # ---- the pixels ----------------------------------------------------------------------
        def step(p: data.View) -> list:
            """The pixel after ``p`` (as values in ``pixel`` field order)."""
            last = p.ox == w_out_m1
            return [
                Mux(last, 0, p.ox + 1),
                Mux(last, 0, p.px + geo.stride),
                Mux(last, p.py + geo.stride, p.py),
                Mux(last, p.row + s_w, p.lin + geo.stride),
                Mux(last, p.row + s_w, p.row),
            ]

        def set_pixel(p: data.View, vals: list) -> list:
            return [p.ox.eq(vals[0]), p.px.eq(vals[1]), p.py.eq(vals[2]), p.lin.eq(vals[3]),
                    p.row.eq(vals[4])]  # fmt: skip

        # the pixel after the row at addr; the M-tile's first pixel and the one after it
        p_nxt, p0, p0_nxt = Signal(pixel), Signal(pixel), Signal(pixel)
        # the pixel after pixel 0 (begin): the next column, or row 1 when w_out == 1
        col1 = geo.w_out != 1
        after0 = [
            Mux(col1, 1, 0),
            Mux(col1, geo.stride, 0),
            Mux(col1, 0, geo.stride),
            Mux(col1, geo.stride, s_w),
            Mux(col1, 0, s_w),
        ]

        # ---- the K-tiles: the current one, the next one (ahead), and how to get the next ------
        kt_cur, kt_nx = Signal(lin), Signal(lin)
        b_cur, b_nx = Signal(bounds), Signal(bounds)
        t_nx = Signal(6)  # the next K-tile's tap ...
        ctb_nx = Signal(lin)  # ... and its channel tile's base (with c*(w+1) folded in)
        refresh = Signal()  # kt_nx / b_nx are computed this cycle (from dy_s, dx_s)
        dy_s, dx_s = Signal(signed(4)), Signal(signed(4))  # the next K-tile's tap

        # the tap after t_nx: t_nx + 1, or 0 (and the next channel tile) after the last tap
        wrap = t_nx == taps_m1
        dys_next = Array(Const(dy, signed(4)) for dy, _ in TAPS[1:] + TAPS[:1])
        dxs_next = Array(Const(dx, signed(4)) for _, dx in TAPS[1:] + TAPS[:1])
        with m.If(refresh):
            m.d.sync += [
                kt_nx.eq(ctb_nx + dx_s + Array(row_off)[(dy_s + MAX_RING).as_unsigned()]),
                *set_bounds(b_nx, window(dy_s + c, dx_s + c)),
                refresh.eq(0),
            ]

        # ---- the next row: four candidates, each one add of registers ------------------------
        cand = [  # (kt offset, pixel, window) of: the next pixel; next K-tile; next N-tile; M-tile
            (kt_cur, p_nxt, b_cur),
            (kt_nx, p0, b_nx),
            (kt_first, p0, b_first),
            (kt_first, p_nxt, b_first),
        ]
        sums = [Signal(lin, name=f"addr_cand{i}") for i in range(4)]
        pads = [Signal(name=f"pad_cand{i}") for i in range(4)]
        for s, pd, (kt, p, b) in zip(sums, pads, cand, strict=True):
            m.d.comb += [s.eq(kt + p.lin), pd.eq(outside(p, b))]
        which = Signal(range(4))
        with m.If(~self.m_last):
            m.d.comb += which.eq(0)
        with m.Elif(~self.kt_last):
            m.d.comb += which.eq(1)
        with m.Elif(~self.nt_last):
            m.d.comb += which.eq(2)
        with m.Else():
            m.d.comb += which.eq(3)

        zero_pixel = [0, 0, 0, 0, 0]
        with m.If(self.begin):
            first = self.base + geo.off0
            m.d.sync += [
                self.addr.eq(first[: len(self.addr)]),
                self.pad.eq((c >= geo.h) | (c >= geo.w)),
                *set_pixel(p0, zero_pixel),
                *set_pixel(p_nxt, after0),
                *set_pixel(p0_nxt, after0),
                kt_cur.eq(first),
                kt_nx.eq(self.base + geo.off1),
                b_cur.eq(b0_now),
                *set_bounds(b_nx, window(c - t1, c - t1)),
                t_nx.eq(t1),
                ctb_nx.eq(self.base + Mux(one_tap, geo.off1, geo.off0)),
                refresh.eq(0),
            ]
        with m.Elif(self.fire):
            m.d.sync += [
                self.addr.eq(Array(sums)[which][: len(self.addr)]),
                self.pad.eq(Array(pads)[which]),
            ]
            with m.If(~self.m_last):  # the next pixel, same K-tile
                m.d.sync += set_pixel(p_nxt, step(p_nxt))
            with m.Elif(~self.kt_last):  # the next K-tile: the M-tile's first pixel again
                m.d.sync += [
                    p_nxt.eq(p0_nxt),
                    kt_cur.eq(kt_nx),
                    b_cur.eq(b_nx),
                    # the K-tile after it: the next tap, or the next channel tile's first
                    t_nx.eq(Mux(wrap, 0, t_nx + 1)),
                    ctb_nx.eq(Mux(wrap, ctb_nx + geo.plane, ctb_nx)),
                    dy_s.eq(Mux(wrap, 0, dys_next[t_nx])),
                    dx_s.eq(Mux(wrap, 0, dxs_next[t_nx])),
                    refresh.eq(1),
                ]
            with m.Else():  # K-tile 0 of the next N-tile (same pixels) or the next M-tile
                m.d.sync += [
                    kt_cur.eq(kt_first),
                    b_cur.eq(b_first),
                    kt_nx.eq(kt_one),
                    b_nx.eq(b_one),
                    t_nx.eq(t_one),
                    ctb_nx.eq(Mux(one_tap, kt_one, kt_first)),
                    refresh.eq(0),
                ]
                with m.If(self.nt_last):
                    m.d.sync += [
                        *set_pixel(p_nxt, step(p_nxt)),
                        p0.eq(p_nxt),
                        *set_pixel(p0_nxt, step(p_nxt)),
                    ]
                with m.Else():
                    m.d.sync += p_nxt.eq(p0_nxt)
        return m
