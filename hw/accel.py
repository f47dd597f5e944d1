"""SushiAccel: command processor, Persistent Buffer, dynamic weight buffer, activation buffers.

The host writes a program (docs/isa.md) into off-chip memory and rings the doorbell; the command
processor fetches, checks and executes one command at a time and raises ``done`` or ``error``.
Every check happens before a command touches anything, so an illegal command halts within a few
cycles and never hangs. Ports are listed in docs/architecture.md.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .bram import RegisteredRam
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig, clog2
from .counters import CounterBank
from .gemm_core import GemmCore
from .mem_port import MEM_BEATS_BITS, mem_port_signature
from .pipeline import CreditedReadQueue, StreamRegister
from .spram import SinglePortRam
from .width import WidthConverter

MAX_BURST = 256  # beats per memory request


class RequestIssuer(wiring.Component):
    """Issues ``beats`` beats from ``addr`` as bursts of MAX_BURST.

    Addresses are ``addr_bits`` wide (``log2(mem_bytes)``: the command checks have already
    rejected anything outside memory), so no adder is wider than the memory needs.
    """

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        self.addr_bits = clog2(cfg.mem_bytes)
        # the longest transfer the command checks let through: a buffer's worth or a command
        most = max(cfg.pb_bytes, cfg.act_bytes, 32) // cfg.mem_width
        self.beat_bits = min(self.addr_bits + 1, most.bit_length())
        super().__init__(
            {
                "start": In(1),
                "addr": In(self.addr_bits),
                "beats": In(self.beat_bits),
                "write": In(1),
                "busy": Out(1),
                "req": Out(mem_port_signature(cfg).members["req"].signature),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        W = self.cfg.mem_width
        addr = Signal(self.addr_bits)
        left = Signal(self.beat_bits)
        write = Signal()
        burst = Signal(MEM_BEATS_BITS)
        m.d.comb += burst.eq(Mux(exceeds(left, MAX_BURST), MAX_BURST, left))
        m.d.comb += [
            self.busy.eq(left != 0),
            self.req.valid.eq(left != 0),
            self.req.payload.addr.eq(addr),
            self.req.payload.beats.eq(burst),
            self.req.payload.write.eq(write),
        ]
        with m.If(self.start):
            m.d.sync += [addr.eq(self.addr), left.eq(self.beats), write.eq(self.write)]
        with m.Elif(self.req.valid & self.req.ready):
            m.d.sync += [addr.eq(addr + (burst << (W.bit_length() - 1))), left.eq(left - burst)]
        return m


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


class TileCursor:
    """Walks a GEMM's weight tiles in feed order (M-tile, then N-tile, then K-tile), keeping
    "last K/N/M tile" and "in the cached block" in registers: the compares that decide them
    run one tile ahead, off the valid/ready paths that advance the cursor.

    With ``lookahead`` the whole next state is computed from the current one and registered
    every cycle, so a step only loads registers (the handshake that steps is their enable, not
    an input of the compares behind them: an iCE40 critical path). The price: :meth:`step`
    must not come in the cycle right after :meth:`start` or another step."""

    def __init__(
        self,
        m: Module,
        name: str,
        g: dict[str, Value],
        tile_w: int,
        mtile_w: int,
        *,
        lookahead: bool = False,
        track_pb: bool = True,
    ):
        """``g``: the GEMM's tile counts, the counts less two (``kt_m2``, ...: never all ones
        for a legal GEMM, as the counts stay below half the width) and the cached block
        (``kt_n``, ``nt_n``, ``mt_n``, ``pb_kt``, ``pb_nt``, ``pb_used``), valid from ``start``
        on. ``track_pb=False``: no ``in_pb`` (a walk over the cached block itself)."""
        self.m, self.g, self.track_pb = m, g, track_pb
        self.kt, self.nt = Signal(tile_w, name=f"{name}_kt"), Signal(tile_w, name=f"{name}_nt")
        self.mt = Signal(mtile_w, name=f"{name}_mt")
        self.kt_last, self.nt_last = Signal(name=f"{name}_kt_last"), Signal(name=f"{name}_nt_last")
        self.mt_last = Signal(name=f"{name}_mt_last")
        self.kn_last = Signal(name=f"{name}_kn_last")  # last K-tile of the last N-tile
        self.all_last = Signal(name=f"{name}_all_last")  # the GEMM's last tile
        self.in_pb = Signal(name=f"{name}_in_pb")  # tile (nt, kt) comes from the PB
        # every tile has been stepped over (and outside a GEMM: set by reset)
        self.done = Signal(name=f"{name}_done", init=1)
        names = "kt nt mt kt_last nt_last mt_last kn_last all_last done".split()
        names += ["in_pb"] if track_pb else []
        self._state = {k: getattr(self, k) for k in names}
        self._next = self._next_state()
        if lookahead:
            ahead = {k: Signal.like(s, name=f"{s.name}_ahead") for k, s in self._state.items()}
            m.d.sync += [ahead[k].eq(self._next[k]) for k in self._state]
            self._next = ahead

    def _next_state(self) -> dict[str, Signal]:
        """The state after a step from the current one (combinational), by attribute name."""
        m, g = self.m, self.g
        nxt = {k: Signal.like(s, name=f"{s.name}_next") for k, s in self._state.items()}
        m.d.comb += [nxt[k].eq(s) for k, s in self._state.items()]
        # the next tile's flags; "K and N last" and "all last" are kept too, so the conditions
        # that enable the counters are one register each
        kt_last, nt_last, mt_last = nxt["kt_last"], nxt["nt_last"], nxt["mt_last"]

        def in_pb(v: Value) -> list:
            return [nxt["in_pb"].eq(v)] if self.track_pb else []

        with m.If(~self.kt_last):
            m.d.comb += [
                kt_last.eq(self.kt == g["kt_m2"]),
                nxt["kt"].eq(self.kt + 1),
                *in_pb((self.nt < g["pb_nt"]) & (self.kt + 1 < g["pb_kt"])),
            ]
        with m.Elif(~self.kn_last):
            m.d.comb += [
                kt_last.eq(g["kt_n"] == 1),
                nt_last.eq(self.nt == g["nt_m2"]),
                nxt["kt"].eq(0),
                nxt["nt"].eq(self.nt + 1),
                *in_pb((self.nt + 1 < g["pb_nt"]) & (g["pb_kt"] != 0)),
            ]
        with m.Else():
            m.d.comb += [
                kt_last.eq(g["kt_n"] == 1),
                nt_last.eq(g["nt_n"] == 1),
                mt_last.eq(self.mt == g["mt_m2"]),
                nxt["kt"].eq(0),
                nxt["nt"].eq(0),
                nxt["mt"].eq(self.mt + 1),
                *in_pb(g["pb_used"]),
            ]
            with m.If(self.all_last):
                m.d.comb += nxt["done"].eq(1)
        m.d.comb += [
            nxt["kn_last"].eq(kt_last & nt_last),
            nxt["all_last"].eq(kt_last & nt_last & mt_last),
        ]
        return nxt

    def start(self, done: Value) -> None:
        """At tile (0, 0, 0)."""
        g = self.g
        kt1, nt1, mt1 = g["kt_n"] == 1, g["nt_n"] == 1, g["mt_n"] == 1
        self.m.d.sync += [
            self.kt.eq(0),
            self.nt.eq(0),
            self.mt.eq(0),
            self.kt_last.eq(kt1),
            self.nt_last.eq(nt1),
            self.mt_last.eq(mt1),
            self.kn_last.eq(kt1 & nt1),
            self.all_last.eq(kt1 & nt1 & mt1),
            self.done.eq(done),
        ]
        if self.track_pb:
            self.m.d.sync += self.in_pb.eq(g["pb_used"])

    def step(self) -> None:
        """Move to the next tile (statements for the cycle the current one is taken)."""
        self.m.d.sync += [s.eq(self._next[k]) for k, s in self._state.items()]


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


class SushiAccel(wiring.Component):
    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        super().__init__(
            {
                "mem": Out(mem_port_signature(cfg)),
                "doorbell": In(1),
                "prog_addr": In(32),
                "busy": Out(1),
                "done": Out(1),
                "error": Out(1),
                "error_code": Out(8),
                "ctr_sel": In(range(isa.NUM_COUNTERS)),
                "ctr_value": Out(64),
            }
        )

    def elaborate(self, platform) -> Module:  # noqa: C901 - one FSM, kept in one place
        m = Module()
        cfg = self.cfg
        R, W, D = cfg.rows, cfg.mem_width, cfg.acc_depth
        lr, ld = R.bit_length() - 1, D.bit_length() - 1
        lw = W.bit_length() - 1
        tile_bytes = cfg.tile_bytes
        lt = tile_bytes.bit_length() - 1  # tile_bytes = rows * cols is a power of two
        word_bits = 8 * R
        # internal widths follow the configuration; each value is narrowed only after the
        # checks that bound it have passed (docs/isa.md keeps the 32-bit fields)
        AW = clog2(cfg.mem_bytes)  # off-chip byte address
        act_w = cfg.act_words.bit_length()  # activation word index, up to act_words
        pb_t = max(1, cfg.pb_tiles.bit_length())  # PB tile index, up to pb_tiles

        # ---- storage -------------------------------------------------------------------
        # no C_in stream (accumulation goes through acc_keep) and A is always all there
        # ECP5 timing: every block RAM's read data is registered right at the RAM, before any
        # select (its clock-to-out is 5.8 ns of the 10), in the block's own output register
        # (sushi_hw.bram); not on the iCE40 (BuildOptions.pipeline_regs)
        opts = self.opts
        pipe_regs = opts.pipeline_regs

        m.submodules.core = core = GemmCore(
            cfg,
            with_c_in=False,
            a_flow=False,
            int32_gap=4,
            a_latency=act_read_latency(pipe_regs),
            opts=opts,
        )
        acts, act_rdata = [], []
        for b in range(2):
            ram = RegisteredRam(word_bits, cfg.act_words, **act_ram_options(pipe_regs), opts=opts)
            m.submodules[f"act{b}"] = ram
            acts.append((ram.write, ram.read))
            act_rdata.append(ram.read.data)
        assert ram.read_latency == act_read_latency(pipe_regs)
        # written only by CACHE, read only by GEMM: single-ported (SPRAM on the iCE40UP). ECP5
        # timing: its address and enables are registered too, in copies by its block RAMs
        # (64 on `large`, spread over the die), one more cycle of read latency
        m.submodules.pb = pb = SinglePortRam(
            "pb",
            word_bits,
            max(1, cfg.pb_bytes // R),
            registered=pipe_regs,
            ports_registered=pipe_regs,
            opts=opts,
        )
        pb_rdata = pb.rdata
        m.submodules.dynq = dynq = fifo.SyncFIFOBuffered(width=word_bits, depth=cfg.dyn_bytes // R)
        # synchronous-read buffers (the PB in a GEMM, an activation buffer in a STORE) feed
        # their words through this queue; never both at once, so one queue serves both. With
        # the read data registered, two words are in flight and the queue is twice as deep, so
        # it still takes a word every cycle. A read is issued (readq.issue, its word on
        # readq.data a cycle later, three with the read and address registers) only while
        # readq.room.
        m.submodules.readq = readq = CreditedReadQueue(
            word_bits, depth=8 if pipe_regs else 4, latency=pb.read_latency
        )
        # one queue for both: an activation buffer's word arrives as late as the PB's
        assert pb.read_latency == act_read_latency(pipe_regs)
        store_word = Signal(word_bits)  # STORE's word, from the buffer it reads
        m.submodules.conv_in = conv_in = WidthConverter(W, R)
        m.submodules.conv_out = conv_out = WidthConverter(R, W)
        cmd_words = max(1, W // isa.CMD_BYTES)
        m.submodules.issuer = issuer = RequestIssuer(cfg)

        # memory requests: the issuer (commands, CACHE, LOAD/STORE) or, during a GEMM, the
        # weight-tile walker below
        gemm_req = Signal()
        walk_valid = Signal()
        walk_addr = Signal(32)
        mreq = self.mem.req
        with m.If(gemm_req):
            m.d.comb += [
                mreq.valid.eq(walk_valid),
                mreq.payload.addr.eq(walk_addr),
                mreq.payload.beats.eq(tile_bytes // W),
                mreq.payload.write.eq(0),
            ]
        with m.Else():
            m.d.comb += [
                mreq.valid.eq(issuer.req.valid),
                mreq.payload.eq(issuer.req.payload),
                issuer.req.ready.eq(mreq.ready),
            ]

        # ---- counters ------------------------------------------------------------------
        # every decoded command was fetched whole, so RD_CMD_BYTES is COMMANDS times the bytes
        # of a fetch: one counter less (read during a fetch, it lags by that command's beats)
        C = isa.Counter
        counted = [c for c in C if c != C.RD_CMD_BYTES]
        amount = {C.RD_WEIGHT_BYTES: W, C.RD_ACT_BYTES: W, C.WR_BYTES: W, C.PB_READ_BYTES: R}
        amounts = [amount.get(c, 1) for c in counted]
        m.submodules.ctrs = ctrs = CounterBank(amounts, cfg.counter_bits, read_reg=pipe_regs)
        with m.Switch(self.ctr_sel):
            for c in C:
                with m.Case(c):
                    m.d.comb += ctrs.sel.eq(counted.index(C.COMMANDS if c == C.RD_CMD_BYTES else c))
        # ctrs.value lags ctr_sel by ctrs.latency cycles: so does this select
        cmd_bytes_sel = self.ctr_sel == C.RD_CMD_BYTES
        for i in range(CounterBank.latency):
            delayed = Signal(name=f"cmd_bytes_sel_{i + 1}")
            m.d.sync += delayed.eq(cmd_bytes_sel)
            cmd_bytes_sel = delayed
        shift = max(isa.CMD_BYTES, W).bit_length() - 1
        m.d.comb += self.ctr_value.eq(
            Mux(cmd_bytes_sel, (ctrs.value << shift)[: cfg.counter_bits], ctrs.value)
        )

        # ---- command register and decoded views ---------------------------------------
        cmd = Signal(isa.CMD_BITS, reset_less=True)  # decoded only once fetched
        op = cmd[:4]
        c_cache = data.View(isa.CACHE, cmd[: isa.CACHE.size])
        c_act = data.View(isa.ACT_MOVE, cmd[: isa.ACT_MOVE.size])
        m.d.comb += store_word.eq(Mux(c_act.buf, act_rdata[1], act_rdata[0]))
        c_gemm = data.View(isa.GEMM, cmd[: isa.GEMM.size])
        pc = Signal(AW + 1)  # up to mem_bytes: a program may run off the end
        pc_outside = Signal()  # the doorbell's address is beyond memory
        err = Signal(range(max(isa.ErrorCode) + 1))
        done = Signal()
        busy = Signal()
        m.d.comb += [
            self.busy.eq(busy),
            self.done.eq(done),
            self.error.eq(err != 0),
            self.error_code.eq(err),
        ]

        # GEMM geometry, registered in DECODE; tile counts are only as wide as a legal GEMM
        # needs (a wider field fails BAD_SHAPE, so its truncated count is never used)
        tile_w = clog2(-(-cfg.max_dim // R)) + 1
        mtile_w = clog2(-(-cfg.max_dim // D)) + 1
        kt_n, nt_n, mt_n = Signal(tile_w), Signal(tile_w), Signal(mtile_w)
        # the GEMM checks' products, computed in CHECK_PREP, exact up to the largest limit
        prod_bits = max(cfg.act_words, cfg.mem_bytes >> lt, cfg.pb_tiles).bit_length()
        m.submodules.prods = prods = CheckProducts(
            prod_bits, shared=opts.shared_check_mul, tile_bits=tile_w
        )
        m.d.comb += [
            prods.m.eq(c_gemm.m),
            prods.kt_n.eq(kt_n),
            prods.nt_n.eq(nt_n),
            prods.pb_kt.eq(c_gemm.pb_kt),
            prods.pb_nt.eq(c_gemm.pb_nt),
            prods.w_stride.eq(c_gemm.w_stride),
            prods.pb_stride.eq(c_gemm.pb_stride),
            prods.requant.eq(c_gemm.requant),
        ]
        a_words, o_words = prods.a_words, prods.o_words
        w_span, pb_span = prods.w_span, prods.pb_span  # tiles from the first to past the last used
        # pb_kt*pb_nt != 0 and, once pb_kt <= KT and pb_nt <= NT are checked, KT*NT > pb_kt*pb_nt
        pb_used = (c_gemm.pb_kt != 0) & (c_gemm.pb_nt != 0)
        off_used = (c_gemm.pb_kt < kt_n) | (c_gemm.pb_nt < nt_n)
        # the cached block's extent once CHECK has bounded it by KT x NT (the walkers' width)
        pb_kt, pb_nt = c_gemm.pb_kt[:tile_w], c_gemm.pb_nt[:tile_w]
        # the counts less two, registered (valid two cycles after DECODE, before any GEMM
        # state): a cursor's "next tile is the last" is then an equality with a register
        kt_m2, nt_m2, mt_m2 = Signal(tile_w), Signal(tile_w), Signal(mtile_w)
        m.d.sync += [kt_m2.eq(kt_n - 2), nt_m2.eq(nt_n - 2), mt_m2.eq(mt_n - 2)]
        pb_kt_m2, pb_nt_m2 = Signal(tile_w), Signal(tile_w)  # the same for the cached block
        m.d.sync += [pb_kt_m2.eq(pb_kt - 2), pb_nt_m2.eq(pb_nt - 2)]
        tiles = dict(
            kt_n=kt_n,
            nt_n=nt_n,
            mt_n=mt_n,
            kt_m2=kt_m2,
            nt_m2=nt_m2,
            mt_m2=mt_m2,
            pb_kt=pb_kt,
            pb_nt=pb_nt,
            pb_used=pb_used,
        )
        act_xfer_bytes = Signal(isa.INDEX_BITS + lr)
        # a GEMM's output must not overwrite its own A: A is re-read for every N-tile
        # (only consulted once both ranges are known to lie inside the buffer: act_w bits do)
        overlap = Signal()
        a_lo, o_lo = c_gemm.a_word[:act_w], c_gemm.o_word[:act_w]
        m.d.comb += overlap.eq((a_lo < o_lo + o_words[:act_w]) & (o_lo < a_lo + a_words[:act_w]))

        # ---- data movement state -------------------------------------------------------
        move_w = max(cfg.act_words, cfg.pb_bytes // R).bit_length()
        cnt = Signal(move_w)  # words moved by the current CACHE/LOAD/STORE
        last_word = Signal(move_w)  # index of the transfer's last word (the checks reject 0)
        # cnt == last_word, as a register (the compare sat in front of the FSM's enables)
        cnt_last = Signal()
        store_rd = Signal(act_w)  # STORE: words read from the buffer
        # store_rd <= last_word, as a register (its compare sat in front of the read issue)
        store_more = Signal()
        # the buffer address of CACHE/LOAD's next write or STORE's next read, in a register:
        # the field + count adder ran into the block RAM's address (ECP5 critical path)
        xfer_addr = Signal(max(act_w, clog2(max(1, cfg.pb_bytes // R))))
        # STORE: beats still to send, and "the next beat is the last" in a register (the
        # count-and-compare sat between the memory's wdata.ready and the FSM)
        wleft = Signal(range(cfg.act_bytes // W + 1))
        wlast = Signal()
        fetch_idx = Signal(range(max(1, isa.CMD_BYTES // W) + 1))  # beats of the command
        # a beat wider than a command holds several: the index of the one at pc
        fetch_keep = Signal(max(1, (cmd_words - 1).bit_length()))

        # GEMM off-chip weight walker: one request per tile outside the cached block
        wcur = TileCursor(m, "w", tiles, tile_w, mtile_w)
        w_idx, w_row_start = Signal(max(1, AW - lt)), Signal(max(1, AW - lt))  # tile index
        # GEMM weight feed
        # (R >= 2 weight words per tile: never a step in the cycle after another or a start)
        fcur = TileCursor(m, "f", tiles, tile_w, mtile_w, lookahead=True)
        f_row, f_row_last = Signal(range(R)), Signal()
        # GEMM PB walker: the cached block's tiles in feed order, a pass per M-tile; steps
        # R >= 2 reads apart, like fcur's
        pb_block = dict(tiles, kt_n=pb_kt, nt_n=pb_nt, kt_m2=pb_kt_m2, nt_m2=pb_nt_m2)
        pcur = TileCursor(m, "p", pb_block, tile_w, mtile_w, lookahead=True, track_pb=False)
        pb_r = Signal(range(R))
        pb_tile_row = Signal(pb_t)  # PB tile index of (pcur.nt, 0)
        # GEMM output writer
        o_addr = Signal(act_w)
        o_part = Signal(2)

        # With the pipeline registers the dynamic buffer's output (its r_data is the block RAM's
        # read data) and the weight feed into the core (the core's w.ready ran through the
        # source select into both queues' levels) go through register slices.
        if pipe_regs:
            m.submodules.dyn_slice = dyn_slice = StreamRegister(unsigned(word_bits))
            m.submodules.w_slice = w_slice = StreamRegister(unsigned(word_bits))
            m.d.comb += [
                dyn_slice.i.valid.eq(dynq.r_rdy),
                dyn_slice.i.payload.eq(dynq.r_data),
                dynq.r_en.eq(dyn_slice.i.ready),
                core.w.valid.eq(w_slice.o.valid),
                core.w.payload.eq(w_slice.o.payload),
                w_slice.o.ready.eq(core.w.ready),
            ]
            dyn_out, w_feed = dyn_slice.o, w_slice.i
        else:
            dyn_out = SimpleNamespace(valid=dynq.r_rdy, payload=dynq.r_data, ready=dynq.r_en)
            w_feed = core.w

        rdata = self.mem.rdata
        beat_in = rdata.valid & rdata.ready

        def count(c: isa.Counter) -> None:
            m.d.comb += ctrs.inc[counted.index(c)].eq(1)

        with m.If(busy):
            count(isa.Counter.CYCLES)
        with m.If(core.issue):
            count(isa.Counter.MAC_ACTIVE)
        with m.If(self.mem.wdata.valid & self.mem.wdata.ready):
            count(isa.Counter.WR_BYTES)

        core_started = Signal()

        def read_into_conv_in(counter: isa.Counter) -> None:
            """Off-chip read beats enter the rows-wide converter, counted as ``counter``."""
            m.d.comb += [
                conv_in.i.valid.eq(rdata.valid),
                conv_in.i.payload.eq(rdata.payload),
                rdata.ready.eq(conv_in.i.ready),
            ]
            with m.If(beat_in):
                count(counter)

        def count_words_until_limit() -> None:
            """CACHE/LOAD: one converted word lands per valid; the command ends after
            ``last_word``."""
            with m.If(conv_in.o.valid):
                m.d.sync += [
                    cnt.eq(cnt + 1),
                    xfer_addr.eq(xfer_addr + 1),
                    cnt_last.eq(cnt + 1 == last_word),
                ]
                with m.If(cnt_last):
                    m.next = "NEXT"

        # ---- command checks: every condition of the command in cmd, as one error code (0: it
        # may run), registered every cycle so the adders and compares end in a flip-flop, not
        # in the FSM's enables; CHECK uses the value of the last CHECK_PREP cycle
        # Each condition is registered first and the priority choice a cycle later
        # (CHECK_WAIT): the adders, compares and the choice did not fit 10 ns together on the
        # ECP5, nor 33 ns on the iCE40. The codes are registered only with the pipeline
        # registers: they are constants per opcode, one LUT behind ``cmd`` (iCE40 cells).
        E = isa.ErrorCode
        check_err, check_q = Signal.like(err), Signal.like(err)
        m.d.sync += check_q.eq(check_err)
        misaligned = lambda a: a[:lw] != 0 if lw else Const(0)  # noqa: E731

        def sum_over(a: Value, b: Value, limit: int) -> Value:
            """:func:`sum_exceeds` as this platform's timing wants it (carry compares on the
            iCE40, high-bit tests with the ECP5's pipeline registers)."""
            return sum_exceeds(a, b, limit, carry_compare=not pipe_regs)

        cache_bytes = c_cache.tiles << lt  # * tile_bytes
        n_conds = 6  # the most conditions of any opcode (GEMM)
        conds = [Signal(name=f"check_cond{i}") for i in range(n_conds)]
        codes = [Signal.like(err, name=f"check_code{i}") for i in range(n_conds)]
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
                g = c_gemm
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
            with m.Case(isa.Op.DONE):
                pass
            with m.Default():
                m.d.comb += [conds[0].eq(1), codes[0].eq(E.ILLEGAL_OPCODE)]

        with m.FSM(name="cp"):
            with m.State("IDLE"):
                with m.If(self.doorbell):
                    m.d.comb += ctrs.clear.eq(1)
                    m.d.sync += [pc.eq(self.prog_addr[:AW]), err.eq(0), done.eq(0), busy.eq(1)]
                    m.d.sync += pc_outside.eq(
                        (self.prog_addr[AW:] != 0) if AW < isa.ADDR_BITS else 0
                    )
                    m.next = "FETCH"

            with m.State("FETCH"):
                aligned = pc[:5] == 0
                with m.If(~aligned):
                    m.d.sync += err.eq(isa.ErrorCode.BAD_ALIGN)
                    m.next = "HALT"
                # pc is aligned here: "past the last command" is "at or past the end"
                with m.Elif(pc_outside | pc[AW]):
                    m.d.sync += err.eq(isa.ErrorCode.MEM_RANGE)
                    m.next = "HALT"
                with m.Else():
                    beats = max(1, isa.CMD_BYTES // W)
                    m.d.comb += [
                        issuer.start.eq(1),
                        issuer.addr.eq(Cat(Const(0, lw), pc[lw:AW])),
                        issuer.beats.eq(beats),
                        issuer.write.eq(0),
                    ]
                    m.d.sync += [
                        fetch_idx.eq(0),
                        fetch_keep.eq(
                            pc[5 : 5 + (cmd_words - 1).bit_length()] if cmd_words > 1 else 0
                        ),
                    ]
                    m.next = "FETCH_DATA"

            with m.State("FETCH_DATA"):
                m.d.comb += rdata.ready.eq(1)
                with m.If(beat_in):
                    if cmd_words > 1:  # one beat holds several commands: take the one at pc
                        m.d.sync += cmd.eq(rdata.payload.word_select(fetch_keep, isa.CMD_BITS))
                        m.next = "DECODE"
                    else:  # beats shift in from the top: the first ends up in the low bytes
                        m.d.sync += [
                            cmd.eq(Cat(cmd[8 * W :], rdata.payload)),
                            fetch_idx.eq(fetch_idx + 1),
                        ]
                        with m.If(fetch_idx == isa.CMD_BYTES // W - 1):
                            m.next = "DECODE"

            with m.State("DECODE"):
                m.d.sync += [
                    kt_n.eq((c_gemm.k + (R - 1)) >> lr),
                    nt_n.eq((c_gemm.n + (R - 1)) >> lr),
                    mt_n.eq((c_gemm.m + (D - 1)) >> ld),
                    act_xfer_bytes.eq(c_act.words << lr),
                ]
                count(isa.Counter.COMMANDS)
                m.d.comb += prods.start.eq(1)
                m.next = "CHECK_PREP"

            with m.State("CHECK_PREP"):
                # only a GEMM needs the products (the shared multiplier takes some cycles)
                with m.If(prods.done | (op != isa.Op.GEMM)):
                    m.next = "CHECK_WAIT"

            with m.State("CHECK_WAIT"):  # the checks' second register stage
                m.next = "CHECK"

            with m.State("CHECK"):
                # check_q holds this command's checks: conditions registered in the last
                # CHECK_PREP cycle, the choice in CHECK_WAIT
                with m.If(check_q != 0):
                    m.d.sync += err.eq(check_q)
                    m.next = "HALT"
                with m.Elif(op == isa.Op.DONE):
                    m.d.sync += [done.eq(1), busy.eq(0)]
                    m.next = "IDLE"
                with m.Elif(op == isa.Op.CACHE):
                    m.d.comb += [
                        issuer.start.eq(1),
                        issuer.addr.eq(c_cache.mem_addr[:AW]),
                        issuer.beats.eq(cache_bytes >> lw),
                    ]
                    m.d.sync += [
                        cnt.eq(0),
                        last_word.eq((c_cache.tiles << lr) - 1),
                        cnt_last.eq((c_cache.tiles << lr) == 1),
                        xfer_addr.eq(c_cache.pb_tile << lr),
                    ]
                    m.next = "CACHE"
                with m.Elif((op == isa.Op.LOAD_ACT) | (op == isa.Op.STORE_ACT)):
                    store = op == isa.Op.STORE_ACT
                    m.d.comb += [
                        issuer.start.eq(1),
                        issuer.addr.eq(c_act.mem_addr[:AW]),
                        issuer.beats.eq(act_xfer_bytes >> lw),
                        issuer.write.eq(store),
                    ]
                    m.d.sync += [
                        cnt.eq(0),
                        last_word.eq(c_act.words - 1),
                        cnt_last.eq(c_act.words == 1),
                        store_rd.eq(0),
                        store_more.eq(1),  # last_word >= 0
                        xfer_addr.eq(c_act.word),
                        wleft.eq(act_xfer_bytes >> lw),
                        wlast.eq((act_xfer_bytes >> lw) == 1),
                    ]
                    with m.If(store):
                        m.next = "STORE"
                    with m.Else():
                        m.next = "LOAD"
                with m.Else():  # GEMM: any other opcode failed its checks as ILLEGAL_OPCODE
                    m.d.sync += [
                        w_idx.eq(0),
                        w_row_start.eq(0),
                        f_row.eq(0),
                        f_row_last.eq(0),
                        pb_r.eq(0),
                        pb_tile_row.eq(c_gemm.pb_tile),
                        o_addr.eq(c_gemm.o_word),
                        o_part.eq(0),
                        core_started.eq(0),
                    ]
                    wcur.start(done=~off_used)  # no off-chip tile at all
                    fcur.start(done=0)
                    pcur.start(done=~pb_used)
                    m.next = "GEMM"

            with m.State("CACHE"):
                read_into_conv_in(isa.Counter.RD_WEIGHT_BYTES)
                m.d.comb += [
                    conv_in.o.ready.eq(1),
                    pb.we.eq(conv_in.o.valid),
                    pb.addr.eq(xfer_addr),
                    pb.wdata.eq(conv_in.o.payload),
                ]
                count_words_until_limit()

            with m.State("LOAD"):
                read_into_conv_in(isa.Counter.RD_ACT_BYTES)
                m.d.comb += conv_in.o.ready.eq(1)
                for b, (wp, _) in enumerate(acts):
                    with m.If(c_act.buf == b):
                        m.d.comb += [
                            wp.en.eq(conv_in.o.valid),
                            wp.addr.eq(xfer_addr),
                            wp.data.eq(conv_in.o.payload),
                        ]
                count_words_until_limit()

            with m.State("STORE"):
                # buffer -> (read stage) -> readq -> conv_out -> wdata
                issue_rd = store_more & readq.room
                m.d.comb += readq.issue.eq(issue_rd)
                for b, (_, rp) in enumerate(acts):
                    with m.If(c_act.buf == b):
                        m.d.comb += [rp.en.eq(1), rp.addr.eq(xfer_addr)]
                m.d.comb += readq.data.eq(store_word)
                m.d.comb += [
                    conv_out.i.valid.eq(readq.o.valid),
                    conv_out.i.payload.eq(readq.o.payload),
                    readq.o.ready.eq(conv_out.i.ready),
                    self.mem.wdata.valid.eq(conv_out.o.valid),
                    self.mem.wdata.payload.eq(conv_out.o.payload),
                    conv_out.o.ready.eq(self.mem.wdata.ready),
                ]
                with m.If(issue_rd):
                    m.d.sync += [
                        store_rd.eq(store_rd + 1),
                        xfer_addr.eq(xfer_addr + 1),
                        # store_rd <= last_word here, so store_rd + 1 <= last_word iff !=
                        store_more.eq(store_rd != last_word),
                    ]
                with m.If(self.mem.wdata.valid & self.mem.wdata.ready):
                    m.d.sync += [wleft.eq(wleft - 1), wlast.eq(wleft == 2)]
                    with m.If(wlast):
                        m.next = "NEXT"

            with m.State("GEMM"):
                g = c_gemm
                # descriptor to the core
                m.d.comb += [
                    core.cmd.valid.eq(~core_started),
                    core.cmd.payload.m.eq(g.m),
                    core.cmd.payload.k.eq(g.k),
                    core.cmd.payload.n.eq(g.n),
                    core.cmd.payload.accumulate.eq(0),
                    core.cmd.payload.acc_keep.eq(g.accumulate),
                    core.cmd.payload.hold.eq(g.hold),
                    core.cmd.payload.requant.enable.eq(g.requant),
                    core.cmd.payload.requant.relu.eq(g.relu),
                    core.cmd.payload.requant.mult.eq(g.mult),
                    core.cmd.payload.requant.shift.eq(g.shift),
                    core.cmd.payload.a_base.eq(g.a_word),
                ]
                with m.If(core.cmd.valid & core.cmd.ready):
                    m.d.sync += core_started.eq(1)

                # off-chip weight tiles, in feed order, skipping the cached block
                m.d.comb += [
                    gemm_req.eq(1),
                    walk_valid.eq(~wcur.done & ~wcur.in_pb),
                    walk_addr.eq((g.w_addr[:AW] + (w_idx << lt))[:AW]),
                ]
                with m.If(~wcur.done & (wcur.in_pb | mreq.ready)):
                    wcur.step()
                    m.d.sync += w_idx.eq(w_idx + 1)
                    with m.If(wcur.kt_last):
                        nxt = w_row_start + g.w_stride
                        m.d.sync += [w_idx.eq(nxt), w_row_start.eq(nxt)]
                        with m.If(wcur.nt_last):
                            m.d.sync += [w_idx.eq(0), w_row_start.eq(0)]

                # off-chip weights -> dynamic buffer
                read_into_conv_in(isa.Counter.RD_WEIGHT_BYTES)
                m.d.comb += [
                    dynq.w_en.eq(conv_in.o.valid),
                    dynq.w_data.eq(conv_in.o.payload),
                    conv_in.o.ready.eq(dynq.w_rdy),
                ]

                # PB tiles -> readq, in feed order (a pass per M-tile)
                pb_issue = ~pcur.done & readq.room
                m.d.comb += [
                    readq.issue.eq(pb_issue),
                    pb.en.eq(1),
                    pb.addr.eq(Cat(pb_r, pb_tile_row + pcur.kt)),
                    readq.data.eq(pb_rdata),
                ]
                with m.If(pb_issue):
                    m.d.sync += pb_r.eq(pb_r + 1)
                    with m.If(pb_r == R - 1):
                        m.d.sync += pb_r.eq(0)
                        pcur.step()
                        with m.If(pcur.kn_last):  # the next M-tile's pass
                            m.d.sync += pb_tile_row.eq(g.pb_tile)
                        with m.Elif(pcur.kt_last):
                            m.d.sync += pb_tile_row.eq(pb_tile_row + g.pb_stride)

                # output rows -> activation buffer o_buf
                out_row = data.ArrayLayout(signed(32), R)(core.out.payload.as_value())
                int8_word = Cat(*(out_row[i][:8] for i in range(R)))
                o_wp_en, o_wp_data = Signal(), Signal(word_bits)
                with m.If(g.requant):
                    m.d.comb += [
                        core.out.ready.eq(1),
                        o_wp_en.eq(core.out.valid),
                        o_wp_data.eq(int8_word),
                    ]
                    with m.If(core.out.valid):
                        m.d.sync += o_addr.eq(o_addr + 1)
                with m.Else():
                    # int32 rows: 4 words each, lane bytes little-endian
                    m.d.comb += [
                        core.out.ready.eq(o_part == 3),
                        o_wp_en.eq(core.out.valid),
                        o_wp_data.eq(core.out.payload.as_value().word_select(o_part, word_bits)),
                    ]
                    with m.If(core.out.valid):
                        m.d.sync += [o_part.eq(o_part + 1), o_addr.eq(o_addr + 1)]
                for b, (wp, rp) in enumerate(acts):
                    with m.If(g.o_buf == b):
                        m.d.comb += [wp.en.eq(o_wp_en), wp.addr.eq(o_addr), wp.data.eq(o_wp_data)]
                    with m.If(g.a_buf == b):
                        m.d.comb += [rp.en.eq(core.a_en), rp.addr.eq(core.a_addr)]
                m.d.comb += [
                    core.a_data.eq(Mux(g.a_buf, act_rdata[1], act_rdata[0])),
                    core.a_avail.eq(-1),
                ]
                with m.If(core_started & core.idle & fcur.done):
                    m.next = "NEXT"

            with m.State("NEXT"):
                m.d.sync += pc.eq(pc + isa.CMD_BYTES)
                m.next = "FETCH"

            with m.State("HALT"):
                # wait for outstanding memory traffic of the failed command to drain
                m.d.comb += rdata.ready.eq(1)
                with m.If(~issuer.busy):
                    m.d.sync += busy.eq(0)
                    m.next = "IDLE"

        # GEMM weight feed: tile (mt, nt, kt) comes from the PB iff nt < pb_nt and kt < pb_kt.
        # Outside the FSM, keyed on the cursor alone (done outside a GEMM, and after reset):
        # the state decode in front of the handshake and the cursor's enables was an ECP5
        # critical path. Written after the FSM, so its readq.o.ready wins only during a GEMM.
        from_pb, f_done = fcur.in_pb, fcur.done
        with m.If(~f_done):
            m.d.comb += [
                w_feed.valid.eq(Mux(from_pb, readq.o.valid, dyn_out.valid)),
                w_feed.payload.eq(Mux(from_pb, readq.o.payload, dyn_out.payload)),
                readq.o.ready.eq(from_pb & w_feed.ready),
                dyn_out.ready.eq(~from_pb & w_feed.ready),
            ]
            with m.If(w_feed.valid & w_feed.ready):
                with m.If(from_pb):
                    count(isa.Counter.PB_READ_BYTES)
                # f_row_last: f_row == R - 1, decided a word ahead
                m.d.sync += [f_row.eq(f_row + 1), f_row_last.eq(f_row == R - 2)]
                with m.If(f_row_last):
                    m.d.sync += [f_row.eq(0), f_row_last.eq(0)]
                    fcur.step()

        return m
