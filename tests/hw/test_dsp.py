"""MULT18X18D instances (``sushi_hw.dsp``) and the ECP5 / pipelined-LUT PEs, under Icarus.

Yosys has only a black box for MULT18X18D, so the instances are simulated against our own
behavioural model ``mult18x18d_model.v`` (see its header). Each test converts two designs to
Verilog, one with the instances and one in plain Amaranth, runs them side by side on the same
random stimulus in one Icarus simulation, and checks them against each other in every cycle
and against numpy.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Const, Module, Shape, Signal, signed, unsigned
from amaranth.sim import Simulator
from icarus_harness import Flat, run_side_by_side
from sushi_hw.array import SystolicArray, lut_mul_s8_halves, lut_mul_s8_join, times3
from sushi_hw.build_options import BuildOptions
from sushi_hw.dsp import RegisteredMul
from sushi_hw.reference import requantize
from sushi_hw.requant import Requantizer

MODEL = Path(__file__).with_name("mult18x18d_model.v")
SEED = int(os.environ.get("SUSHI_DSP_SEED", "0")) or None


def ECP5(dsp_pes: int | None = None) -> BuildOptions:  # noqa: N802 - reads as a constant
    """The multiplier choices of the ULX3S build (MULT18X18D instances)."""
    return BuildOptions(ecp5_dsp=True, dsp_pes=dsp_pes)


def _field(word: int, lo: int, shape: Shape) -> int:
    v = (word >> lo) & ((1 << shape.width) - 1)
    if shape.signed and v >> (shape.width - 1):
        v -= 1 << shape.width
    return v


def _pack(fields: list[tuple[int, int]]) -> int:
    """``(value, width)`` pairs, LSB first, two's complement."""
    word, lo = 0, 0
    for v, w in fields:
        word |= (v & ((1 << w) - 1)) << lo
        lo += w
    return word


def _instances(text: str) -> list[dict[str, str]]:
    """Parameters of every MULT18X18D instance in a Verilog netlist."""
    out = []
    for body in re.findall(r"MULT18X18D #\((.*?)\n\s*\)", text, re.S):
        out.append(dict(re.findall(r"\.(\w+)\(\"(\w+)\"\)", body)))
    return out


def _rng(request):
    seed = SEED if SEED is not None else int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    print(f"seed {seed} (rerun with SUSHI_DSP_SEED={seed})")
    return seed, np.random.default_rng(seed)


def _extremes(shape: Shape) -> list[int]:
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
    return [lo, lo + 1, -1 if shape.signed else 1, 0, 1, hi - 1, hi]


MUL_CASES = [
    # (a shape, b shape, reg_inputs): the PE's int8 products; the requantiser's stage-1
    # products x[:16]*mult (unsigned 16x16) and x[16:]*mult.as_signed() (signed 16x16),
    # which have registered operands; mixed signedness and the full 18-bit operands
    (signed(8), signed(8), True),
    (unsigned(16), unsigned(16), False),
    (signed(16), signed(16), False),
    (signed(18), unsigned(18), True),
    (unsigned(18), unsigned(18), False),
    (signed(18), signed(18), True),
]


