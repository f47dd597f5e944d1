"""The vector unit: ADD (residual add) and POOL (global average pooling), lane-wise on int8 words.

Both are one datapath. The unit reads a stream of activation words, one per cycle, cut into
groups; each group is summed lane-wise after a multiply, and its sum is requantised into one
output word:

* ADD: groups of two reads, A's word then B's (``a*mult_a + b*mult_b``), ``words`` groups;
* POOL: groups of ``pixels`` reads (``sum a*mult``), ``tiles`` groups; the input words of POOL
  are consecutive (``a_word + ct*pixels + p``), so its reads are one counter.

Per lane: a registered ``int8 x uint16`` multiply (one DSP), an accumulator, then the rounding
shift and saturation of :mod:`.requant` (``(P + 2**(s-1)) >> s == (P >> s) + P[s-1]``) in two
stages. The reads never wait for the writes (no flow control on the buffers), and a word is
written :attr:`VectorUnit.latency` cycles after its group's last read was issued, so in-place
output (over A or B) never overwrites a word before it is read.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .act_buffers import BANKS, act_read_latency
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig
from .dsp import RegisteredMul
from .ports import buffer_read, buffer_write, run_control
from .reference import MULT_BITS, SHIFT_BITS
from .requant import _WINDOW, EARLY_LEVELS, _shift_levels

# what travels down the pipeline with each read
_TAG = data.StructLayout(
    {
        "valid": 1,  # a read was issued
        "sel_b": 1,  # ADD's B read (multiplied by mult_b)
        "first": 1,  # the group's first read: the accumulator restarts
        "out": 1,  # the group's last read: its sum becomes an output word
        "final": 1,  # the command's last read
    }
)


def vector_latency(opts: BuildOptions = SIMULATION) -> int:
    """Cycles from the issue of a group's last read to its output word's write (``wr.en``):
    the buffer read, the multiply (2 with its input registers, 1 without), the accumulator, the
    shifter (two stages) and the saturation."""
    pipe = opts.pipeline_regs
    return act_read_latency(pipe) + (2 if pipe else 1) + 4


def vector_cycles(reads: int, opts: BuildOptions = SIMULATION) -> int:
    """Cycles ``done`` is low after ``ctl.start``: ``reads`` = ``2*words`` (ADD) or
    ``pixels*tiles`` (POOL), one read per cycle from the cycle after start; ``done`` rises the
    cycle after the last write."""
    return reads + vector_latency(opts)


class VectorUnit(wiring.Component):
    """ADD and POOL (docs/isa.md) for the command on ``cmd`` (checked, stable while it runs).

    ``ctl.start``: the command runs from the next cycle (``ctl.run``); ``ctl.done`` is low from
    the cycle after start until the cycle after the last word was written, high otherwise
    (also after reset). ``rd`` reads the activation buffers; its data arrives
    ``act_read_latency(opts.pipeline_regs)`` cycles after ``en``, from the ``buf`` driven with
    it. ``wr`` writes the output words, in order, one per write.
    """

    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        self.latency = vector_latency(opts)
        word, depth = 8 * cfg.rows, cfg.act_words
        super().__init__(
            {
                "cmd": In(isa.CMD_BITS),
                "ctl": In(run_control(done=True)),
                "rd": Out(buffer_read(depth, word, banks=BANKS)),
                "wr": Out(buffer_write(depth, word, banks=BANKS)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg, pipe = self.cfg, self.opts.pipeline_regs
        rd, wr, ctl = self.rd, self.wr, self.ctl
        add = data.View(isa.ADD, self.cmd[: isa.ADD.size])
        pool = data.View(isa.POOL, self.cmd[: isa.POOL.size])

        # ---- the command's parameters, registered at start (cmd is valid from then on) ----
        is_pool = Signal()
        mult_a, mult_b = Signal(MULT_BITS), Signal(MULT_BITS)  # POOL: mult_a = mult
        shift, relu = Signal(SHIFT_BITS), Signal()
        a_buf, b_buf = Signal(), Signal()
        group = Signal(isa.DIM_BITS)  # reads per group: 2 or pixels
        a_addr, b_addr = Signal(range(cfg.act_words)), Signal(range(cfg.act_words))
        groups_left = Signal(isa.INDEX_BITS)  # groups whose reads are not all issued
        in_group = Signal(isa.DIM_BITS)  # reads of the current group still to issue
        # the next read starts / ends a group, ends the last group; groups of one read. As
        # registers: counter compares would sit in front of the read address.
        first, last = Signal(name="first"), Signal(name="last")
        last_group, single = Signal(name="last_group"), Signal(name="single")
        issuing = Signal()
        done = Signal(init=1)
        m.d.comb += ctl.done.eq(done)

        start_pool = add.opcode == isa.Op.POOL
        start_group = Mux(start_pool, pool.pixels, 2)
        start_groups = Mux(start_pool, pool.tiles, add.words)
        # the flags straight from the fields (compares after the muxes were a deeper path)
        start_single = start_pool & (pool.pixels == 1)
        start_last_group = Mux(start_pool, pool.tiles == 1, add.words == 1)
        # zero counts are rejected by the checks; here they only keep the unit from hanging
        empty = Mux(start_pool, (pool.pixels == 0) | (pool.tiles == 0), add.words == 0)
        with m.If(ctl.start):
            m.d.sync += [
                is_pool.eq(start_pool),
                mult_a.eq(Mux(start_pool, pool.mult, add.mult_a)),
                mult_b.eq(add.mult_b),
                shift.eq(Mux(start_pool, pool.shift, add.shift)),
                relu.eq(~start_pool & add.relu),
                a_buf.eq(add.a_buf),  # the same field in both layouts
                b_buf.eq(add.b_buf),
                wr.buf.eq(Mux(start_pool, pool.o_buf, add.o_buf)),
                wr.addr.eq(Mux(start_pool, pool.o_word, add.o_word)),
                a_addr.eq(add.a_word),
                b_addr.eq(add.b_word),
                group.eq(start_group),
                in_group.eq(start_group),
                groups_left.eq(start_groups),
                first.eq(1),
                last.eq(start_single),
                last_group.eq(start_last_group),
                single.eq(start_single),
                issuing.eq(~empty),
                done.eq(empty),
            ]

        # ---- reads: one per cycle; ADD alternates A and B ----------------------------------
        issue = Signal(_TAG)
        m.d.comb += [
            issue.valid.eq(issuing & ctl.run),
            issue.sel_b.eq(~is_pool & last),
            issue.first.eq(first),
            issue.out.eq(issue.valid & last),
            issue.final.eq(issue.valid & last & last_group),
            rd.en.eq(issue.valid),
            rd.addr.eq(Mux(issue.sel_b, b_addr, a_addr)),
            rd.buf.eq(Mux(issue.sel_b, b_buf, a_buf)),
        ]
        with m.If(issue.valid):
            m.d.sync += [first.eq(last), issuing.eq(~issue.final)]
            with m.If(last):
                m.d.sync += [
                    in_group.eq(group),
                    last.eq(single),
                    groups_left.eq(groups_left - 1),
                    last_group.eq(groups_left == 2),
                ]
            with m.Else():
                m.d.sync += [in_group.eq(in_group - 1), last.eq(in_group == 2)]
            with m.If(issue.sel_b):
                m.d.sync += b_addr.eq(b_addr + 1)
            with m.Else():
                m.d.sync += a_addr.eq(a_addr + 1)

        # tags[k]: the read issued k cycles ago
        tags = [issue]
        for k in range(1, self.latency + 1):
            tags.append(Signal(_TAG, name=f"tag{k}"))
            m.d.sync += tags[k].eq(tags[k - 1])
        t_data = act_read_latency(pipe)  # its word is on rd.data
        mul_latency = 2 if pipe else 1
        t_prod = t_data + mul_latency  # its products are out
        t_out = t_prod + 4  # then the accumulator, the shifter's two stages, the saturation
        assert t_out == self.latency

        # ---- per lane: multiply, accumulate, round and shift, saturate ---------------------
        acc_bits = 8 + MULT_BITS + cfg.act_words.bit_length() + 1  # POOL's exact sum
        max_shift = (1 << SHIFT_BITS) - 1
        levels = list(reversed(range(SHIFT_BITS)))  # shifter levels, the largest step first
        mult = Mux(tags[t_data].sel_b, mult_b, mult_a)
        out_word = []
        for i in range(cfg.rows):
            mul = RegisteredMul(
                signed(8), unsigned(MULT_BITS), reg_inputs=pipe, mult18x18d=self.opts.ecp5_dsp
            )
            m.submodules[f"mul{i}"] = mul
            m.d.comb += [mul.a.eq(rd.data.word_select(i, 8)), mul.b.eq(mult)]
            acc = Signal(signed(acc_bits), name=f"acc{i}", reset_less=True)
            with m.If(tags[t_prod].valid):
                m.d.sync += acc.eq(Mux(tags[t_prod].first, 0, acc) + mul.p)
            # the shifter of .requant on Cat(0, P): t = P >> s (8 bits), P[s-1] (P[-1] = 0: no
            # rounding for s = 0), and whether a bit it dropped (at s + 8 or above) differs
            # from the sign; its first levels in one stage, the others and t + P[s-1] in the next
            neg = acc[-1]
            sel = Cat(Const(0, 1), acc)
            sel = Cat(sel, neg.replicate(max(0, max_shift + _WINDOW - len(sel))))
            sel, drops = _shift_levels(sel, neg, shift, levels[:EARLY_LEVELS])
            part = Signal(len(sel), name=f"part{i}", reset_less=True)
            drop1 = Signal(name=f"drop1_{i}", reset_less=True)
            neg1 = Signal(name=f"neg1_{i}", reset_less=True)
            m.d.sync += [part.eq(sel), drop1.eq(drops), neg1.eq(neg)]
            window, drops = _shift_levels(part, neg1, shift, levels[EARLY_LEVELS:])
            t = window[1:]
            y = Signal(8, name=f"y{i}", reset_less=True)
            t7 = Signal(name=f"t7_{i}", reset_less=True)
            drop = Signal(name=f"drop{i}", reset_less=True)
            neg2 = Signal(name=f"neg{i}", reset_less=True)
            m.d.sync += [y.eq(t + window[0]), t7.eq(t[7]), drop.eq(drop1 | drops), neg2.eq(neg1)]
            # t fits int8 iff nothing dropped and its bit 7 is the sign; the increment then
            # overflows only from 127, which saturates to 127 anyway. ReLU keys on the sign.
            ovf = drop | (t7 ^ neg2) | (~neg2 & y[7])
            q = Signal(8, name=f"q{i}", reset_less=True)
            m.d.sync += q.eq(Mux(relu & neg2, 0, Mux(ovf, Mux(neg2, 0x80, 0x7F), y)))
            out_word.append(q)

        # ---- writes: one word per group, in order ------------------------------------------
        m.d.comb += [wr.en.eq(tags[t_out].out), wr.data.eq(Cat(*out_word))]
        with m.If(wr.en):
            m.d.sync += wr.addr.eq(wr.addr + 1)
        with m.If(tags[t_out].final):
            m.d.sync += done.eq(1)
        return m
