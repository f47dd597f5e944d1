"""Off-chip transfers: the memory request issuer and the DMA of CACHE, LOAD_ACT and STORE_ACT.

CACHE: memory -> (width converter) -> Persistent Buffer. LOAD_ACT: memory -> (converter) ->
activation buffer. STORE_ACT: activation buffer -> (read stage) -> read queue -> converter ->
memory. The converter into the buffers and the read queue are shared with the GEMM's weights
(:mod:`.weight_feed`), so they live in :class:`~.accel.SushiAccel`; the DMA reaches them
through its ports.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .act_buffers import BANKS
from .check import exceeds
from .config import AccelConfig, clog2
from .mem_port import MEM_BEATS_BITS, mem_port_signature
from .ports import buffer_read, buffer_write, dma_control, issue_signature, read_issue_signature
from .width import WidthConverter

MAX_BURST = 256  # beats per memory request


def issue_widths(cfg: AccelConfig) -> tuple[int, int]:
    """The issuer's address and beat count widths. Addresses are ``log2(mem_bytes)`` wide (the
    command checks have already rejected anything outside memory), so no adder is wider than
    the memory needs; the count holds the longest transfer the checks let through (a buffer's
    worth or a command)."""
    addr_bits = clog2(cfg.mem_bytes)
    most = max(cfg.pb_bytes, cfg.act_bytes, 32) // cfg.mem_width
    return addr_bits, min(addr_bits + 1, most.bit_length())


class RequestIssuer(wiring.Component):
    """Issues ``cmd.beats`` beats from ``cmd.addr`` (on ``cmd.start``) as bursts of
    MAX_BURST; ``busy`` until the last request has been taken."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        self.addr_bits, self.beat_bits = issue_widths(cfg)
        super().__init__(
            {
                "cmd": In(issue_signature(self.addr_bits, self.beat_bits)),
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
        with m.If(self.cmd.start):
            m.d.sync += [addr.eq(self.cmd.addr), left.eq(self.cmd.beats), write.eq(self.cmd.write)]
        with m.Elif(self.req.valid & self.req.ready):
            m.d.sync += [addr.eq(addr + (burst << (W.bit_length() - 1))), left.eq(left - burst)]
        return m


class Dma(wiring.Component):
    """CACHE, LOAD_ACT and STORE_ACT for the command on ``cmd`` (checked, held until done).

    ``ctl.start`` (the cycle before the command runs) issues the memory request and sets up the
    counts; ``ctl.cache``/``load``/``store`` are the sequencer's states; ``ctl.done`` is high in
    the command's last cycle. ``act_bytes``: LOAD/STORE's byte count (decoded by
    the check). ``words`` are the converted read beats (CACHE/LOAD) to ``pb_w``/``act_w``;
    STORE reads ``act_r`` through the read queue (``rd`` and its output ``rd_words``) and
    writes ``wdata``.
    """

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        R = cfg.rows
        word = 8 * R
        addr_bits, beat_bits = issue_widths(cfg)
        super().__init__(
            {
                "cmd": In(isa.CMD_BITS),
                "act_bytes": In(isa.INDEX_BITS + R.bit_length() - 1),
                "ctl": In(dma_control()),
                "issue": Out(issue_signature(addr_bits, beat_bits)),
                "words": In(stream.Signature(unsigned(word))),
                "pb_w": Out(buffer_write(max(1, cfg.pb_bytes // R), word)),
                "act_w": Out(buffer_write(cfg.act_words, word, banks=BANKS)),
                "act_r": Out(buffer_read(cfg.act_words, word, banks=BANKS)),
                "rd": Out(read_issue_signature(word)),
                "rd_words": In(stream.Signature(unsigned(word))),
                "wdata": Out(stream.Signature(unsigned(8 * cfg.mem_width))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        R, W = cfg.rows, cfg.mem_width
        lr, lw = R.bit_length() - 1, W.bit_length() - 1
        lt = cfg.tile_bytes.bit_length() - 1
        AW = clog2(cfg.mem_bytes)
        act_w = cfg.act_words.bit_length()  # activation word index, up to act_words
        op = self.cmd[:4]
        c_cache = data.View(isa.CACHE, self.cmd[: isa.CACHE.size])
        c_act = data.View(isa.ACT_MOVE, self.cmd[: isa.ACT_MOVE.size])
        m.submodules.conv_out = conv_out = WidthConverter(R, W)

        move_w = max(cfg.act_words, cfg.pb_bytes // R).bit_length()
        cnt = Signal(move_w)  # words moved by the current CACHE/LOAD/STORE
        last_word = Signal(move_w)  # index of the transfer's last word (the checks reject 0)
        # cnt == last_word, as a register (the compare sat in front of the sequencer's enables)
        cnt_last = Signal()
        store_rd = Signal(act_w)  # STORE: words read from the buffer
        # store_rd <= last_word, as a register (its compare sat in front of the read issue)
        store_more = Signal()
        # the buffer address of CACHE/LOAD's next write or STORE's next read, in a register:
        # the field + count adder ran into the block RAM's address (ECP5 critical path)
        xfer_addr = Signal(max(act_w, clog2(max(1, cfg.pb_bytes // R))))
        # STORE: beats still to send, and "the next beat is the last" in a register (the
        # count-and-compare sat between the memory's wdata.ready and the sequencer)
        wleft = Signal(range(cfg.act_bytes // W + 1))
        wlast = Signal()

        # ---- start: the memory request and the counts ----------------------------------
        act_beats = self.act_bytes >> lw
        with m.If(self.ctl.start):
            with m.If(op == isa.Op.CACHE):
                m.d.comb += [
                    self.issue.start.eq(1),
                    self.issue.addr.eq(c_cache.mem_addr[:AW]),
                    self.issue.beats.eq((c_cache.tiles << lt) >> lw),  # tiles * tile_bytes
                ]
                m.d.sync += [
                    cnt.eq(0),
                    last_word.eq((c_cache.tiles << lr) - 1),
                    cnt_last.eq((c_cache.tiles << lr) == 1),
                    xfer_addr.eq(c_cache.pb_tile << lr),
                ]
            with m.Else():  # LOAD_ACT, STORE_ACT
                m.d.comb += [
                    self.issue.start.eq(1),
                    self.issue.addr.eq(c_act.mem_addr[:AW]),
                    self.issue.beats.eq(act_beats),
                    self.issue.write.eq(op == isa.Op.STORE_ACT),
                ]
                m.d.sync += [
                    cnt.eq(0),
                    last_word.eq(c_act.words - 1),
                    cnt_last.eq(c_act.words == 1),
                    store_rd.eq(0),
                    store_more.eq(1),  # last_word >= 0
                    xfer_addr.eq(c_act.word),
                    wleft.eq(act_beats),
                    wlast.eq(act_beats == 1),
                ]

        # ---- CACHE, LOAD: one converted word lands per valid; done after last_word ------
        m.d.comb += [
            self.words.ready.eq(1),
            self.pb_w.en.eq(self.ctl.cache & self.words.valid),
            self.act_w.en.eq(self.ctl.load & self.words.valid),
            self.act_w.buf.eq(c_act.buf),
        ]
        for port in (self.pb_w, self.act_w):
            m.d.comb += [port.addr.eq(xfer_addr), port.data.eq(self.words.payload)]
        with m.If((self.ctl.cache | self.ctl.load) & self.words.valid):
            m.d.sync += [
                cnt.eq(cnt + 1),
                xfer_addr.eq(xfer_addr + 1),
                cnt_last.eq(cnt + 1 == last_word),
            ]
            m.d.comb += self.ctl.done.eq(cnt_last)

        # ---- STORE: buffer -> (read stage) -> read queue -> conv_out -> wdata -----------
        m.d.comb += [self.act_r.buf.eq(c_act.buf), self.act_r.addr.eq(xfer_addr)]
        m.d.comb += self.rd.data.eq(self.act_r.data)
        with m.If(self.ctl.store):
            issue_rd = store_more & self.rd.room
            m.d.comb += [self.rd.issue.eq(issue_rd), self.act_r.en.eq(1)]
            wiring.connect(m, wiring.flipped(self.rd_words), conv_out.i)
            wiring.connect(m, conv_out.o, wiring.flipped(self.wdata))
            with m.If(issue_rd):
                m.d.sync += [
                    store_rd.eq(store_rd + 1),
                    xfer_addr.eq(xfer_addr + 1),
                    # store_rd <= last_word here, so store_rd + 1 <= last_word iff !=
                    store_more.eq(store_rd != last_word),
                ]
            with m.If(self.wdata.valid & self.wdata.ready):
                m.d.sync += [wleft.eq(wleft - 1), wlast.eq(wleft == 2)]
                m.d.comb += self.ctl.done.eq(wlast)
        return m
