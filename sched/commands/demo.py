"""``sushi demo``: the main job. SushiSched serves a query stream on the cycle-accurate RTL (or,
with ``--backend golden``, on the ISA golden model without a simulator)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..cli_args import (
    add_preset_args,
    check_out_dir,
    check_trace_gen_args,
    config_from_args,
    sim_from_args,
)
from .trace import add_trace_gen_args

DEFAULT_POLICIES = "sushi,no_pb,static_subnet"
BACKENDS = ("rtl", "golden")


def register(sub: argparse._SubParsersAction) -> None:
    from ..traces import KINDS

    p = sub.add_parser(
        "demo",
        help="the main job: serve a query stream on the RTL simulation (or the golden model)",
        description="SushiSched serves a stream of digits queries (each with its accuracy floor "
        "and latency SLO) on the cycle-accurate SushiAccel RTL (cocotb on Verilator or Icarus). "
        "For every query the policy picks a SubNet of the trained digits SuperNet, updates the "
        "Persistent Buffer when it decides to, runs the compiled program, and the host checks "
        "the logits bit-exactly against the numpy reference. Writes OUT/report.json and PNG "
        "plots and prints a summary table. With --backend golden the same server runs on the "
        "ISA golden model: bit-exact results in seconds, latencies from the cost model.",
    )
    add_preset_args(p, default="default", sim=True)
    p.add_argument(
        "--backend",
        default="rtl",
        metavar="BACKEND",
        help="rtl: the cycle-accurate RTL under --sim (default); golden: the ISA golden model "
        "(no simulator; cycles are the cost model's)",
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
        "static_subgraph, last_subnet, clairvoyant; the infinite_pb ceiling is in "
        "`sushi simulate`)",
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
    from ..cli_args import read_trace_file
    from ..traces import generate

    if args.queries < 1:
        raise UserError(f"--queries must be >= 1 (got {args.queries})")
    if args.trace_file:
        trace = read_trace_file(args.trace_file)[: args.queries]
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
    from tqdm import tqdm

    from ..cli import UserError
    from ..digits.space import DigitsSpace
    from ..policies import POLICIES
    from ..runtime.stream import StreamJob, report_from_results, write_plots
    from ..simulate import Setup

    cfg = config_from_args(args)
    if args.backend not in BACKENDS:
        raise UserError(f"unknown backend {args.backend!r}; choose one of {', '.join(BACKENDS)}")
    sim = sim_from_args(args)
    policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    bad = [x for x in policies if x not in POLICIES]
    if bad or not policies:
        raise UserError(
            f"unknown policy {', '.join(bad) or '(none)'}; choose from {', '.join(POLICIES)}"
        )
    if "infinite_pb" in policies:
        raise UserError(
            "infinite_pb is a cost-model ceiling, not a schedule the RTL can run; "
            "compare against it with `sushi simulate --supernet digits`"
        )
    if args.update_every < 1:
        raise UserError(f"--update-every must be >= 1 (got {args.update_every})")
    check_trace_gen_args(args)
    check_out_dir(args.out, "--out")
    space = DigitsSpace()
    setup = Setup.build(space, cfg)
    trace, source = build_trace(args, setup)
    args.out.mkdir(parents=True, exist_ok=True)
    job = StreamJob(
        policies=policies,
        trace=[(q.t_ms, q.acc_floor, q.slo_ms) for q in trace],
        objective=args.objective,
        seed=args.seed,
        update_every=args.update_every,
        window=2 * args.update_every,
        drift_len=max(2, args.update_every // 2),
    )
    where = f"the {cfg.name} RTL" if args.backend == "rtl" else f"the {cfg.name} golden model"
    print(
        f"SUSHI stack: {len(trace)} queries x {len(policies)} policies on {where} "
        f"({cfg.rows}x{cfg.cols} array, PB {cfg.pb_bytes} B)"
        + (f" under {sim}" if args.backend == "rtl" else "")
    )
    log = args.out / "sim.log"
    if args.backend == "rtl":
        from ..runtime.rtl import build as build_rtl

        try:
            built = build_rtl(cfg, sim)  # cached per configuration; a first build takes minutes
        except RuntimeError as e:
            raise UserError(str(e)) from None
        print(f"simulator model: {built} (build log there); simulator output: {log}")
    bar = tqdm(total=len(trace) * len(policies), desc=f"serving on {args.backend}", unit="query")
    t0 = time.perf_counter()
    try:
        if args.backend == "rtl":
            from ..runtime.rtl import RtlError, run_on_rtl

            try:
                raw = run_on_rtl(cfg, job, sim=sim, workdir=args.out, log_file=log, progress=bar)
            except RtlError as e:
                raise UserError(str(e).splitlines()[0]) from None
        else:
            from ..runtime.golden import GoldenBackend

            raw = job(GoldenBackend(cfg), bar)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    (args.out / "results.json").write_text(json.dumps(raw))
    report = report_from_results(raw, cfg, trace, source, args, space)
    report["wall_seconds"] = wall
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    files = write_plots(raw, trace, args.out)
    print(_table(report))
    summary = f"queries {report['queries']} per policy, mismatches {report['mismatches']}"
    if report["model_error_max"] is not None:
        summary += (
            f", cost-model error max {report['model_error_max']:.3%} "
            f"(mean {report['model_error_mean']:.3%})"
        )
    if report["cosim_cycles_per_s"] is not None:
        summary += (
            f", co-sim {report['cosim_cycles_per_s']:.0f} cycles/s vs free-run "
            f"{report['freerun_cycles_per_s']:.0f} "
            f"({report['cosim_cycles_per_s'] / report['freerun_cycles_per_s']:.2f}x)"
        )
    else:
        summary += f", served in {raw['serve_seconds']:.1f} s"
    print(summary)
    for note in report["notes"]:
        print(f"note: {note}")
    print(f"wrote {args.out / 'report.json'} and {', '.join(str(f) for f in files)}")
    if report["mismatches"]:
        raise UserError(f"{report['mismatches']} results differ from the numpy reference")
    return 0
