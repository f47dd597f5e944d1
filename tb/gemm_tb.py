"""cocotb tests of the stand-alone GEMM engine (top ``sushi_gemm``).

Parameters arrive in environment variables: ``SUSHI_CONFIG`` (the AccelConfig as JSON),
``SUSHI_SEED``, and for the benchmark / file modes ``SUSHI_BENCH_OUT`` / ``SUSHI_GEMM_JOB``.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotb.utils import get_sim_time
from streams import StreamSink, StreamSource
from sushi_hw.config import AccelConfig
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

CLOCK_NS = 10


def load_config() -> AccelConfig:
    return AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))


def seed() -> int:
    return int(os.environ.get("SUSHI_SEED", "1"))


async def reset(dut, cycles: int = 3) -> None:
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


class Engine:
    """Host-side driver: feeds one GEMM's streams and collects its result."""

    def __init__(self, dut, cfg: AccelConfig, rng: random.Random, stall: float = 0.0):
        self.dut, self.cfg = dut, cfg
        mk = lambda: random.Random(rng.random())  # noqa: E731 - independent stall patterns
        self.cmd = StreamSource(dut, "cmd", dut.clk)
        self.a = StreamSource(dut, "a", dut.clk, mk(), stall)
        self.w = StreamSource(dut, "w", dut.clk, mk(), stall)
        self.c = StreamSource(dut, "c_in", dut.clk, mk(), stall)
        self.out = StreamSink(dut, "out", dut.clk, mk(), stall)
        self.tasks: list = []

    def cancel(self) -> None:
        """Abandon a GEMM in flight (before a reset): stop every driver."""
        for t in self.tasks:
            t.cancel()
        self.tasks = []
        for src in (self.cmd, self.a, self.w, self.c):
            src.valid.value = 0
        self.out.ready.value = 0

    async def gemm(self, spec: GemmSpec, a, w, c=None) -> np.ndarray:
        cfg = self.cfg
        self.tasks = tasks = [
            cocotb.start_soon(self.cmd.send([encode_desc(cfg, spec)])),
            cocotb.start_soon(self.a.send(a_words(cfg, a))),
            cocotb.start_soon(self.w.send(w_words(cfg, w, spec.m))),
        ]
        if spec.accumulate:
            tasks.append(cocotb.start_soon(self.c.send(c_words(cfg, c))))
        words = await self.out.recv(out_rows(cfg, spec.m, spec.n))
        for t in tasks:
            await t
        return out_matrix(cfg, words, spec.m, spec.n)


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


@cocotb.test(skip="SUSHI_BENCH_OUT" not in os.environ)
async def bench(dut):
    """`make bench`: fixed shapes, no stalls; cycles from first input accepted to last output."""
    cfg = load_config()
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    shapes = json.loads(os.environ["SUSHI_BENCH_SHAPES"])
    rng = np.random.default_rng(0)
    records = []
    for m, k, n in shapes:
        await reset(dut)
        spec = GemmSpec(m, k, n)
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        w = rng.integers(-128, 128, (k, n), dtype=np.int8)
        eng = Engine(dut, cfg, random.Random(0))
        sources = (eng.a, eng.w)
        got = await eng.gemm(spec, a, w)
        check(got, spec, a, w, None, 0)
        first = min(src.first_time for src in sources)
        cycles = (eng.out.last_time - first) // (CLOCK_NS * 1000) + 1
        ideal = spec.ideal_cycles(cfg)
        records.append(
            {
                "preset": cfg.name,
                "rows": cfg.rows,
                "cols": cfg.cols,
                "M": m,
                "K": k,
                "N": n,
                "cycles": int(cycles),
                "ideal_cycles": ideal,
                "utilization": round(ideal / cycles, 4),
            }
        )
    with open(os.environ["SUSHI_BENCH_OUT"], "w") as f:
        json.dump(records, f)


@cocotb.test(skip="SUSHI_GEMM_JOB" not in os.environ)
async def gemm_from_files(dut):
    """`sushi gemm`: run the GEMM given in .npy files and save the result."""
    cfg = load_config()
    job = json.loads(os.environ["SUSHI_GEMM_JOB"])
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    await reset(dut)
    a, w = np.load(job["a"]), np.load(job["w"])
    c = np.load(job["c_in"]) if job.get("c_in") else None
    spec = GemmSpec(
        a.shape[0],
        a.shape[1],
        w.shape[1],
        accumulate=c is not None,
        requant=tuple(job["requant"]) if job.get("requant") else None,
        relu=bool(job.get("relu")),
    )
    eng = Engine(dut, cfg, random.Random(0))
    t0 = get_sim_time("ns")
    got = await eng.gemm(spec, a, w, c)
    cycles = int((get_sim_time("ns") - t0) // CLOCK_NS)
    out = got.astype(np.int8) if spec.requant else got
    np.save(job["out"], out)
    with open(job["out"] + ".json", "w") as f:
        json.dump({"cycles": cycles}, f)
