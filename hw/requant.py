"""Requantisation int32 -> int8 on the way out of the array.

Rule (identical to :func:`sushi_hw.reference.requantize`): ``y = (x*mult + round) >> shift`` with
``round = 2**(shift-1)`` (0 when ``shift == 0``), arithmetic shift, then optional ReLU, then
saturation to int8. With ``enable`` low the int32 value passes through (ReLU still applies).

Built for FPGAs: the 32x16 product is split into two 16x16 products that each fit one DSP block
(SB_MAC16 on iCE40, MULT18X18D on ECP5); on iCE40 the adder joining them is the second DSP's
post-adder. Nothing wide is added, compared or shifted:

* the rounding constant is never added: with ``P = x*mult`` and ``t = P >> s``,
  ``(P + 2**(s-1)) >> s == t + P[s-1]``, and since ``t == 127`` saturates to 127 either way
  only ``t`` has to fit int8, leaving an 8-bit increment;
* ``t`` fits int8 iff ``P``'s bits from ``s + 7`` up all equal its sign. The shifter drops bits
  off the top of its window that lie at ``s + 8`` or above, so ORing "differs from the sign"
  over what it drops, plus bit 7 of the result, is the whole check;
* only 9 bits (``P[s-1 : s+8]``) come out of the shifter.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .build_options import SIMULATION, BuildOptions
from .dsp import RegisteredMul
from .reference import MULT_BITS, SHIFT_BITS

_WINDOW = 9  # shifter output: the rounding bit and the 8 result bits
#: shifter levels in stage 3 (the rest in stage 4): two balance the stages at the iCE40 clock
EARLY_LEVELS = 2


class RequantParams(data.Struct):
    enable: 1
    relu: 1
    mult: unsigned(MULT_BITS)
    shift: unsigned(SHIFT_BITS)


class Requantizer(wiring.Component):
    """A five-stage pipeline over ``lanes`` int32 values. Latency :attr:`latency`, no stalls.

    ``params`` must be set a cycle before a row's ``i_valid`` and stay put until it leaves
    (``busy`` low): a GEMM's rows share them, so the pipeline carries none. Pass-through
    (``enable`` low) runs through the same datapath as ``x * 1 >> 0``.

    With ``x = x_hi * 2**16 + x_lo`` and ``m`` the multiplier read as signed 16-bit
    (``mult = m + mult[15] * 2**16``): ``P >> 16 = x_hi*m + (mult[15] ? x_hi : 0) * 2**16 +
    (x_lo*mult >> 16)``, whose last two terms occupy disjoint bits (one addend, no LUTs).

    Stage 1: ``x_lo * mult`` and ``x_hi * m`` (16x16, one DSP each). Stage 2: ``P >> 16``, a
    32-bit add. Stage 3: the shifter's top levels (by 16 and 8). Stage 4: its other levels and
    the rounding increment. Stage 5: overflow, ReLU, saturation or pass-through.
    """

    latency = 5

    def __init__(self, lanes: int, *, hold_output: bool = False, opts: BuildOptions = SIMULATION):
        self.lanes, self.opts = lanes, opts
        #: ``o_data`` only changes with ``o_valid`` (it holds the last row), else every cycle
        self.hold_output = hold_output
        layout = data.ArrayLayout(signed(32), lanes)
        super().__init__(
            {
                "i_valid": In(1),
                "i_data": In(layout),
                "params": In(RequantParams),
                "o_valid": Out(1),
                "o_data": Out(layout),
                "busy": Out(1),  # a value is inside the pipeline
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        assert MULT_BITS == 16
        v1, v2, v3, v4 = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [v1.eq(self.i_valid), v2.eq(v1), v3.eq(v2), v4.eq(v3), self.o_valid.eq(v4)]
        m.d.comb += self.busy.eq(v1 | v2 | v3 | v4 | self.o_valid)

        ecp5 = self.opts.ecp5_dsp
        p = self.params
        mult = Signal(MULT_BITS)
        if self.opts.pipeline_regs:
            # ECP5 timing: the descriptor's fan-out through this mux into 2 * lanes DSP
            # inputs did not fit 10 ns; registered, the parameters lead the rows by a cycle
            m.d.sync += mult.eq(Mux(p.enable, p.mult, 1))
        else:
            m.d.comb += mult.eq(Mux(p.enable, p.mult, 1))
        shift = Signal(SHIFT_BITS)  # used from stage 3 on; the parameters are stable by then
        m.d.sync += shift.eq(Mux(p.enable, p.shift, 0))
        levels = list(reversed(range(SHIFT_BITS)))  # shifter levels, the largest step first
        max_shift = (1 << SHIFT_BITS) - 1

        for i in range(self.lanes):
            x = self.i_data[i]
            # Data registers carry no reset (the valid bits do): the DSP blocks absorb them,
            # and a reset would collide with the synchronous set/reset that stand in for LUTs.
            # stage 1: the products, registered in the DSPs: on ECP5 MULT18X18D instances with
            # their output register (Yosys's ECP5 mapping leaves it unused), elsewhere a plain
            # multiply into a register without reset that SB_MAC16 absorbs
            mul_l = RegisteredMul(unsigned(16), unsigned(16), reg_inputs=False, mult18x18d=ecp5)
            mul_h = RegisteredMul(signed(16), signed(16), reg_inputs=False, mult18x18d=ecp5)
            m.submodules[f"mul_l{i}"], m.submodules[f"mul_h{i}"] = mul_l, mul_h
            m.d.comb += [
                mul_l.a.eq(x[:16]),
                mul_l.b.eq(mult),
                mul_h.a.eq(x[16:].as_signed()),
                mul_h.b.eq(mult.as_signed()),
            ]
            pl, ph = mul_l.p, mul_h.p
            x_hi_m15 = Signal(16, name=f"x_hi_m15_{i}", reset_less=True)  # x_hi if mult[15]
            m.d.sync += x_hi_m15.eq(Mux(mult[15], x[16:], 0))  # a synchronous reset
            # stage 2: P >> 16 fits 32 bits, so a 32-bit add is exact: on iCE40 the DSP's
            # post-adder, on ECP5 in the fabric (behind the product register either way)
            p_hi = Signal(signed(32), name=f"p_hi{i}", reset_less=True)
            p_lo = Signal(16, name=f"p_lo{i}", reset_less=True)
            m.d.sync += [
                p_hi.eq(ph + Cat(pl[16:], x_hi_m15).as_signed()),
                p_lo.eq(pl[:16]),
            ]
            # stage 3: the shifter's first levels on Cat(0, P) (P[-1] = 0: no rounding for
            # shift 0). Its register also carries the pass-through's low bits (shift 0 selects
            # P's bottom bits); the rest go alongside, zero while requantising or when ReLU
            # clamps, so that stage 4 only has to set them to the sign.
            sign = p_hi[-1]
            sel = Cat(Const(0, 1), p_lo, p_hi)
            sel = Cat(sel, sign.replicate(max(0, max_shift + _WINDOW - len(sel))))
            sel, drops3 = _shift_levels(sel, sign, shift, levels[:EARLY_LEVELS])
            part = Signal(len(sel), name=f"part{i}", reset_less=True)
            drop3 = Signal(name=f"drop3_{i}", reset_less=True)
            neg = Signal(name=f"neg{i}", reset_less=True)
            n_pass = min(len(part) - 1, 32)  # pass-through bits that ride in part[1:]
            plain = Signal(32 - n_pass, name=f"plain{i}", reset_less=True)
            m.d.sync += [
                part.eq(sel),
                drop3.eq(drops3),
                neg.eq(sign),
                plain.eq(Mux(p.enable | (p.relu & sign), 0, Cat(p_lo, p_hi)[n_pass:32])),
            ]
            # stage 4: the other levels give t = P >> s (8 bits) and P[s-1], and the rounding
            # increment y = t + P[s-1]; the pass-through bits move on, masked
            window, drops4 = _shift_levels(part, neg, shift, levels[EARLY_LEVELS:])
            t = window[1:]
            y = Signal(8, name=f"y{i}", reset_less=True)
            t7 = Signal(name=f"t7_{i}", reset_less=True)
            drop = Signal(name=f"drop{i}", reset_less=True)
            neg5 = Signal(name=f"neg5_{i}", reset_less=True)
            pass_hi = Signal(24, name=f"pass_hi{i}", reset_less=True)  # bits 8 .. 31
            pass_mid = part[_WINDOW : n_pass + 1]  # pass-through bits 8 .. n_pass-1
            m.d.sync += [
                y.eq(t + window[0]),
                t7.eq(t[7]),
                drop.eq(drop3 | drops4),
                neg5.eq(neg),
                pass_hi.eq(Mux(p.enable | (p.relu & neg), 0, Cat(pass_mid, plain))),
            ]
            # stage 5: t fits int8 iff nothing dropped and its bit 7 equals the sign; the
            # increment then overflows only from 127, where 127 is the answer anyway. P < 0
            # gives a result <= 0, so ReLU keys on the sign.
            ovf = p.enable & (drop | (t7 ^ neg5) | (~neg5 & y[7]))
            clamp = p.relu & neg5
            lo = Signal(8, name=f"lo{i}", reset_less=True)
            hi = Signal(24, name=f"hi{i}", reset_less=True)
            with m.If(v4 if self.hold_output else 1):
                m.d.sync += [
                    lo.eq(Mux(clamp, 0, Mux(ovf, Mux(neg5, 0x80, 0x7F), y))),
                    # requantising: the int8 result's sign extension, a synchronous set
                    hi.eq(Mux(~clamp & Mux(ovf, neg5, y[7]) & p.enable, -1, pass_hi)),
                ]
            m.d.comb += self.o_data[i].eq(Cat(lo, hi))
        return m


def _shift_levels(sel: Value, sign: Value, shift: Value, levels: list[int]) -> tuple[Value, Value]:
    """Levels ``levels`` (descending) of the logarithmic window shifter: ``sel`` narrowed to
    the bits the remaining levels can still select, and whether a bit dropped off its top
    differs from ``sign``. A level by ``2**b`` keeps ``_WINDOW + 2**b - 1`` bits; everything
    above lies at ``s + 8`` or higher."""
    drops = []
    for b in levels:
        step, width = 1 << b, _WINDOW + (1 << b) - 1
        drops.append(_differs(sel[step + width :], sign))
        drops.append(~shift[b] & _differs(sel[width : step + width], sign))
        sel = Mux(shift[b], sel[step : step + width], sel[:width])
    return sel, Cat(*drops).any()


def _differs(bits: Value, sign: Value) -> Value:
    """Any of ``bits`` differs from ``sign`` (0 for no bits)."""
    return (bits ^ sign.replicate(len(bits))).any() if len(bits) else Const(0)
