"""``sushi demo``: the main job. SushiSched serves a query stream on the cycle-accurate RTL."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli_args import accel_from_args, add_accel_args
from .trace import add_trace_gen_args

DEFAULT_POLICIES = "sushi,no_pb,static_subnet"


def register(sub: argparse._SubParsersAction) -> None:
    from ..traces import KINDS

    p = sub.add_parser(
        "demo",
        help="the main job: serve a query stream on the RTL simulation",
        description="SushiSched serves a stream of digits queries (each with its accuracy floor "
        "and latency SLO) on the cycle-accurate SushiAccel RTL (cocotb on Verilator or Icarus). "
        "For every query the policy picks a SubNet of the trained digits SuperNet, updates the "
        "Persistent Buffer when it decides to, runs the compiled program, and the host checks "
        "the logits bit-exactly against the numpy reference. Writes OUT/report.json and PNG "
        "plots and prints a summary table.",
    )
    add_accel_args(p, default="default")
    p.add_argument(
        "--sim",
        default="verilator",
        choices=["verilator", "icarus"],
        help="RTL simulator (default verilator)",
    )
    p.add_argument(
        "--trace",
        choices=KINDS,
        default="phases",
        metavar="KIND",
        help=f"generate a trace: {', '.join(KINDS)} (default phases)",
    )
    p.add_argument(
        "--trace-file",
        metavar="FILE",
        help="replay a CSV trace with header t_ms,acc_floor,slo_ms instead",
    )
    p.add_argument("--queries", type=int, default=300, help="number of queries (default 300)")
    p.add_argument("--seed", type=int, default=0, help="trace and image seed (default 0)")
    p.add_argument(
        "--objective",
        choices=["latency", "accuracy"],
        default="latency",
        help="latency: fastest SubNet meeting the floor; accuracy: most accurate "
        "meeting the SLO (default latency)",
    )
    p.add_argument(
        "--policies",
        default=DEFAULT_POLICIES,
        help=f"comma-separated policies (default {DEFAULT_POLICIES}; also "
        "static_subgraph, last_subnet; the oracle bound is in `sushi simulate`)",
    )
    p.add_argument(
        "--update-every",
        type=int,
        default=16,
        help="sushi re-selects the SubGraph every N queries (default 16)",
    )
    p.add_argument("--out", type=Path, default=Path("build/demo"), help="output directory")
    add_trace_gen_args(p, phase_len=60.0)
    p.set_defaults(func=run)


def _table(report: dict) -> str:
    head = (
        f"{'policy':16s} {'mean ms':>9s} {'p99 ms':>9s} {'SLO':>6s} {'acc %':>6s} "
        f"{'off-chip B':>11s} {'energy mJ':>10s} {'PB hit B':>9s} {'updates':>7s}"
    )
    lines = [head, "-" * len(head)]
    for name, p in report["policies"].items():
        lines.append(
            f"{name:16s} {p['mean_latency_ms']:9.5f} {p['p99_latency_ms']:9.5f} "
            f"{p['slo_attainment']:6.3f} {p['mean_accuracy']:6.2f} {p['offchip_bytes']:11d} "
            f"{p['offchip_energy_mj']:10.6f} {p['pb_hit_bytes']:9d} {p['cache_updates']:7d}"
        )
    return "\n".join(lines)


def build_trace(args: argparse.Namespace, setup) -> tuple[list, dict]:  # noqa: ANN001
    from ..cli import UserError
    from ..traces import generate, read_csv

    if args.queries < 1:
        raise UserError(f"--queries must be >= 1 (got {args.queries})")
    if args.trace_file:
        trace = read_csv(args.trace_file)[: args.queries]
        return trace, {"file": str(args.trace_file)}
    trace = generate(
        args.trace, args.queries, args.seed, setup.scale(), args.arrivals, args.load, args.phase_len
    )
    return trace, {
        "kind": args.trace,
        "seed": args.seed,
        "arrivals": args.arrivals,
        "load": args.load,
        "phase_len": args.phase_len,
    }


def run(args: argparse.Namespace) -> int:
    from sushi_tb.runner import run as run_tb

    from ..cli import UserError
    from ..digits.space import DigitsSpace
    from ..policies import POLICIES
    from ..simulate import Setup
    from ..stack import report_from_results, write_plots

    cfg = accel_from_args(args)
    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    bad = [x for x in policies if x not in POLICIES]
    if bad or not policies:
        raise UserError(
            f"unknown policy {', '.join(bad) or '(none)'}; choose from {', '.join(POLICIES)}"
        )
    if "oracle" in policies:
        raise UserError(
            "the oracle is a cost-model bound, not a schedule the RTL can run; "
            "compare against it with `sushi simulate --supernet digits`"
        )
    space = DigitsSpace()
    setup = Setup.build(space, cfg)
    trace, source = build_trace(args, setup)
    args.out.mkdir(parents=True, exist_ok=True)
    raw_path = (args.out / "rtl_results.json").resolve()
    raw_path.unlink(missing_ok=True)
    job = {
        "policies": policies,
        "objective": args.objective,
        "seed": args.seed,
        "trace": [[q.t_ms, q.acc_floor, q.slo_ms] for q in trace],
        "update_every": args.update_every,
        "window": 2 * args.update_every,
        "drift_len": max(2, args.update_every // 2),
        "out": str(raw_path),
        "progress": True,
    }
    print(
        f"SUSHI stack: {len(trace)} queries x {len(policies)} policies on the {cfg.name} "
        f"RTL ({cfg.rows}x{cfg.cols} array, PB {cfg.pb_bytes} B) under {args.sim}"
    )
    tests, failed, xml = run_tb(
        args.sim,
        "sushi_sim",
        cfg,
        "stack_tb",
        env={"SUSHI_STACK_JOB": json.dumps(job), "COCOTB_LOG_LEVEL": "WARNING"},
        test_dir=args.out.resolve(),
        quiet=False,
    )
    if not raw_path.exists():
        raise UserError(f"the RTL run failed before writing results; see {xml}")
    raw = json.loads(raw_path.read_text())
    report = report_from_results(raw, cfg, trace, source, args, space)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    files = write_plots(raw, trace, args.out)
    print(_table(report))
    print(
        f"queries {report['queries']} per policy, mismatches {report['mismatches']}, "
        f"cost-model error max {report['model_error_max']:.3%} "
        f"(mean {report['model_error_mean']:.3%}), co-sim {report['cosim_cycles_per_s']:.0f} "
        f"cycles/s vs free-run {report['freerun_cycles_per_s']:.0f} "
        f"({report['cosim_cycles_per_s'] / report['freerun_cycles_per_s']:.2f}x)"
    )
    for note in report["notes"]:
        print(f"note: {note}")
    print(f"wrote {args.out / 'report.json'} and {', '.join(str(f) for f in files)}")
    if failed or report["mismatches"]:
        raise UserError(f"{report['mismatches']} results differ from the numpy reference")
    return 0
