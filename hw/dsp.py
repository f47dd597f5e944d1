"""Registered multipliers that use a DSP block's own input and output registers.

Why this module exists: Yosys's ``synth_ecp5`` maps ``*`` onto MULT18X18D through a techmap
that bypasses every register of the block (``share/lattice/dsp_map_18x18.v``), and it has no
pass that folds the surrounding flip-flops into the block. The multiplier then sits between
two fabric flip-flops, and on the ULX3S 8.7 of the 13.2 ns of the PE's critical path were
routing into and out of the DSP (docs/fpga.md). The only way to use the block's registers is
to instantiate MULT18X18D with ``REG_INPUTA_CLK`` / ``REG_INPUTB_CLK`` / ``REG_OUTPUT_CLK`` set
to ``"CLK0"``; nextpnr-ecp5 then times it with its ``MULT18X18D_REGS_ALL`` /
``MULT18X18D_REGS_OUTPUT`` data (the path inside the block is register to register).

:class:`RegisteredMul` is one registered multiply with a fixed latency, built either as that
instance or as plain Amaranth (registers and ``*``; what simulations and the other devices
get, and what iCE40's SB_MAC16 inference absorbs). Both compute the same value in the same
cycle, so a caller's cycle-level behaviour does not depend on the device.

Yosys ships only a black box for MULT18X18D, so the instance cannot be simulated with
Yosys's cell library: ``tests/hw/mult18x18d_model.v`` is our own behavioural model of the
subset used here (written from Lattice TN1267), and ``tests/hw/test_dsp.py`` runs the
instance against it under Icarus.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Shape, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

#: widest operand of one MULT18X18D (signed, or unsigned with SIGNEDx low)
MULT18_WIDTH = 18


def product_shape(a_shape, b_shape) -> Shape:
    """Shape that holds every product of ``a_shape`` and ``b_shape`` exactly."""
    a, b = Shape.cast(a_shape), Shape.cast(b_shape)
    width = a.width + b.width
    return signed(width) if (a.signed or b.signed) else unsigned(width)


class RegisteredMul(wiring.Component):
    """``p = a * b`` with registers; ``latency`` cycles from ``a``/``b`` to ``p``.

    * ``reg_inputs=True``: ``a`` and ``b`` are registered, then the product is registered
      (latency 2). ``p`` at cycle t+2 is the product of ``a``/``b`` at cycle t. Use it where the
      caller would otherwise register the operands itself and multiply the registers.
    * ``reg_inputs=False``: only the product is registered (latency 1); the operands should
      come straight from flip-flops (e.g. the requantiser's ``x[:16] * mult``).

    ``mult18x18d=True`` builds a MULT18X18D instance (ECP5) using the block's input registers
    (``REG_INPUTA_CLK``/``REG_INPUTB_CLK``) and output register (``REG_OUTPUT_CLK``), clocked by
    ``domain`` on CLK0 (nextpnr times the registers from CLK0 only), CE0 high and RST0 low: the
    registers have no reset, like the ``reset_less`` ones of the plain build. Operands are at
    most 18 bits; signedness goes to SIGNEDA/SIGNEDB, and ``p`` is the low bits of the 36-bit P.
    Both builds power up with zeros in their registers (GSR of the DSP, ``init`` of the
    flip-flops).
    """

    def __init__(
        self,
        a_shape,
        b_shape,
        *,
        reg_inputs: bool = True,
        mult18x18d: bool = False,
        domain: str = "sync",
    ):
        self.a_shape, self.b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        self.p_shape = product_shape(a_shape, b_shape)
        self.reg_inputs, self.mult18x18d, self.domain = reg_inputs, mult18x18d, domain
        #: cycles from the operands to ``p``
        self.latency = 2 if reg_inputs else 1
        if mult18x18d:
            for name, s in (("a", self.a_shape), ("b", self.b_shape)):
                if s.width > MULT18_WIDTH:
                    self._MustUse__silence = True  # no "created but never used" warning
                    raise ValueError(
                        f"operand {name} is {s.width} bits; MULT18X18D takes at most {MULT18_WIDTH}"
                    )
        super().__init__({"a": In(self.a_shape), "b": In(self.b_shape), "p": Out(self.p_shape)})

    def elaborate(self, platform) -> Module:
        m = Module()
        if self.mult18x18d:
            self._mult18x18d(m)
            return m
        sync = m.d[self.domain]
        a, b = self.a, self.b
        if self.reg_inputs:
            a = Signal(self.a_shape, name="a_q", reset_less=True)
            b = Signal(self.b_shape, name="b_q", reset_less=True)
            sync += [a.eq(self.a), b.eq(self.b)]
        p = Signal(self.p_shape, name="p_q", reset_less=True)
        sync += p.eq(a * b)
        m.d.comb += self.p.eq(p)
        return m

    def _mult18x18d(self, m: Module) -> None:
        # operands extended to 18 bits by their own signedness (sign or zero extension)
        a18 = Signal(MULT18_WIDTH, name="dsp_a")
        b18 = Signal(MULT18_WIDTH, name="dsp_b")
        p36 = Signal(2 * MULT18_WIDTH, name="dsp_p")
        m.d.comb += [a18.eq(self.a), b18.eq(self.b), self.p.eq(p36[: self.p_shape.width])]
        reg_in = "CLK0" if self.reg_inputs else "NONE"
        params = {
            "REG_INPUTA_CLK": reg_in,
            "REG_INPUTA_CE": "CE0",
            "REG_INPUTA_RST": "RST0",
            "REG_INPUTB_CLK": reg_in,
            "REG_INPUTB_CE": "CE0",
            "REG_INPUTB_RST": "RST0",
            "REG_INPUTC_CLK": "NONE",
            "REG_PIPELINE_CLK": "NONE",
            "REG_OUTPUT_CLK": "CLK0",
            "REG_OUTPUT_CE": "CE0",
            "REG_OUTPUT_RST": "RST0",
            "GSR": "ENABLED",  # registers are zero after configuration, like the FFs' init
            "RESETMODE": "SYNC",
            "MULT_BYPASS": "DISABLED",
            "CAS_MATCH_REG": "FALSE",
            "SOURCEB_MODE": "B_SHIFT",  # irrelevant: SOURCEB low selects the B input
        }
        ports = {
            "i_CLK0": ClockSignal(self.domain),
            "i_CE0": 1,
            "i_RST0": 0,
            "i_SIGNEDA": int(self.a_shape.signed),
            "i_SIGNEDB": int(self.b_shape.signed),
            "i_SOURCEA": 0,  # A from the A inputs, not the neighbour's shift chain
            "i_SOURCEB": 0,
        }
        for i in range(MULT18_WIDTH):
            ports[f"i_A{i}"] = a18[i]
            ports[f"i_B{i}"] = b18[i]
            ports[f"i_C{i}"] = 0
        for i in range(2 * MULT18_WIDTH):
            ports[f"o_P{i}"] = p36[i]
        # CLK1-3, CE1-3, RST1-3, SRIA/SRIB and the RO*/SRO* outputs stay unconnected; nextpnr
        # ties the inputs off (as for Yosys's own MULT18X18D mapping)
        m.submodules.mult18x18d = Instance(
            "MULT18X18D", **{f"p_{k}": v for k, v in params.items()}, **ports
        )
