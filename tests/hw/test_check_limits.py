"""The command processor's range-check primitives against Python integers, exhaustively."""

from __future__ import annotations

import itertools

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from sushi_hw.check import exceeds, sum_exceeds


def _truth(width_a: int, width_b: int, fn) -> list[tuple[int, int, int]]:
    """Every (a, b) of the given widths with the 1-bit result of ``fn(a_sig, b_sig)``."""
    a, b, y = Signal(width_a), Signal(width_b), Signal()
    m = Module()
    m.d.comb += y.eq(fn(a, b))
    out: list[tuple[int, int, int]] = []

    async def bench(ctx) -> None:
        for va, vb in itertools.product(range(1 << width_a), range(1 << width_b)):
            ctx.set(a, va)
            ctx.set(b, vb)
            out.append((va, vb, ctx.get(y)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 5, 7, 8, 12, 15, 16, 31, 32, 63])
def test_exceeds_and_sum_exceeds_match_integers(limit: int) -> None:
    for va, _, got in _truth(6, 1, lambda a, b: exceeds(a, limit)):
        assert got == (va > limit), f"exceeds({va}, {limit}) = {got}"
    for wa, wb in ((6, 3), (3, 6), (5, 5)):
        for cc in (False, True):  # high-bit test (ECP5) and carry compare (iCE40)
            fn = lambda a, b, cc=cc: sum_exceeds(a, b, limit, carry_compare=cc)  # noqa: E731
            for va, vb, got in _truth(wa, wb, fn):
                assert got == (va + vb > limit), (
                    f"sum_exceeds({va}, {vb}, {limit}, carry_compare={cc}) = {got}"
                )
