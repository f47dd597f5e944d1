"""``sushi``: the project's command line. Each subcommand lives in ``sushi_sched.commands.<name>``.

A command module exposes ``register(subparsers)`` which adds its parser and sets ``func``.
Errors meant for users are raised as :class:`UserError` (or ``ConfigError``/``ValueError`` from
validation) and printed without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from sushi_hw.config import ConfigError

from . import commands


class UserError(Exception):
    """A problem with the user's input; printed as ``sushi: error: ...`` with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sushi",
        description="SUSHI: SubGraph-Stationary serving of weight-shared SuperNets on SushiAccel.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    # OSError: a file or directory the user named cannot be read or written
    except (UserError, ConfigError, ValueError, OSError) as e:
        print(f"sushi: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sushi: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # `python -m sushi_sched.cli`: run the imported module's main, whose UserError is the one the
    # commands raise (this file as __main__ has a UserError class of its own)
    from sushi_sched.cli import main as _main

    sys.exit(_main())
