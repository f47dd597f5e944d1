"""``sushi demo``: the main job. Today: a mixed GEMM workload on the RTL simulation."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sushi_hw.config import PRESETS, make_config

from .bench import _table

# Layer shapes of a small CNN lowered to GEMM (im2col, batch 1) plus two batch-1 FC layers.
MIXED_WORKLOAD = [
    (64, 72, 16),
    (64, 144, 32),
    (16, 288, 64),
    (16, 64, 64),
    (1, 256, 64),
    (1, 64, 10),
]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the main job: run a workload on the RTL simulation",
        description="Run a mixed GEMM workload on the cycle-accurate RTL simulation, check every "
        "result bit-exactly against numpy and print cycles and utilisation.",
    )
    p.add_argument("--preset", default="default", choices=sorted(PRESETS))
    p.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sushi_tb.bench import bench_gemm

    cfg = make_config(args.preset)
    print(f"SushiAccel {cfg.name}: {cfg.rows}x{cfg.cols} array, {args.sim} simulation")
    records = bench_gemm(cfg, args.sim, args.out, MIXED_WORKLOAD)
    print(_table(records))
    total, ideal = sum(r["cycles"] for r in records), sum(r["ideal_cycles"] for r in records)
    print(
        f"total {total} cycles, ideal {ideal}, utilisation {ideal / total:.3f}; "
        "every result matched numpy bit-exactly"
    )
    (args.out / "report.json").write_text(json.dumps(records, indent=1))
    return 0
