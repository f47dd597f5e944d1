"""cocotb host of the SUSHI stack: SushiSched serves a query stream on the ``sushi_sim`` RTL.

Parameters (environment): ``SUSHI_CONFIG`` (AccelConfig JSON) and ``SUSHI_STACK_JOB`` (JSON:
policies, objective, trace, queries, seed, out). Results are written as JSON to ``out``.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from accel_host import AccelHost
from cocotb.clock import Clock
from sushi_hw import isa
from sushi_hw.config import AccelConfig
from sushi_sched.compiler import PBLayout
from sushi_sched.stack import PROG_ADDR, RunStats, Stack, model_error, summarize
from sushi_sched.traces import Query


class RtlExecutor:
    """The Executor protocol of sushi_sched.stack on the cocotb host driver."""

    def __init__(self, host: AccelHost):
        self.host = host
        self.cycles = 0

    async def write(self, addr: int, data: bytes) -> None:
        await self.host.write(addr, data)

    async def read(self, addr: int, length: int) -> bytes:
        return await self.host.read(addr, length)

    async def run(self, prog_addr: int) -> RunStats:
        res = await self.host.run(prog_addr)
        self.cycles += res.counters["cycles"]
        return RunStats(res.done, res.error.name, res.counters["cycles"], res.counters)


async def freerun_rate(host: AccelHost, stack: Stack, repeats: int) -> tuple[float, int]:
    """Cycles/s of the same design running one long program with the host asleep."""
    s = max(stack.setup.candidates, key=lambda c: c.macs)
    body = stack.program(s, PBLayout())
    cmds = [body[i : i + isa.CMD_BYTES] for i in range(0, len(body), isa.CMD_BYTES)]
    work = [c for c in cmds if isa.decode(c)[0] != isa.Op.DONE]
    await host.write(PROG_ADDR, b"".join(work * repeats) + isa.done())
    t0 = time.perf_counter()
    res = await host.run(PROG_ADDR, timeout_cycles=50_000_000)
    dt = time.perf_counter() - t0
    assert res.done, f"free-run program failed: {res.error.name}"
    return res.counters["cycles"] / dt, res.counters["cycles"]


@cocotb.test()
async def serve_stream(dut):
    cfg = AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))
    job = json.loads(os.environ["SUSHI_STACK_JOB"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    host = AccelHost(dut, cfg)
    await host.reset()
    await host.memory_model(cfg.mem_latency, cfg.mem_bytes_per_cycle)
    stack = Stack(
        cfg,
        objective=job["objective"],
        update_every=job["update_every"],
        window=job["window"],
        drift_len=job["drift_len"],
    )
    trace = [Query(*q) for q in job["trace"]]
    images = stack.query_images(len(trace), job["seed"])
    ex = RtlExecutor(host)
    await stack.load_weights(ex)
    bar = None
    if job.get("progress"):
        from tqdm import tqdm

        bar = tqdm(total=len(trace) * len(job["policies"]), desc="serving on RTL", unit="query")
    results = []
    t0, c0 = time.perf_counter(), ex.cycles
    for policy in stack.policies(job["policies"], trace):
        await host.reset()  # each policy starts from an empty PB state machine
        results.append(await stack.serve(ex, policy, trace, images, bar))
    cosim_s, cosim_cycles = time.perf_counter() - t0, ex.cycles - c0
    if bar is not None:
        bar.close()
    free_rate, free_cycles = await freerun_rate(host, stack, job.get("freerun_repeats", 20))
    out = {
        "policies": {r.name: summarize(r, cfg, stack.cost) for r in results},
        "records": {r.name: [vars(x) for x in r.records] for r in results},
        "pb_series": {r.name: r.pb_series for r in results},
        "updates_at": {r.name: r.updates_at for r in results},
        **model_error(results),
        "cosim_cycles": cosim_cycles,
        "cosim_seconds": cosim_s,
        "cosim_cycles_per_s": cosim_cycles / cosim_s,
        "freerun_cycles": free_cycles,
        "freerun_cycles_per_s": free_rate,
        "candidates": [
            {
                "id": s.key,
                "accuracy": s.accuracy,
                "model_cycles_empty_pb": stack.cost.query(s).cycles,
            }
            for s in stack.setup.candidates
        ],
    }
    with open(job["out"], "w") as f:
        json.dump(out, f)
    mism = sum(p["mismatches"] for p in out["policies"].values())
    assert mism == 0, f"{mism} served queries differ from the numpy reference"
