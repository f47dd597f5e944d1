"""``sushi docs``: rewrite the README's and docs' generated sections (sushi_sched.docs)."""

from __future__ import annotations

import argparse

from ..docs import ROOT, SECTIONS, update


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "docs",
        help="regenerate the docs' tables from the code and docs/builds/",
        description="Rewrite the generated sections of the README and docs (timing constants "
        "from the cost model, FPGA build figures from docs/builds/*.json): "
        + ", ".join(f"{f} ({n})" for f, n in SECTIONS)
        + ".",
    )
    p.add_argument("--check", action="store_true", help="only report stale sections (exit 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stale = update(ROOT, check=args.check)
    for s in stale:
        print(f"{'stale' if args.check else 'updated'}: {s}")
    return 1 if (stale and args.check) else 0
