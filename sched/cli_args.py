"""Shared argument handling for the sched subcommands.

One spelling for one thing across the CLI: ``--preset`` (an accelerator preset), ``--set
FIELD=VALUE`` (override a field of it), ``--sim`` (the RTL simulator), all added by
:func:`add_preset_args` and read back by :func:`config_from_args` / :func:`sim_from_args`, which
turn a bad value into a one-line :class:`~sushi_sched.cli.UserError`.
"""

from __future__ import annotations

import argparse

from sushi_hw.config import PRESETS, AccelConfig, ConfigError, make_config, parse_overrides

from .supernet import SuperNet, get_supernet, supernet_names

SIMULATORS = ("verilator", "icarus")


def add_preset_args(
    p: argparse.ArgumentParser,
    default: str | None = "zcu104",
    *,
    sim: bool = False,
    multiple: bool = False,
    overrides: bool = True,
    preset_help: str | None = None,
) -> None:
    """``--preset`` (repeatable with ``multiple``), ``--set`` and, with ``sim``, ``--sim``.
    ``default`` may be ``argparse.SUPPRESS`` (the option is absent unless given)."""
    what = preset_help or "accelerator preset"
    shown = "" if default in (None, argparse.SUPPRESS) else f"; default {default}"
    p.add_argument(
        "--preset",
        default=default,
        action="append" if multiple else "store",
        metavar="PRESET",
        help=f"{what} ({', '.join(PRESETS)}){' (repeatable)' if multiple else ''}{shown}",
    )
    if overrides:
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="override one AccelConfig field of the preset, e.g. --set pb_bytes=0 (repeatable)",
        )
    if sim:
        p.add_argument(
            "--sim",
            default="verilator",
            metavar="SIM",
            help=f"RTL simulator ({', '.join(SIMULATORS)}; default verilator)",
        )


def check_preset(name: str) -> str:
    from .cli import UserError

    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return name


def config_from_args(args: argparse.Namespace, name: str | None = None) -> AccelConfig:
    """The preset ``name`` (default ``args.preset``) with ``args.overrides`` applied."""
    from .cli import UserError

    name = name if name is not None else args.preset
    if name is None:
        raise UserError("give --preset")
    check_preset(name)
    try:
        return make_config(name, **parse_overrides(getattr(args, "overrides", [])))
    except ConfigError as e:
        raise UserError(str(e)) from None


def sim_from_args(args: argparse.Namespace) -> str:
    from .cli import UserError

    if args.sim not in SIMULATORS:
        raise UserError(f"unknown simulator {args.sim!r}; choose one of {', '.join(SIMULATORS)}")
    return args.sim


def supernet_from_name(name: str) -> SuperNet:
    from .cli import UserError

    try:
        return get_supernet(name)
    except ValueError as e:
        raise UserError(str(e)) from None


def supernet_help() -> str:
    return f"SuperNet space: {', '.join(supernet_names())}"
