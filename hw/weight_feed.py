"""The weight feed: every weight tile of a GEMM, from the Persistent Buffer or off-chip, in the
order the array consumes them. The SubGraph-stationary heart of SushiAccel.

A GEMM's weight tile (mt, nt, kt) comes from the PB iff ``nt < pb_nt`` and ``kt < pb_kt`` (the
cached SubGraph's leading block), from off-chip memory otherwise. Three cursors walk the tiles
in the same feed order (M-tile, then N-tile, then K-tile), each at its own pace:

* the off-chip walker (``wcur``) requests every tile outside the cached block, one memory
  request of ``tile_bytes`` each; the beats land in the dynamic buffer (``dynq``), which
  holds the next tiles while the array computes on the current one;
* the PB walker (``pcur``) reads the cached block's tiles from the PB into the read queue, a
  pass per M-tile;
* the feed (``fcur``) takes each tile's ``rows`` words from the PB's queue or the dynamic
  buffer, as the tile's source says, and hands them to the array.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .act_buffers import act_read_latency
from .build_options import SIMULATION, BuildOptions
from .check import geometry_layout, tile_widths
from .config import AccelConfig, clog2
from .pb_tags import look_signature, tag_bits
from .pipeline import StreamRegister
from .ports import buffer_write, mem_req_signature, read_issue_signature, run_control
from .spram import SinglePortRam

TAP_BITS = 6  # kernel taps: up to 7 x 7


class TileCursor:
    """Walks a GEMM's or a CONV's weight tiles in feed order (M-tile, N-tile, channel tile,
    tap; a GEMM has one tap and its K-tiles are the channel tiles), keeping "last tap / K-tile /
    N-tile / M-tile" and "in the cached block" in registers: the compares that decide them run
    one tile ahead, off the valid/ready paths that advance the cursor.

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
        taps: bool = True,
    ):
        """``g``: the tile counts (``t_n``, ``ct_n``, ``nt_n``, ``mt_n``), the counts less two
        (``t_m2``, ...: never all ones for a legal command, as the counts stay below half the
        width) and the cached block (``pb_t``, ``pb_ct``, ``pb_nt``, ``pb_used``), valid from
        ``start`` on. ``track_pb=False``: no ``in_pb`` (a walk over the cached block itself).
        ``taps=False``: one tap, always (configurations without convolutions: no tap counter)."""
        self.m, self.g, self.track_pb = m, g, track_pb
        self.t = Signal(TAP_BITS, name=f"{name}_t") if taps else Const(0, TAP_BITS)
        self.ct, self.nt = Signal(tile_w, name=f"{name}_ct"), Signal(tile_w, name=f"{name}_nt")
        self.mt = Signal(mtile_w, name=f"{name}_mt")
        self.t_last = Signal(name=f"{name}_t_last") if taps else Const(1)
        self.ct_last = Signal(name=f"{name}_ct_last")
        self.nt_last, self.mt_last = Signal(name=f"{name}_nt_last"), Signal(name=f"{name}_mt_last")
        self.kt_last = Signal(name=f"{name}_kt_last")  # last tap of the last channel tile
        self.kn_last = Signal(name=f"{name}_kn_last")  # ... of the last N-tile
        self.all_last = Signal(name=f"{name}_all_last")  # the command's last tile
        self.in_pb = Signal(name=f"{name}_in_pb")  # tile (nt, ct, t) comes from the PB
        # every tile has been stepped over (and outside a GEMM: set by reset)
        self.done = Signal(name=f"{name}_done", init=1)
        names = "ct nt mt ct_last nt_last mt_last kt_last kn_last all_last done".split()
        names += ["in_pb"] if track_pb else []
        names += ["t", "t_last"] if taps else []
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
        if "t" not in nxt:  # one tap: "last tap" always, tap 0 always
            nxt["t"], nxt["t_last"] = Signal(TAP_BITS), Signal()
            m.d.comb += nxt["t_last"].eq(1)
        t_last, ct_last, nt_last = nxt["t_last"], nxt["ct_last"], nxt["nt_last"]
        mt_last = nxt["mt_last"]

        def in_pb(v: Value) -> list:
            return [nxt["in_pb"].eq(v)] if self.track_pb else []

        nt_in, ct_in = self.nt < g["pb_nt"], self.ct < g["pb_ct"]
        with m.If(~self.t_last):
            m.d.comb += [
                t_last.eq(self.t == g["t_m2"]),
                nxt["t"].eq(self.t + 1),
                *in_pb(nt_in & ct_in & (self.t + 1 < g["pb_t"])),
            ]
        with m.Elif(~self.kt_last):
            m.d.comb += [
                t_last.eq(g["t_n"] == 1),
                ct_last.eq(self.ct == g["ct_m2"]),
                nxt["t"].eq(0),
                nxt["ct"].eq(self.ct + 1),
                *in_pb(nt_in & (self.ct + 1 < g["pb_ct"]) & (g["pb_t"] != 0)),
            ]
        with m.Elif(~self.kn_last):
            m.d.comb += [
                t_last.eq(g["t_n"] == 1),
                ct_last.eq(g["ct_n"] == 1),
                nt_last.eq(self.nt == g["nt_m2"]),
                nxt["t"].eq(0),
                nxt["ct"].eq(0),
                nxt["nt"].eq(self.nt + 1),
                *in_pb((self.nt + 1 < g["pb_nt"]) & (g["pb_ct"] != 0) & (g["pb_t"] != 0)),
            ]
        with m.Else():
            m.d.comb += [
                t_last.eq(g["t_n"] == 1),
                ct_last.eq(g["ct_n"] == 1),
                nt_last.eq(g["nt_n"] == 1),
                mt_last.eq(self.mt == g["mt_m2"]),
                nxt["t"].eq(0),
                nxt["ct"].eq(0),
                nxt["nt"].eq(0),
                nxt["mt"].eq(self.mt + 1),
                *in_pb(g["pb_used"]),
            ]
            with m.If(self.all_last):
                m.d.comb += nxt["done"].eq(1)
        kt_last = t_last & ct_last
        m.d.comb += [
            nxt["kt_last"].eq(kt_last),
            nxt["kn_last"].eq(kt_last & nt_last),
            nxt["all_last"].eq(kt_last & nt_last & mt_last),
        ]
        return nxt

    def start(self, done: Value) -> None:
        """At tile (0, 0, 0, 0)."""
        g = self.g
        t1, ct1, nt1, mt1 = g["t_n"] == 1, g["ct_n"] == 1, g["nt_n"] == 1, g["mt_n"] == 1
        if isinstance(self.t, Signal):
            self.m.d.sync += [self.t.eq(0), self.t_last.eq(t1)]
        self.m.d.sync += [
            self.ct.eq(0),
            self.nt.eq(0),
            self.mt.eq(0),
            self.ct_last.eq(ct1),
            self.nt_last.eq(nt1),
            self.mt_last.eq(mt1),
            self.kt_last.eq(t1 & ct1),
            self.kn_last.eq(t1 & ct1 & nt1),
            self.all_last.eq(t1 & ct1 & nt1 & mt1),
            self.done.eq(done),
        ]
        if self.track_pb:
            self.m.d.sync += self.in_pb.eq(g["pb_used"])

    def step(self) -> None:
        """Move to the next tile (statements for the cycle the current one is taken)."""
        self.m.d.sync += [s.eq(self._next[k]) for k, s in self._state.items()]


