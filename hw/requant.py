"""Requantisation int32 -> int8 on the way out of the array.

Rule (identical to :func:`sushi_hw.reference.requantize`): ``y = (x*mult + round) >> shift`` with
``round = 2**(shift-1)`` (0 when ``shift == 0``), arithmetic shift, then optional ReLU, then
saturation to int8. With ``enable`` low the int32 value passes through (ReLU still applies).

Built for FPGAs: the 32x16 product is split into two 16x16 products that each fit one DSP block
(SB_MAC16 on iCE40, MULT18X18D on ECP5), and saturation compares against ``±128 << shift``
instead of shifting the whole 49-bit product, so only the 8 result bits go through a shifter.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .reference import MULT_BITS, SHIFT_BITS


class RequantParams(data.Struct):
    enable: 1
    relu: 1
    mult: unsigned(MULT_BITS)
    shift: unsigned(SHIFT_BITS)


class Requantizer(wiring.Component):
    """A four-stage pipeline over ``lanes`` int32 values. Latency :attr:`latency`, no stalls.

    Stage 1: ``x_lo * mult`` (unsigned 16x16) and ``x_hi * mult[0:15]`` (signed 16x16), each one
    DSP. Stage 2: the full product plus the rounding constant, and the saturation thresholds.
    Stage 3: the saturation comparisons and the 8 result bits through a shifter. Stage 4: ReLU,
    saturation or pass-through select.
    """

    latency = 4

    def __init__(self, lanes: int, *, hold_output: bool = False):
        self.lanes = lanes
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
        prod_bits = 32 + MULT_BITS + 1
        v1, v2, v3 = Signal(), Signal(), Signal()
        p1, p2, p3 = Signal(RequantParams), Signal(RequantParams), Signal(RequantParams)
        m.d.sync += [v1.eq(self.i_valid), v2.eq(v1), v3.eq(v2), self.o_valid.eq(v3)]
        m.d.sync += [p1.eq(self.params), p2.eq(p1), p3.eq(p2)]
        m.d.comb += self.busy.eq(v1 | v2 | v3 | self.o_valid)

        mult = self.params.mult
        m_lo15 = Signal(signed(16))  # mult[0:15], non-negative as a signed 16-bit operand
        m.d.comb += m_lo15.eq(mult[:15])
        # round = 2**(shift-1), and 0 for shift == 0
        rnd = Signal(unsigned(1 << SHIFT_BITS))
        m.d.comb += rnd.eq((Const(1, 2) << p1.shift) >> 1)
        # saturation thresholds: (s >> shift) > 127  <=>  s >= 128 << shift, likewise below
        hi_thr = Signal(signed(prod_bits + 1))
        lo_thr = Signal(signed(prod_bits + 1))
        m.d.sync += [hi_thr.eq(Const(128, 9) << p1.shift), lo_thr.eq(-(Const(128, 9) << p1.shift))]

        for i in range(self.lanes):
            x = self.i_data[i]
            # stage 1
            x1 = Signal(signed(32), name=f"x1_{i}")
            pl = Signal(unsigned(32), name=f"pl{i}")
            ph = Signal(signed(32), name=f"ph{i}")
            m.d.sync += [
                x1.eq(x),
                pl.eq(x[:16] * mult),
                ph.eq(x[16:].as_signed() * m_lo15),
            ]
            # stage 2: x*mult = (x_hi*mult[0:15] + mult[15]*x_hi<<15) << 16 + x_lo*mult
            s2 = Signal(signed(prod_bits + 1), name=f"sum{i}")
            plain = Signal(signed(32), name=f"plain{i}")
            x1_hi = x1[16:].as_signed()
            top = Mux(p1.mult[15], x1_hi << 31, 0)
            m.d.sync += [
                s2.eq((ph << 16) + top + pl + rnd),
                plain.eq(Mux(p1.relu & x1[31], 0, x1)),
            ]
            # stage 3: comparisons and the result window
            window = Signal(signed(8), name=f"window{i}")
            hi, lo, neg = Signal(name=f"hi{i}"), Signal(name=f"lo{i}"), Signal(name=f"neg{i}")
            plain3 = Signal(signed(32), name=f"plain3_{i}")
            m.d.sync += [
                window.eq((s2 >> p2.shift)[:8]),
                hi.eq(s2 >= hi_thr),
                lo.eq(s2 < lo_thr),
                neg.eq(s2 < 0),
                plain3.eq(plain),
            ]
            # stage 4
            q = Mux(p3.relu & neg, 0, Mux(hi, 127, Mux(lo, -128, window)))
            with m.If(v3 if self.hold_output else 1):
                m.d.sync += self.o_data[i].eq(Mux(p3.enable, q, plain3))
        return m
