# amaranth: UnusedElaboratable=no
"""The board memory system under load: two masters through MemInterconnect into MemRam, with
random bursts, write gaps and read backpressure, in both pipeline variants (the ECP5's register
slices per master and MemRam's registered reads; the iCE40's direct streams and held reads)."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS
from sushi_hw.fpga.memsys import MemInterconnect, MemRam

CFG = PRESETS["tiny"]  # 16-bit beats
W = CFG.mem_width
RAM_BYTES = 1024
REGION = RAM_BYTES // 2  # each master reads and writes its own half
BURSTS = 40


async def _master(ctx, port, base: int, rng: random.Random, done: list) -> None:
    shadow: dict[int, int] = {}
    for n in range(BURSTS):
        beats = rng.randint(1, 10)
        addr = base + W * rng.randrange(0, (REGION - beats * W) // W)
        write = rng.random() < 0.5 or n == 0
        ctx.set(port.req.payload.addr, addr)
        ctx.set(port.req.payload.beats, beats)
        ctx.set(port.req.payload.write, write)
        ctx.set(port.req.valid, 1)
        await ctx.tick().until(port.req.ready)
        ctx.set(port.req.valid, 0)
        if write:
            for i in range(beats):
                while rng.random() < 0.3:
                    await ctx.tick()
                word = rng.randrange(1 << (8 * W))
                ctx.set(port.wdata.payload, word)
                ctx.set(port.wdata.valid, 1)
                await ctx.tick().until(port.wdata.ready)
                ctx.set(port.wdata.valid, 0)
                shadow[addr + i * W] = word
        else:
            got: list[int] = []
            while len(got) < beats:
                ready = rng.random() < 0.5
                ctx.set(port.rdata.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.rdata.valid, port.rdata.payload)
                if ready and valid:
                    got.append(payload)
            ctx.set(port.rdata.ready, 0)
            for i, word in enumerate(got):
                a = addr + i * W
                if a in shadow:
                    assert word == shadow[a], f"master at {base:#x}: read {word:#x} at {a:#x}"
    done.append(base)


@pytest.mark.parametrize("pipe_regs", [True, False], ids=["ecp5", "ice40"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_masters_random_bursts_and_backpressure(pipe_regs: bool, seed: int) -> None:
    m = Module()
    opts = BuildOptions(pipeline_regs=pipe_regs)
    m.submodules.ic = ic = MemInterconnect(CFG, 2, RAM_BYTES, opts)
    m.submodules.ram = ram = MemRam(CFG, RAM_BYTES, opts)
    wiring.connect(m, ic.ram, ram.bus)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    done: list[int] = []
    for i, port in enumerate((ic.m0, ic.m1)):
        rng = random.Random(seed * 100 + i)

        async def bench(ctx, port=port, base=i * REGION, rng=rng):
            await _master(ctx, port, base, rng, done)

        sim.add_testbench(bench, background=True)
    sim.run_until(60_000 * 1e-8)
    assert sorted(done) == [0, REGION], f"seed {seed}: masters finished: {done} (a beat lost?)"
