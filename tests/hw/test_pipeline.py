"""StreamRegister and HalfRateRegister lose, duplicate and reorder nothing under random
valid/ready on both sides; StreamRegister passes a word per cycle when the consumer never
stalls, HalfRateRegister a word per two cycles with its ready a register. CreditedReadQueue
below."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import unsigned
from amaranth.sim import Simulator
from sushi_hw.pipeline import CreditedReadQueue, HalfRateRegister, StreamRegister


def _run(
    p_valid: float, p_ready: float, seed: int, n: int = 400, cls: type = StreamRegister
) -> tuple[list[int], int]:
    rng = random.Random(seed)
    dut = cls(unsigned(16))
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
            if cls is HalfRateRegister:  # its ready is "empty", whatever the consumer does
                assert ctx.get(dut.i.ready) == (not ctx.get(dut.o.valid)), f"seed {seed}"
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


@pytest.mark.parametrize(
    ("p_valid", "p_ready", "seed"), [(0.5, 0.5, 11), (0.9, 0.3, 12), (0.3, 0.9, 13), (1, 0.7, 14)]
)
def test_half_rate_register_random_handshakes(p_valid: float, p_ready: float, seed: int) -> None:
    _run(p_valid, p_ready, seed, cls=HalfRateRegister)


def test_half_rate_register_throughput() -> None:
    _, cycles = _run(1.0, 1.0, 15, n=200, cls=HalfRateRegister)
    assert cycles == 400  # a word every two cycles: in, then out


def _run_queue(latency: int, depth: int, p_issue: float, p_ready: float, seed: int, n: int = 300):
    """Reads issued while ``room`` at random, their words presented ``latency`` cycles later,
    taken at random: returns the words that left and the cycles it took."""
    rng = random.Random(seed)
    dut = CreditedReadQueue(16, depth, latency)
    words = [rng.randrange(1 << 16) for _ in range(n)]
    got: list[int] = []
    issued: list[int] = []  # the cycle of every issued read
    state = {"cycles": 0, "drained_seen": False}

    async def bench(ctx) -> None:
        while len(got) < n and state["cycles"] < 30 * n:
            t = state["cycles"]
            issue = len(issued) < n and ctx.get(dut.room) and rng.random() < p_issue
            ready = rng.random() < p_ready
            ctx.set(dut.issue, issue)
            # the word of the read issued ``latency`` cycles ago, else garbage
            k = next((i for i, c in enumerate(issued) if c == t - latency), None)
            ctx.set(dut.data, words[k] if k is not None else 0xDEAD)
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            if issue:
                issued.append(t)
            await ctx.tick()
            state["cycles"] += 1
        await ctx.tick().repeat(latency + 2)
        state["drained_seen"] = bool(ctx.get(dut.drained))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return words, got, state


@pytest.mark.parametrize("latency,depth", [(1, 4), (2, 8)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_credited_read_queue_loses_nothing(latency: int, depth: int, seed: int) -> None:
    words, got, state = _run_queue(latency, depth, 0.8, 0.5, seed)
    assert got == words, f"seed {seed}: words lost, duplicated or reordered"
    assert state["drained_seen"], f"seed {seed}: not drained after the last word left"


# (the iCE40's accelerator queue, latency 1 and depth 4, does not: 200 words take 269 cycles)
@pytest.mark.parametrize("latency,depth", [(1, 8), (2, 8)])
def test_credited_read_queue_streams_a_word_per_cycle(latency: int, depth: int) -> None:
    words, got, state = _run_queue(latency, depth, 1.0, 1.0, 0, n=200)
    assert got == words
    assert state["cycles"] <= 200 + latency + 3, state["cycles"]
