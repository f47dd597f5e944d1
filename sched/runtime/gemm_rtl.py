"""The stand-alone GEMM engine (top ``sushi_gemm``) under cocotb, as a library API: the host
driver of its streams (:class:`Engine`), and the jobs ``sushi gemm`` and ``sushi bench`` run on
it with :func:`sushi_sched.runtime.rtl.run_on_rtl` (``top="sushi_gemm"``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
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

from .streams import StreamSink, StreamSource

TOP = "sushi_gemm"
CLOCK_NS = 10


async def reset(dut: Any, cycles: int = 3) -> None:
    from cocotb.triggers import ClockCycles, RisingEdge

    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def start_clock(dut: Any) -> None:
    import cocotb
    from cocotb.clock import Clock

    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())


class Engine:
    """Host-side driver: feeds one GEMM's streams and collects its result."""

    def __init__(self, dut: Any, cfg: AccelConfig, rng: random.Random, stall: float = 0.0):
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

    async def gemm(self, spec: GemmSpec, a, w, c=None) -> np.ndarray:  # noqa: ANN001
        import cocotb

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


@dataclass
class GemmJob:
    """``out = A @ W (+ C)`` (requantised with ``requant``) on the engine: (out, cycles)."""

    a: np.ndarray
    w: np.ndarray
    c: np.ndarray | None = None
    requant: tuple[int, int] | None = None
    relu: bool = False

    async def __call__(self, dut: Any, cfg: AccelConfig) -> tuple[np.ndarray, int]:
        from cocotb.utils import get_sim_time

        start_clock(dut)
        await reset(dut)
        a, w, c = self.a, self.w, self.c
        spec = GemmSpec(a.shape[0], a.shape[1], w.shape[1], c is not None, self.requant, self.relu)
        eng = Engine(dut, cfg, random.Random(0))
        t0 = get_sim_time("ns")
        got = await eng.gemm(spec, a, w, c)
        cycles = int((get_sim_time("ns") - t0) // CLOCK_NS)
        return (got.astype(np.int8) if spec.requant else got), cycles


@dataclass
class GemmBench:
    """`make bench`: fixed shapes, no stalls; cycles from first input accepted to last output."""

    shapes: list[tuple[int, int, int]]

    async def __call__(self, dut: Any, cfg: AccelConfig) -> list[dict]:
        start_clock(dut)
        rng = np.random.default_rng(0)
        records = []
        for m, k, n in self.shapes:
            await reset(dut)
            spec = GemmSpec(m, k, n)
            a = rng.integers(-128, 128, (m, k), dtype=np.int8)
            w = rng.integers(-128, 128, (k, n), dtype=np.int8)
            eng = Engine(dut, cfg, random.Random(0))
            got = await eng.gemm(spec, a, w)
            if not np.array_equal(got, gemm_ref(a, w, None, None, False)):
                raise AssertionError(f"{cfg.name} GEMM {m}x{k}x{n}: wrong result")
            first = min(src.first_time for src in (eng.a, eng.w))
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
        return records
