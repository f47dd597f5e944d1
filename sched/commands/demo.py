"""``sushi demo``: the main job. SushiSched serves a query stream on the cycle-accurate RTL (or,
with ``--backend golden``, on the ISA golden model without a simulator)."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from ..cli_args import (
    add_preset_args,
    check_out_dir,
    check_trace_gen_args,
    config_from_args,
    sim_from_args,
)
from ..runtime.models import DEFAULT_MODEL, MODELS
from .trace import add_trace_gen_args

DEFAULT_POLICIES = "sushi,no_pb,static_subnet,static_subgraph,last_subnet"
DEFAULT_TRACES = "phases,walk"
OBJECTIVES = ("latency", "accuracy")
BACKENDS = ("rtl", "golden")


def register(sub: argparse._SubParsersAction) -> None:
    from ..traces import KINDS

    p = sub.add_parser(
        "demo",
        help="the main job: serve query streams on the RTL simulation (or the golden model)",
        description="SushiSched serves streams of digits queries (each with its accuracy floor "
        "and latency SLO) on the cycle-accurate SushiAccel RTL (cocotb on Verilator or Icarus). "
        "For every query the policy picks a SubNet of the trained SuperNet (by default the "
        "residual CNN, run from image to logits on chip), updates the Persistent Buffer when "
        "it decides to, runs the compiled program, and the host checks the logits "
        "bit-exactly against the numpy reference. Every (trace, objective) pair is one run of "
        "every policy, all in one simulator session. Writes OUT/report.json (all runs), "
        "OUT/<trace>-<objective>/report.json with PNG plots, and prints one table per run. "
        "With --backend golden the same server runs on the ISA golden model: bit-exact "
        "results in seconds, latencies from the cost model.",
    )
    add_preset_args(p, default="default", sim=True)
    p.add_argument(
        "--supernet",
        default=DEFAULT_MODEL,
        metavar="NAME",
        help=f"the trained SuperNet to serve: {', '.join(MODELS)} (default {DEFAULT_MODEL}; "
        "the CNN needs a preset with conv hardware)",
    )
    p.add_argument(
        "--backend",
        default="rtl",
        metavar="BACKEND",
        help="rtl: the cycle-accurate RTL under --sim (default); golden: the ISA golden model "
        "(no simulator; cycles are the cost model's)",
    )
    p.add_argument(
        "--trace",
        default=DEFAULT_TRACES,
        metavar="KIND[,KIND]",
        help=f"generated traces, comma-separated: {', '.join(KINDS)} (default {DEFAULT_TRACES}: "
        "requirement phases, and a random walk of slowly drifting requirements)",
    )
    p.add_argument(
        "--trace-file",
        metavar="FILE",
        help="replay a CSV trace with header t_ms,acc_floor,slo_ms instead",
    )
    p.add_argument(
        "--queries", type=int, default=300, help="queries per trace and policy (default 300)"
    )
    p.add_argument("--seed", type=int, default=0, help="trace and image seed (default 0)")
    p.add_argument(
        "--objective",
        choices=[*OBJECTIVES, "both"],
        default="both",
        help="latency: fastest SubNet meeting the floor; accuracy: most accurate "
        "meeting the SLO; both: one run each (default both)",
    )
    p.add_argument(
        "--policies",
        default=DEFAULT_POLICIES,
        help=f"comma-separated policies (default {DEFAULT_POLICIES}; also clairvoyant; the "
        "infinite_pb ceiling is in `sushi simulate`)",
    )
    p.add_argument(
        "--update-every",
        type=int,
        default=16,
        help="sushi re-selects the SubGraph every N queries (default 16)",
    )
    p.add_argument(
        "--procs",
        type=int,
        default=None,
        help="simulator processes side by side, each serving some of the runs (default: one "
        "per CPU core, at most one per run)",
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


def build_traces(args: argparse.Namespace, setup) -> list[tuple[str, list, dict]]:  # noqa: ANN001
    """``(name, trace, source)`` per trace asked for."""
    from ..cli import UserError
    from ..cli_args import read_trace_file
    from ..traces import KINDS, generate

    if args.queries < 1:
        raise UserError(f"--queries must be >= 1 (got {args.queries})")
    if args.trace_file:
        trace = read_trace_file(args.trace_file)[: args.queries]
        return [(Path(args.trace_file).stem, trace, {"file": str(args.trace_file)})]
    kinds = [k.strip() for k in args.trace.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds or len(set(kinds)) != len(kinds):
        raise UserError(
            f"--trace {args.trace!r}: give distinct kinds from {', '.join(KINDS)}, comma-separated"
        )
    out = []
    for kind in kinds:
        trace = generate(
            kind, args.queries, args.seed, setup.scale(), args.arrivals, args.load, args.phase_len
        )
        source = {"kind": kind, "seed": args.seed, "arrivals": args.arrivals,
                  "load": args.load, "phase_len": args.phase_len}  # fmt: skip
        out.append((kind, trace, source))
    return out


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..cli import UserError
    from ..policies import POLICIES
    from ..runtime.models import served_model
    from ..runtime.server import ServeError
    from ..runtime.stream import (
        DemoJob,
        StreamJob,
        layer_plot,
        report_from_results,
        summary_report,
        write_plots,
    )
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
            f"compare against it with `sushi simulate --supernet {args.supernet}`"
        )
    if args.update_every < 1:
        raise UserError(f"--update-every must be >= 1 (got {args.update_every})")
    check_trace_gen_args(args)
    check_out_dir(args.out, "--out")
    try:
        model = served_model(args.supernet, cfg)
    except ServeError as e:
        raise UserError(str(e)) from None
    space = model.space
    setup = Setup.build(space, cfg)
    traces = build_traces(args, setup)
    objectives = OBJECTIVES if args.objective == "both" else (args.objective,)
    runs = [(f"{name}-{obj}", trace, source, obj)
            for name, trace, source in traces for obj in objectives]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    job = DemoJob(
        [
            StreamJob(
                policies=policies,
                supernet=model.name,
                trace=[(q.t_ms, q.acc_floor, q.slo_ms) for q in trace],
                objective=obj,
                seed=args.seed,
                update_every=args.update_every,
                window=2 * args.update_every,
                drift_len=max(2, args.update_every // 2),
            )
            for _, trace, _, obj in runs
        ]
    )
    where = f"the {cfg.name} RTL" if args.backend == "rtl" else f"the {cfg.name} golden model"
    total = sum(len(t) for _, t, _, _ in runs) * len(policies)
    print(
        f"SUSHI stack: {model.name}, {len(runs)} runs ({', '.join(r[0] for r in runs)}) x "
        f"{len(policies)} policies, {total} queries on {where} "
        f"({cfg.rows}x{cfg.cols} array, PB {cfg.pb_bytes} B)"
        + (f" under {sim}" if args.backend == "rtl" else "")
    )
    procs = args.procs or min(len(runs), os.cpu_count() or 1)
    if procs < 1:
        raise UserError(f"--procs must be >= 1 (got {args.procs})")
    procs = min(procs, len(runs))
    log = args.out / ("sim.log" if procs == 1 else "sim-*.log")
    if args.backend == "rtl":
        from ..runtime.rtl import build as build_rtl

        try:
            built = build_rtl(cfg, sim)  # cached per configuration; a first build takes minutes
        except RuntimeError as e:
            raise UserError(str(e)) from None
        print(f"simulator model: {built} (build log there); simulator output: {log}")
    bar = tqdm(total=total, desc=f"serving on {args.backend}", unit="query")
    t0 = time.perf_counter()
    try:
        if args.backend == "rtl":
            from ..runtime.rtl import RtlError

            try:
                raws = _serve_on_rtl(cfg, job, sim, args.out, procs, bar)
            except RtlError as e:
                raise UserError(str(e).splitlines()[0]) from None
        else:
            from ..runtime.golden import GoldenBackend

            raws = job(GoldenBackend(cfg), bar)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    reports, files = [], []
    for (name, trace, source, obj), raw in zip(runs, raws, strict=True):
        d = args.out / name
        d.mkdir(exist_ok=True)
        (d / "results.json").write_text(json.dumps(raw))
        args.objective = obj
        report = report_from_results(raw, cfg, trace, source, args, space)
        (d / "report.json").write_text(json.dumps(report, indent=1))
        reports.append(report)
        files += write_plots(raw, trace, d)
        files += [f for f in [layer_plot(raw, setup, d)] if f]
        print(f"\n{name}: {len(trace)} queries per policy")
        print(_table(report))
        for note in report["notes"]:
            print(f"note: {note}")
    summary = summary_report(reports, wall)
    (args.out / "report.json").write_text(json.dumps(summary, indent=1))
    line = f"\nmismatches {summary['mismatches']}"
    if summary["model_error_max"] is not None:
        line += (
            f", cost-model error max {summary['model_error_max']:.3%} over "
            f"{summary['model_points']} (SubNet, PB) points"
        )
    if summary["cosim_cycles_per_s"] is not None:
        line += (
            f", co-sim {summary['cosim_cycles_per_s']:.0f} cycles/s vs free-run "
            f"{summary['freerun_cycles_per_s']:.0f} ({summary['cosim_ratio']:.2f}x)"
        )
    print(line + f", {wall:.0f} s serving")
    print(f"wrote {args.out / 'report.json'} and {len(files)} plots under {args.out}/")
    if summary["mismatches"]:
        raise UserError(f"{summary['mismatches']} results differ from the numpy reference")
    return 0


def _serve_on_rtl(cfg, job, sim: str, out: Path, procs: int, bar) -> list[dict]:  # noqa: ANN001
    """``job``'s runs on ``procs`` simulator processes side by side (run i on process
    i % procs, each with its own work directory and log); results in the runs' order."""
    from concurrent.futures import ThreadPoolExecutor

    from ..runtime.rtl import run_on_rtl
    from ..runtime.stream import DemoJob

    if procs == 1:
        return run_on_rtl(cfg, job, sim=sim, workdir=out, log_file=out / "sim.log", progress=bar)
    parts = [DemoJob(job.jobs[i::procs]) for i in range(procs)]

    def one(i: int) -> list[dict]:
        d = out / f"sim-{i}"
        return run_on_rtl(cfg, parts[i], sim=sim, workdir=d, log_file=out / f"sim-{i}.log",
                          progress=bar)  # fmt: skip

    with ThreadPoolExecutor(procs) as pool:
        got = list(pool.map(one, range(procs)))
    return [got[i % procs][i // procs] for i in range(len(job.jobs))]
