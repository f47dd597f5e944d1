"""cocotb side of the differential fuzzer (:mod:`sushi_sched.fuzz`): one batch of random programs
on ``sushi_sim`` and on the golden model, compared program by program.

``SUSHI_FUZZ`` (JSON): ``seed``, ``programs``, ``summary`` (where the batch's result goes),
``stop_at`` (a replay: run up to that program). The test fails on the first mismatch, which the
summary describes (the program, its memory timing, the differences).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter as Tally
from pathlib import Path

import cocotb
from accel_host import AccelHost
from cocotb.clock import Clock
from sushi_hw.config import AccelConfig
from sushi_sched.fuzz import (
    WINDOW,
    Generator,
    compare,
    coverage_report,
    golden_run,
    outcome_bins,
    regions,
)
from sushi_sched.isa_sim import IsaSim


@cocotb.test()
async def fuzz_batch(dut):
    """One seeded batch: every program's done, error code, counters (but cycles) and memory
    agree between the RTL and the golden model."""
    spec = json.loads(os.environ["SUSHI_FUZZ"])
    cfg = AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))
    opts = json.loads(os.environ.get("SUSHI_OPTS", "{}"))
    has_watchdog = opts.get("mem_timeout", 0) > 0
    seed, programs = spec["seed"], spec["programs"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    host = AccelHost(dut, cfg)
    await host.reset()
    gen = Generator(cfg, seed, hang=has_watchdog)
    gold = IsaSim(cfg, pb_tags=opts.get("pb_tags", True))
    image = gen.memory()
    await host.write(0, image)
    gold.write(0, image)
    tally: Tally = Tally()
    summary = {"preset": cfg.name, "seed": seed, "programs_run": 0, "mismatch": None}
    acc_state: dict = {}
    t0 = time.monotonic()
    for i in range(programs):
        case = gen.case(i, acc_state)
        want = golden_run(gold, case)
        tally.update(outcome_bins(cfg, case, want))
        await host.memory_model(case.latency, case.bytes_per_cycle, case.stall, case.mem_seed)
        await host.write(case.prog_addr, b"".join(case.cmds))
        host.hang(case.hang_addr)
        res = await host.run(case.prog_addr, timeout_cycles=200_000)
        if case.hang_addr is not None:  # the memory holds the hung request: reset both
            host.hang(None)
            await host.reset()
        rtl = {"done": res.done, "error": res.error_code, "counters": res.counters, "mem": {}}
        gold_mem = {}
        for addr, n in regions(case):
            rtl["mem"][addr] = await host.read(addr, n)
            gold_mem[addr] = gold.read(addr, n)
        if i == programs - 1:  # the whole window once, at the end
            rtl["mem"][0] = await host.read(0, WINDOW)
            gold_mem[0] = gold.read(0, WINDOW)
        diffs = compare(case, rtl, want, gold_mem)
        summary["programs_run"] = i + 1
        if diffs:
            summary["mismatch"] = {"index": i, "program": case.describe(), "diffs": diffs}
            break
        if spec.get("stop_at") is not None and i >= spec["stop_at"]:
            break
    took = time.monotonic() - t0
    summary["seconds"] = took
    summary["seconds_per_program"] = took / max(1, summary["programs_run"])
    summary["coverage"] = coverage_report(tally, cfg)
    Path(spec["summary"]).write_text(json.dumps(summary, indent=1))
    m = summary["mismatch"]
    assert m is None, f"seed={seed} program {m['index']}:\n{m['program']}\n" + "\n".join(m["diffs"])
