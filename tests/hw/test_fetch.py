"""CommandFetch alone: the fetch checks on the program counter, the request, and the beats
into the command register (a command over several beats, and several commands per beat)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.config import PRESETS, make_config
from sushi_hw.fetch import CommandFetch

E = isa.ErrorCode


@pytest.mark.parametrize(
    "preset, mem_width", [("tiny", 2), ("default", 8), ("zcu104", 32), ("zcu104", 64)]
)
def test_fetch_checks_and_assembles_commands(preset: str, mem_width: int) -> None:
    cfg = make_config(PRESETS[preset], mem_width=mem_width, mem_bytes_per_cycle=mem_width)
    W = cfg.mem_width
    rng = random.Random(mem_width)
    mem = rng.randbytes(4096)
    dut = CommandFetch(cfg)
    cases = [(a, E.NONE) for a in (0, 32, 96, 4096 - 32)]
    cases += [(4, E.BAD_ALIGN), (cfg.mem_bytes, E.MEM_RANGE), (1 << 31, E.MEM_RANGE)]
    cases += [(cfg.mem_bytes - 16, E.BAD_ALIGN)]

    async def bench(ctx) -> None:
        for addr, code in cases:
            ctx.set(dut.prog_addr, addr)
            ctx.set(dut.ctl.load, 1)
            await ctx.tick()
            ctx.set(dut.ctl.load, 0)
            assert ctx.get(dut.ctl.error) == code, f"pc {addr:#x}"
            if code:
                continue
            for step in range(2):  # this command, then (advance) the next one
                pc = addr + 32 * step
                if pc >= len(mem):
                    break
                beat_at = pc // W * W  # a beat holds the command, or a command its beats
                ctx.set(dut.ctl.start, 1)
                assert ctx.get(dut.issue.start)
                assert ctx.get(dut.issue.addr) == beat_at
                assert ctx.get(dut.issue.beats) == max(1, 32 // W)
                assert not ctx.get(dut.issue.write)
                await ctx.tick()
                ctx.set(dut.ctl.start, 0)
                beats = max(1, 32 // W)
                for b in range(beats):
                    for _ in range(rng.randrange(3)):  # gaps between beats
                        ctx.set(dut.rdata.valid, 0)
                        assert not ctx.get(dut.ctl.done)
                        await ctx.tick()
                    chunk = mem[beat_at + b * W : beat_at + (b + 1) * W]
                    ctx.set(dut.rdata.valid, 1)
                    ctx.set(dut.rdata.payload, int.from_bytes(chunk, "little"))
                    assert ctx.get(dut.rdata.ready)
                    assert ctx.get(dut.ctl.done) == (b == beats - 1)
                    await ctx.tick()
                ctx.set(dut.rdata.valid, 0)
                want = int.from_bytes(mem[pc : pc + 32], "little")
                assert ctx.get(dut.cmd) == want, f"command at {pc:#x}, width {W}"
                ctx.set(dut.ctl.advance, 1)
                await ctx.tick()
                ctx.set(dut.ctl.advance, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
