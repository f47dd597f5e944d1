"""GEMM sequencer: tiles one GEMM over the systolic array, accumulates over K and requantises.

It reads A from an activation memory (synchronous read port, one ``rows``-byte word per cycle),
takes weight rows and optional int32 accumulate inputs on streams, and emits output rows on a
stream. Loop order and data layouts are in docs/architecture.md. Flow control is by credits: a row
only enters the array when everything it will need downstream (output FIFO space, a C_in value) is
guaranteed, so the array itself never stalls.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray, array_latency
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig, clog2
from .im2col import Im2col, im2col_layout
from .requant import Requantizer, RequantParams


def gemm_desc_layout(cfg: AccelConfig) -> data.StructLayout:
    """One GEMM: ``OUT[m,n] = A[m,k] @ W[k,n] (+ C_in)``; A starts at word ``a_base``."""
    return data.StructLayout(
        {
            "m": unsigned(cfg.dim_bits),
            "k": unsigned(cfg.dim_bits),
            "n": unsigned(cfg.dim_bits),
            "accumulate": 1,  # add the C_in stream
            "acc_keep": 1,  # start from the accumulator's contents (a held previous result)
            "hold": 1,  # leave the int32 result in the accumulator; emit nothing
            "requant": RequantParams,
            "a_base": unsigned(clog2(cfg.act_words)),
            # a convolution (configurations with conv): A's rows come from the im2col address
            # generator instead of consecutive words
            **({"conv": 1, "im2col": im2col_layout(cfg)} if cfg.conv else {}),
        }
    )


def _pow2_fifo_depth(n: int) -> int:
    return 1 << clog2(n)


class GemmCore(wiring.Component):
    """The GEMM sequencer.

    ``with_c_in=False`` builds no C_in FIFO: ``c_in`` is never ready and ``accumulate`` reads
    as 0 (SushiAccel accumulates through ``acc_keep`` instead). ``a_flow=False`` drops the A
    flow control: ``a_avail`` is ignored (every A row is taken as written) and ``a_total`` is
    not computed, which saves the ``m * ceil(k/rows)`` multiplier and the issue comparator.

    ``a_latency`` is the cycles from ``a_en`` to ``a_data``. 1: a plain RAM read, which the core
    registers. 2 or more: the caller's registers (right at the RAM: its read data, and with 3
    its address too) and ``a_data`` goes straight into the array. A row reaches the array
    :attr:`feed_latency` cycles after its issue (:meth:`feed_latency_for`). Up to 3 the weight
    loader needs no change: a tile's bank is rewritten from the cycle after the following
    tile's first issue, and its last activation still reads the bank in the cycle before the
    first rewritten row lands (checked row by row and column by column; 4 would overlap).

    ``int32_gap=None`` buffers output rows in a FIFO of :attr:`fifo_depth` rows under credits.
    ``int32_gap=G`` has no output FIFO (it costs a ``32*cols``-bit wide block RAM): the
    requantiser's output register holds the row, and the consumer promises to take a requantised
    row in the cycle it appears and an int32 row (``requant.enable`` low) within ``G`` cycles;
    the core spaces int32 output rows ``G`` cycles apart at issue to keep that promise.
    """

    def __init__(
        self,
        cfg: AccelConfig,
        *,
        with_c_in: bool = True,
        a_flow: bool = True,
        int32_gap: int | None = None,
        a_latency: int = 1,
        opts: BuildOptions = SIMULATION,
    ):
        if not 1 <= a_latency <= 3:
            self._MustUse__silence = True  # never elaborated: no "unused" warning
            raise ValueError(f"a_latency must be 1, 2 or 3, got {a_latency}")
        self.cfg, self.opts = cfg, opts
        self.a_latency = a_latency
        #: cycles from a row's issue (``a_en``) to its A word entering the array
        self.feed_latency = self.feed_latency_for(a_latency)
        self.with_c_in = with_c_in
        self.a_flow = a_flow
        self.int32_gap = int32_gap
        R, C = cfg.rows, cfg.cols
        self.array_latency = array_latency(R, C)
        self.fifo_depth = _pow2_fifo_depth(self.array_latency + 1 + Requantizer.latency + 8)
        super().__init__(
            {
                "cmd": In(stream.Signature(gemm_desc_layout(cfg))),
                "w": In(stream.Signature(data.ArrayLayout(signed(8), C))),
                "c_in": In(stream.Signature(data.ArrayLayout(signed(32), C))),
                "out": Out(stream.Signature(data.ArrayLayout(signed(32), C))),
                # activation memory read port (data arrives a_latency cycles after a_en)
                "a_en": Out(1),
                "a_addr": Out(range(cfg.act_words)),
                "a_data": In(data.ArrayLayout(signed(8), R)),
                # A rows of the running GEMM already written (relative to a_base, write order)
                "a_avail": In(range(1 << (2 * cfg.dim_bits))),
                # A rows the running GEMM reads in total (m * ceil(k/rows))
                "a_total": Out(range(1 << (2 * cfg.dim_bits))),
                "running": Out(1),  # a GEMM is being issued
                "idle": Out(1),  # no GEMM running and every output has left
                "issue": Out(1),  # a row entered the array this cycle (MAC-active)
            }
        )

    @staticmethod
    def feed_latency_for(a_latency: int) -> int:
        """Cycles from a row's issue to its A word entering the array, for ``a_latency``."""
        return max(2, a_latency)

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        R, C, D = cfg.rows, cfg.cols, cfg.acc_depth
        lr, lc, ld = R.bit_length() - 1, C.bit_length() - 1, D.bit_length() - 1
        L = self.array_latency

        m.submodules.array = array = SystolicArray(R, C, cfg.psum_bits, self.opts)
        m.submodules.requant = rq = Requantizer(
            C, hold_output=self.int32_gap is not None, opts=self.opts
        )
        gap = self.int32_gap
        if gap is None:
            m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(
                width=32 * C, depth=self.fifo_depth
            )
        if self.with_c_in:
            m.submodules.cin_fifo = cin_fifo = fifo.SyncFIFOBuffered(
                width=32 * C, depth=self.fifo_depth
            )
        m.submodules.acc = acc = Memory(shape=data.ArrayLayout(signed(32), C), depth=D, init=[])
        acc_wp = acc.write_port()
        acc_rp = acc.read_port(transparent_for=(acc_wp,))

        # ---- descriptor ---------------------------------------------------------------
        desc = Signal(gemm_desc_layout(cfg))
        kt_n = Signal(range(1 << cfg.dim_bits))  # number of K tiles
        nt_n = Signal(range(1 << cfg.dim_bits))
        mt_n = Signal(range(1 << cfg.dim_bits))
        last_rows = Signal(range(D + 1))
        if self.a_flow:
            m.d.comb += self.a_total.eq(desc.m * kt_n)
        # C_in is only ever added when the core has a C_in FIFO
        accumulate = desc.accumulate if self.with_c_in else Const(0, 1)

        # ---- weight loader: tiles of R rows into alternating banks ----------------------
        w_row = Signal(range(R))
        pending = Signal()  # a loaded tile has not started issuing yet
        load_bank = Signal()
        issue_bank = Signal()
        tile_started = Signal()
        m.d.comb += self.w.ready.eq((w_row != 0) | ~pending)
        m.d.comb += [
            array.w_we.eq(self.w.valid & self.w.ready),
            array.w_bank.eq(load_bank),
            array.w_row.eq(w_row),
            array.w_data.eq(self.w.payload),
        ]
        with m.If(self.w.valid & self.w.ready):
            m.d.sync += w_row.eq(w_row + 1)
            with m.If(w_row == R - 1):
                m.d.sync += [w_row.eq(0), pending.eq(1), load_bank.eq(~load_bank)]
        with m.If(tile_started):
            m.d.sync += [pending.eq(0), issue_bank.eq(~issue_bank)]

        # ---- issue sequencer -------------------------------------------------------------
        running = Signal()
        m_cnt = Signal(range(D))
        m_rows = Signal(range(D + 1))
        kt = Signal.like(kt_n)
        nt = Signal.like(nt_n)
        mt = Signal.like(mt_n)
        kt_base = Signal.like(self.a_total)  # A row index of (mt, kt, m=0)
        mt_base = Signal.like(self.a_total)
        a_rel = Signal.like(self.a_total)
        # a_base + a_rel kept in registers (the issue path ends in the activation buffer's read
        # address): it steps by one row per issued row, and back to the M-tile's first row when
        # the next N-tile starts
        a_ptr, a_mt = Signal(range(cfg.act_words)), Signal(range(cfg.act_words))
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        out_ok = Signal()  # an output row may be issued (credit / int32 spacing)
        cin_res = Signal(range(self.fifo_depth + 1))  # C_in entries promised to issued rows

        first = Signal()
        # kt == kt_n - 1, kept in a register: the subtract-and-compare sat on the issue path
        # (fire -> the activation buffer's read enable; ECP5 critical path)
        last = Signal()
        m.d.comb += [
            first.eq(kt == 0),
            a_rel.eq(kt_base + m_cnt),
        ]
        # "first / last row of the tile" and "last N-, M-tile" are registers too: the compares
        # ran between fire and the counters' enables (the iCE40's critical path); they are
        # decided a row ahead instead
        tile_start, m_last = Signal(init=1), Signal()
        nt_last, mt_last = Signal(), Signal()
        # counts less two, so that "the next one is the last" is an equality with a register
        # (no adder in front of the compare); never reached for a count of one
        kt_m2, nt_m2, mt_m2 = Signal.like(kt_n), Signal.like(nt_n), Signal.like(mt_n)
        rows_m2, last_rows_m2 = Signal(range(D)), Signal(range(D))
        need_cin = first & accumulate
        # this row produces an output row: last & ~hold, kept in a register beside ``last``
        # (fire's terms are registers; ECP5 critical path)
        emit = Signal()

        def set_last(v: Value) -> list:
            """``last`` and ``emit`` for the next row (desc.hold is fixed by then)."""
            return [last.eq(v), emit.eq(v & ~desc.hold)]

        fire = Signal()
        a_ok = (a_rel < self.a_avail) if self.a_flow else Const(1, 1)
        cin_ok = (~need_cin | (cin_fifo.level > cin_res)) if self.with_c_in else Const(1, 1)
        m.d.comb += fire.eq(running & (~tile_start | pending) & a_ok & cin_ok & (~emit | out_ok))
        m.d.comb += [
            self.running.eq(running),
            self.issue.eq(fire),
            self.a_en.eq(fire),
            tile_started.eq(fire & tile_start),
        ]
        setup = Signal()  # the cycle after a descriptor is taken (see below)
        a_zero = Const(0, 1)  # the row is a convolution's zero padding
        if cfg.conv:
            m.submodules.im2col = im2col = Im2col(cfg)
            m.d.comb += [
                im2col.geo.eq(desc.im2col),
                im2col.base.eq(desc.a_base),
                im2col.begin.eq(setup),
                im2col.fire.eq(fire),
                im2col.m_last.eq(m_last),
                im2col.kt_last.eq(last),
                im2col.nt_last.eq(nt_last),
                self.a_addr.eq(Mux(desc.conv, im2col.addr, a_ptr)),
            ]
            a_zero = desc.conv & im2col.pad
        else:
            m.d.comb += self.a_addr.eq(a_ptr)

        # pipeline bookkeeping, defined below
        out_valid_stage = Signal()
        out_first = Signal()
        busy_pipe = Signal()

        # One GEMM at a time: its descriptor (requant, accumulate) must stay put until drained.
        # A descriptor is taken in one cycle and the sequencer set up from its registers in
        # the next (``setup``): the tile counts' adders and the row counts' compares in one
        # cycle behind the command processor's state were an ECP5 critical path.
        m.d.comb += self.cmd.ready.eq(~running & ~setup & ~busy_pipe)
        out_held = Signal()  # int32_gap mode: the requantiser's output register holds a row
        out_left = out_fifo.level != 0 if gap is None else out_held
        m.d.comb += self.idle.eq(self.cmd.ready & ~out_left)
        with m.If(self.cmd.valid & self.cmd.ready):
            p = self.cmd.payload
            kt_v = (p.k + (R - 1)) >> lr
            nt_v = (p.n + (C - 1)) >> lc
            mt_v = (p.m + (D - 1)) >> ld
            lrows = ((p.m - 1) & (D - 1)) + 1
            m.d.sync += [
                desc.eq(p),
                kt_n.eq(kt_v),
                nt_n.eq(nt_v),
                mt_n.eq(mt_v),
                last_rows.eq(lrows),
                setup.eq(1),
                m_cnt.eq(0),
                tile_start.eq(1),
                kt.eq(0),
                nt.eq(0),
                mt.eq(0),
                kt_base.eq(0),
                mt_base.eq(0),
                a_ptr.eq(p.a_base),
                a_mt.eq(p.a_base),
            ]
        with m.If(setup):
            mt_one = mt_n == 1
            first_rows = Mux(mt_one, last_rows, D)
            m.d.sync += [
                setup.eq(0),
                running.eq(1),
                m_rows.eq(first_rows),
                kt_m2.eq(kt_n - 2),
                nt_m2.eq(nt_n - 2),
                mt_m2.eq(mt_n - 2),
                last_rows_m2.eq(last_rows - 2),
                rows_m2.eq(first_rows - 2),
                m_last.eq(mt_one & (last_rows == 1)),
                *set_last(kt_n == 1),
                nt_last.eq(nt_n == 1),
                mt_last.eq(mt_one),
            ]

        # "the next M-tile is the last", a register: mt only changes as an M-tile ends, and
        # the next M-tile to end is at least two rows (D >= 2) later, so the compare is
        # settled by then (it sat behind fire in the M-tile roll-over, an iCE40 deep path)
        next_mt_last = Signal()
        m.d.sync += next_mt_last.eq(mt == mt_m2)
        with m.If(fire):
            m.d.sync += [a_ptr.eq(a_ptr + 1), tile_start.eq(m_last)]
            with m.If(m_last):
                m.d.sync += [m_cnt.eq(0), kt_base.eq(kt_base + m_rows), m_last.eq(m_rows == 1)]
                with m.If(last):
                    m.d.sync += [kt.eq(0), *set_last(kt_n == 1)]
                    with m.If(nt_last):
                        m.d.sync += [
                            nt.eq(0),
                            nt_last.eq(nt_n == 1),
                            mt_base.eq(kt_base + m_rows),
                            a_mt.eq(a_ptr + 1),
                        ]
                        with m.If(mt_last):
                            m.d.sync += running.eq(0)
                        with m.Else():
                            m.d.sync += [
                                mt.eq(mt + 1),
                                mt_last.eq(next_mt_last),
                                m_rows.eq(Mux(next_mt_last, last_rows, D)),
                                rows_m2.eq(Mux(next_mt_last, last_rows_m2, D - 2)),
                                m_last.eq(next_mt_last & (last_rows == 1)),
                            ]
                    with m.Else():
                        m.d.sync += [
                            nt.eq(nt + 1),
                            nt_last.eq(nt == nt_m2),
                            kt_base.eq(mt_base),
                            a_ptr.eq(a_mt),
                        ]
                with m.Else():
                    m.d.sync += [kt.eq(kt + 1), *set_last(kt == kt_m2)]
            with m.Else():
                m.d.sync += [m_cnt.eq(m_cnt + 1), m_last.eq(m_cnt == rows_m2)]

        # ---- credits ---------------------------------------------------------------------
        out_taken = self.out.valid & self.out.ready
        if gap is None:
            m.d.comb += out_ok.eq(credits != 0)
            m.d.sync += credits.eq(credits - (fire & emit) + out_taken)
        else:
            # cycles until the next int32 output row may issue
            wait = Signal(range(max(2, gap)))
            wait_zero = Signal(init=1)  # wait == 0, a register (fire's terms are registers)
            m.d.comb += out_ok.eq(wait_zero)
            with m.If(fire & emit & ~desc.requant.enable):
                m.d.sync += [wait.eq(gap - 1), wait_zero.eq(gap == 1)]
            with m.Elif(~wait_zero):
                m.d.sync += [wait.eq(wait - 1), wait_zero.eq(wait == 1)]
        cin_pop = out_valid_stage & out_first & accumulate
        if self.with_c_in:
            m.d.sync += cin_res.eq(cin_res + (fire & need_cin) - cin_pop)

        # ---- array feed ------------------------------------------------------------------
        # stage 0: the A word leaves the memory; the last feed stage: it enters the array.
        # Timing (FPGA): a block RAM's clock-to-out (5.8 ns on the ECP5) then the activation
        # buffer select ran straight into PE(0,0)'s DSP input register; the ULX3S's critical
        # path. With a_latency >= 2 the register sits at each RAM instead, before the select.
        meta_layout = data.StructLayout(
            {"valid": 1, "first": 1, "emit": 1, "zero": 1, "idx": unsigned(max(1, ld))}
        )
        F = self.feed_latency

        def meta_reg(name: str) -> data.View:
            """A metadata register: only ``valid`` is reset (the rest is data; it would add
            ~11 flip-flops per array stage to the reset net, 700 on `large`)."""
            valid = Signal(name=f"{name}_valid")
            rest = Signal(meta_layout.size - 1, name=f"{name}_info", reset_less=True)
            return meta_layout(Cat(valid, rest))

        assert meta_layout["valid"].offset == 0  # Cat(valid, rest)
        metas = [meta_reg(f"meta{i}") for i in range(F)]
        banks = [Signal(name=f"bank{i}") for i in range(F)]
        a_q = Signal.like(self.a_data, reset_less=True)  # data: no reset (docs/fpga.md)
        m.d.sync += [
            metas[0].valid.eq(fire),
            metas[0].first.eq(first),
            metas[0].emit.eq(emit),
            metas[0].zero.eq(a_zero),
            metas[0].idx.eq(m_cnt),
            # issue_bank flips as a tile starts: the first row uses it, later rows its inverse
            banks[0].eq(Mux(tile_start, issue_bank, ~issue_bank)),
        ]
        for i in range(1, F):
            m.d.sync += [metas[i].eq(metas[i - 1]), banks[i].eq(banks[i - 1])]
        if self.a_latency >= 2:
            m.d.comb += a_q.eq(self.a_data)
        else:
            m.d.sync += a_q.eq(self.a_data)
        meta_in = metas[F - 1]
        m.d.comb += [
            array.a_valid.eq(meta_in.valid),
            array.a_bank.eq(Mux(meta_in.valid, banks[F - 1], 0)),
            array.a_data.eq(Mux(meta_in.zero, 0, a_q) if cfg.conv else a_q),
        ]

        # metadata rides alongside the array
        line = [meta_in]
        for i in range(L):
            d = meta_reg(f"meta_d{i + 1}")
            m.d.sync += d.eq(line[-1])
            line.append(d)
        # Timing (FPGA): the accumulator's read data and the sums are registered, so neither a
        # block RAM's clock-to-out nor the 32-bit adder sits in front of the requantiser's DSPs.
        # The read is issued two stages before the sum: the next K-tile's read of a row comes at
        # least a tile period (> rows cycles) after this tile's write, or in the same cycle
        # (read port transparent).
        out2 = meta_reg("out2")  # the stage that writes the accumulator / feeds the requantiser
        outm = line[L]
        m.d.sync += out2.eq(outm)
        m.d.comb += busy_pipe.eq(
            Cat(*(x.valid for x in metas[:-1] + line), out2.valid).any() | rq.busy
        )
        # Without the register (platforms whose block RAM and adder fit one clock period, such
        # as the iCE40 at 30 MHz) the read is issued a stage later: the data lines up the same.
        if self.opts.pipeline_regs:
            acc_q = Signal(data.ArrayLayout(signed(32), C), reset_less=True)
            m.d.comb += [acc_rp.addr.eq(line[L - 2].idx), acc_rp.en.eq(1)]
            m.d.sync += acc_q.eq(acc_rp.data)
        else:
            m.d.comb += [acc_rp.addr.eq(line[L - 1].idx), acc_rp.en.eq(1)]
            acc_q = acc_rp.data

        # ---- accumulate ------------------------------------------------------------------
        m.d.comb += [
            out_valid_stage.eq(outm.valid),
            out_first.eq(outm.first),
        ]
        # Data, but the iCE40 build keeps a reset on them: without it, it packed 50 more logic
        # cells. With pipeline registers (the ECP5) they have none: 32 * cols flip-flops fewer
        # on the reset net.
        sums = Signal(data.ArrayLayout(signed(32), C), reset_less=self.opts.pipeline_regs)
        for c in range(C):
            fresh = outm.first & ~desc.acc_keep
            if self.with_c_in:
                cin_view = data.ArrayLayout(signed(32), C)(cin_fifo.r_data)
                start = Mux(accumulate, cin_view[c], 0)
            else:
                start = 0
            base = Mux(fresh, start, acc_q[c])
            m.d.sync += sums[c].eq(base + array.out_data[c])
        if self.with_c_in:
            m.d.comb += [
                cin_fifo.r_en.eq(cin_pop),
                cin_fifo.w_en.eq(self.c_in.valid),
                cin_fifo.w_data.eq(self.c_in.payload.as_value()),
                self.c_in.ready.eq(cin_fifo.w_rdy),
            ]
        m.d.comb += [
            acc_wp.en.eq(out2.valid & ~out2.emit),
            acc_wp.addr.eq(out2.idx),
            acc_wp.data.eq(sums),
            rq.i_valid.eq(out2.valid & out2.emit),
            rq.i_data.eq(sums),
            rq.params.eq(desc.requant),
        ]

        # ---- output ----------------------------------------------------------------------
        if gap is None:
            m.d.comb += [
                out_fifo.w_en.eq(rq.o_valid),
                out_fifo.w_data.eq(rq.o_data.as_value()),
                self.out.valid.eq(out_fifo.r_rdy),
                self.out.payload.eq(out_fifo.r_data),
                out_fifo.r_en.eq(self.out.ready),
            ]
        else:
            # the requantiser keeps its output until the next row (hold_output); a row is
            # offered from the cycle it appears until taken
            m.d.sync += out_held.eq(self.out.valid & ~self.out.ready)
            m.d.comb += [
                self.out.valid.eq(rq.o_valid | out_held),
                self.out.payload.eq(rq.o_data),
            ]
        return m
