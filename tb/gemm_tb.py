"""cocotb tests of the stand-alone GEMM engine (top ``sushi_gemm``).

Parameters arrive in environment variables: ``SUSHI_CONFIG`` (the AccelConfig as JSON) and
``SUSHI_SEED``. The engine's host driver is the library's
(:class:`sushi_sched.runtime.gemm_rtl.Engine`), which ``sushi gemm`` and ``sushi bench`` use.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, with_timeout
from cocotb.utils import get_sim_time
from sushi_hw.config import AccelConfig
from sushi_hw.gemm_host import GemmSpec
from sushi_hw.reference import gemm_ref
from sushi_sched.runtime.gemm_rtl import CLOCK_NS, Engine, reset


def load_config() -> AccelConfig:
    return AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))


def seed() -> int:
    return int(os.environ.get("SUSHI_SEED", "1"))


def random_job(cfg: AccelConfig, rng: np.random.Generator, big: bool = False):
    hi = 3 * max(cfg.rows, cfg.cols) + 2
    m = int(rng.integers(1, hi))
    if big:
        m = cfg.acc_depth + int(rng.integers(1, cfg.rows + 1))  # crosses an M-tile boundary
    k, n = (int(x) for x in rng.integers(1, hi, 2))
    # keep A inside the activation buffer
    while m * -(-k // cfg.rows) > cfg.act_words:
        k = max(1, k // 2)
    acc = bool(rng.integers(0, 2))
    rq = (int(rng.integers(1, 1 << 16)), int(rng.integers(0, 32))) if rng.integers(0, 2) else None
    spec = GemmSpec(m, k, n, accumulate=acc, requant=rq, relu=bool(rng.integers(0, 2)))
    kind = rng.integers(0, 3)
    if kind == 0:  # extremes only
        a = rng.choice(np.array([-128, 127, 0, -1], dtype=np.int8), (m, k))
        w = rng.choice(np.array([-128, 127, 1, -1], dtype=np.int8), (k, n))
    else:
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    c = rng.integers(-(2**31), 2**31, (m, n), dtype=np.int64).astype(np.int32) if acc else None
    return spec, a, w, c


def check(got: np.ndarray, spec: GemmSpec, a, w, c, s: int) -> None:
    exp = gemm_ref(a, w, c, spec.requant, spec.relu)
    if not np.array_equal(got, exp):
        bad = np.argwhere(got != exp)
        i, j = bad[0]
        raise AssertionError(
            f"seed={s} {spec}: {len(bad)} mismatches, first at [{i},{j}]: "
            f"got {got[i, j]} expected {exp[i, j]}"
        )


@cocotb.test()
async def random_gemms_with_stalls(dut):
    """Random shapes (incl. 1 and non-multiples), data, modes; random stalls on every stream."""
    cfg, s = load_config(), seed()
    dut._log.info(f"seed={s} config={cfg.name}")
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    await reset(dut)
    rng = np.random.default_rng(s)
    for i in range(20):
        stall = [0.0, 0.2, 0.5][i % 3]
        eng = Engine(dut, cfg, random.Random(s * 100 + i), stall)
        job = random_job(cfg, rng, big=(i == 4))
        t0 = get_sim_time("ns")
        got = await with_timeout(eng.gemm(*job), 20_000_000, "ns")
        dut._log.info(f"{job[0]} stall={stall}: {(get_sim_time('ns') - t0) // CLOCK_NS} cycles")
        check(got, *job, s)


@cocotb.test()
async def accumulate_chain(dut):
    """K split over two GEMMs: the second accumulates onto the first's int32 result."""
    cfg, s = load_config(), seed() + 7
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    await reset(dut)
    rng = np.random.default_rng(s)
    m, k, n = 2 * cfg.rows + 1, 3 * cfg.rows + 3, 2 * cfg.cols + 1
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    eng = Engine(dut, cfg, random.Random(s), 0.1)
    k1 = k // 2
    part = await eng.gemm(GemmSpec(m, k1, n), a[:, :k1], w[:k1])
    spec = GemmSpec(m, k - k1, n, accumulate=True, requant=(12345, 17), relu=True)
    got = await eng.gemm(spec, a[:, k1:], w[k1:], part)
    check(got, GemmSpec(m, k, n, requant=(12345, 17), relu=True), a, w, None, s)


@cocotb.test()
async def reset_in_the_middle(dut):
    """Reset while a GEMM is half done, then a fresh GEMM must be exact."""
    cfg, s = load_config(), seed() + 11
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    rng = np.random.default_rng(s)
    for trial in range(3):
        await reset(dut)
        eng = Engine(dut, cfg, random.Random(s + trial), 0.2)
        job = random_job(cfg, rng)
        task = cocotb.start_soon(eng.gemm(*job))
        await ClockCycles(dut.clk, int(rng.integers(5, 60)))
        task.cancel()
        eng.cancel()
        await reset(dut, cycles=int(rng.integers(1, 4)))
        eng = Engine(dut, cfg, random.Random(s + 50 + trial), 0.2)
        job = random_job(cfg, rng)
        got = await with_timeout(eng.gemm(*job), 20_000_000, "ns")
        check(got, *job, s)
