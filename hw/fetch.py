"""Command fetch: the program counter, the fetch request and the beats into the command
register."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .config import AccelConfig, clog2
from .dma import issue_widths
from .ports import fetch_control, issue_signature


class CommandFetch(wiring.Component):
    """``ctl.load`` (the doorbell) sets the program counter to ``prog_addr``; ``ctl.advance``
    moves it to the next command. ``ctl.error`` says whether a fetch at the program counter may
    start (BAD_ALIGN, MEM_RANGE past the end of memory, or 0); ``ctl.start`` issues it, and
    ``ctl.done`` is high in the cycle its last beat arrives on ``rdata`` (SushiAccel routes only
    the fetch's beats here). ``cmd`` then holds the command."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        addr_bits, beat_bits = issue_widths(cfg)
        super().__init__(
            {
                "prog_addr": In(32),
                "ctl": In(fetch_control()),
                "issue": Out(issue_signature(addr_bits, beat_bits)),
                "rdata": In(stream.Signature(unsigned(8 * cfg.mem_width))),
                "done": Out(1),
                "cmd": Out(isa.CMD_BITS),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        W = self.cfg.mem_width
        lw = W.bit_length() - 1
        AW = clog2(self.cfg.mem_bytes)  # off-chip byte address
        cmd_words = max(1, W // isa.CMD_BYTES)  # commands per beat
        cmd = Signal(isa.CMD_BITS, reset_less=True)  # decoded only once fetched
        pc = Signal(AW + 1)  # up to mem_bytes: a program may run off the end
        pc_outside = Signal()  # the doorbell's address is beyond memory
        fetch_idx = Signal(range(max(1, isa.CMD_BYTES // W) + 1))  # beats of the command
        # a beat wider than a command holds several: the index of the one at pc
        fetch_keep = Signal(max(1, (cmd_words - 1).bit_length()))
        m.d.comb += self.cmd.eq(cmd)

        with m.If(self.ctl.load):
            m.d.sync += [
                pc.eq(self.prog_addr[:AW]),
                pc_outside.eq((self.prog_addr[AW:] != 0) if AW < isa.ADDR_BITS else 0),
            ]
        with m.If(self.ctl.advance):
            m.d.sync += pc.eq(pc + isa.CMD_BYTES)

        with m.If(pc[:5] != 0):
            m.d.comb += self.ctl.error.eq(isa.ErrorCode.BAD_ALIGN)
        # pc is aligned here: "past the last command" is "at or past the end"
        with m.Elif(pc_outside | pc[AW]):
            m.d.comb += self.ctl.error.eq(isa.ErrorCode.MEM_RANGE)

        with m.If(self.ctl.start):
            m.d.comb += [
                self.issue.start.eq(1),
                self.issue.addr.eq(Cat(Const(0, lw), pc[lw:AW])),
                self.issue.beats.eq(max(1, isa.CMD_BYTES // W)),
            ]
            m.d.sync += [
                fetch_idx.eq(0),
                fetch_keep.eq(pc[5 : 5 + (cmd_words - 1).bit_length()] if cmd_words > 1 else 0),
            ]

        m.d.comb += self.rdata.ready.eq(1)
        with m.If(self.rdata.valid):
            if cmd_words > 1:  # one beat holds several commands: take the one at pc
                m.d.sync += cmd.eq(self.rdata.payload.word_select(fetch_keep, isa.CMD_BITS))
                m.d.comb += self.ctl.done.eq(1)
            else:  # beats shift in from the top: the first ends up in the low bytes
                m.d.sync += [
                    cmd.eq(Cat(cmd[8 * W :], self.rdata.payload)),
                    fetch_idx.eq(fetch_idx + 1),
                ]
                m.d.comb += self.ctl.done.eq(fetch_idx == isa.CMD_BYTES // W - 1)
        return m