class WeightFeed(wiring.Component):
    """A GEMM's weights, tile by tile, to the array's ``w`` stream; and the PB.

    ``ctl.start`` (the cycle before the GEMM or CONV runs, ``geom`` valid) puts the cursors
    at the first tile; ``ctl.run`` is high while the GEMM runs; ``ctl.done`` says every tile has
    been fed (and, outside a GEMM, is high). ``pb_w`` writes the PB (CACHE); ``req`` asks for
    off-chip tiles, whose words arrive on ``words``; ``pb_rd`` issues PB reads into the shared read
    queue and ``pb_words`` takes its words. ``pb_word`` is high for each PB word fed. With
    ``BuildOptions.pb_tags``, ``pb_look`` names each PB tile as its reads start and the
    off-chip tile it stands for (:mod:`.pb_tags` checks the two agree).
    """

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        word = unsigned(8 * cfg.rows)
        self.pb_depth = max(1, cfg.pb_bytes // cfg.rows)
        super().__init__(
            {
                "geom": In(geometry_layout(cfg)),
                "ctl": In(run_control(done=True)),
                "pb_w": In(buffer_write(self.pb_depth, word.width)),
                "req": Out(mem_req_signature()),
                "words": In(stream.Signature(word)),
                "pb_rd": Out(read_issue_signature(word.width)),
                "pb_words": In(stream.Signature(word)),
                "w": Out(stream.Signature(data.ArrayLayout(signed(8), cfg.cols))),
                "pb_word": Out(1),
                **({"pb_look": Out(look_signature(cfg))} if opts.pb_tags else {}),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        pipe_regs = self.opts.pipeline_regs
        R, W = cfg.rows, cfg.mem_width
        lt = cfg.tile_bytes.bit_length() - 1  # tile_bytes = rows * cols is a power of two
        word_bits = 8 * R
        AW = clog2(cfg.mem_bytes)  # off-chip byte address
        pb_t_w = max(1, cfg.pb_tiles.bit_length())  # PB tile index, up to pb_tiles
        tile_w, mtile_w = tile_widths(cfg)
        geom = self.geom

        # ---- storage -------------------------------------------------------------------
        # written only by CACHE, read only by GEMM: single-ported (SPRAM on the iCE40UP). ECP5
        # timing: its address and enables are registered too, in copies by its block RAMs
        # (64 on `large`, spread over the die), one more cycle of read latency
        m.submodules.pb = pb = SinglePortRam(
            "pb",
            word_bits,
            self.pb_depth,
            registered=pipe_regs,
            ports_registered=pipe_regs,
            opts=self.opts,
        )
        # one read queue for both: an activation buffer's word arrives as late as the PB's
        assert pb.read_latency == act_read_latency(pipe_regs)
        m.submodules.dynq = dynq = fifo.SyncFIFOBuffered(width=word_bits, depth=cfg.dyn_bytes // R)
        wiring.connect(m, wiring.flipped(self.words), dynq.w_stream)  # off-chip tiles

        # With the pipeline registers the dynamic buffer's output (its r_data is the block RAM's
        # read data) and the weight feed into the core (the core's w.ready ran through the
        # source select into both queues' levels) go through register slices.
        if pipe_regs:
            m.submodules.dyn_slice = dyn_slice = StreamRegister(unsigned(word_bits))
            m.submodules.w_slice = w_slice = StreamRegister(unsigned(word_bits))
            wiring.connect(m, dynq.r_stream, dyn_slice.i)
            m.d.comb += [
                self.w.valid.eq(w_slice.o.valid),
                self.w.payload.eq(w_slice.o.payload),
                w_slice.o.ready.eq(self.w.ready),
            ]
            dyn_out, w_feed = dyn_slice.o, w_slice.i
        else:
            dyn_out, w_feed = dynq.r_stream, wiring.flipped(self.w)

        # ---- cursors -------------------------------------------------------------------
        walk = geom.walk
        # the cached block's extent once CHECK has bounded it by the command's (the walkers'
        # width)
        pb_t, pb_ct, pb_nt = walk.pb_t, walk.pb_ct, walk.pb_nt
        # the counts less two, registered (valid two cycles after DECODE, before any GEMM
        # state): a cursor's "next tile is the last" is then an equality with a register
        t_m2, pb_t_m2 = Signal(TAP_BITS), Signal(TAP_BITS)
        ct_m2, nt_m2, mt_m2 = Signal(tile_w), Signal(tile_w), Signal(mtile_w)
        pb_ct_m2, pb_nt_m2 = Signal(tile_w), Signal(tile_w)  # the same for the cached block
        m.d.sync += [
            t_m2.eq(geom.t_n - 2),
            ct_m2.eq(geom.ct_n - 2),
            nt_m2.eq(geom.nt_n - 2),
            mt_m2.eq(geom.mt_n - 2),
            pb_t_m2.eq(pb_t - 2),
            pb_ct_m2.eq(pb_ct - 2),
            pb_nt_m2.eq(pb_nt - 2),
        ]
        tiles = dict(
            t_n=geom.t_n,
            ct_n=geom.ct_n,
            nt_n=geom.nt_n,
            mt_n=geom.mt_n,
            t_m2=t_m2,
            ct_m2=ct_m2,
            nt_m2=nt_m2,
            mt_m2=mt_m2,
            pb_t=pb_t,
            pb_ct=pb_ct,
            pb_nt=pb_nt,
            pb_used=geom.pb_used,
        )
        # off-chip weight walker: one request per tile outside the cached block
        taps = cfg.conv
        wcur = TileCursor(m, "w", tiles, tile_w, mtile_w, taps=taps)
        idx_w = max(1, AW - lt)
        # tile index of (nt, ct, t), and of (nt, ct, 0) and (nt, 0, 0)
        w_idx, w_ct_start, w_nt_start = Signal(idx_w), Signal(idx_w), Signal(idx_w)
        # the feed (R >= 2 weight words per tile: never a step in the cycle after another or
        # a start)
        fcur = TileCursor(m, "f", tiles, tile_w, mtile_w, lookahead=True, taps=taps)
        f_row, f_row_last = Signal(range(R)), Signal()
        # PB walker: the cached block's tiles in feed order, a pass per M-tile; steps R >= 2
        # reads apart, like fcur's
        pb_block = dict(
            tiles, t_n=pb_t, ct_n=pb_ct, nt_n=pb_nt, t_m2=pb_t_m2, ct_m2=pb_ct_m2, nt_m2=pb_nt_m2
        )
        pcur = TileCursor(
            m, "p", pb_block, tile_w, mtile_w, lookahead=True, track_pb=False, taps=taps
        )
        pb_r = Signal(range(R))
        pb_ct_row, pb_nt_row = Signal(pb_t_w), Signal(pb_t_w)  # PB tile of (nt, ct, 0), (nt, 0, 0)

        with m.If(self.ctl.start):
            m.d.sync += [
                w_idx.eq(0),
                w_ct_start.eq(0),
                w_nt_start.eq(0),
                f_row.eq(0),
                f_row_last.eq(0),
                pb_r.eq(0),
                pb_ct_row.eq(walk.pb_tile),
                pb_nt_row.eq(walk.pb_tile),
            ]
            wcur.start(done=~geom.off_used)  # no off-chip tile at all
            fcur.start(done=0)
            pcur.start(done=~geom.pb_used)

        # ---- off-chip tiles, in feed order, skipping the cached block --------------------
        m.d.comb += [
            self.req.valid.eq(~wcur.done & ~wcur.in_pb),
            self.req.payload.addr.eq((walk.w_addr[:AW] + (w_idx << lt))[:AW]),
            self.req.payload.beats.eq(cfg.tile_bytes // W),
            self.req.payload.write.eq(0),
        ]
        with m.If(self.ctl.run & ~wcur.done & (wcur.in_pb | self.req.ready)):
            wcur.step()
            m.d.sync += w_idx.eq(w_idx + 1)
            with m.If(wcur.t_last):
                nxt_ct = w_ct_start + walk.w_cstride
                m.d.sync += [w_idx.eq(nxt_ct), w_ct_start.eq(nxt_ct)]
                with m.If(wcur.kt_last):
                    nxt_nt = w_nt_start + walk.w_nstride
                    m.d.sync += [w_idx.eq(nxt_nt), w_ct_start.eq(nxt_nt), w_nt_start.eq(nxt_nt)]
                    with m.If(wcur.nt_last):
                        m.d.sync += [w_idx.eq(0), w_ct_start.eq(0), w_nt_start.eq(0)]

        # ---- PB tiles -> read queue, in feed order (a pass per M-tile) -------------------
        pb_issue = self.ctl.run & ~pcur.done & self.pb_rd.room
        pb_tile = Signal(pb_t_w)  # the PB tile pcur is at
        m.d.comb += [self.pb_rd.issue.eq(pb_issue), self.pb_rd.data.eq(pb.rdata)]
        m.d.comb += pb_tile.eq(pb_ct_row + pcur.t)
        with m.If(self.ctl.run):
            m.d.comb += [pb.en.eq(1), pb.addr.eq(Cat(pb_r, pb_tile))]
        with m.Else():  # CACHE
            m.d.comb += [pb.we.eq(self.pb_w.en), pb.addr.eq(self.pb_w.addr)]
        m.d.comb += pb.wdata.eq(self.pb_w.data)
        with m.If(pb_issue):
            m.d.sync += pb_r.eq(pb_r + 1)
            with m.If(pb_r == R - 1):
                m.d.sync += pb_r.eq(0)
                pcur.step()
                with m.If(pcur.kn_last):  # the next M-tile's pass
                    m.d.sync += [pb_ct_row.eq(walk.pb_tile), pb_nt_row.eq(walk.pb_tile)]
                with m.Elif(pcur.kt_last):
                    nxt_pb = pb_nt_row + walk.pb_nstride
                    m.d.sync += [pb_ct_row.eq(nxt_pb), pb_nt_row.eq(nxt_pb)]
                with m.Elif(pcur.t_last):
                    m.d.sync += pb_ct_row.eq(pb_ct_row + walk.pb_cstride)
        if self.opts.pb_tags:
            self._pb_look(m, pcur, pb_issue & (pb_r == 0), pb_issue & (pb_r == R - 1), pb_tile)

        # ---- the feed: tile (mt, nt, ct, t) from the PB iff in the cached block ----------
        # Keyed on the cursor alone (done outside a GEMM, and after reset), not on the
        # sequencer's state: the state decode in front of the handshake and the cursor's
        # enables was an ECP5 critical path.
        from_pb = fcur.in_pb
        m.d.comb += self.ctl.done.eq(fcur.done)
        with m.If(~fcur.done):
            m.d.comb += [
                w_feed.valid.eq(Mux(from_pb, self.pb_words.valid, dyn_out.valid)),
                w_feed.payload.eq(Mux(from_pb, self.pb_words.payload, dyn_out.payload)),
                self.pb_words.ready.eq(from_pb & w_feed.ready),
                dyn_out.ready.eq(~from_pb & w_feed.ready),
            ]
            with m.If(w_feed.valid & w_feed.ready):
                m.d.comb += self.pb_word.eq(from_pb)
                # f_row_last: f_row == R - 1, decided a word ahead
                m.d.sync += [f_row.eq(f_row + 1), f_row_last.eq(f_row == R - 2)]
                with m.If(f_row_last):
                    m.d.sync += [f_row.eq(0), f_row_last.eq(0)]
                    fcur.step()
        return m

    def _pb_look(
        self, m: Module, pcur: TileCursor, first: Value, last: Value, pb_tile: Value
    ) -> None:
        """``pb_look`` at the first read of each PB tile (``first``): the off-chip address of
        the tile pcur is at, walked beside it (``last``: pcur steps), in ``mem_width`` units
        as the tags hold it (modulo ``mem_bytes``, as the off-chip walker's)."""
        cfg, walk = self.cfg, self.geom.walk
        lw = cfg.mem_width.bit_length() - 1
        lt = cfg.tile_bytes.bit_length() - 1
        tw = tag_bits(cfg)
        base = walk.w_addr[lw : lw + tw]
        # the address of (nt, ct, t), of (nt, ct, 0) and of (nt, 0, 0)
        pa, pa_ct, pa_nt = Signal(tw), Signal(tw), Signal(tw)
        with m.If(self.ctl.start):
            m.d.sync += [pa.eq(base), pa_ct.eq(base), pa_nt.eq(base)]
        with m.If(last):
            with m.If(pcur.kn_last):  # the next M-tile's pass
                m.d.sync += [pa.eq(base), pa_ct.eq(base), pa_nt.eq(base)]
            with m.Elif(pcur.kt_last):
                nxt_nt = pa_nt + (walk.w_nstride << (lt - lw))
                m.d.sync += [pa.eq(nxt_nt), pa_ct.eq(nxt_nt), pa_nt.eq(nxt_nt)]
            with m.Elif(pcur.t_last):
                nxt_ct = pa_ct + (walk.w_cstride << (lt - lw))
                m.d.sync += [pa.eq(nxt_ct), pa_ct.eq(nxt_ct)]
            with m.Else():
                m.d.sync += pa.eq(pa + (1 << (lt - lw)))
        look = self.pb_look
        m.d.comb += [
            look.en.eq(first),
            look.tile.eq(pb_tile),
            look.addr.eq(pa),
            look.bad.eq(walk.w_addr[:lw] != 0 if lw else 0),
        ]
