"""Amaranth-simulator tests of the GEMM engine (fast, no external simulator)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from sushi_hw.build_options import SIMULATION, BuildOptions
from sushi_hw.config import make_config
from sushi_hw.gemm_engine import GemmEngine
from sushi_hw.gemm_host import (
    GemmSpec,
    a_words,
    c_words,
    encode_desc,
    out_matrix,
    out_rows,
    w_words,
)
from sushi_hw.reference import gemm_ref


async def _put(ctx, port, words, rng, stall):
    for wd in words:
        while stall and rng.random() < stall:
            await ctx.tick()
        ctx.set(port.valid, 1)
        ctx.set(port.payload.as_value(), wd)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)


def run_engine(cfg, jobs, seed=0, stall=0.0, timeout=200000, opts=SIMULATION):
    dut = GemmEngine(cfg, opts)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    results = []

    async def driver(ctx):
        rng = random.Random(seed)
        for spec, a, _, _ in jobs:
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.cmd.payload.as_value(), encode_desc(cfg, spec))
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            await _put(ctx, dut.a, a_words(cfg, a), rng, stall)

    async def wdriver(ctx):
        rng = random.Random(seed + 1)
        for spec, _, w, _ in jobs:
            await _put(ctx, dut.w, w_words(cfg, w, spec.m), rng, stall)

    async def cdriver(ctx):
        rng = random.Random(seed + 2)
        for _, _, _, c in jobs:
            if c is not None:
                await _put(ctx, dut.c_in, c_words(cfg, c), rng, stall)

    async def sink(ctx):
        rng = random.Random(seed + 3)
        for spec, *_ in jobs:
            words = []
            need = out_rows(cfg, spec.m, spec.n)
            while len(words) < need:
                ready = not (stall and rng.random() < stall)
                ctx.set(dut.out.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(
                    dut.out.valid, dut.out.payload.as_value()
                )
                if ready and valid:
                    words.append(payload)
            results.append(words)

    sim.add_testbench(driver)
    sim.add_testbench(wdriver)
    sim.add_testbench(cdriver)
    sim.add_testbench(sink)
    sim.run_until(timeout * 1e-8)
    return results


#: as the iCE40 flow builds it: no register after the accumulator read
NO_PIPELINE_REGS = BuildOptions(pipeline_regs=False)


@pytest.mark.parametrize(
    ("stall", "opts"),
    [(0.0, SIMULATION), (0.3, SIMULATION), (0.0, NO_PIPELINE_REGS), (0.3, NO_PIPELINE_REGS)],
)
def test_engine_random(stall, opts):
    cfg = make_config("tiny", acc_depth=8, act_bytes=1024)
    rng = np.random.default_rng(1)
    jobs = []
    for _ in range(3):
        m, k, n = (int(x) for x in rng.integers(1, 20, 3))
        acc = bool(rng.integers(0, 2))
        rq = (int(rng.integers(1, 3000)), int(rng.integers(0, 16))) if rng.integers(0, 2) else None
        spec = GemmSpec(m, k, n, accumulate=acc, requant=rq, relu=bool(rng.integers(0, 2)))
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        w = rng.integers(-128, 128, (k, n), dtype=np.int8)
        c = rng.integers(-(2**20), 2**20, (m, n)).astype(np.int32) if acc else None
        jobs.append((spec, a, w, c))
    res = run_engine(cfg, jobs, stall=stall, opts=opts)
    assert len(res) == len(jobs)
    for (spec, a, w, c), words in zip(jobs, res, strict=True):
        got = out_matrix(cfg, words, spec.m, spec.n)
        exp = gemm_ref(a, w, c, spec.requant, spec.relu).astype(np.int32)
        np.testing.assert_array_equal(got, exp, err_msg=str(spec))
