"""StreamRegister: a register slice loses, duplicates and reorders nothing, under random
valid/ready on both sides, and passes a word per cycle when the consumer never stalls."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator
from sushi_hw.pipeline import StreamRegister


def _run(p_valid: float, p_ready: float, seed: int, n: int = 400) -> tuple[list[int], int]:
    rng = random.Random(seed)
    dut = StreamRegister(unsigned(16))
    words = [rng.randrange(1 << 16) for _ in range(n)]
    got: list[int] = []
    cycles = 0

    async def bench(ctx) -> None:
        nonlocal cycles
        i = 0
        while len(got) < n and cycles < 20 * n:
            offer = i < n and rng.random() < p_valid
            ready = rng.random() < p_ready
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, words[i] if offer else 0xDEAD)
            ctx.set(dut.o.ready, ready)
            # sample both handshakes before the edge
            if offer and ctx.get(dut.i.ready):
                i += 1
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()
            cycles += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == words, f"seed {seed}: words lost, repeated or reordered"
    return got, cycles


@pytest.mark.parametrize(
    ("p_valid", "p_ready", "seed"), [(0.5, 0.5, 1), (0.9, 0.3, 2), (0.3, 0.9, 3), (1, 0.7, 4)]
)
def test_stream_register_random_handshakes(p_valid: float, p_ready: float, seed: int) -> None:
    _run(p_valid, p_ready, seed)


def test_stream_register_full_throughput() -> None:
    _, cycles = _run(1.0, 1.0, 5, n=200)
    assert cycles == 201  # one cycle of latency, then a word per cycle
