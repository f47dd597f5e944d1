"""The im2col address generator against the im2col rows written out in numpy terms."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.config import PRESETS, ceil_div
from sushi_hw.im2col import Im2col


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


def run(cfg, geo, seed):
    rng = random.Random(seed)
    h, w, k, stride, pad, ct_n, nt_n, depth, base = geo
    rows = expected_rows(*geo)
    dut = Im2col(cfg)
    got = []

    async def bench(ctx):
        ctx.set(dut.geo.h, h)
        ctx.set(dut.geo.w, w)
        ctx.set(dut.geo.w_out, isa.conv_out_size(w, k, stride, pad))
        ctx.set(dut.geo.stride, stride)
        ctx.set(dut.geo.c_off, k // 2 - pad)
        ctx.set(dut.geo.taps, k * k)
        ctx.set(dut.geo.plane, h * w)
        ctx.set(dut.base, base)
        ctx.set(dut.begin, 1)
        await ctx.tick()
        ctx.set(dut.begin, 0)
        for _, m_last, kt_last, nt_last in rows:
            while rng.random() < 0.3:  # the core stalls now and then
                await ctx.tick()
            got.append((ctx.get(dut.addr), ctx.get(dut.pad)))
            ctx.set(dut.fire, 1)
            ctx.set(dut.m_last, m_last)
            ctx.set(dut.kt_last, kt_last)
            ctx.set(dut.nt_last, nt_last)
            await ctx.tick()
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
