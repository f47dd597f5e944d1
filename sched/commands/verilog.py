"""``sushi verilog``: write synthesizable Verilog for presets."""

from __future__ import annotations

import argparse
from pathlib import Path

from sushi_hw.config import PRESETS
from sushi_hw.generate import TOPS, generate_verilog

from ..cli_args import add_preset_args, config_from_args

#: largest off-chip memory the simulation top models (the HDL memory is a real array)
SIM_MEMORY_LIMIT = 16 << 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verilog",
        help="generate Verilog for one or more presets",
        description="Generate Verilog of every top-level design for the chosen presets into "
        "OUT/<preset>/<top>.v. Files are regenerated only when the config or RTL changes.",
    )
    add_preset_args(p, None, multiple=True, preset_help="preset to generate; default: all")
    p.add_argument(
        "--top",
        action="append",
        choices=sorted(TOPS),
        help="top-level design (repeatable; default: all)",
    )
    p.add_argument("--out", type=Path, default=Path("build/verilog"), help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name in args.preset or list(PRESETS):
        cfg = config_from_args(args, name)
        for top in args.top or list(TOPS):
            if top == "sushi_sim" and cfg.mem_bytes > SIM_MEMORY_LIMIT:
                print(
                    f"{name:8s} {top:12s} skipped: its memory model would hold "
                    f"{cfg.mem_bytes >> 20} MiB (an analytical preset; lower mem_bytes to "
                    "simulate it)"
                )
                continue
            path = generate_verilog(cfg, top, args.out / name)
            print(f"{name:8s} {top:12s} -> {path}  ({path.stat().st_size // 1024} KiB)")
    return 0
