"""Requantisation int32 -> int8 on the way out of the array.

Rule (identical to :func:`sushi_hw.reference.requantize`): ``y = (x*mult + round) >> shift`` with
``round = 2**(shift-1)`` (0 when ``shift == 0``), arithmetic shift, then optional ReLU, then
saturation to int8. With ``enable`` low the int32 value passes through (ReLU still applies).
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
    """A two-stage pipeline over ``lanes`` int32 values. Latency :attr:`latency`, no stalls."""

    latency = 2

    def __init__(self, lanes: int):
        self.lanes = lanes
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
        prod_bits = 32 + MULT_BITS + 1
        s1_valid = Signal()
        s1_params = Signal(RequantParams)
        s1_prod = [Signal(signed(prod_bits), name=f"prod{i}") for i in range(self.lanes)]
        m.d.sync += [s1_valid.eq(self.i_valid), s1_params.eq(self.params)]
        for i in range(self.lanes):
            m.d.sync += s1_prod[i].eq(
                Mux(self.params.enable, self.i_data[i] * self.params.mult, self.i_data[i])
            )

        m.d.sync += self.o_valid.eq(s1_valid)
        m.d.comb += self.busy.eq(s1_valid | self.o_valid)
        # round = 2**(shift-1), and 0 for shift == 0
        rnd = Signal(unsigned(1 << SHIFT_BITS))
        m.d.comb += rnd.eq((Const(1, 2) << s1_params.shift) >> 1)
        for i in range(self.lanes):
            shifted = Signal(signed(prod_bits + 1), name=f"shifted{i}")
            m.d.comb += shifted.eq((s1_prod[i] + rnd) >> s1_params.shift)
            relu = Signal(signed(prod_bits + 1), name=f"relu{i}")
            m.d.comb += relu.eq(Mux(s1_params.relu & (shifted < 0), 0, shifted))
            sat = Mux(relu > 127, 127, Mux(relu < -128, -128, relu))
            plain = Mux(s1_params.relu & (s1_prod[i] < 0), 0, s1_prod[i])
            m.d.sync += self.o_data[i].eq(Mux(s1_params.enable, sat, plain))
        return m
