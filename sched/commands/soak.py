"""``sushi soak``: a long serving run with faults injected into the programs it runs
(:mod:`sushi_sched.runtime.soak`), on the golden model or the RTL; counts every query's
outcome and writes ``OUT/report.json``."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from ..cli_args import add_preset_args, check_out_dir, config_from_args, sim_from_args

BACKENDS = ("golden", "rtl")
DEFAULT_QUERIES = {"golden": 20_000, "rtl": 2_000}
DEFAULT_SUPERNET = "digits-cnn"


def register(sub: argparse._SubParsersAction) -> None:
    from ..runtime.soak import FAULT_KINDS

    p = sub.add_parser(
        "soak",
        help="a long serving run with faults injected (golden model or RTL)",
        description="Serve a seeded query stream through the server (the sushi policy; a "
        "share of the queries name a random SubNet) while faults are injected into the "
        "programs it runs: a corrupted command, a slow and stalling memory, a memory that "
        "stops answering (MEM_TIMEOUT), a reset and a stray doorbell in the middle of a "
        "program. Every query must end correct or as a reported failure, the host recovers "
        "(Server.recover) and the first query after each fault must be correct. Writes "
        "OUT/report.json (one entry per backend, kept across runs) and fails (exit 2) on any "
        "wrong or lost query or a fault that did not end as it must.",
    )
    add_preset_args(p, "default", sim=True)
    p.add_argument(
        "--backend", default="golden", help="golden (default; no simulator) or rtl (--sim)"
    )
    p.add_argument(
        "--queries",
        type=int,
        help=f"queries to serve (default {DEFAULT_QUERIES['golden']} on golden, "
        f"{DEFAULT_QUERIES['rtl']} on rtl)",
    )
    p.add_argument(
        "--fault-rate",
        type=float,
        default=0.1,
        help="probability that a program run (a query or a CACHE) gets a fault; none in the "
        "first query after one (default 0.1)",
    )
    p.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        metavar="KIND[,KIND]",
        help=f"fault kinds to draw from (default all: {','.join(FAULT_KINDS)})",
    )
    p.add_argument(
        "--supernet",
        default=DEFAULT_SUPERNET,
        help=f"the trained SuperNet served: digits-cnn or digits-mlp (default {DEFAULT_SUPERNET})",
    )
    p.add_argument("--seed", type=int, default=0, help="stream and fault seed (default 0)")
    p.add_argument("--out", type=Path, default=Path("build/soak"), help="output directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _summary(rep: dict) -> str:
    o = rep["outcomes"]
    faults = ", ".join(
        f"{k} {sum(v.values())}" + (f" ({v.get('cache', 0)} on CACHE)" if v.get("cache") else "")
        for k, v in rep["faults"].items()
    )
    lines = [
        f"faults injected: {rep['faults_total']} in {rep['program_runs']} program runs "
        f"({faults or 'none'})",
        f"outcomes: ok {o['ok']}, reported {o['reported']}, wrong {o['wrong']}, lost {o['lost']}",
        f"reported as: {', '.join(f'{k} {v}' for k, v in rep['errors_reported'].items()) or '-'}",
        f"recoveries {rep['recoveries']} ({rep['recoveries_with_reset']} with a reset); first "
        f"query after a fault: {rep['post_fault_ok']} of {rep['post_fault_queries']} ok; "
        f"CACHE runs {sum(rep['cache_runs'].values())}; weight image "
        + ("intact" if rep["weights_intact"] else "NOT intact or not checked"),
    ]
    if rep["faults_missed"]:
        lines.append(f"faults the program outran: {rep['faults_missed']}")
    lines += [f"unexpected: {u}" for u in rep["unexpected"][:10]]
    lines += [f"lost: {u}" for u in rep["lost_why"][:10]]
    lines += [f"note: {n}" for n in rep["notes"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..cli import UserError
    from ..runtime.models import served_model
    from ..runtime.server import ServeError
    from ..runtime.soak import FAULT_KINDS, SoakJob

    cfg = config_from_args(args)
    if args.backend not in BACKENDS:
        raise UserError(f"unknown backend {args.backend!r}; choose one of {', '.join(BACKENDS)}")
    sim = sim_from_args(args)
    queries = args.queries if args.queries is not None else DEFAULT_QUERIES[args.backend]
    if queries < 1:
        raise UserError(f"--queries must be >= 1 (got {queries})")
    if not (math.isfinite(args.fault_rate) and 0 <= args.fault_rate <= 1):
        raise UserError(f"--fault-rate must be a probability in [0, 1] (got {args.fault_rate:g})")
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad or not kinds or len(set(kinds)) != len(kinds):
        raise UserError(
            f"--faults {args.faults!r}: give distinct kinds from {', '.join(FAULT_KINDS)}, "
            "comma-separated"
        )
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 (got {args.seed})")
    check_out_dir(args.out, "--out")
    try:
        model = served_model(args.supernet, cfg)
    except ServeError as e:
        raise UserError(str(e)) from None
    job = SoakJob(queries, args.seed, args.fault_rate, model.name, tuple(kinds))
    where = f"the {cfg.name} golden model" if args.backend == "golden" else f"the {cfg.name} RTL"
    print(
        f"soak: {queries} queries of {model.name} on {where}"
        + (f" under {sim}" if args.backend == "rtl" else "")
        + f", faults ({', '.join(kinds)}) at rate {args.fault_rate:g} per program run, "
        f"seed {args.seed}"
    )
    name = "golden" if args.backend == "golden" else f"rtl-{sim}"
    if args.backend == "rtl":
        from ..runtime.rtl import build as build_rtl

        try:
            built = build_rtl(cfg, sim)  # cached per configuration; a first build takes minutes
        except RuntimeError as e:
            raise UserError(str(e)) from None
        print(f"simulator model: {built}; simulator output: {args.out / f'sim-{sim}.log'}")
    bar = tqdm(
        total=queries, desc=f"soak on {args.backend}", unit="query", disable=args.no_progress
    )
    t0 = time.perf_counter()
    try:
        if args.backend == "rtl":
            from ..runtime.rtl import RtlError, run_on_rtl

            try:
                rep = run_on_rtl(
                    cfg,
                    job,
                    sim=sim,
                    workdir=args.out / f"sim-{sim}",
                    log_file=args.out / f"sim-{sim}.log",
                    progress=bar,
                )
            except RtlError as e:
                raise UserError(str(e).splitlines()[0]) from None
        else:
            from ..runtime.golden import GoldenBackend

            rep = job(GoldenBackend(cfg), bar)
    finally:
        bar.close()
    rep["wall_seconds_total"] = time.perf_counter() - t0
    rep["command"] = (
        f"sushi soak --backend {args.backend} --queries {queries} --fault-rate "
        f"{args.fault_rate:g} --faults {','.join(kinds)} --supernet {model.name} --seed "
        f"{args.seed} --preset {cfg.name}" + (f" --sim {sim}" if args.backend == "rtl" else "")
    )
    path = args.out / "report.json"
    runs = {}
    if path.is_file():
        try:
            runs = json.loads(path.read_text()).get("runs", {})
        except (ValueError, AttributeError):
            runs = {}
    runs[name] = rep
    path.write_text(json.dumps({"runs": runs}, indent=1))
    print(_summary(rep))
    print(
        f"{'PASSED' if rep['passed'] else 'FAILED'} in {rep['wall_seconds_total']:.0f} s "
        f"({rep['queries_per_second']:.1f} queries/s serving); wrote {path} ({name})"
    )
    if not rep["passed"]:
        raise UserError(
            f"soak failed: {rep['outcomes']['wrong']} wrong, {rep['outcomes']['lost']} lost, "
            f"{len(rep['unexpected'])} unexpected outcomes (seed {args.seed}; see {path})"
        )
    return 0
