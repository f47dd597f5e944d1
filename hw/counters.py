"""Event counters held in block RAM, with exact reads.

A flip-flop counter costs a logic cell per bit plus a read multiplexer; on an iCE40UP5K, eight
32-bit counters took about a tenth of the device. Here each counter is a word of a small RAM,
updated round robin by one shared adder, and only a few-bit pending count per counter lives in
flip-flops. A read adds the pending parts back, so it is exact in every cycle (two cycles after its
select).

Pipeline, one counter per cycle (``rr`` steps through all slots):

* stage A, cycle t: read the RAM word of counter ``rr`` and take its pending count;
* stage B, cycle t+1: write back word (or 0 after a clear) + the taken count.

With ``read_reg`` (ECP5 timing: a block RAM's 5.8 ns clock-to-out and a counter-wide carry
chain do not fit 10 ns) stage B only registers the word, and stage C, cycle t+2, adds and writes
back. A counter is taken every ``slots`` (>= 4) cycles, so a slot's write-back always lands
before its next read, and its pending count never exceeds ``slots`` events. Host reads use a
second read port, transparent for the write, and see ``word + pending + (the counts taken but
not yet written back, if they are this counter's)``, the two parts registered before they are
added.

With ``overflow``, a counter that passes ``2**bits - 1`` is flagged: the write-back adder's
carry sets the slot's sticky bit (cleared with the counters), and ``value`` has one bit more,
bit ``bits``: the sticky bit or the carry of the read's own sum. The low bits wrap; a host
reads a flagged counter as saturated at ``2**bits - 1`` (:func:`saturate`). One carry bit per
adder and a bit per slot: saturating all ``bits`` in hardware would take two ``bits``-wide
multiplexers.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import clog2


class CounterBank(wiring.Component):
    """``len(amounts)`` counters of ``bits`` bits; counter ``i`` adds ``amounts[i]`` in each
    cycle its ``inc`` bit is high. ``clear`` zeroes them all (events in that cycle are
    dropped). ``value`` is counter ``sel`` :attr:`latency` cycles after ``sel`` is presented,
    counting every event up to the cycle ``sel`` was presented in. ``read_reg`` registers the
    RAM word before the update's adder (``BuildOptions.pipeline_regs``)."""

    #: cycles from ``sel`` to ``value``
    latency = 2

    def __init__(
        self, amounts: list[int], bits: int, *, read_reg: bool = True, overflow: bool = False
    ):
        if not amounts or min(amounts) < 1:
            self._MustUse__silence = True  # never elaborated: no "unused" warning
            raise ValueError(f"counter amounts must be >= 1, got {amounts}")
        self.amounts, self.bits, self.read_reg = list(amounts), bits, read_reg
        self.overflow = overflow
        self.slots = 1 << clog2(max(4, len(amounts)))
        super().__init__(
            {
                "inc": In(len(amounts)),
                "clear": In(1),
                "sel": In(range(len(amounts))),
                "value": Out(bits + overflow),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        n, slots, bits = len(self.amounts), self.slots, self.bits
        pend_bits = (slots * max(self.amounts)).bit_length()
        # "block": a few words, but two read ports of flip-flops would cost what this saves
        m.submodules.words = words = Memory(
            shape=unsigned(bits), depth=slots, init=[], attrs={"ram_style": "block"}
        )
        wp = words.write_port()
        # not transparent: a slot is written back at least two cycles before its next read
        # (a bypass would put a mux and a register on the iCE40's critical path, RAM -> add)
        rmw = words.read_port()
        host = words.read_port(transparent_for=(wp,))

        pend = [Signal(pend_bits, name=f"pend{i}") for i in range(n)]
        # the RAM word predates the last clear (or reset): read it as 0
        stale = Signal(slots, init=(1 << slots) - 1)
        rr = Signal(range(slots))
        b_valid, b_idx, b_val = Signal(), Signal(range(slots)), Signal(pend_bits)

        # stage A: read word rr, take its pending count (the slot's new events restart it)
        m.d.sync += rr.eq(rr + 1)
        m.d.comb += [rmw.addr.eq(rr), rmw.en.eq(1)]
        m.d.sync += [b_valid.eq(~self.clear), b_idx.eq(rr), b_val.eq(0)]
        for i, amount in enumerate(self.amounts):
            event = Mux(self.inc[i], amount, 0)
            with m.If(self.clear):
                m.d.sync += pend[i].eq(0)
            with m.Elif(rr == i):
                m.d.sync += [b_val.eq(pend[i]), pend[i].eq(event)]
            with m.Else():
                m.d.sync += pend[i].eq(pend[i] + event)

        read_reg = self.read_reg
        b_word = Mux(stale.bit_select(b_idx, 1), 0, rmw.data)
        if read_reg:
            # stage B: register the word; stage C: write back word + taken count
            w_valid, w_idx, w_val = Signal(), Signal(range(slots)), Signal(pend_bits)
            w_word = Signal(bits)
            m.d.sync += [
                w_valid.eq(b_valid & ~self.clear),
                w_idx.eq(b_idx),
                w_val.eq(b_val),
                w_word.eq(b_word),
            ]
            # taken, not yet written: stage B's count and stage C's
            not_written = [(b_valid, b_idx, b_val), (w_valid, w_idx, w_val)]
        else:
            # stage B: write back
            w_valid, w_idx, w_val, w_word = b_valid, b_idx, b_val, b_word
            not_written = [(b_valid, b_idx, b_val)]
        w_sum = Signal(bits + 1)  # the carry: the counter passed 2**bits - 1
        m.d.comb += [
            w_sum.eq(w_word + w_val),
            wp.addr.eq(w_idx),
            wp.en.eq(w_valid),
            wp.data.eq(w_sum[:bits]),
        ]
        with m.If(self.clear):
            m.d.sync += stale.eq(-1)
        with m.Elif(w_valid):
            m.d.sync += stale.bit_select(w_idx, 1).eq(0)

        # host read: the word (transparent: includes this edge's write) + what is not in it yet
        sel_q = Signal.like(self.sel)
        m.d.sync += sel_q.eq(self.sel)
        m.d.comb += [host.addr.eq(self.sel), host.en.eq(1)]
        pend_sel = Signal(pend_bits)
        with m.Switch(sel_q):
            for i in range(n):
                with m.Case(i):
                    m.d.comb += pend_sel.eq(pend[i])
        in_flight = sum(Mux(v & (i == sel_q), c, 0) for v, i, c in not_written)
        word = Mux(stale.bit_select(sel_q, 1), 0, host.data)
        # both parts are registered before the add: the RAM's clock-to-out, the pending-count
        # mux and a counter-wide carry chain in one cycle were the iCE40's critical path
        word_q, small_q = Signal(bits), Signal(pend_bits + 2)
        m.d.sync += [word_q.eq(word), small_q.eq(pend_sel + in_flight)]
        if not self.overflow:
            m.d.comb += self.value.eq(word_q + small_q)
            return m
        ovf = Signal(slots)  # sticky: the slot's write-back carried
        with m.If(self.clear):
            m.d.sync += ovf.eq(0)
        with m.Elif(w_valid & w_sum[bits]):
            m.d.sync += ovf.bit_select(w_idx, 1).eq(1)
        ovf_q = Signal()
        m.d.sync += ovf_q.eq(ovf.bit_select(sel_q, 1))
        total = Signal(bits + 1)
        m.d.comb += [total.eq(word_q + small_q), self.value.eq(total | (ovf_q << bits))]
        return m


def saturate(value: int, bits: int) -> tuple[int, bool]:
    """A counter read with its overflow flag (bit ``bits``): the count, saturated at
    ``2**bits - 1``, and whether it overflowed."""
    top = (1 << bits) - 1
    return (top, True) if value > top else (value, False)
