"""``sushi simulate``: replay a query stream through the serving policies on the cost model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli_args import (
    add_preset_args,
    check_out_dir,
    check_out_file,
    check_trace_gen_args,
    config_from_args,
    read_trace_file,
    supernet_from_name,
    supernet_help,
)
from .trace import add_trace_gen_args


def register(sub: argparse._SubParsersAction) -> None:
    from ..policies import OBJECTIVES, POLICIES
    from ..simulate import DEFAULT_POLICIES
    from ..traces import KINDS

    p = sub.add_parser(
        "simulate",
        help="simulate serving a query stream with each policy (cost model)",
        description="Serve a query trace with each policy on the analytical cost model of one "
        "accelerator configuration and write a JSON report (and optional PNG plots).",
    )
    p.add_argument(
        "--supernet", default="ofa-resnet50", help=supernet_help() + " (default ofa-resnet50)"
    )
    add_preset_args(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--trace", choices=KINDS, metavar="KIND", help=f"generate a trace: {', '.join(KINDS)}"
    )
    src.add_argument(
        "--trace-file", metavar="FILE", help="replay a CSV trace with header t_ms,acc_floor,slo_ms"
    )
    p.add_argument(
        "--queries",
        type=int,
        default=None,
        help="number of queries (default 2000 for generated traces; a CSV is "
        "truncated to this many)",
    )
    p.add_argument("--seed", type=int, default=0, help="trace seed (default 0)")
    add_trace_gen_args(p)
    p.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="latency",
        help="latency: fastest SubNet meeting the accuracy floor; accuracy: most "
        "accurate SubNet meeting the SLO (default latency)",
    )
    p.add_argument(
        "--policies",
        default=",".join(DEFAULT_POLICIES),
        help=f"comma-separated policies from {', '.join(POLICIES)} (default all)",
    )
    p.add_argument(
        "--update-every",
        type=int,
        default=64,
        metavar="Q",
        help="sushi: re-select the cached SubGraph every Q queries (default 64)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=128,
        help="sushi: recent queries the selection serves (default 128)",
    )
    p.add_argument(
        "--drift-len",
        type=int,
        default=16,
        help="sushi: re-select early when this many consecutive queries use a SubNet "
        "the cache was not chosen for (default 16)",
    )
    p.add_argument("--json", required=True, metavar="OUT", help="write the JSON report here")
    p.add_argument("--plots", metavar="DIR", help="also draw PNG plots into DIR")
    p.add_argument(
        "--no-timing",
        action="store_true",
        help="report decision_us_mean as 0 so the JSON is byte-reproducible",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import UserError
    from ..simulate import Setup, simulate
    from ..traces import generate

    supernet = supernet_from_name(args.supernet)
    cfg = config_from_args(args)
    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    from ..policies import POLICIES

    bad = [x for x in policies if x not in POLICIES]
    if bad or not policies:
        raise UserError(
            f"unknown policy {', '.join(bad) or '(none given)'}; choose from {', '.join(POLICIES)}"
        )
    if len(set(policies)) != len(policies):
        raise UserError("a policy is listed twice in --policies")
    if args.queries is not None and args.queries < 1:
        raise UserError(f"--queries must be >= 1 (got {args.queries})")
    check_trace_gen_args(args)
    check_out_file(args.json, "--json")
    if args.plots:
        check_out_dir(args.plots, "--plots")
    setup = Setup.build(supernet, cfg)
    if args.trace_file:
        trace = read_trace_file(args.trace_file)
        in_file = len(trace)
        if args.queries is not None:
            trace = trace[: args.queries]
        source = {"file": str(Path(args.trace_file)), "queries_in_file": in_file}
    else:
        n = args.queries if args.queries is not None else 2000
        trace = generate(
            args.trace, n, args.seed, setup.scale(), args.arrivals, args.load, args.phase_len
        )
        source = {
            "kind": args.trace,
            "seed": args.seed,
            "arrivals": args.arrivals,
            "load": args.load,
            "phase_len": args.phase_len,
            "scale": vars(setup.scale()),
        }
    report, series = simulate(
        supernet,
        cfg,
        trace,
        args.objective,
        policies,
        args.update_every,
        args.window,
        args.drift_len,
        timing=not args.no_timing,
        progress=not args.no_progress and len(trace) * len(policies) >= 2000,
        setup=setup,
    )
    report["config"]["trace"] = source
    report["config"]["accel_preset"] = args.preset
    report["config"]["accel_overrides"] = list(args.overrides)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")
    for note in report["config"]["notes"]:
        print(f"note: {note}", file=sys.stderr)
    if args.plots:
        from ..plots import plot_all

        order = list(supernet.tensor_shapes())
        stem = out.stem + "_"
        for f in plot_all(series, trace, args.plots, stem, order):
            print(f"wrote {f}")
    print(_summary(report))
    print(f"wrote {out}")
    return 0


def _summary(report: dict) -> str:
    lines = [
        f"{'policy':16s} {'mean ms':>9s} {'p99 ms':>9s} {'SLO':>6s} {'acc':>7s} "
        f"{'off-chip MB':>12s} {'mJ off':>9s} {'upd':>5s} {'us/q':>7s}"
    ]
    for name, r in report["policies"].items():
        lines.append(
            f"{name:16s} {r['mean_latency_ms']:9.3f} {r['p99_latency_ms']:9.3f} "
            f"{r['slo_attainment']:6.3f} {r['mean_accuracy']:7.3f} "
            f"{r['offchip_bytes'] / 1e6:12.1f} {r['offchip_energy_mj']:9.1f} "
            f"{r['cache_updates']:5d} {r['decision_us_mean']:7.1f}"
        )
    gap = report.get("sushi_vs_clairvoyant")
    if gap:
        names = {
            "mean_latency_ms": "latency",
            "offchip_energy_mj": "off-chip energy",
            "mean_accuracy": "accuracy",
            "slo_attainment": "SLO attainment",
        }
        parts = [f"{names[k]} {100 * v:.0f}%" for k, v in gap.items() if v is not None]
        if parts:
            lines.append("sushi's share of clairvoyant's saving over no_pb: " + ", ".join(parts))
    return "\n".join(lines)
