"""The im2col address generator against the im2col rows written out in numpy terms."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.config import PRESETS, ceil_div, make_config
from sushi_hw.im2col import MIN_TILE_GAP, Im2col, first_offsets


def expected_rows(h, w, k, stride, pad, ct_n, nt_n, depth, base):
    """(addr or None for a padding row, m_last, kt_last, nt_last) in the core's issue order."""
    h_out, w_out = isa.conv_out_size(h, k, stride, pad), isa.conv_out_size(w, k, stride, pad)
    pixels = h_out * w_out
    taps = isa.ring_taps(k)
    c = k // 2 - pad
    kts = [(ct, t) for ct in range(ct_n) for t in range(k * k)]
    out = []
    for mt in range(ceil_div(pixels, depth)):
        rows = range(mt * depth, min(pixels, (mt + 1) * depth))
        for nt in range(nt_n):
            for i, (ct, t) in enumerate(kts):
                for p in rows:
                    oy, ox = divmod(p, w_out)
                    iy, ix = oy * stride + taps[t][0] + c, ox * stride + taps[t][1] + c
                    inside = 0 <= iy < h and 0 <= ix < w
                    addr = base + (ct * h + iy) * w + ix if inside else None
                    out.append((addr, p == rows[-1], i == len(kts) - 1, nt == nt_n - 1))
    return out


