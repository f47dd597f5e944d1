"""The command check: every condition of a fetched command, as the one error code it halts with.

Every check happens before a command touches anything, so an illegal command halts within a few
cycles and never hangs. The conditions and their order are the golden model's
(``sushi_sched.isa_sim.check_command``); tests/hw/test_check.py compares the two on random
commands.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig, clog2
from .im2col import im2col_layout
from .ports import ERR_SHAPE, check_control


def exceeds(v: Value, limit: int) -> Value:
    """``v > limit`` for a constant ``limit``. Limits here are powers of two (buffer and memory
    sizes) or one less: then it is a test of the high bits, not a comparator's carry chain."""
    k = limit.bit_length()
    if len(v) <= k - 1 or (len(v) <= k and limit == (1 << k) - 1):
        return Const(0)
    if limit == (1 << k) - 1:
        return v[k:] != 0
    if limit == 1 << (k - 1):
        return (v[k:] != 0 if len(v) > k else Const(0)) | (v[k - 1] & (v[: k - 1] != 0))
    return v > limit


def sum_exceeds(a: Value, b: Value, limit: int, *, carry_compare: bool = False) -> Value:
    """``a + b > limit`` with an adder only as wide as ``limit``: an operand with a bit set
    above ``limit``'s width exceeds it on its own.

    ``carry_compare``: the sum is compared with a magnitude compare (a second carry chain)
    instead of :func:`exceeds`'s test of its high bits. On the iCE40 the sum's bits leave the
    adder's carry chain one after the other, and Yosys/ABC chained the high-bit test's LUTs in
    that order (8 LUTs in series, the critical path); a carry chain compares in one more
    chain and a LUT."""
    nb = limit.bit_length()
    high = Const(0)
    for v in (a, b):
        if len(v) > nb:
            high = high | (v[nb:] != 0)
    total = a[:nb] + b[:nb]
    return high | ((total > limit) if carry_compare else exceeds(total, limit))


