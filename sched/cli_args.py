"""Shared argument handling for the sched subcommands.

One spelling for one thing across the CLI: ``--preset`` (an accelerator preset), ``--set
FIELD=VALUE`` (override a field of it), ``--sim`` (the RTL simulator), all added by
:func:`add_preset_args` and read back by :func:`config_from_args` / :func:`sim_from_args`, which
turn a bad value into a one-line :class:`~sushi_sched.cli.UserError`.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

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
        cfg = make_config(name, **parse_overrides(getattr(args, "overrides", [])))
    except ConfigError as e:
        raise UserError(str(e)) from None
    if not math.isfinite(cfg.clock_mhz):
        raise UserError(f"config {cfg.name!r}: field 'clock_mhz' = {cfg.clock_mhz}: must be finite")
    return cfg


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


# ---- output paths and traces: checked before any work starts ---------------------------------


def _nearest_existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_dir(path: str | Path, option: str, shown: Path | None = None) -> Path:
    """``path`` is (or can be made) a writable directory: made now, so that a bad ``--out``
    fails in one line before the work rather than with a traceback after it."""
    from .cli import UserError

    path = Path(path)
    what = f"{option} {shown if shown is not None else path}"
    base = _nearest_existing(path)
    if base.exists() and not base.is_dir():
        raise UserError(f"{what}: {base} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{what}: cannot create the directory {path} ({e.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{what}: the directory {path} is not writable")
    return path


def check_out_file(path: str | Path, option: str) -> Path:
    """``path`` can be written as a file: not a directory, its directory exists or can be made
    and is writable (tried now, before the work)."""
    from .cli import UserError

    path = Path(path)
    if path.is_dir() or str(path).endswith(os.sep):
        raise UserError(f"{option} {path}: is a directory; give a file name")
    check_out_dir(path.parent, option, shown=path)
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as e:
        raise UserError(f"{option} {path}: cannot write the file ({e.strerror})") from None
    if not existed:
        path.unlink()
    return path


def check_trace_gen_args(args: argparse.Namespace) -> None:
    """``--phase-len`` (a mean in queries: at least 1) and ``--seed`` (numpy's: not negative)."""
    from .cli import UserError

    phase_len = getattr(args, "phase_len", None)
    if phase_len is not None and not (math.isfinite(phase_len) and phase_len >= 1):
        raise UserError(f"--phase-len must be a number of queries >= 1 (got {phase_len:g})")
    seed = getattr(args, "seed", None)
    if seed is not None and seed < 0:
        raise UserError(f"--seed must be >= 0 (got {seed})")


def read_trace_file(path: str | Path, option: str = "--trace-file") -> list:
    """The queries of a CSV trace (:func:`~sushi_sched.traces.read_csv`), with the problems a
    hand-made file has named: not text, a byte-order mark, and accuracy floors written as
    fractions (0.7 for 70 %: the floors are percent, 0..100)."""
    from .cli import UserError
    from .traces import read_csv

    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path}: is a directory, not a CSV file")
    if not path.is_file():
        raise UserError(f"{option} {path}: the trace file does not exist")
    try:
        head = path.read_bytes()[:4096]
    except OSError as e:
        raise UserError(f"{option} {path}: cannot read it ({e.strerror})") from None
    if head.startswith(b"\xef\xbb\xbf"):
        raise UserError(
            f"{option} {path}: starts with a UTF-8 byte-order mark; save it as plain UTF-8 "
            "(header t_ms,acc_floor,slo_ms)"
        )
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{option} {path}: not a text CSV file (it is not UTF-8)") from None
    if b"\0" in head:
        raise UserError(f"{option} {path}: not a text CSV file (it holds NUL bytes)")
    trace = read_csv(path)
    floors = [q.acc_floor for q in trace]
    if floors and max(floors) <= 1 and any(f > 0 for f in floors):
        raise UserError(
            f"{option} {path}: every acc_floor is at most 1 (e.g. {max(floors):g}): floors are "
            "percent (70 means 70 %), not fractions"
        )
    return trace
