"""``sushi sweep SPEC.toml``: a design-space sweep of ``simulate`` runs (sushi_sched.sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a design-space sweep of simulate points (local pool or Dask)",
        description="Run every point of a sweep spec (the product of AccelConfig fields, "
        "SuperNets, traces, seeds and objectives; each point simulates the listed policies on "
        "the cost model) and write OUT/results.csv (one row per point and policy, with the gain "
        "over no_pb) and OUT/gain_vs_<field>.png. Finished points are kept in OUT/points/, so "
        "running the same spec again resumes. The spec format is in sushi_sched/sweep.py and "
        "sweeps/*.toml.",
    )
    p.add_argument("spec", type=Path, help="the sweep spec (TOML)")
    p.add_argument(
        "--out", type=Path, default=None, help="output directory (default build/sweep/<spec name>)"
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask distributed scheduler (e.g. tcp://host:8786) instead of a "
        "local process pool",
    )
    p.add_argument("--jobs", type=int, default=None, help="local pool size (default: one per core)")
    p.add_argument("--fresh", action="store_true", help="forget finished points and run all")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import UserError
    from ..sweep import SweepError, load_spec, run_sweep

    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be >= 1 (got {args.jobs})")
    try:
        spec = load_spec(args.spec)
        out = args.out or Path("build/sweep") / args.spec.stem
        res = run_sweep(
            spec,
            out,
            scheduler=args.scheduler,
            jobs=args.jobs,
            fresh=args.fresh,
            progress=not args.no_progress,
        )
    except SweepError as e:
        raise UserError(str(e)) from None
    where = f"Dask at {args.scheduler}" if args.scheduler else "local pool"
    print(
        f"{res.done} points run ({where}), {res.kept} kept from an earlier run, "
        f"{len(res.failed)} failed, {res.seconds:.1f} s"
    )
    for p, err in res.failed[:5]:
        what = f"{p['supernet']} {p['trace']} seed {p['seed']} {p['objective']} {p['set']}"
        print(f"failed: {what}: {err}")
    print(f"wrote {res.csv}")
    for f in res.plots:
        print(f"wrote {f}")
    return 1 if res.failed else 0
