"""``sushi bench``: measure the RTL (cycles, utilisation) and write JSON under build/bench/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sushi_hw.config import PRESETS, make_config
from tqdm import tqdm


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the RTL simulation",
        description="Run fixed GEMM shapes on the RTL simulation of each preset and write "
        "OUT/gemm.json: one record per run with measured cycles (first input accepted to last "
        "output produced), ideal_cycles = ceil(M*K*N/(rows*cols)) and utilization = ideal/cycles.",
    )
    p.add_argument(
        "--preset",
        action="append",
        choices=sorted(PRESETS),
        help="preset to measure (repeatable; default: tiny and default)",
    )
    p.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    p.add_argument("--out", type=Path, default=Path("build/bench"), help="output directory")
    p.set_defaults(func=run)


def _table(records: list[dict]) -> str:
    head = f"{'preset':8s} {'M':>5s} {'K':>5s} {'N':>5s} {'cycles':>8s} {'ideal':>8s} {'util':>6s}"
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(
            f"{r['preset']:8s} {r['M']:5d} {r['K']:5d} {r['N']:5d} {r['cycles']:8d} "
            f"{r['ideal_cycles']:8d} {r['utilization']:6.3f}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from sushi_tb.bench import bench_gemm

    records: list[dict] = []
    presets = args.preset or ["tiny", "default"]
    for name in tqdm(presets, desc="gemm bench", unit="preset"):
        records += bench_gemm(make_config(name), args.sim, args.out / "parts")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gemm.json").write_text(json.dumps(records, indent=1))
    print(_table(records))
    print(f"wrote {args.out / 'gemm.json'}")
    return 0