@pytest.mark.parametrize("a_shape,b_shape,reg_inputs", MUL_CASES)
def test_registered_mul_instance_matches_plain(tmp_path, request, a_shape, b_shape, reg_inputs):
    seed, rng = _rng(request)
    tops = [
        Flat(
            RegisteredMul(a_shape, b_shape, reg_inputs=reg_inputs, mult18x18d=prim),
            ["a", "b"],
            ["p"],
        )
        for prim in (True, False)
    ]
    n = 300
    av = [int(x) for x in rng.choice(_extremes(a_shape), n // 3)]
    bv = [int(x) for x in rng.choice(_extremes(b_shape), n // 3)]
    for s, vals in ((a_shape, av), (b_shape, bv)):
        lo = -(1 << (s.width - 1)) if s.signed else 0
        vals += [int(x) for x in rng.integers(lo, lo + (1 << s.width), n - len(vals))]
    rng.shuffle(av)
    rng.shuffle(bv)
    stim = [_pack([(a, a_shape.width), (b, b_shape.width)]) for a, b in zip(av, bv, strict=True)]
    dut, ref, text = run_side_by_side(tmp_path, tops[0], tops[1], stim, [MODEL])

    lat = tops[0].dut.latency
    p_shape = tops[0].dut.p_shape
    bad = []
    for t in range(n):
        want = av[t - lat] * bv[t - lat] if t >= lat else 0
        got_d, got_r = _field(dut[t], 0, p_shape), _field(ref[t], 0, p_shape)
        if not (got_d == got_r == want):
            bad.append((t, want, got_d, got_r))
    assert not bad, (
        f"seed {seed} (rerun with SUSHI_DSP_SEED={seed}): (cycle, want, dsp, plain) {bad[:5]}"
    )

    (inst,) = _instances(text)
    reg_in = "CLK0" if reg_inputs else "NONE"
    assert inst["REG_INPUTA_CLK"] == inst["REG_INPUTB_CLK"] == reg_in
    assert inst["REG_OUTPUT_CLK"] == "CLK0"
    assert inst["REG_PIPELINE_CLK"] == "NONE"
    assert f".SIGNEDA(1'h{int(a_shape.signed)})" in text
    assert f".SIGNEDB(1'h{int(b_shape.signed)})" in text


def test_registered_mul_rejects_wide_operands():
    with pytest.raises(ValueError, match="at most 18"):
        RegisteredMul(signed(19), signed(8), mult18x18d=True)
    with pytest.raises(ValueError, match="operand b is 19 bits"):
        RegisteredMul(unsigned(16), unsigned(19), mult18x18d=True)


def test_harness_sees_a_latency_difference(tmp_path):
    """The side-by-side check is not vacuous: one cycle of latency more is seen."""
    tops = [
        Flat(RegisteredMul(signed(8), signed(8), reg_inputs=r, mult18x18d=True), ["a", "b"], ["p"])
        for r in (True, False)
    ]
    stim = [
        _pack([(a, 8), (b, 8)]) for a, b in zip(range(-50, 50), range(40, -60, -1), strict=True)
    ]
    dut, ref, _ = run_side_by_side(tmp_path, tops[0], tops[1], stim, [MODEL])
    assert dut != ref


def test_lut_mul_halves_exhaustive():
    """``lut_mul_s8_halves`` and ``lut_mul_s8_join`` over all 65,536 int8 pairs: 256 lanes with
    a constant ``a`` each, ``b`` (and its stored ``3 * b``, :func:`times3`) swept (Amaranth
    simulator)."""
    b = Signal(signed(8))
    b3 = Signal(signed(10))
    m = Module()
    m.d.comb += b3.eq(times3(b))
    lanes = []
    for av in range(-128, 128):
        lo, hi = lut_mul_s8_halves(Const(av, signed(8)), b, b3)
        sigs = [Signal(signed(12)), Signal(signed(12)), Signal(signed(16))]
        m.d.comb += [sigs[0].eq(lo), sigs[1].eq(hi), sigs[2].eq(lut_mul_s8_join(lo, hi))]
        lanes.append((av, sigs))
    bad = []

    async def bench(ctx):
        for bv in range(-128, 128):
            ctx.set(b, bv)
            assert ctx.get(b3) == 3 * bv
            for av, (lo, hi, y) in lanes:
                want = ((av & 15) * bv, (av >> 4) * bv, av * bv)
                got = (ctx.get(lo), ctx.get(hi), ctx.get(y))
                if got != want:
                    bad.append((av, bv, got, want))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]


def _array_stimulus(rng, R: int, C: int, cycles: int):
    """Random valid traffic for a ``SystolicArray``: weight tiles loaded row by row (in row
    order, with random gaps) into a random bank that no activation uses from the load's first
    row on; activations with a random bank among the banks whose tile is complete (so banks
    switch at random, also cycle by cycle), random gaps. Returns the per-cycle input fields
    and, per cycle, the expected output row (or None for no activation)."""
    content: list[np.ndarray | None] = [None, None]
    ready_from = [None, None]  # first cycle an activation may use the bank
    loading = None  # (bank, next row, tile)
    rows, expect = [], []
    for t in range(cycles):
        w_we, w_bank, w_row, w_data = 0, 0, 0, [0] * C
        if loading is None and rng.random() < 0.15:
            bank = int(rng.integers(0, 2))
            loading = (bank, 0, rng.integers(-128, 128, (R, C)))
            ready_from[bank] = None  # no activation may use it from this cycle on
        if loading is not None and rng.random() < 0.7:
            bank, r, tile = loading
            w_we, w_bank, w_row, w_data = 1, bank, r, [int(x) for x in tile[r]]
            if r == R - 1:
                content[bank], ready_from[bank], loading = tile, t + 1, None
            else:
                loading = (bank, r + 1, tile)
        usable = [b for b in (0, 1) if ready_from[b] is not None and ready_from[b] <= t]
        a_valid, a_bank, a = 0, 0, [0] * R
        if usable and rng.random() < 0.8:
            a_valid, a_bank = 1, int(rng.choice(usable))
            a = [int(x) for x in rng.integers(-128, 128, R)]
            if rng.random() < 0.1:
                a = [int(x) for x in rng.choice([-128, 127], R)]
            expect.append(np.array(a, dtype=np.int64) @ content[a_bank].astype(np.int64))
        else:
            if rng.random() < 0.5:  # garbage on an idle row must not matter
                a = [int(x) for x in rng.integers(-128, 128, R)]
                a_bank = int(rng.integers(0, 2))
            expect.append(None)
        rows.append((a_valid, a_bank, a, w_we, w_bank, w_row, w_data))
    return rows, expect


@pytest.mark.parametrize(
    "R,C,dsp_pes",
    [(4, 4, None), (4, 4, 7), (3, 5, 0), (5, 3, 15)],
    ids=["all-dsp", "dsp-and-lut", "all-lut", "5x3-dsp"],
)
def test_array_ecp5_matches_plain_and_numpy(tmp_path, request, R, C, dsp_pes):
    """An array built for ECP5 (MULT18X18D instances with input and output registers, and
    pipelined LUT multipliers beyond the DSP budget) against the plain array, cycle by cycle,
    and against numpy; random tiles, random bank switching, random gaps."""
    seed, rng = _rng(request)
    psum_bits = 19
    ins = ["a_valid", "a_bank", "a_data", "w_we", "w_bank", "w_row", "w_data"]
    outs = ["out_valid", "out_data"]
    ecp5 = Flat(SystolicArray(R, C, psum_bits, ECP5(dsp_pes)), ins, outs)
    plain = Flat(SystolicArray(R, C, psum_bits), ins, outs)
    rows, expect = _array_stimulus(rng, R, C, 400)
    row_bits = len(ecp5.dut.w_row)
    stim = []
    for a_valid, a_bank, a, w_we, w_bank, w_row, w_data in rows:
        fields = [(a_valid, 1), (a_bank, 1), *((x, 8) for x in a)]
        fields += [(w_we, 1), (w_bank, 1), (w_row, row_bits), *((x, 8) for x in w_data)]
        stim.append(_pack(fields))
    dut, ref, text = run_side_by_side(tmp_path, ecp5, plain, stim, [MODEL])

    lat = ecp5.dut.latency
    ps = signed(psum_bits)
    msg = f"seed {seed} (rerun with SUSHI_DSP_SEED={seed})"
    first = next(t for t, d in enumerate(dut) if d != ref[t]) if dut != ref else None
    assert first is None, f"{msg}: ECP5 and plain arrays differ first in cycle {first}"
    n_checked, bad = 0, []
    for t in range(len(stim)):
        valid = ref[t] & 1
        src = t - lat
        want = expect[src] if src >= 0 else None
        assert valid == (want is not None), f"{msg}: out_valid wrong in cycle {t}"
        if want is None:
            continue
        got = [_field(ref[t], 1 + psum_bits * c, ps) for c in range(C)]
        n_checked += 1
        if got != [int(x) for x in want]:
            bad.append((t, got, [int(x) for x in want]))
    assert not bad, f"{msg}: (cycle, got, want) {bad[:3]}"
    assert n_checked > 100

    n_dsp = R * C if dsp_pes is None else dsp_pes
    insts = _instances(text)
    assert len(insts) == n_dsp
    for p in insts:
        assert p["REG_INPUTA_CLK"] == p["REG_INPUTB_CLK"] == p["REG_OUTPUT_CLK"] == "CLK0", p
    # the LUT PEs register the two halves of their multiplier tree
    assert len(re.findall(r"reg \[11:0\] mul_lo = ", text)) == R * C - n_dsp


def test_requantizer_ecp5_matches_plain_and_reference(tmp_path, request):
    """The requantiser built for ECP5 (its stage-1 products on MULT18X18D instances with the
    output register) against the plain one cycle by cycle, and its rows against
    :func:`sushi_hw.reference.requantize`; parameters change only between bursts, a cycle
    before the first row, as a GEMM's do."""
    seed, rng = _rng(request)
    lanes = 2
    ins = ["i_valid", "i_data", "params"]
    outs = ["o_valid", "o_data"]
    ecp5 = Flat(Requantizer(lanes, opts=ECP5()), ins, outs)
    plain = Flat(Requantizer(lanes), ins, outs)
    stim, sent = [], []  # sent[t]: (x, mult, shift, relu) for a valid row presented at t
    for burst in range(12):
        mult = int(rng.choice([1, 0x7FFF, 0x8000, 0xFFFF, int(rng.integers(1, 1 << 16))]))
        shift = int(rng.integers(0, 32))
        relu = bool(rng.integers(0, 2))
        for t in range(40 + Requantizer.latency):
            # the parameters lead a burst's first row by a cycle
            valid = 0 < t < 40 and bool(rng.integers(0, 4))
            x = [int(v) for v in rng.integers(-(1 << 31), 1 << 31, size=lanes)]
            if burst % 3 == 0:
                x = [int(rng.choice(_extremes(signed(32)))) for _ in range(lanes)]
            fields = [(int(valid), 1), *((v, 32) for v in x)]
            fields += [(1, 1), (int(relu), 1), (mult, 16), (shift, 5)]  # enable, relu, ...
            stim.append(_pack(fields))
            sent.append((x, mult, shift, relu) if valid else None)
    dut, ref, text = run_side_by_side(tmp_path, ecp5, plain, stim, [MODEL])

    msg = f"seed {seed} (rerun with SUSHI_DSP_SEED={seed})"
    first = next(t for t, d in enumerate(dut) if d != ref[t]) if dut != ref else None
    assert first is None, f"{msg}: ECP5 and plain requantisers differ first in cycle {first}"
    n_checked = 0
    for t, out in enumerate(dut):
        src = t - Requantizer.latency
        row = sent[src] if src >= 0 else None
        assert (out & 1) == (row is not None), f"{msg}: o_valid wrong in cycle {t}"
        if row is None:
            continue
        x, mult, shift, relu = row
        want = requantize(np.array(x, dtype=np.int32), mult, shift, relu)
        got = [_field(out, 1 + 32 * i, signed(32)) for i in range(lanes)]
        assert got == [int(v) for v in want], f"{msg}: cycle {t}, x {x}, m {mult}, s {shift}"
        n_checked += 1
    assert n_checked > 200
    insts = _instances(text)
    assert len(insts) == 2 * lanes
    for p in insts:
        assert p["REG_INPUTA_CLK"] == p["REG_INPUTB_CLK"] == "NONE", p
        assert p["REG_OUTPUT_CLK"] == "CLK0", p
