"""``sushi trace``: write a seeded synthetic query trace as CSV (t_ms,acc_floor,slo_ms)."""

from __future__ import annotations

import argparse

from ..cli_args import (
    add_preset_args,
    check_out_file,
    check_trace_gen_args,
    config_from_args,
    supernet_from_name,
    supernet_help,
)


def add_trace_gen_args(p: argparse.ArgumentParser, phase_len: float = 250.0) -> None:
    from ..traces import ARRIVALS

    p.add_argument(
        "--arrivals",
        choices=ARRIVALS,
        default="poisson",
        help="arrival process: poisson, gamma (bursty, CV 2) or periodic (default poisson)",
    )
    p.add_argument(
        "--load",
        type=float,
        default=0.8,
        help="arrival rate as a fraction of the slowest SubNet's service rate (default 0.8)",
    )
    p.add_argument(
        "--phase-len",
        type=float,
        default=phase_len,
        help=f"mean phase length in queries for --trace phases (default {phase_len:g})",
    )


def register(sub: argparse._SubParsersAction) -> None:
    from ..traces import KINDS

    p = sub.add_parser(
        "trace",
        help="write a generated query trace as CSV",
        description="Generate a seeded query trace and write it as CSV with columns "
        "t_ms,acc_floor,slo_ms. Floors and SLOs are scaled to the SuperNet's "
        "accuracy table and the accelerator's latencies (cost model, empty PB).",
    )
    p.add_argument(
        "kind",
        choices=KINDS,
        help="requirement pattern: phases (locality), walk (random walk), uniform (no locality)",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="CSV file to write")
    p.add_argument("--queries", type=int, default=2000, help="number of queries (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--supernet", default="ofa-resnet50", help=supernet_help() + " (default ofa-resnet50)"
    )
    add_preset_args(p)
    add_trace_gen_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import UserError
    from ..simulate import Setup
    from ..traces import generate, write_csv

    if args.queries < 1:
        raise UserError(f"--queries must be >= 1 (got {args.queries})")
    check_trace_gen_args(args)
    check_out_file(args.out, "--out")
    setup = Setup.build(supernet_from_name(args.supernet), config_from_args(args))
    tr = generate(
        args.kind, args.queries, args.seed, setup.scale(), args.arrivals, args.load, args.phase_len
    )
    write_csv(args.out, tr)
    print(f"wrote {len(tr)} queries to {args.out}")
    return 0