def run(cfg, geo, seed, stall=0.3):
    """Drive the generator through the rows of ``geo`` in the core's order; the core stalls
    with probability ``stall`` per cycle, and two rows that end a tile are at least
    MIN_TILE_GAP cycles apart (the core's promise: a one-row tile waits ``rows`` cycles for
    its weights)."""
    rng = random.Random(seed)
    h, w, k, stride, pad, ct_n, nt_n, depth, base = geo
    rows = expected_rows(*geo)
    dut = Im2col(cfg)
    got = []
    off0, off1 = first_offsets(w, k, pad, h * w)

    async def bench(ctx):
        ctx.set(dut.geo.h, h)
        ctx.set(dut.geo.w, w)
        ctx.set(dut.geo.w_out, isa.conv_out_size(w, k, stride, pad))
        ctx.set(dut.geo.stride, stride)
        ctx.set(dut.geo.c_off, k // 2 - pad)
        ctx.set(dut.geo.taps, k * k)
        ctx.set(dut.geo.plane, h * w)
        ctx.set(dut.geo.off0, off0)
        ctx.set(dut.geo.off1, off1)
        ctx.set(dut.base, base)
        ctx.set(dut.begin, 1)
        await ctx.tick()
        ctx.set(dut.begin, 0)
        cycle, last_end = 0, -MIN_TILE_GAP
        for _, m_last, kt_last, nt_last in rows:
            while rng.random() < stall or (m_last and cycle - last_end < MIN_TILE_GAP):
                await ctx.tick()
                cycle += 1
            got.append((ctx.get(dut.addr), ctx.get(dut.pad)))
            ctx.set(dut.fire, 1)
            ctx.set(dut.m_last, m_last)
            ctx.set(dut.kt_last, kt_last)
            ctx.set(dut.nt_last, nt_last)
            if m_last:
                last_end = cycle
            await ctx.tick()
            cycle += 1
            ctx.set(dut.fire, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for i, ((want, *_), (addr, pad)) in enumerate(zip(rows, got, strict=True)):
        assert pad == (want is None), f"seed {seed}: row {i} padding {pad}, want {want}"
        if want is not None:
            assert addr == want, f"seed {seed}: row {i} at word {addr}, want {want}"


@pytest.mark.parametrize("seed", range(12))
def test_im2col_random(seed):
    rng = random.Random(seed)
    cfg = PRESETS["default"].replace(acc_depth=rng.choice([4, 16, 256]))
    while True:
        k = rng.choice(isa.KERNELS)
        stride, pad = rng.choice(isa.STRIDES), rng.randint(0, k // 2)
        h, w = rng.randint(1, 12), rng.randint(1, 12)
        if isa.conv_out_size(h, k, stride, pad) >= 1 and isa.conv_out_size(w, k, stride, pad) >= 1:
            break
    geo = (h, w, k, stride, pad, rng.randint(1, 3), rng.randint(1, 2), cfg.acc_depth, 37)
    run(cfg, geo, seed)


@pytest.mark.parametrize("seed", range(6))
def test_im2col_back_to_back(seed):
    """No stall but the tile gap: rows issue every cycle, one-row M-tiles (acc_depth 2 and an
    odd pixel count) end a tile every MIN_TILE_GAP cycles, so the next K-tile's offset is
    needed as soon as the generator can have it."""
    rng = random.Random(100 + seed)
    cfg = PRESETS["default"].replace(acc_depth=2)
    k = rng.choice([1, 3, 5, 7])
    pad = rng.randint(0, k // 2)
    stride = rng.choice(isa.STRIDES)
    while True:
        h, w = rng.randint(k, 11), rng.randint(k, 11)
        h_out, w_out = (isa.conv_out_size(n, k, stride, pad) for n in (h, w))
        if h_out >= 1 and w_out >= 1 and h_out * w_out % 2 == 1:
            break
    run(cfg, (h, w, k, stride, pad, rng.randint(1, 3), 2, 2, 5), seed, stall=0.0)


@pytest.mark.parametrize(("seed", "int32_gap"), [(s, (4, None)[s % 2]) for s in range(8)])
def test_core_keeps_the_tile_gap(seed, int32_gap):
    """GemmCore issues two rows that end a tile at least MIN_TILE_GAP cycles apart, whatever
    the weight stream and the output do (rows = 2, the smallest array: a one-row tile waits
    for its two weight rows; longer tiles take a cycle per row)."""
    from sushi_hw.gemm_core import GemmCore

    rng = random.Random(seed)
    cfg = make_config(
        "default", rows=2, cols=2, mem_width=4, mem_bytes_per_cycle=4, acc_depth=rng.choice([2, 4])
    )
    core = GemmCore(cfg, with_c_in=False, a_flow=False, int32_gap=int32_gap)
    pixels, kt_n, n = rng.randint(1, 9), rng.randint(1, 4), rng.randint(1, 4)
    tile_rows = []  # the rows of each tile, in issue order
    for mt in range(ceil_div(pixels, cfg.acc_depth)):
        rows = min(cfg.acc_depth, pixels - mt * cfg.acc_depth)
        tile_rows += [rows] * (kt_n * ceil_div(n, cfg.cols))
    ends, at = set(), -1
    for rows in tile_rows:
        at += rows
        ends.add(at)
    fires: list[int] = []

    async def bench(ctx):
        d = core.cmd.payload
        ctx.set(d.m, pixels)
        ctx.set(d.k, kt_n * cfg.rows)
        ctx.set(d.n, n)
        ctx.set(d.conv, 1)
        ctx.set(d.requant.enable, rng.random() < 0.5)
        ctx.set(d.requant.mult, 1)
        ctx.set(d.im2col.w_out, 3)
        ctx.set(d.im2col.taps, 1)
        ctx.set(core.cmd.valid, 1)
        await ctx.tick().until(core.cmd.ready)
        ctx.set(core.cmd.valid, 0)
        for _ in range(len(tile_rows) * cfg.rows):
            while rng.random() < 0.4:
                await ctx.tick()
            ctx.set(core.w.valid, 1)
            await ctx.tick().until(core.w.ready)
            ctx.set(core.w.valid, 0)

    async def monitor(ctx):
        cycle = 0
        while len(fires) < sum(tile_rows):
            ready = int32_gap is not None or rng.random() < 0.5
            ctx.set(core.out.ready, ready)
            _, _, issue = await ctx.tick().sample(core.issue)
            if issue:
                fires.append(cycle)
            cycle += 1

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(monitor)
    sim.run_until(1e-8 * 20000)
    assert len(fires) == sum(tile_rows), f"seed {seed}: {len(fires)} rows issued"
    end_cycles = [c for i, c in enumerate(fires) if i in ends]
    gaps = [b - a for a, b in zip(end_cycles, end_cycles[1:], strict=False)]
    assert min(gaps, default=MIN_TILE_GAP) >= MIN_TILE_GAP, f"seed {seed}: gaps {gaps}"


def test_tiny_builds_no_im2col():
    """conv is off on tiny (the iCEBreaker is nearly full): its accelerator has no generator,
    so a change here costs the iCE40 build nothing."""
    from amaranth.back import rtlil
    from sushi_hw.accel import SushiAccel

    assert not PRESETS["tiny"].conv
    text = rtlil.convert(SushiAccel(PRESETS["tiny"]))
    assert "module \\top.core.array" in text  # the core is there ...
    assert "im2col" not in text  # ... without the generator
