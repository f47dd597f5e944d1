"""Requantisation int32 -> int8 on the way out of the array.

Rule (identical to :func:`sushi_hw.reference.requantize`): ``y = (x*mult + round) >> shift`` with
``round = 2**(shift-1)`` (0 when ``shift == 0``), arithmetic shift, then optional ReLU, then
saturation to int8. With ``enable`` low the int32 value passes through (ReLU still applies).

Built for FPGAs: the 32x16 product is split into two 16x16 products that each fit one DSP block
(SB_MAC16 on iCE40, MULT18X18D on ECP5). Nothing wide is compared or shifted: the result fits
int8 exactly when the product's bits from ``shift + 7`` up all equal its sign (one masked
XOR and an OR), and only the 8 result bits go through a shifter.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
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

    ``params`` must stay put from a row's ``i_valid`` until it leaves (``busy`` low): a GEMM's
    rows share them, so the pipeline carries none. Pass-through (``enable`` low) runs through
    the same datapath as ``x * 1 >> 0``.

    Stage 1: ``x_lo * mult`` (unsigned 16x16) and ``x_hi * mult[0:15]`` (signed 16x16), each one
    DSP. Stage 2: the full product plus the rounding constant. Stage 3: the 8 result bits
    through a shifter, the overflow and sign flags. Stage 4: ReLU, saturation or pass-through.
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
        max_shift = (1 << SHIFT_BITS) - 1
        prod_bits = 32 + MULT_BITS + 1  # signed x * unsigned mult, plus the rounding carry
        v1, v2, v3 = Signal(), Signal(), Signal()
        m.d.sync += [v1.eq(self.i_valid), v2.eq(v1), v3.eq(v2), self.o_valid.eq(v3)]
        m.d.comb += self.busy.eq(v1 | v2 | v3 | self.o_valid)

        p = self.params
        mult = Signal(MULT_BITS)
        m.d.comb += mult.eq(Mux(p.enable, p.mult, 1))
        m_lo15 = Signal(signed(16))  # mult[0:15], non-negative as a signed 16-bit operand
        m.d.comb += m_lo15.eq(mult[:15])
        # per-GEMM constants, registered (the parameters are stable while rows flow):
        # round = 2**(shift-1) (0 for shift 0), and the bits that must equal the sign for the
        # shifted value to fit int8: shift + 7 and up
        rnd = Signal(max_shift)
        keep = Signal(prod_bits - 7)  # keep[j]: bit j + 7 of the sum
        shift = Signal(SHIFT_BITS)
        m.d.sync += [
            shift.eq(Mux(p.enable, p.shift, 0)),
            rnd.eq(Mux(p.enable, (Const(1, 2) << p.shift) >> 1, 0)),
            keep.eq(Const(-1, prod_bits - 7) << p.shift),
        ]

        for i in range(self.lanes):
            x = self.i_data[i]
            # stage 1
            # data registers carry no reset (valid bits do): the DSP's own registers can hold them
            x_hi = Signal(signed(16), name=f"x_hi{i}", reset_less=True)
            pl = Signal(unsigned(32), name=f"pl{i}", reset_less=True)
            ph = Signal(signed(32), name=f"ph{i}", reset_less=True)
            m.d.sync += [x_hi.eq(x[16:]), pl.eq(x[:16] * mult), ph.eq(x[16:].as_signed() * m_lo15)]
            # stage 2: x*mult = (x_hi*mult[0:15] + mult[15]*x_hi<<15) << 16 + x_lo*mult; the low
            # 16 bits need only the rounding add
            low = Signal(33, name=f"low{i}")
            m.d.comb += low.eq(pl + rnd)
            top = Mux(mult[15], x_hi << 15, 0)
            s2 = Signal(signed(prod_bits), name=f"sum{i}")
            m.d.sync += s2.eq(Cat(low[:16], (ph + top + low[16:])[: prod_bits - 16]))
            # stage 3: fits int8 iff the bits from shift + 7 up equal the sign; the 8 result
            # bits through a logarithmic shifter that keeps only the bits it can still select
            sign = s2[-1]
            window = Signal(signed(8), name=f"window{i}")
            ovf, neg = Signal(name=f"ovf{i}"), Signal(name=f"neg{i}")
            plain = Signal(signed(32), name=f"plain{i}")
            sel = s2[: 8 + max_shift]
            for b in reversed(range(SHIFT_BITS)):
                width = 8 + (1 << b) - 1
                sel = Mux(shift[b], sel[1 << b : (1 << b) + width], sel[:width])
            m.d.sync += [
                window.eq(sel),
                ovf.eq(((s2[7:] ^ sign.replicate(prod_bits - 7)) & keep) != 0),
                neg.eq(sign),
                plain.eq(s2[:32]),
            ]
            # stage 4
            q = Mux(ovf, Mux(neg, -128, 127), window)
            out = Mux(p.relu & neg, 0, Mux(p.enable, q, plain))
            with m.If(v3 if self.hold_output else 1):
                m.d.sync += self.o_data[i].eq(out)
        return m