class CheckProducts(wiring.Component):
    """The products a GEMM's checks need, from its fields (held stable from ``start`` on).

    Each output is exact below ``2**bits`` and at least ``2**bits`` otherwise (bit ``bits`` is
    an overflow flag): the checks only compare them with limits below ``2**bits``, so wider
    products would be registers and adders that decide nothing.

    ``start`` is raised in the cycle before the inputs ``kt_n``/``nt_n`` are valid; ``done``
    says the outputs hold this command's products. ``shared=False``: four multipliers,
    combinational, ``done`` always. ``shared=True``: one shift-add multiplier, one product after
    the other, one cycle per bit of the smaller operand (wide multipliers would take DSPs or
    many LUTs).
    """

    OUTPUTS = ("a_words", "o_words", "w_span", "pb_span")

    def __init__(self, bits: int, shared: bool = False, tile_bits: int = 16):
        #: width of the tile counts (the small operands); a larger one fails BAD_SHAPE anyway
        self.bits, self.shared, self.tile_bits = bits, shared, tile_bits
        members = {
            n: In(16) for n in ("m", "kt_n", "nt_n", "pb_kt", "pb_nt", "w_stride", "pb_stride")
        }
        members.update(requant=In(1), start=In(1), done=Out(1))
        for n in self.OUTPUTS:
            members[n] = Out(bits + 1)
        super().__init__(members)

    def elaborate(self, platform) -> Module:
        m = Module()
        s, B, T = self, self.bits, self.tile_bits

        def high(v: Value) -> Value:  # v has a bit set at or above 2**B
            return (v[B:] != 0) if len(v) > B else Const(0)

        # (x, y, p start, destination): destination = start + x * y; the small operand is y
        steps = [
            (s.m, s.kt_n[:T], Const(0), s.a_words),
            (Mux(s.requant, s.m, s.m << 2), s.nt_n[:T], Const(0), s.o_words),
            (s.w_stride, (s.nt_n - 1)[:T], s.kt_n, s.w_span),
            (s.pb_stride, (s.pb_nt - 1)[:T], s.pb_kt, s.pb_span),
        ]
        if not self.shared:
            m.d.comb += s.done.eq(1)
            for x, y, init, dest in steps:
                prod = Signal(len(x) + len(y) + 1)
                m.d.comb += prod.eq(init + x * y)
                m.d.comb += dest.eq(Cat(prod[:B], high(prod)))
            return m
        x, p, y = Signal(B), Signal(B), Signal(T)
        x_big, sat = Signal(), Signal()  # x >= 2**B; the product so far >= 2**B
        # y == 0 as a register beside y (its zero test ran in front of every register of the
        # loop, an iCE40 critical path): y only shifts right or is loaded
        y_zero = Signal()
        step = Signal(range(len(steps)))
        load, busy = Signal(), Signal()

        def load_step(i: int) -> None:
            xi, yi, init, _ = steps[i]
            m.d.sync += [
                x.eq(xi[:B]),
                x_big.eq(high(xi)),
                y.eq(yi),
                y_zero.eq(yi == 0),
                p.eq(init[:B]),
                sat.eq(high(init)),
                step.eq(i),
            ]

        m.d.comb += s.done.eq(~busy)
        with m.If(s.start):
            m.d.sync += [load.eq(1), busy.eq(1)]
        with m.Elif(load):  # the inputs are valid from here on
            load_step(0)
            m.d.sync += load.eq(0)
        with m.Elif(busy):
            with m.If(~y_zero):
                with m.If(y[0]):
                    total = p + x
                    m.d.sync += [p.eq(total[:B]), sat.eq(sat | total[B] | x_big)]
                m.d.sync += [
                    x.eq(x << 1),
                    x_big.eq(x_big | x[B - 1]),
                    y.eq(y >> 1),
                    y_zero.eq(y[1:] == 0),
                ]
            with m.Else():  # this product is done: store it, load the next
                with m.Switch(step):
                    for i, (_, _, _, dest) in enumerate(steps):
                        with m.Case(i):
                            m.d.sync += dest.eq(Cat(p, sat))
                            if i + 1 < len(steps):
                                load_step(i + 1)
                            else:
                                m.d.sync += busy.eq(0)
        return m


