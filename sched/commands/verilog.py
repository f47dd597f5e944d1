"""``sushi verilog``: write synthesizable Verilog for presets, one conversion per core."""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from sushi_hw.config import PRESETS, AccelConfig
from sushi_hw.generate import TOPS, generate_verilog, is_current, top_skip_reason

from ..cli_args import add_preset_args, check_out_dir, config_from_args

#: relative conversion cost of each top, per PE (measured: the memory-less tops scale with the
#: array, the board top adds its link and RAM); the pool starts the costliest jobs first
_TOP_WEIGHT = {
    "sushi_gemm": 3,
    "sushi_accel": 4,
    "sushi_sim": 4,
    "sushi_board": 4,
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verilog",
        help="generate Verilog for one or more presets",
        description="Generate Verilog of the top-level designs each chosen preset is used for "
        "into OUT/<preset>/<top>.v, one conversion per core. A file is regenerated only when "
        "its config or the RTL generator changes (OUT/<preset>/<top>.hash). A top a preset "
        "cannot be used for is skipped with the reason (e.g. no simulation top for zcu104); "
        "--top names a top to build it anyway.",
    )
    add_preset_args(p, None, multiple=True, preset_help="preset to generate; default: all")
    p.add_argument(
        "--top",
        action="append",
        choices=sorted(TOPS),
        help="top-level design (repeatable; default: every top the preset is used for)",
    )
    p.add_argument("--out", type=Path, default=Path("build/verilog"), help="output directory")
    p.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="conversions run at the same time (default: one per core)",
    )
    p.set_defaults(func=run)


def _convert(cfg: AccelConfig, top: str, out_dir: Path) -> tuple[Path, float]:
    t0 = time.perf_counter()
    path = generate_verilog(cfg, top, out_dir)
    return path, time.perf_counter() - t0


def run(args: argparse.Namespace) -> int:
    from ..cli import UserError

    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    t_start = time.perf_counter()
    jobs: list[tuple[AccelConfig, str, Path]] = []
    for name in args.preset or list(PRESETS):
        cfg = config_from_args(args, name)
        for top in args.top or list(TOPS):
            why = None if args.top else top_skip_reason(top, cfg)
            if why:
                print(f"{name:8s} {top:16s} skipped: {why}")
                continue
            out_dir = args.out / name
            path = out_dir / f"{top}.v"
            if is_current(cfg, top, out_dir):
                print(f"{name:8s} {top:16s} up to date: {path}")
                continue
            jobs.append((cfg, top, out_dir))
    if not jobs:
        return 0
    check_out_dir(args.out, "--out")
    # costliest first, so the last job to finish is a short one
    jobs.sort(key=lambda j: -j[0].rows * j[0].cols * _TOP_WEIGHT.get(j[1], 4))
    n = len(jobs)
    workers = max(1, min(args.jobs, n))
    print(f"converting {n} tops, {workers} at a time", flush=True)
    failed = 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = {pool.submit(_convert, *job): job for job in jobs}
        done_count = 0
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                cfg, top, _ = pending.pop(fut)
                done_count += 1
                head = f"[{done_count}/{n}] {cfg.name:8s} {top:16s}"
                try:
                    path, secs = fut.result()
                except Exception as exc:  # report every top, then fail
                    failed += 1
                    print(f"{head} FAILED: {type(exc).__name__}: {exc}", flush=True)
                    continue
                kib = path.stat().st_size // 1024
                print(f"{head} -> {path}  ({kib} KiB, {secs:.1f} s)", flush=True)
    print(f"{n - failed} of {n} tops in {time.perf_counter() - t_start:.1f} s")
    return 1 if failed else 0
