"""Weight-stationary int8 systolic array with double-buffered weights.

Timing contract (see docs/architecture.md):

* Activations: ``a_data`` (one K-row slice of ``rows`` int8) presented at cycle ``t`` with
  ``a_valid``/``a_bank`` produces ``out_data`` (``cols`` partial sums) at cycle ``t + latency``.
  Row ``r`` is skewed by ``r`` cycles on the way in and column ``c`` deskewed on the way out.
* Weights: one weight row per cycle on ``w_*``, a tile's rows in order 0 .. rows-1; the row is
  written into bank ``w_bank`` of the PEs of row ``w_row``, skewed by column like the
  activations (:func:`weight_delay`). A tile may be used by activations presented strictly after
  its last row, and its bank may be rewritten by rows presented no earlier than 2 cycles before
  the first activation of the following tile. (The GEMM core feeds activations ``F`` = 2 or 3
  cycles after their issue: ``F`` cycles after the last row, and the next tile's row 0 comes at
  least ``F - 1`` cycles before.)
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Mux, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .bram import REPLICA_ATTR
from .build_options import SIMULATION, BuildOptions
from .dsp import RegisteredMul

#: PE rows sharing one copy of a column's weight data and bank (with pipeline registers)
WEIGHT_ROWS_PER_COPY = 4


def _digit_multiple(d: Value, b: Value, b3: Value, top: bool) -> Value:
    """``d * b`` for a two-bit digit ``d`` of ``a``, picked from the stationary multiples of ``b``.

    A low digit is unsigned (0, b, 2b, 3b); the top digit of a signed ``a`` is signed
    (0, b, -2b, -b)."""
    if top:
        return Mux(d[1], Mux(d[0], -b, -(b << 1)), Mux(d[0], b, 0))
    return Mux(d[1], Mux(d[0], b3, b << 1), Mux(d[0], b, 0))


def lut_mul_s8_halves(a: Value, b: Value, b3: Value) -> tuple[Value, Value]:
    """The two halves of :func:`lut_mul_s8`: ``(a[0:4] * b, a[4:8] * b)``, ``b3 == 3 * b``.

    Radix 4: each two-bit digit of ``a`` (the streamed operand) picks one of the multiples
    0, b, 2b, 3b of ``b`` (the stationary weight, so ``3b`` is computed once when it is
    written), and each half adds two of them: one mux level and one adder. ``lo`` reads
    ``a[0:4]`` as unsigned, ``hi`` reads ``a[4:8]`` as signed; both fit int12, and
    ``a * b == lo + (hi << 4)`` (:func:`lut_mul_s8_join`). The PE registers the halves (a
    pipeline stage inside the multiplier). On the ECP5 a PE with it takes 71% of the logic cells
    (58% of the LUT4s) of one with the binary tree of shifted partial products it replaced
    (docs/fpga.md).
    """
    pp = [_digit_multiple(a[2 * j : 2 * j + 2], b, b3, top=j == 3) for j in range(4)]
    lo = pp[0] + (pp[1] << 2)
    hi = pp[2] + (pp[3] << 2)
    return lo[:12].as_signed(), hi[:12].as_signed()


def lut_mul_s8_join(lo: Value, hi: Value) -> Value:
    """``lo + (hi << 4)`` as int16: the product from :func:`lut_mul_s8_halves`."""
    return (lo + (hi << 4))[:16].as_signed()


def times3(b: Value) -> Value:
    """``3 * b`` for an int8 ``b`` (int10): the multiple the LUT multiplier keeps beside it."""
    return (b + (b << 1))[:10].as_signed()


def lut_mul_s8(a: Value, b: Value) -> Value:
    """``a * b`` for two int8 without a multiply operator (int16).

    Written without ``*`` so that Yosys does not map it onto a DSP block: on a device with
    fewer DSPs than PEs the remaining PEs use this, split in two pipeline stages
    (:func:`lut_mul_s8_halves` and :func:`lut_mul_s8_join`) and with ``3 * b`` stored.
    """
    return lut_mul_s8_join(*lut_mul_s8_halves(a, b, times3(b)))


class ProcessingElement(wiring.Component):
    """One MAC: ``psum_out <= psum_in + a * w[bank]`` with a registered product (DSP friendly).

    Latency: ``a_in`` at cycle t -> ``a_out`` at t+1; its product lands in ``psum_out`` at t+3,
    added to the ``psum_in`` present at t+2. ``bank`` belongs to the activation on ``a_in``: the
    weight is selected and registered alongside ``a_out``, so the multiplier's inputs are both
    flip-flops (the bank bit comes from far: a tap shared by an anti-diagonal, or with pipeline
    registers the left PE's ``bank_out``, ``bank`` registered beside ``a_out``).

    The multiplier, same latency and results in every variant:

    * ``use_dsp`` (default): ``prod <= a_out * weight``, where ``weight`` is the registered
      ``w[bank]``; the synthesis tool maps it onto a DSP (SB_MAC16 absorbs both registers).
      With ``mult18x18d`` (``BuildOptions.ecp5_dsp``) it is a MULT18X18D instance
      (:class:`sushi_hw.dsp.RegisteredMul`) fed with ``a_in`` and ``w[bank]``, the values the
      ``a_out``/``weight`` registers load: its input registers are that ``weight`` register and
      a copy of ``a_out``, its output register is ``prod`` (Yosys would leave all three in the
      fabric). ``a_out`` stays a fabric register: it feeds the next PE.
    * ``use_dsp=False``: the LUT multiplier :func:`lut_mul_s8`, pipelined: its two halves
      (:func:`lut_mul_s8_halves`) are computed from ``a_in``, ``w[bank]`` and ``w3[bank]`` and
      registered in place of ``weight``, and their sum (:func:`lut_mul_s8_join`) is ``prod``.
      Each bank keeps ``3 * w`` beside ``w``, written from ``w3_data`` (a port only this
      variant has; the array computes it once per column or per group of rows).
    """

    def __init__(self, psum_bits: int, use_dsp: bool = True, mult18x18d: bool = False):
        self.psum_bits = psum_bits
        self.use_dsp, self.mult18x18d = use_dsp, mult18x18d
        super().__init__(
            {
                "a_in": In(signed(8)),
                "a_out": Out(signed(8)),
                "bank": In(1),  # weight bank for the activation on a_in
                "bank_out": Out(1),  # ``bank`` registered beside ``a_out``: the next PE's
                "psum_in": In(signed(psum_bits)),
                "psum_out": Out(signed(psum_bits)),
                "w_we": In(1),
                "w_bank": In(1),
                "w_data": In(signed(8)),
                **({} if use_dsp else {"w3_data": In(signed(10))}),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        # datapath registers have no reset (valid bits and write enables do): it would reach
        # every PE of the array, ~15,000 flip-flops on `large`, an ECP5 critical net
        w = [Signal(signed(8), name=f"w{i}", reset_less=True) for i in range(2)]
        # 3 * w[i] beside w[i], for the LUT multiplier only
        w3 = (
            []
            if self.use_dsp
            else [Signal(signed(10), name=f"w3_{i}", reset_less=True) for i in range(2)]
        )
        with m.If(self.w_we):
            with m.Switch(self.w_bank):
                for i in range(2):
                    with m.Case(i):
                        m.d.sync += w[i].eq(self.w_data)
                        if w3:
                            m.d.sync += w3[i].eq(self.w3_data)
        selected = Mux(self.bank, w[1], w[0])  # w[bank] of the activation on a_in
        a_q = Signal(signed(8), name="a_q", reset_less=True)
        m.d.sync += a_q.eq(self.a_in)
        m.d.comb += self.a_out.eq(a_q)
        # equal in every PE of an anti-diagonal: a replica, so that synthesis keeps one per PE
        bank_q = Signal(name="bank_q", attrs={REPLICA_ATTR: 1})
        m.d.sync += bank_q.eq(self.bank)
        m.d.comb += self.bank_out.eq(bank_q)
        # no reset on the product: SB_MAC16 / MULT18X18D output registers have none to offer
        prod = Signal(signed(16), reset_less=True)
        if not self.use_dsp:
            lo, hi = lut_mul_s8_halves(self.a_in, selected, Mux(self.bank, w3[1], w3[0]))
            lo_q = Signal(signed(12), name="mul_lo", reset_less=True)
            hi_q = Signal(signed(12), name="mul_hi", reset_less=True)
            m.d.sync += [lo_q.eq(lo), hi_q.eq(hi), prod.eq(lut_mul_s8_join(lo_q, hi_q))]
        elif self.mult18x18d:
            m.submodules.mul = mul = RegisteredMul(
                signed(8), signed(8), reg_inputs=True, mult18x18d=True
            )
            m.d.comb += [mul.a.eq(self.a_in), mul.b.eq(selected), prod.eq(mul.p)]
        else:
            weight = Signal(signed(8), reset_less=True)  # w[bank] of the activation in a_out
            m.d.sync += [weight.eq(selected), prod.eq(self.a_out * weight)]
        psum = Signal(signed(self.psum_bits), reset_less=True)  # a DSP accumulator register
        m.d.comb += self.psum_out.eq(psum)
        m.d.sync += psum.eq(self.psum_in + prod)
        return m


def array_latency(rows: int, cols: int) -> int:
    """Cycles from an activation row entering the array to its partial sums leaving it: the
    input skew, one PE per row and column, the output deskew."""
    return rows + cols + 1


def weight_delay(col: int) -> int:
    """Cycles from a weight row on ``w_*`` to its write into the PEs of column ``col``.

    The activation presented at ``t`` reads row ``r``'s weight in column ``col`` at
    ``t + r + col``, and a row lands in its PEs ``delay`` cycles after it was presented (and is
    read from the cycle after). With the contract's rows in order the two bounds are:

    * written before first use (row 0, read first, presented ``rows - 1`` cycles before the
      last row): ``delay <= rows - 1 + col``;
    * not rewritten before the previous tile's last use: ``delay >= 1 + col``.

    This is the lower bound. ``tests/hw/test_units.py::test_array_contract_edges`` drives both
    edges of the contract: one cycle less fails it, and so does more than ``rows - 2`` more.
    """
    return 1 + col


class SystolicArray(wiring.Component):
    """``rows x cols`` weight-stationary array; see the module docstring for timing."""

    def __init__(self, rows: int, cols: int, psum_bits: int, opts: BuildOptions = SIMULATION):
        self.rows, self.cols, self.psum_bits, self.opts = rows, cols, psum_bits, opts
        #: cycles from ``a_data`` to the matching ``out_data``
        self.latency = array_latency(rows, cols)
        super().__init__(
            {
                "a_valid": In(1),
                "a_bank": In(1),
                "a_data": In(data.ArrayLayout(signed(8), rows)),
                "w_we": In(1),
                "w_bank": In(1),
                "w_row": In(range(rows)),
                "w_data": In(data.ArrayLayout(signed(8), cols)),
                "out_valid": Out(1),
                "out_data": Out(data.ArrayLayout(signed(psum_bits), cols)),
            }
        )

    def elaborate(self, platform) -> Elaboratable:
        m = Module()
        R, C = self.rows, self.cols
        n_dsp = self.opts.dsp_pe_count(R * C)
        pes = [
            [
                ProcessingElement(
                    self.psum_bits, use_dsp=r * C + c < n_dsp, mult18x18d=self.opts.ecp5_dsp
                )
                for c in range(C)
            ]
            for r in range(R)
        ]
        for r in range(R):
            for c in range(C):
                m.submodules[f"pe_{r}_{c}"] = pes[r][c]

        # Input skew: row r is delayed r cycles.
        for r in range(R):
            src = self.a_data[r]
            for i in range(r):
                d = Signal(signed(8), name=f"askew_{r}_{i}", reset_less=True)
                m.d.sync += d.eq(src)
                src = d
            m.d.comb += pes[r][0].a_in.eq(src)
            for c in range(1, C):
                m.d.comb += pes[r][c].a_in.eq(pes[r][c - 1].a_out)

        # The bank bit rides the activation wavefront: PE(r, c)'s a_in carries the activation
        # presented r+c cycles ago, so every PE on an anti-diagonal shares one tap of a delay
        # line. A tile's weights are complete two cycles before the PE selects them (rows >= 2).
        # With pipeline registers (FPGA timing) the bit rides along each row instead, from PE
        # to PE beside the activation (``bank_out``), so no tap drives a whole anti-diagonal
        # (up to 16 PEs apart on `large`); the same cycles.
        pipe = self.opts.pipeline_regs
        bank_line = [self.a_bank]
        for i in range(R - 1 if pipe else R + C - 2):
            d = Signal(name=f"bank_d{i + 1}")
            m.d.sync += d.eq(bank_line[-1])
            bank_line.append(d)
        for r in range(R):
            for c in range(C):
                if pipe and c > 0:
                    m.d.comb += pes[r][c].bank.eq(pes[r][c - 1].bank_out)
                else:
                    m.d.comb += pes[r][c].bank.eq(bank_line[r + c])

        # Weight bus: column c sees it weight_delay(c) = c+1 cycles late (the activations'
        # skew); each PE latches the row addressed to it. With pipeline registers the columns'
        # delay lines are replicas (equal in every column, Yosys merged them into one line
        # whose taps drove up to 256 PEs' enables on `large`), and the last stage is decoded
        # into one write-enable register per PE and a bank/data copy per WEIGHT_ROWS_PER_COPY
        # rows.
        rep = {REPLICA_ATTR: 1} if pipe else {}
        for c in range(C):
            we, bank, row, wd = self.w_we, self.w_bank, self.w_row, self.w_data[c]
            # with pipeline registers the last stage is the per-PE one below
            for i in range(weight_delay(c) - int(pipe)):
                nwe = Signal(name=f"wwe_{c}_{i}", attrs=rep)
                nbank = Signal(name=f"wbank_{c}_{i}", attrs=rep)
                nrow = Signal(range(R), name=f"wrow_{c}_{i}", reset_less=True, attrs=rep)
                nwd = Signal(signed(8), name=f"wdata_{c}_{i}", reset_less=True)
                m.d.sync += [nwe.eq(we), nbank.eq(bank), nrow.eq(row), nwd.eq(wd)]
                we, bank, row, wd = nwe, nbank, nrow, nwd
            # 3 * w for the LUT-multiplier PEs, computed once per column (per copy with
            # pipeline registers, from the stage before, so each copy is a register)
            wd3 = times3(wd)
            for r in range(R):
                lut_pe = not pes[r][c].use_dsp
                if not pipe:
                    m.d.comb += [
                        pes[r][c].w_we.eq(we & (row == r)),
                        pes[r][c].w_bank.eq(bank),
                        pes[r][c].w_data.eq(wd),
                    ]
                    if lut_pe:
                        m.d.comb += pes[r][c].w3_data.eq(wd3)
                    continue
                if r % WEIGHT_ROWS_PER_COPY == 0:
                    g = r // WEIGHT_ROWS_PER_COPY
                    gbank = Signal(name=f"wbank_{c}_g{g}", attrs=rep)
                    gwd = Signal(signed(8), name=f"wdata_{c}_g{g}", reset_less=True, attrs=rep)
                    m.d.sync += [gbank.eq(bank), gwd.eq(wd)]
                    group = range(r, min(R, r + WEIGHT_ROWS_PER_COPY))
                    if any(not pes[rr][c].use_dsp for rr in group):  # a kept replica otherwise
                        gwd3 = Signal(
                            signed(10), name=f"wdata3_{c}_g{g}", reset_less=True, attrs=rep
                        )
                        m.d.sync += gwd3.eq(wd3)
                pwe = Signal(name=f"wwe_{c}_r{r}")
                m.d.sync += pwe.eq(we & (row == r))
                m.d.comb += [
                    pes[r][c].w_we.eq(pwe),
                    pes[r][c].w_bank.eq(gbank),
                    pes[r][c].w_data.eq(gwd),
                ]
                if lut_pe:
                    m.d.comb += pes[r][c].w3_data.eq(gwd3)

        # Partial sums flow down; column c is deskewed by cols-1-c.
        for c in range(C):
            m.d.comb += pes[0][c].psum_in.eq(0)
            for r in range(1, R):
                m.d.comb += pes[r][c].psum_in.eq(pes[r - 1][c].psum_out)
            src = pes[R - 1][c].psum_out
            for i in range(C - 1 - c):
                d = Signal(signed(self.psum_bits), name=f"deskew_{c}_{i}", reset_less=True)
                m.d.sync += d.eq(src)
                src = d
            m.d.comb += self.out_data[c].eq(src)

        valid = self.a_valid
        for i in range(self.latency):
            d = Signal(name=f"valid_d{i + 1}")
            m.d.sync += d.eq(valid)
            valid = d
        m.d.comb += self.out_valid.eq(valid)
        return m