def tile_widths(cfg: AccelConfig) -> tuple[int, int]:
    """Widths of the K/N and the M tile counts: only as wide as a legal GEMM needs (a wider
    field fails BAD_SHAPE, so its truncated count is never used)."""
    return clog2(-(-cfg.max_dim // cfg.rows)) + 1, clog2(-(-cfg.max_dim // cfg.acc_depth)) + 1


def geometry_layout(cfg: AccelConfig) -> data.StructLayout:
    """A GEMM's or a CONV's decoded geometry (valid from CHECK_PREP on), the same for both.

    The weight tiles are walked (M-tile, N-tile, channel tile ``ct``, tap ``t``): a GEMM is a
    convolution with one tap (``ct`` is its K-tile). ``walk`` says where tile (nt, ct, t) lies:
    off-chip tile ``nt*w_nstride + ct*w_cstride + t`` after ``w_addr``, or PB tile
    ``pb_tile + nt*pb_nstride + ct*pb_cstride + t`` if ``nt < pb_nt``, ``ct < pb_ct`` and
    ``t < pb_t``. ``out`` says where the output rows go."""
    tile_w, mtile_w = tile_widths(cfg)
    walk = data.StructLayout(
        {
            "w_addr": isa.ADDR_BITS,
            "w_cstride": 8,
            "w_nstride": isa.DIM_BITS,
            "pb_tile": isa.INDEX_BITS,
            "pb_cstride": 8,
            "pb_nstride": isa.DIM_BITS,
            "pb_nt": tile_w,
            "pb_ct": tile_w,
            "pb_t": 6,
        }
    )
    out = data.StructLayout(
        {
            "o_buf": 1,
            "o_word": isa.INDEX_BITS,
            "requant": 1,
            "conv": 1,  # written [channel tile][pixel] (a feature map), not [mt][nt][m]
            "pixels": isa.DIM_BITS,  # output pixels of a CONV
        }
    )
    return data.StructLayout(
        {
            "kt_n": tile_w,
            "nt_n": tile_w,
            "mt_n": mtile_w,
            "ct_n": tile_w,
            "t_n": 6,
            "pb_used": 1,
            "off_used": 1,
            "walk": walk,
            "out": out,
        }
    )


class CommandCheck(wiring.Component):
    """Checks the command on ``cmd`` (held from ``ctl.start`` until the sequencer moves on).

    ``start`` (DECODE) registers the command's geometry and starts :class:`CheckProducts`;
    ``ready`` says the products are in (at once unless a GEMM on the shared multiplier), and
    ``error`` holds the command's code (0: it may run) two cycles after the first ``ready``
    cycle (CHECK_PREP's last cycle, then CHECK_WAIT, then CHECK). ``geom`` and ``act_bytes``
    (LOAD/STORE's byte count) are the decoded geometry the units that run the command use.
    """

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        lr = cfg.rows.bit_length() - 1
        super().__init__(
            {
                "cmd": In(isa.CMD_BITS),
                "ctl": In(check_control()),
                "geom": Out(geometry_layout(cfg)),
                "act_bytes": Out(isa.INDEX_BITS + lr),
                # a CONV's input geometry, for the core's address generator
                **({"im2col": Out(im2col_layout(cfg))} if cfg.conv else {}),
            }
        )

    def elaborate(self, platform) -> Module:  # noqa: C901 - the ISA's checks, in one place
        m = Module()
        cfg = self.cfg
        pipe_regs, shared = self.opts.pipeline_regs, self.opts.shared_check_mul
        R, D = cfg.rows, cfg.acc_depth
        lr, ld = R.bit_length() - 1, D.bit_length() - 1
        lw = cfg.mem_width.bit_length() - 1
        lt = cfg.tile_bytes.bit_length() - 1  # tile_bytes = rows * cols is a power of two
        act_w = cfg.act_words.bit_length()  # activation word index, up to act_words
        tile_w, mtile_w = tile_widths(cfg)

        cmd = self.cmd
        op = cmd[:4]
        c_cache = data.View(isa.CACHE, cmd[: isa.CACHE.size])
        c_act = data.View(isa.ACT_MOVE, cmd[: isa.ACT_MOVE.size])
        g = data.View(isa.GEMM, cmd[: isa.GEMM.size])

        # GEMM geometry, registered in DECODE. Internal widths follow the configuration; each
        # value is narrowed only after the checks that bound it have passed (docs/isa.md keeps
        # the 32-bit fields)
        kt_n, nt_n, mt_n = Signal(tile_w), Signal(tile_w), Signal(mtile_w)
        act_xfer_bytes = Signal.like(self.act_bytes)
        with m.If(self.ctl.start):
            m.d.sync += [
                kt_n.eq((g.k + (R - 1)) >> lr),
                nt_n.eq((g.n + (R - 1)) >> lr),
                mt_n.eq((g.m + (D - 1)) >> ld),
                act_xfer_bytes.eq(c_act.words << lr),
            ]
        # the GEMM checks' products, computed in CHECK_PREP, exact up to the largest limit
        prod_bits = max(cfg.act_words, cfg.mem_bytes >> lt, cfg.pb_tiles).bit_length()
        m.submodules.prods = prods = CheckProducts(prod_bits, shared=shared, tile_bits=tile_w)
        m.d.comb += [
            prods.start.eq(self.ctl.start),
            prods.m.eq(g.m),
            prods.kt_n.eq(kt_n),
            prods.nt_n.eq(nt_n),
            prods.pb_kt.eq(g.pb_kt),
            prods.pb_nt.eq(g.pb_nt),
            prods.w_stride.eq(g.w_stride),
            prods.pb_stride.eq(g.pb_stride),
            prods.requant.eq(g.requant),
        ]
        a_words, o_words = prods.a_words, prods.o_words
        w_span, pb_span = prods.w_span, prods.pb_span  # tiles from the first to past the last used
        # pb_kt*pb_nt != 0 and, once pb_kt <= KT and pb_nt <= NT are checked, KT*NT > pb_kt*pb_nt
        pb_used = (g.pb_kt != 0) & (g.pb_nt != 0)
        off_used = (g.pb_kt < kt_n) | (g.pb_nt < nt_n)
        # only a GEMM needs the products (the shared multiplier takes some cycles)
        m.d.comb += [
            self.ctl.ready.eq(prods.done | (op != isa.Op.GEMM)),
            self.act_bytes.eq(act_xfer_bytes),
        ]
        # a GEMM's weight walk: a convolution with one tap, its K-tiles the channel tiles
        geom, walk = self.geom, self.geom.walk
        m.d.comb += [
            geom.kt_n.eq(kt_n),
            geom.nt_n.eq(nt_n),
            geom.mt_n.eq(mt_n),
            geom.ct_n.eq(kt_n),
            geom.t_n.eq(1),
            geom.pb_used.eq(pb_used),
            geom.off_used.eq(off_used),
            walk.w_addr.eq(g.w_addr),
            walk.w_cstride.eq(1),
            walk.w_nstride.eq(g.w_stride),
            walk.pb_tile.eq(g.pb_tile),
            walk.pb_cstride.eq(1),
            walk.pb_nstride.eq(g.pb_stride),
            walk.pb_nt.eq(g.pb_nt),
            walk.pb_ct.eq(g.pb_kt),
            walk.pb_t.eq(1),
            geom.out.o_buf.eq(g.o_buf),
            geom.out.o_word.eq(g.o_word),
            geom.out.requant.eq(g.requant),
        ]
        if cfg.conv:
            from .conv_check import CODES, ConvCheck  # it builds on this module's helpers

            m.submodules.conv = conv = ConvCheck(cfg)
            m.d.comb += [conv.cmd.eq(cmd), conv.start.eq(self.ctl.start)]
            conv_op = (op == isa.Op.CONV) | (op == isa.Op.ADD) | (op == isa.Op.POOL)
            with m.If(conv_op):
                m.d.comb += self.ctl.ready.eq(conv.ready)
            with m.If(op == isa.Op.CONV):
                m.d.comb += geom.eq(conv.geom)
            m.d.comb += self.im2col.eq(conv.im2col)
        # a GEMM's output must not overwrite its own A: A is re-read for every N-tile
        # (only consulted once both ranges are known to lie inside the buffer: act_w bits do)
        overlap = Signal()
        a_lo, o_lo = g.a_word[:act_w], g.o_word[:act_w]
        m.d.comb += overlap.eq((a_lo < o_lo + o_words[:act_w]) & (o_lo < a_lo + a_words[:act_w]))

        # Every condition of the command, as one error code (0: it may run), registered every
        # cycle so the adders and compares end in a flip-flop, not in the sequencer's enables;
        # CHECK uses the value of the last CHECK_PREP cycle.
        # Each condition is registered first and the priority choice a cycle later
        # (CHECK_WAIT): the adders, compares and the choice did not fit 10 ns together on the
        # ECP5, nor 33 ns on the iCE40. The codes are registered only with the pipeline
        # registers: they are constants per opcode, one LUT behind ``cmd`` (iCE40 cells).
        E = isa.ErrorCode
        check_err = Signal(ERR_SHAPE)
        m.d.sync += self.ctl.error.eq(check_err)
        misaligned = lambda a: a[:lw] != 0 if lw else Const(0)  # noqa: E731

        def sum_over(a: Value, b: Value, limit: int) -> Value:
            """:func:`sum_exceeds` as this platform's timing wants it (carry compares on the
            iCE40, high-bit tests with the ECP5's pipeline registers)."""
            return sum_exceeds(a, b, limit, carry_compare=not pipe_regs)

        cache_bytes = c_cache.tiles << lt  # * tile_bytes
        n_conds = 6  # the most conditions of any opcode (GEMM)
        conds = [Signal(name=f"check_cond{i}") for i in range(n_conds)]
        codes = [Signal(ERR_SHAPE, name=f"check_code{i}") for i in range(n_conds)]
        conds_q = [Signal.like(c, name=f"{c.name}_q") for c in conds]
        m.d.sync += [q.eq(c) for q, c in zip(conds_q, conds, strict=True)]
        if pipe_regs:
            codes_q = [Signal.like(c, name=f"{c.name}_q") for c in codes]
            m.d.sync += [q.eq(c) for q, c in zip(codes_q, codes, strict=True)]
        else:
            codes_q = codes
        for i in reversed(range(n_conds)):  # the first true condition wins
            with m.If(conds_q[i]):
                m.d.comb += check_err.eq(codes_q[i])

        def first_failing(cases: list[tuple[Value, E]]) -> None:
            """check_err = the code of the first true condition, in ISA priority order."""
            assert len(cases) <= n_conds
            for i, (cond, code) in enumerate(cases):
                m.d.comb += [conds[i].eq(cond), codes[i].eq(code)]

        with m.Switch(op):
            with m.Case(isa.Op.CACHE):
                first_failing(
                    [
                        (c_cache.tiles == 0, E.BAD_SHAPE),
                        (sum_over(c_cache.pb_tile, c_cache.tiles, cfg.pb_tiles), E.PB_RANGE),
                        (misaligned(c_cache.mem_addr), E.BAD_ALIGN),
                        (sum_over(c_cache.mem_addr, cache_bytes, cfg.mem_bytes), E.MEM_RANGE),
                    ]
                )
            with m.Case(isa.Op.LOAD_ACT, isa.Op.STORE_ACT):
                first_failing(
                    [
                        (c_act.words == 0, E.BAD_SHAPE),
                        (sum_over(c_act.word, c_act.words, cfg.act_words), E.ACT_RANGE),
                        (misaligned(c_act.mem_addr) | misaligned(act_xfer_bytes), E.BAD_ALIGN),
                        (
                            sum_over(c_act.mem_addr, act_xfer_bytes, cfg.mem_bytes),
                            E.MEM_RANGE,
                        ),
                    ]
                )
            with m.Case(isa.Op.GEMM):
                bad_shape = (
                    (g.m == 0)
                    | (g.k == 0)
                    | (g.n == 0)
                    | exceeds(g.m, cfg.max_dim)
                    | exceeds(g.k, cfg.max_dim)
                    | exceeds(g.n, cfg.max_dim)
                    | (g.pb_kt > kt_n)
                    | (g.pb_nt > nt_n)
                    | (g.w_stride < kt_n)
                    | (pb_used & (g.pb_stride < g.pb_kt))
                    | (g.requant & (g.mult == 0))
                )
                act_range = (
                    sum_over(g.a_word, a_words, cfg.act_words)
                    | (~g.hold & sum_over(g.o_word, o_words, cfg.act_words))
                    | (~g.hold & (g.a_buf == g.o_buf) & overlap)
                )
                first_failing(
                    [
                        (bad_shape, E.BAD_SHAPE),
                        # the accumulator holds one M-tile of one N-tile
                        ((g.accumulate | g.hold) & ((mt_n != 1) | (nt_n != 1)), E.BAD_ACCUMULATE),
                        (act_range, E.ACT_RANGE),
                        (pb_used & sum_over(g.pb_tile, pb_span, cfg.pb_tiles), E.PB_RANGE),
                        (off_used & misaligned(g.w_addr), E.BAD_ALIGN),
                        (
                            off_used & sum_over(g.w_addr, w_span << lt, cfg.mem_bytes),
                            E.MEM_RANGE,
                        ),
                    ]
                )
            if cfg.conv:
                for conv_opcode, codes_of in CODES.items():
                    with m.Case(conv_opcode):
                        first_failing([(conv.conds[i], c) for i, c in enumerate(codes_of)])
            with m.Case(isa.Op.DONE):
                pass
            with m.Default():
                m.d.comb += [conds[0].eq(1), codes[0].eq(E.ILLEGAL_OPCODE)]
        return m
