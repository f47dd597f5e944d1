"""OutputWriter alone: int8 rows one word each, int32 rows four words each, a GEMM's to
consecutive words and a CONV's to its feature map, with the core's output stalling at random."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from sushi_hw.config import PRESETS, ceil_div
from sushi_hw.output_writer import OutputWriter


def _words(row: list[int], requant: int, R: int) -> list[int]:
    if requant:  # the int8 lanes (the requantiser already saturated them)
        return [sum((v & 0xFF) << (8 * i) for i, v in enumerate(row))]
    raw = b"".join((v & 0xFFFFFFFF).to_bytes(4, "little") for v in row)  # int32, little-endian
    return [int.from_bytes(raw[i * R : (i + 1) * R], "little") for i in range(4)]


@pytest.mark.parametrize("requant", [1, 0])
# the feature-map layout only where there are convolutions (not on tiny)
@pytest.mark.parametrize("preset, conv", [("tiny", 0), ("default", 0), ("default", 1)])
def test_output_writer_words(preset: str, requant: int, conv: int) -> None:
    cfg = PRESETS[preset].replace(acc_depth=4)
    R, D = cfg.rows, cfg.acc_depth
    rng = random.Random(R * 4 + requant * 2 + conv)
    pixels, nt_n = rng.randrange(1, 3 * D + 2), rng.randrange(1, 4)
    mt_n = ceil_div(pixels, D)
    n_rows = pixels * nt_n if conv else 7
    rows = [[rng.randrange(-(1 << 31), 1 << 31) for _ in range(cfg.cols)] for _ in range(n_rows)]
    o_word, o_buf = rng.randrange(100), 1
    dut = OutputWriter(cfg)
    writes: list[tuple[int, int, int]] = []

    async def bench(ctx) -> None:
        out = dut.geom.out
        for name, v in dict(o_buf=o_buf, o_word=o_word, requant=requant, conv=conv).items():
            ctx.set(getattr(out, name), v)
        ctx.set(out.pixels, pixels)
        ctx.set(dut.geom.nt_n, nt_n)
        ctx.set(dut.geom.mt_n, mt_n)
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
    per_row = 1 if requant else 4
    want = []
    if not conv:
        for i, w in enumerate(w for row in rows for w in _words(row, requant, R)):
            want.append((o_buf, o_word + i, w))
    else:  # rows arrive (M-tile, N-tile, pixel); pixel p of channel tile nt is word nt*P + p
        it = iter(rows)
        for mt in range(mt_n):
            for nt in range(nt_n):
                for p in range(mt * D, min(pixels, (mt + 1) * D)):
                    for j, w in enumerate(_words(next(it), requant, R)):
                        want.append((o_buf, o_word + (nt * pixels + p) * per_row + j, w))
    assert writes == want
