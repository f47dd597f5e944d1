"""Cycles of a program through ``sushi_axi`` + cocotbext-axi's ``AxiRam`` against the native
memory port (``sushi_sim`` + the HDL memory model) at the same latency and bandwidth; writes
``build/bench/axi.json`` (``python -m sushi_sched.runtime.axi_bench``).

Both run the same programs (LOAD_ACT, one GEMM, STORE_ACT, DONE; weights off-chip or in the
PB) and report the core's ``cycles`` counter (doorbell to DONE). ``AxiRam`` gets the preset's
``mem_latency`` on every read request (pipelined) and its R and W channels are throttled to
the preset's ``mem_bytes_per_cycle``; a second AXI run has no throttle (the bus's full width
every cycle). The first off-chip program's AXI bursts are recorded as a table.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sushi_hw import isa
from sushi_hw.config import PRESETS, AccelConfig, ceil_div
from sushi_hw.program import act_bytes, in_words, out_words

from ..compiler import PBLayout, WeightImage, cache_program
from .backend import Backend, require_ok
from .rtl import run_on_rtl

PROG_ADDR, CACHE_PROG_ADDR, IN_ADDR, OUT_ADDR, W_ADDR = 0x0, 0x800, 0x1000, 0x4000, 0x8000


def cases(cfg: AccelConfig) -> list[tuple[int, int, int, str]]:
    """(M, K, N, weight source): a batch-1 GEMV and a batch-16 GEMM off-chip, one from the PB."""
    big = 8 * cfg.rows
    pb_k = min(big, int((cfg.pb_bytes // cfg.cols) ** 0.5) // cfg.rows * cfg.rows or cfg.rows)
    return [(1, big, big, "offchip"), (16, big, big, "offchip"), (1, pb_k, pb_k, "pb")]


def _programs(backend: Backend, m: int, k: int, n: int, source: str) -> tuple[int, int]:
    """Write one case's data; returns (program address, cache program address or -1)."""
    cfg = backend.cfg
    rng = np.random.default_rng(m * 7919 + k * 31 + n)
    w = rng.integers(-128, 128, (k, n), dtype=np.int8)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    kt, nt = ceil_div(k, cfg.rows), ceil_div(n, cfg.cols)
    image = WeightImage.build(cfg, {"w": w}, W_ADDR)
    backend.write(W_ADDR, image.blobs["w"])
    backend.write(IN_ADDR, act_bytes(cfg, x))
    pb = dict(pb_tile=0, pb_stride=0, pb_kt=0, pb_nt=0)
    cache_at = -1
    if source == "pb":
        layout = PBLayout.allocate(cfg, {"w": (kt, nt)})
        backend.write(CACHE_PROG_ADDR, b"".join([*cache_program(cfg, image, layout), isa.done()]))
        cache_at = CACHE_PROG_ADDR
        tile, kc, nc = layout.blocks["w"]
        pb = dict(pb_tile=tile, pb_stride=kc, pb_kt=kc, pb_nt=nc)
    prog = [
        isa.load_act(IN_ADDR, 0, 0, in_words(cfg, m, k)),
        isa.gemm(
            m=m,
            k=k,
            n=n,
            a_buf=0,
            a_word=0,
            o_buf=1,
            o_word=0,
            w_addr=W_ADDR,
            w_stride=kt,
            requant=(1 << 8, 16),
            **pb,
        ),  # fmt: skip
        isa.store_act(OUT_ADDR, 1, 0, out_words(cfg, m, n)),
        isa.done(),
    ]
    backend.write(PROG_ADDR, b"".join(prog))
    return PROG_ADDR, cache_at


def _measure(backend: Backend, case: tuple[int, int, int, str]) -> dict:
    prog, cache_at = _programs(backend, *case)
    if cache_at >= 0:
        require_ok(backend.run(cache_at, "cache"))
    c = require_ok(backend.run(prog, f"bench {case}")).counters
    return {"cycles": c["cycles"], "rd_weight_bytes": c["rd_weight_bytes"]}


@dataclass
class NativeBench:
    """On ``sushi_sim`` (the RTL backend sets the memory model to the preset's numbers)."""

    def __call__(self, backend: Backend, progress: Any = None) -> list[dict]:
        return [_measure(backend, case) for case in cases(backend.cfg)]


@dataclass
class AxiBench:
    """On ``sushi_axi`` with ``AxiRam`` (a coroutine job: it drives the top itself)."""

    async def __call__(self, dut: Any, cfg: AccelConfig) -> dict:
        from cocotb.task import bridge

        from .axi_sim import start

        env = await start(dut, cfg, cfg.mem_latency)
        axi_bytes = len(dut.m_axi_wdata) // 8
        out: dict[str, Any] = {"axi_bytes": axi_bytes}
        for mode, period in (("matched", max(1, axi_bytes // cfg.mem_bytes_per_cycle)),
                             ("full", 1)):  # fmt: skip
            await env.set_throttle(period)
            drv = await bridge(env.driver)()
            rows = []
            for i, case in enumerate(cases(cfg)):
                start_log = len(env.log)
                rows.append(await bridge(_measure)(drv, case))
                if i == 0 and mode == "matched":
                    out["bursts"] = [list(e) for e in env.log[start_log:]]
            out[mode] = rows
        return out


def bench_axi(cfg: AccelConfig, sim: str, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    native = run_on_rtl(cfg, NativeBench(), sim=sim, workdir=out_dir / f"axi.native.{cfg.name}")
    axi = run_on_rtl(
        cfg, AxiBench(), sim=sim, workdir=out_dir / f"axi.axi.{cfg.name}", top="sushi_axi"
    )
    records = []
    for case, nat, mat, full in zip(cases(cfg), native, axi["matched"], axi["full"], strict=True):
        m, k, n, source = case
        records.append(
            {
                "preset": cfg.name,
                "M": m,
                "K": k,
                "N": n,
                "weight_source": source,
                "mem_latency": cfg.mem_latency,
                "mem_bytes_per_cycle": cfg.mem_bytes_per_cycle,
                "axi_bytes": axi["axi_bytes"],
                "native_cycles": nat["cycles"],
                "axi_cycles": mat["cycles"],
                "axi_vs_native": round(mat["cycles"] / nat["cycles"] - 1, 4),
                "axi_full_bandwidth_cycles": full["cycles"],
                "rd_weight_bytes": mat["rd_weight_bytes"],
            }
        )
        assert nat["rd_weight_bytes"] == mat["rd_weight_bytes"], (case, nat, mat)
    t0 = axi["bursts"][0][1] if axi["bursts"] else 0
    bursts = [
        {"channel": ch.upper(), "cycle": t - t0, "addr": hex(a), "beats": ln + 1}
        for ch, t, a, ln in axi["bursts"]
    ]
    return {"records": records, "bursts_first_case": bursts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--out", default="build/bench")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # the jobs are pickled into the simulator: take them from the module, not from __main__
    from sushi_sched.runtime.axi_bench import bench_axi as bench

    res = bench(PRESETS[args.preset], args.sim, out)
    (out / "axi.json").write_text(json.dumps(res, indent=2))
    for r in res["records"]:
        print(
            f"{r['preset']} {r['M']}x{r['K']}x{r['N']} {r['weight_source']}: native "
            f"{r['native_cycles']}, AXI {r['axi_cycles']} ({100 * r['axi_vs_native']:+.1f}%), "
            f"AXI at full width {r['axi_full_bandwidth_cycles']}"
        )
    print(f"{out / 'axi.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
