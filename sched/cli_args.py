"""Shared argument handling for the sched subcommands."""

from __future__ import annotations

import argparse

from sushi_hw.config import PRESETS, AccelConfig, make_config, parse_overrides

from .supernet import SuperNet, get_supernet, supernet_names


def add_accel_args(p: argparse.ArgumentParser, default: str | None = "zcu104") -> None:
    p.add_argument(
        "--accel",
        default=default,
        metavar="PRESET",
        help=f"accelerator preset ({', '.join(PRESETS)}); default {default}",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one AccelConfig field of the preset, e.g. --set pb_bytes=0 (repeatable)",
    )


def accel_from_args(args: argparse.Namespace) -> AccelConfig:
    from .cli import UserError

    if args.accel not in PRESETS:
        raise UserError(
            f"unknown accelerator preset {args.accel!r}; choose one of {', '.join(PRESETS)}"
        )
    return make_config(args.accel, **parse_overrides(args.overrides))


def supernet_from_name(name: str) -> SuperNet:
    from .cli import UserError

    try:
        return get_supernet(name)
    except ValueError as e:
        raise UserError(str(e)) from None


def supernet_help() -> str:
    return f"SuperNet space: {', '.join(supernet_names())}"
