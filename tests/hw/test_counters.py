"""CounterBank: RAM-held counters read exactly in every cycle (Amaranth simulation)."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator
from sushi_hw.counters import CounterBank, saturate


@pytest.mark.parametrize("read_reg", [False, True], ids=["ice40", "ecp5"])
@pytest.mark.parametrize(
    ("amounts", "bits", "seed"),
    [([1, 1, 2, 2, 2, 2, 1], 32, 1), ([1, 16, 8], 48, 2), ([3], 16, 3), ([1, 2] * 5, 20, 4)],
)
def test_counter_bank_reads_exact_every_cycle(
    amounts: list[int], bits: int, seed: int, read_reg: bool
) -> None:
    """Random events, clears and a reset in the middle; each cycle one counter is read and
    must equal a plain count of the events up to the cycle its select was presented in. Both
    pipelines: write-back in stage B (iCE40) and RAM word registered, write-back in C (ECP5)."""
    rng = random.Random(seed)
    dut = CounterBank(amounts, bits, read_reg=read_reg)
    top, rst = Module(), Signal()
    top.domains.sync = sync = ClockDomain()
    top.d.comb += sync.rst.eq(rst)
    top.submodules.dut = dut
    n = len(amounts)
    mask = (1 << bits) - 1
    bad: list[str] = []

    lag = CounterBank.latency - 1  # edges between the one after sel and the read

    async def bench(ctx) -> None:
        want = [0] * n
        hist: list[tuple[int, list[int], bool]] = []  # per cycle: sel, counts after it, reset
        for cycle in range(3000):
            clear = rng.random() < 0.01
            reset = cycle == 1500
            busy = rng.random() < 0.8  # bursts of events and quiet stretches
            inc = [busy and rng.random() < 0.7 for _ in range(n)]
            sel = rng.randrange(n)
            ctx.set(dut.inc, sum(1 << i for i, e in enumerate(inc) if e))
            ctx.set(dut.clear, clear)
            ctx.set(dut.sel, sel)
            ctx.set(rst, reset)
            await ctx.tick()
            if reset or clear:
                want = [0] * n
            else:
                want = [(w + a * e) & mask for w, a, e in zip(want, amounts, inc, strict=True)]
            hist.append((sel, want, reset))
            # after this edge, value is the counter selected ``lag`` cycles ago, with the
            # events of that cycle
            if cycle < lag:
                continue
            s_sel, s_want, s_reset = hist[cycle - lag]
            got = ctx.get(dut.value)
            if not any(r for _, _, r in hist[cycle - lag :]) and got != s_want[s_sel]:
                bad.append(f"cycle {cycle}: counter {s_sel} = {got}, want {s_want[s_sel]}")

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, f"seed={seed}: {len(bad)} wrong reads, first: {bad[:3]}"


def test_counter_bank_rejects_bad_amounts() -> None:
    with pytest.raises(ValueError, match="amounts"):
        CounterBank([], 32)
    with pytest.raises(ValueError, match="amounts"):
        CounterBank([1, 0], 32)


@pytest.mark.parametrize("read_reg", [False, True], ids=["ice40", "ecp5"])
def test_counter_bank_flags_overflow(read_reg: bool) -> None:
    """With ``overflow``, a counter that passes 2**bits - 1 reads with bit ``bits`` set in
    every cycle from then on (until a clear), and :func:`saturate` turns every read into the
    exact count saturated at 2**bits - 1; counters that did not pass it read exactly."""
    bits, amounts, seed = 8, [1, 2, 4, 1], 7
    rng = random.Random(seed)
    dut = CounterBank(amounts, bits, read_reg=read_reg, overflow=True)
    n, lag, top = len(amounts), CounterBank.latency - 1, (1 << bits) - 1
    bad: list[str] = []

    async def bench(ctx) -> None:
        want, hist, flagged = [0] * n, [], set()
        for cycle in range(2500):
            clear = cycle in (900, 1900)
            inc = [rng.random() < (0.9 if i else 0.1) for i in range(n)]
            sel = rng.randrange(n)
            ctx.set(dut.inc, sum(1 << i for i, e in enumerate(inc) if e))
            ctx.set(dut.clear, clear)
            ctx.set(dut.sel, sel)
            await ctx.tick()
            want = (
                [0] * n
                if clear
                else [w + a * e for w, a, e in zip(want, amounts, inc, strict=True)]
            )
            hist.append((sel, want))
            if cycle < lag:
                continue
            s_sel, s_want = hist[cycle - lag]
            got = saturate(ctx.get(dut.value), bits)
            exp = (min(s_want[s_sel], top), s_want[s_sel] > top)
            if exp[1]:
                flagged.add(s_sel)
            if got != exp:
                bad.append(f"cycle {cycle}: counter {s_sel} = {got}, want {exp}")
        # counter 0 (about 90 events between clears) never overflows, the others do
        assert flagged and 0 not in flagged, f"overflowed: {sorted(flagged)}"

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, f"seed={seed}: {len(bad)} wrong reads, first: {bad[:3]}"
