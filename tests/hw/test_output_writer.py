"""OutputWriter alone: int8 rows one word each, int32 rows four words each, with the core's
output stalling at random."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.config import PRESETS
from sushi_hw.output_writer import OutputWriter


@pytest.mark.parametrize("requant", [1, 0])
@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_output_writer_words(preset: str, requant: int) -> None:
    cfg = PRESETS[preset]
    R = cfg.rows
    rng = random.Random(R * 2 + requant)
    rows = [[rng.randrange(-(1 << 31), 1 << 31) for _ in range(cfg.cols)] for _ in range(7)]
    o_word, o_buf = rng.randrange(100), 1
    dut = OutputWriter(cfg)
    fields = dict(m=1, k=1, n=1, o_buf=o_buf, o_word=o_word, requant=requant, mult=1)
    writes: list[tuple[int, int, int]] = []

    async def bench(ctx) -> None:
        ctx.set(dut.cmd, isa.GEMM.const({"opcode": isa.Op.GEMM, **fields}).as_value().value)
        ctx.set(dut.ctl.start, 1)
        await ctx.tick()
        ctx.set(dut.ctl.start, 0)
        ctx.set(dut.ctl.run, 1)
        for row in rows:
            taken = False
            while not taken:
                valid = rng.random() < 0.7
                ctx.set(dut.rows.valid, valid)
                ctx.set(dut.rows.payload, row)
                if ctx.get(dut.w.en):
                    writes.append((ctx.get(dut.w.buf), ctx.get(dut.w.addr), ctx.get(dut.w.data)))
                assert ctx.get(dut.w.en) == valid
                taken = valid and ctx.get(dut.rows.ready)
                await ctx.tick()
        ctx.set(dut.rows.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = []
    for row in rows:
        if requant:  # the int8 lanes (the requantiser already saturated them)
            want.append(sum((v & 0xFF) << (8 * i) for i, v in enumerate(row)))
        else:  # int32 lanes, little-endian, R bytes per word
            raw = b"".join((v & 0xFFFFFFFF).to_bytes(4, "little") for v in row)
            want += [int.from_bytes(raw[i * R : (i + 1) * R], "little") for i in range(4)]
    assert writes == [(o_buf, o_word + i, w) for i, w in enumerate(want)]
