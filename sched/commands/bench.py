"""``sushi bench``: measure the RTL (cycles, utilisation) and write JSON under build/bench/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from ..cli_args import add_preset_args, check_preset, config_from_args, sim_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the RTL simulation",
        description="Run fixed GEMM shapes on the RTL simulation of each preset and write "
        "OUT/gemm.json: one record per run with measured cycles (first input accepted to last "
        "output produced), ideal_cycles = ceil(M*K*N/(rows*cols)) and utilization = ideal/cycles. "
        "Then run one GEMM per weight source (PB, off-chip, split) on the whole accelerator and "
        "write OUT/memory.json with cycles, roofline_cycles = max(compute, off-chip bytes / "
        "bandwidth), efficiency = roofline/cycles and the off-chip weight bytes, measured and "
        "expected from the shapes.",
    )
    add_preset_args(
        p, None, sim=True, multiple=True, preset_help="preset to measure; default: tiny and default"
    )
    p.add_argument("--out", type=Path, default=Path("build/bench"), help="output directory")
    p.add_argument(
        "--calibration",
        choices=("yes", "no", "only"),
        default="yes",
        help="also (yes) or only (only) run the calibration at OFA-ResNet50 layer shapes on the "
        "zcu104 preset: 1x1 layers as GEMMs, 3x3 layers as CONVs with their outputs checked "
        "bit-exactly (OUT/calibration.json; about half an hour, the first Verilator build "
        "takes longer); default yes",
    )
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


def _memory_table(records: list[dict]) -> str:
    head = (
        f"{'preset':8s} {'M':>4s} {'K':>4s} {'N':>4s} {'source':8s} {'cycles':>7s} "
        f"{'roofline':>8s} {'eff':>5s} {'offchip_w':>9s} {'expected':>9s} {'pb_bytes':>8s}"
    )
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(
            f"{r['preset']:8s} {r['M']:4d} {r['K']:4d} {r['N']:4d} {r['weight_source']:8s} "
            f"{r['cycles']:7d} {r['roofline_cycles']:8d} {r['efficiency']:5.3f} "
            f"{r['offchip_weight_bytes']:9d} {r['expected_offchip_weight_bytes']:9d} "
            f"{r['pb_bytes']:8d}"
        )
    return "\n".join(lines)


def _calibration_table(records: list[dict]) -> str:
    head = (
        f"{'layer':11s} {'M':>5s} {'K':>5s} {'N':>5s} {'rtl':>8s} {'model':>8s} {'error':>7s}  kind"
    )
    lines = [head, "-" * len(head)]
    for r in records:
        lines.append(
            f"{r['layer']:11s} {r['M']:5d} {r['K']:5d} {r['N']:5d} {r['rtl_cycles']:8d} "
            f"{r['model_cycles']:8d} {100 * r['error']:6.2f}%  {r['kind']}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..runtime.bench import bench_calibration, bench_conv, bench_gemm, bench_memory

    sim = sim_from_args(args)
    presets = [check_preset(p) for p in args.preset or ["tiny", "default"]]
    cfgs = {name: config_from_args(args, name) for name in presets}  # bad input fails first
    if args.calibration != "no":
        from sushi_hw.config import PRESETS

        cal = bench_calibration(PRESETS["zcu104"], sim, args.out / "parts")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "calibration.json").write_text(json.dumps(cal, indent=1))
        print(_calibration_table(cal))
        print(f"wrote {args.out / 'calibration.json'}")
        if args.calibration == "only":
            return 0

    gemm: list[dict] = []
    memory: list[dict] = []
    conv: list[dict] = []
    jobs = [(name, kind) for name in presets for kind in ("gemm", "memory", "conv")]
    for name, kind in tqdm(jobs, desc="bench", unit="run"):
        cfg = cfgs[name]
        if kind == "gemm":
            gemm += bench_gemm(cfg, sim, args.out / "parts")
        elif kind == "memory":
            memory += bench_memory(cfg, sim, args.out / "parts")
        elif cfg.conv:  # configurations with the convolution hardware
            conv += bench_conv(cfg, sim, args.out / "parts")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in (("gemm", gemm), ("memory", memory), ("conv", conv)):
        (args.out / f"{name}.json").write_text(json.dumps(records, indent=1))
    print(_table(gemm))
    print()
    print(_memory_table(memory))
    print()
    print(_conv_table(conv))
    print(f"wrote gemm.json, memory.json and conv.json in {args.out}")
    return 0


def _conv_table(records: list[dict]) -> str:
    head = (
        f"{'preset':14s} {'HxWxCi->Co':>14s} {'k':>2s} {'s':>2s} {'source':8s} {'cycles':>7s} "
        f"{'ideal':>7s} {'util':>5s} {'act_B':>6s} {'im2col_B':>8s} {'model':>7s} {'err':>6s}"
    )
    lines = [head, "-" * len(head)]
    for r in records:
        shape = f"{r['H']}x{r['W']}x{r['C_in']}->{r['C_out']}"
        lines.append(
            f"{r['preset']:14s} {shape:>14s} {r['k']:2d} {r['stride']:2d} "
            f"{r['weight_source']:8s} {r['cycles']:7d} {r['ideal_cycles']:7d} "
            f"{r['utilization']:5.3f} {r['offchip_act_bytes']:6d} {r['im2col_bytes']:8d} "
            f"{r['model_cycles']:7d} {r['model_error']:+6.1%}"
        )
    return "\n".join(lines)
