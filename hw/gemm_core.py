"""GEMM sequencer: tiles one GEMM over the systolic array, accumulates over K and requantises.

It reads A from an activation memory (synchronous read port, one ``rows``-byte word per cycle),
takes weight rows and optional int32 accumulate inputs on streams, and emits output rows on a
stream. Loop order and data layouts are in docs/architecture.md. Flow control is by credits: a row
only enters the array when everything it will need downstream (output FIFO space, a C_in value) is
guaranteed, so the array itself never stalls.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import AccelConfig, clog2
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
        }
    )


def _pow2_fifo_depth(n: int) -> int:
    return 1 << clog2(n)


class GemmCore(wiring.Component):
    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        R, C = cfg.rows, cfg.cols
        self.array_latency = R + C + 1
        self.fifo_depth = _pow2_fifo_depth(self.array_latency + Requantizer.latency + 8)
        super().__init__(
            {
                "cmd": In(stream.Signature(gemm_desc_layout(cfg))),
                "w": In(stream.Signature(data.ArrayLayout(signed(8), C))),
                "c_in": In(stream.Signature(data.ArrayLayout(signed(32), C))),
                "out": Out(stream.Signature(data.ArrayLayout(signed(32), C))),
                # activation memory read port (data arrives one cycle after a_en)
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

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        R, C, D = cfg.rows, cfg.cols, cfg.acc_depth
        lr, lc, ld = R.bit_length() - 1, C.bit_length() - 1, D.bit_length() - 1
        L = self.array_latency

        m.submodules.array = array = SystolicArray(R, C, cfg.psum_bits)
        m.submodules.requant = rq = Requantizer(C)
        m.submodules.out_fifo = out_fifo = fifo.SyncFIFOBuffered(
            width=32 * C, depth=self.fifo_depth
        )
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
        m.d.comb += self.a_total.eq(desc.m * kt_n)

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
        credits = Signal(range(self.fifo_depth + 1), init=self.fifo_depth)
        cin_res = Signal(range(self.fifo_depth + 1))  # C_in entries promised to issued rows

        first, last = Signal(), Signal()
        m.d.comb += [
            first.eq(kt == 0),
            last.eq(kt == kt_n - 1),
            a_rel.eq(kt_base + m_cnt),
        ]
        tile_start = m_cnt == 0
        need_cin = first & desc.accumulate
        emit = Signal()  # this row produces an output row
        m.d.comb += emit.eq(last & ~desc.hold)
        fire = Signal()
        m.d.comb += fire.eq(
            running
            & (~tile_start | pending)
            & (a_rel < self.a_avail)
            & (~need_cin | (cin_fifo.level > cin_res))
            & (~emit | (credits != 0))
        )
        m.d.comb += [
            self.running.eq(running),
            self.issue.eq(fire),
            self.a_en.eq(fire),
            self.a_addr.eq(desc.a_base + a_rel),
            tile_started.eq(fire & tile_start),
        ]

        # pipeline bookkeeping, defined below
        out_valid_stage = Signal()
        out_first = Signal()
        busy_pipe = Signal()

        # One GEMM at a time: its descriptor (requant, accumulate) must stay put until drained.
        m.d.comb += self.cmd.ready.eq(~running & ~busy_pipe)
        m.d.comb += self.idle.eq(self.cmd.ready & (out_fifo.level == 0))
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
                m_rows.eq(Mux(mt_v == 1, lrows, D)),
                running.eq(1),
                m_cnt.eq(0),
                kt.eq(0),
                nt.eq(0),
                mt.eq(0),
                kt_base.eq(0),
                mt_base.eq(0),
            ]

        with m.If(fire):
            with m.If(m_cnt == m_rows - 1):
                m.d.sync += [m_cnt.eq(0), kt_base.eq(kt_base + m_rows)]
                with m.If(last):
                    m.d.sync += kt.eq(0)
                    with m.If(nt == nt_n - 1):
                        m.d.sync += [nt.eq(0), mt_base.eq(kt_base + m_rows)]
                        with m.If(mt == mt_n - 1):
                            m.d.sync += running.eq(0)
                        with m.Else():
                            m.d.sync += [
                                mt.eq(mt + 1),
                                m_rows.eq(Mux(mt + 2 == mt_n, last_rows, D)),
                            ]
                    with m.Else():
                        m.d.sync += [nt.eq(nt + 1), kt_base.eq(mt_base)]
                with m.Else():
                    m.d.sync += kt.eq(kt + 1)
            with m.Else():
                m.d.sync += m_cnt.eq(m_cnt + 1)

        # ---- credits ---------------------------------------------------------------------
        out_taken = self.out.valid & self.out.ready
        m.d.sync += credits.eq(credits - (fire & emit) + out_taken)
        cin_pop = out_valid_stage & out_first & desc.accumulate
        m.d.sync += cin_res.eq(cin_res + (fire & need_cin) - cin_pop)

        # ---- array feed (stage 1: A word arrives from the memory) ---------------------------
        meta_layout = data.StructLayout(
            {"valid": 1, "first": 1, "emit": 1, "idx": unsigned(max(1, ld))}
        )
        meta1 = Signal(meta_layout)
        bank1 = Signal()
        m.d.sync += [
            meta1.valid.eq(fire),
            meta1.first.eq(first),
            meta1.emit.eq(emit),
            meta1.idx.eq(m_cnt),
            # issue_bank flips as a tile starts: the first row uses it, later rows its inverse
            bank1.eq(Mux(tile_start, issue_bank, ~issue_bank)),
        ]
        m.d.comb += [
            array.a_valid.eq(meta1.valid),
            array.a_bank.eq(Mux(meta1.valid, bank1, 0)),
            array.a_data.eq(self.a_data),
        ]

        # metadata rides alongside the array
        line = [meta1]
        for i in range(L):
            d = Signal(meta_layout, name=f"meta_d{i + 1}")
            m.d.sync += d.eq(line[-1])
            line.append(d)
        m.d.comb += busy_pipe.eq(Cat(*(x.valid for x in line)).any() | rq.busy)
        pre, outm = line[L - 1], line[L]
        m.d.comb += [acc_rp.addr.eq(pre.idx), acc_rp.en.eq(1)]

        # ---- accumulate ------------------------------------------------------------------
        m.d.comb += [
            out_valid_stage.eq(outm.valid),
            out_first.eq(outm.first),
        ]
        cin_view = data.ArrayLayout(signed(32), C)(cin_fifo.r_data)
        sums = Signal(data.ArrayLayout(signed(32), C))
        for c in range(C):
            fresh = outm.first & ~desc.acc_keep
            base = Mux(fresh, Mux(desc.accumulate, cin_view[c], 0), acc_rp.data[c])
            m.d.comb += sums[c].eq(base + array.out_data[c])
        m.d.comb += [
            cin_fifo.r_en.eq(cin_pop),
            acc_wp.en.eq(outm.valid & ~outm.emit),
            acc_wp.addr.eq(outm.idx),
            acc_wp.data.eq(sums),
            rq.i_valid.eq(outm.valid & outm.emit),
            rq.i_data.eq(sums),
            rq.params.eq(desc.requant),
        ]

        # ---- output ----------------------------------------------------------------------
        m.d.comb += [
            out_fifo.w_en.eq(rq.o_valid),
            out_fifo.w_data.eq(rq.o_data.as_value()),
            self.out.valid.eq(out_fifo.r_rdy),
            self.out.payload.eq(out_fifo.r_data),
            out_fifo.r_en.eq(self.out.ready),
            cin_fifo.w_en.eq(self.c_in.valid),
            cin_fifo.w_data.eq(self.c_in.payload.as_value()),
            self.c_in.ready.eq(cin_fifo.w_rdy),
        ]
        return m
