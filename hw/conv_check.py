"""The checks of CONV, ADD and POOL, and a CONV's decoded geometry.

:class:`~.check.CommandCheck` owns the priority and the error register; this unit computes the
conditions of docs/isa.md for the three opcodes of configurations with ``conv``. The products
(plane sizes, spans of the weight walk) run one after the other on one shift-and-add multiplier
(:func:`check_cycles` after DECODE: a CONV needs all of them, a POOL one, an ADD none): the
DSPs are the array's.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .check import exceeds, geometry_layout, sum_exceeds
from .config import AccelConfig, clog2
from .im2col import im2col_layout

#: the conditions of each opcode, in priority order (the first true one is the error)
CODES = {
    isa.Op.CONV: [
        isa.ErrorCode.BAD_CONV,
        isa.ErrorCode.BAD_SHAPE,
        isa.ErrorCode.ACT_RANGE,
        isa.ErrorCode.PB_RANGE,
        isa.ErrorCode.BAD_ALIGN,
        isa.ErrorCode.MEM_RANGE,
    ],
    isa.Op.ADD: [isa.ErrorCode.BAD_SHAPE, isa.ErrorCode.ACT_RANGE],
    isa.Op.POOL: [isa.ErrorCode.BAD_SHAPE, isa.ErrorCode.ACT_RANGE],
}
PRODUCTS = 10  # the multiplications the checks need, on one shift-and-add multiplier
Y_BITS = 12  # width of each product's smaller operand
#: cycles of one product: a load, then two bits of y a cycle (radix 4: acc + {0, x, 2x, 3x})
PRODUCT_CYCLES = 1 + Y_BITS // 2
#: the first product each opcode needs: the products run in order to the last, which POOL's
#: own product is; ADD needs none
FIRST_PRODUCT = {isa.Op.CONV: 0, isa.Op.POOL: PRODUCTS - 1, isa.Op.ADD: PRODUCTS}


def check_cycles(op: isa.Op) -> int:
    """Cycles from DECODE until ``ready`` (the conditions hold this command's values)."""
    return 1 + (PRODUCTS - FIRST_PRODUCT[op]) * PRODUCT_CYCLES + 2


CHECK_CYCLES = check_cycles(isa.Op.CONV)


def _overlap(a: Value, a_n: Value, b: Value, b_n: Value) -> Value:
    return (a < b + b_n) & (b < a + a_n)


class ConvCheck(wiring.Component):
    """``start`` (DECODE) starts the products; ``ready`` rises :func:`check_cycles` later
    and stays until the next start. ``conds[i]`` is condition ``i`` of :data:`CODES` for the opcode
    on ``cmd``. ``geom``, ``im2col`` and ``pixels`` are a CONV's geometry (valid with ready)."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        super().__init__(
            {
                "cmd": In(isa.CMD_BITS),
                "start": In(1),
                "ready": Out(1),
                "conds": Out(len(CODES[isa.Op.CONV])),
                "geom": Out(geometry_layout(cfg)),
                "im2col": Out(im2col_layout(cfg)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        R, D = cfg.rows, cfg.acc_depth
        lr, ld = clog2(R), clog2(D)
        lw, lt = clog2(cfg.mem_width), clog2(cfg.tile_bytes)
        cv = data.View(isa.CONV, self.cmd[: isa.CONV.size])
        ad = data.View(isa.ADD, self.cmd[: isa.ADD.size])
        pl = data.View(isa.POOL, self.cmd[: isa.POOL.size])
        op = self.cmd[:4]

        # stage 1 (DECODE): tile counts and output sizes
        ct_n, nt_n, taps = Signal(12), Signal(12), Signal(6)
        h_out, w_out = Signal(9), Signal(9)
        h_fits, w_fits = Signal(), Signal()  # the kernel fits the padded map
        half = Signal(2)
        m.d.comb += half.eq(cv.k >> 1)

        def out_size(n: Value) -> Value:
            span = n + (cv.pad << 1) - cv.k
            return Mux(cv.stride == 2, span >> 1, span) + 1

        with m.If(self.start):
            m.d.sync += [
                ct_n.eq((cv.c_in + (R - 1)) >> lr),
                nt_n.eq((cv.c_out + (R - 1)) >> lr),
                taps.eq(Array(Const(k * k, 6) for k in range(8))[cv.k]),  # no multiplier
                h_out.eq(out_size(cv.h)),
                w_out.eq(out_size(cv.w)),
                h_fits.eq(cv.h + (cv.pad << 1) >= cv.k),
                w_fits.eq(cv.w + (cv.pad << 1) >= cv.k),
            ]

        # the products, one after the other on one shift-and-add multiplier (ten multipliers
        # would take DSPs the array needs): ``dest = x * y``, y at most Y_BITS wide, a fixed
        # PRODUCT_CYCLES each; a later step may use an earlier one's result
        p_in, p_out, k_tiles = Signal(16), Signal(18), Signal(18)
        w_cprod, pb_cprod = Signal(20), Signal(20)
        w_nprod, pb_nprod = Signal(28), Signal(28)
        pool_words, a_words_p, o_pix = Signal(28), Signal(32), Signal(32)
        steps = [
            (p_in, cv.h, cv.w),
            (p_out, h_out, w_out),
            (k_tiles, ct_n, taps),
            (w_cprod, cv.w_cstride, ct_n - 1),
            (pb_cprod, cv.pb_cstride, cv.pb_ct - 1),
            (w_nprod, cv.w_nstride, nt_n - 1),
            (pb_nprod, cv.pb_nstride, cv.pb_nt - 1),
            (a_words_p, p_in, ct_n),
            (o_pix, p_out, nt_n),
            (pool_words, pl.pixels, pl.tiles),
        ]
        assert len(steps) == PRODUCTS
        acc, x, x3 = Signal(32), Signal(32), Signal(32)  # x3 = 3x: no adder in the loop
        y = Signal(Y_BITS)
        step = Signal(range(PRODUCTS + 1), init=PRODUCTS)
        i = Signal(range(PRODUCT_CYCLES))
        settle = Signal(range(3))  # the sums after the last product, then ready
        first = Mux(op == isa.Op.ADD, FIRST_PRODUCT[isa.Op.ADD],
                    Mux(op == isa.Op.POOL, FIRST_PRODUCT[isa.Op.POOL], 0))  # fmt: skip
        with m.If(self.start):
            m.d.sync += [step.eq(first), i.eq(0), settle.eq(2)]
        with m.Elif(step != PRODUCTS):
            with m.If(i == 0):  # load
                with m.Switch(step):
                    for n, (_, xs, ys) in enumerate(steps):
                        with m.Case(n):
                            m.d.sync += [x.eq(xs), x3.eq(xs + (xs << 1)), y.eq(ys[:Y_BITS]),
                                         acc.eq(0)]  # fmt: skip
                m.d.sync += i.eq(1)
            with m.Else():
                total = acc + Array([0, x, x << 1, x3])[y[:2]]
                m.d.sync += [acc.eq(total), x.eq(x << 2), x3.eq(x3 << 2), y.eq(y >> 2),
                             i.eq(i + 1)]  # fmt: skip
                with m.If(i == PRODUCT_CYCLES - 1):  # the last two bits: store, next step
                    with m.Switch(step):
                        for n, (dest, _, _) in enumerate(steps):
                            with m.Case(n):
                                m.d.sync += dest.eq(total)
                    m.d.sync += [step.eq(step + 1), i.eq(0)]
        with m.Elif(settle != 0):
            m.d.sync += settle.eq(settle - 1)
        m.d.comb += self.ready.eq((step == PRODUCTS) & (settle == 0))

        # buffer and memory extents, registered after the products
        a_words, o_words = Signal(32), Signal(32)
        w_cspan, pb_cspan = Signal(21), Signal(21)
        w_span, pb_span = Signal(29), Signal(29)
        m.d.sync += [
            a_words.eq(a_words_p),
            o_words.eq(Mux(cv.requant, o_pix, o_pix << 2)),
            w_cspan.eq(w_cprod + taps),
            pb_cspan.eq(pb_cprod + cv.pb_t),
        ]
        m.d.comb += [w_span.eq(w_nprod + w_cspan), pb_span.eq(pb_nprod + pb_cspan)]

        pb_used = (cv.pb_nt != 0) & (cv.pb_ct != 0) & (cv.pb_t != 0)
        off_used = (cv.pb_nt < nt_n) | (cv.pb_ct < ct_n) | (cv.pb_t < taps)
        act = cfg.act_words
        conds = self.conds
        with m.Switch(op):
            with m.Case(isa.Op.CONV):
                m.d.comb += [
                    conds[0].eq(~cv.k[0] | (cv.stride == 0) | (cv.stride == 3) | (cv.pad > half)),
                    conds[1].eq(
                        (cv.h == 0)
                        | (cv.w == 0)
                        | (cv.c_in == 0)
                        | (cv.c_out == 0)
                        | ~h_fits
                        | ~w_fits
                        | exceeds(cv.c_out, cfg.max_dim)
                        | exceeds(p_out, cfg.max_dim)
                        | exceeds(k_tiles << lr, cfg.max_dim)
                        | (cv.w_cstride < taps)
                        | (cv.w_nstride < w_cspan)
                        | (cv.pb_nt > nt_n)
                        | (cv.pb_ct > ct_n)
                        | (cv.pb_t > taps)
                        | (pb_used & ((cv.pb_cstride < cv.pb_t) | (cv.pb_nstride < pb_cspan)))
                        | (cv.requant & (cv.mult == 0))
                    ),
                    conds[2].eq(
                        sum_exceeds(cv.a_word, a_words, act)
                        | sum_exceeds(cv.o_word, o_words, act)
                        | (
                            (cv.a_buf == cv.o_buf)
                            & _overlap(cv.a_word, a_words, cv.o_word, o_words)
                        )
                    ),
                    conds[3].eq(pb_used & sum_exceeds(cv.pb_tile, pb_span, cfg.pb_tiles)),
                    conds[4].eq(off_used & (cv.w_addr[:lw] != 0 if lw else Const(0))),
                    conds[5].eq(off_used & sum_exceeds(cv.w_addr, w_span << lt, cfg.mem_bytes)),
                ]
            with m.Case(isa.Op.ADD):
                n = ad.words

                def partial(b: Value, word: Value) -> Value:  # in place is fine, part is not
                    return (ad.o_buf == b) & (ad.o_word != word) & _overlap(ad.o_word, n, word, n)

                m.d.comb += [
                    conds[0].eq(n == 0),
                    conds[1].eq(
                        sum_exceeds(ad.a_word, n, act)
                        | sum_exceeds(ad.b_word, n, act)
                        | sum_exceeds(ad.o_word, n, act)
                        | partial(ad.a_buf, ad.a_word)
                        | partial(ad.b_buf, ad.b_word)
                    ),
                ]
            with m.Case(isa.Op.POOL):
                m.d.comb += [
                    conds[0].eq((pl.pixels == 0) | (pl.tiles == 0) | (pl.mult == 0)),
                    conds[1].eq(
                        sum_exceeds(pl.a_word, pool_words, act)
                        | sum_exceeds(pl.o_word, pl.tiles, act)
                        | (
                            (pl.a_buf == pl.o_buf)
                            & _overlap(pl.a_word, pool_words, pl.o_word, pl.tiles)
                        )
                    ),
                ]

        # a CONV's geometry, as the weight feed, the core and the output writer take it
        g, w = self.geom, self.geom.walk
        m.d.comb += [
            g.kt_n.eq(k_tiles),
            g.nt_n.eq(nt_n),
            g.mt_n.eq((p_out + (D - 1)) >> ld),
            g.ct_n.eq(ct_n),
            g.t_n.eq(taps),
            g.pb_used.eq(pb_used),
            g.off_used.eq(off_used),
            w.w_addr.eq(cv.w_addr),
            w.w_cstride.eq(cv.w_cstride),
            w.w_nstride.eq(cv.w_nstride),
            w.pb_tile.eq(cv.pb_tile),
            w.pb_cstride.eq(cv.pb_cstride),
            w.pb_nstride.eq(cv.pb_nstride),
            w.pb_nt.eq(cv.pb_nt),
            w.pb_ct.eq(cv.pb_ct),
            w.pb_t.eq(cv.pb_t),
            g.out.o_buf.eq(cv.o_buf),
            g.out.o_word.eq(cv.o_word),
            g.out.requant.eq(cv.requant),
            g.out.conv.eq(1),
            g.out.pixels.eq(p_out),
        ]
        i2c = self.im2col
        m.d.comb += [
            i2c.h.eq(cv.h),
            i2c.w.eq(cv.w),
            i2c.w_out.eq(w_out),
            i2c.stride.eq(cv.stride),
            i2c.c_off.eq(half - cv.pad),
            i2c.taps.eq(taps),
            i2c.plane.eq(p_in),
        ]
        return m
