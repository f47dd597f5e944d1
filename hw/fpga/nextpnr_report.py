"""nextpnr's reports and logs -> the numbers of ``report.json``: resources, Fmax and timing,
the iCE40 LUT/FF split, slack histogram sums and critical paths (:mod:`.flow` runs the tools)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .boards import Board


class ToolError(RuntimeError):
    """A tool is missing or failed; the message says which and where its log is."""


#: keys of report.json, in order (the issue fixes them)
REPORT_KEYS = (
    "board",
    "device",
    "preset",
    "clock_mhz",
    "fmax_mhz",
    "timing_met",
    "luts",
    "ffs",
    "dsps",
    "brams",
    "sprams",
    "rows",
    "cols",
    "pb_bytes",
)


def used_available(util: Mapping[str, Any], cells: tuple[str, ...]) -> tuple[int, int]:
    used = avail = 0
    for c in cells:
        if c in util:
            used += int(util[c]["used"])
            avail += int(util[c]["available"])
    return used, avail


def parse_nextpnr_report(
    report: Mapping[str, Any], board: Board, log_text: str = ""
) -> dict[str, Any]:
    """Resources (used, available) and timing from nextpnr's ``--report`` JSON.

    On iCE40 a logic cell holds one LUT and one FF and nextpnr counts cells; the LUT and FF
    split is taken from the packer's summary in the log when ``log_text`` is given, else both
    are the logic cell count.
    """
    util = report.get("utilization", {})
    res = {
        k: used_available(util, board.resources.cells.get(k, ()))
        for k in ("luts", "ffs", "dsps", "brams", "sprams")
    }
    if board.family == "ice40" and log_text:
        split = ice40_lut_ff(log_text)
        if split is not None:
            res["luts"] = (split[0], res["luts"][1])
            res["ffs"] = (split[1], res["ffs"][1])
    fmax = report.get("fmax", {})
    if not fmax:
        raise ToolError("nextpnr report has no 'fmax' section (was a clock constrained?)")
    clocks = {
        name: (float(v["achieved"]), float(v["constraint"])) for name, v in sorted(fmax.items())
    }
    worst = min(clocks.values(), key=lambda ac: ac[0] / ac[1])
    return {
        "resources": res,
        "clocks": clocks,
        "fmax_mhz": round(worst[0], 2),
        "constraint_mhz": round(worst[1], 2),
        "timing_met": all(a >= c for a, c in clocks.values()),
    }


def ice40_lut_ff(log_text: str) -> tuple[int, int] | None:
    """LUT and FF counts from nextpnr-ice40's packer summary ("N LCs used as ...")."""
    counts: dict[str, int] = {}
    for line in log_text.splitlines():
        s = line.replace("Info:", "").strip()
        for key in (
            "LCs used as LUT4 only",
            "LCs used as LUT4 and DFF",
            "LCs used as DFF only",
            "LUTs merged into carry LCs",
        ):
            if s.endswith(key) and s.split()[0].isdigit():
                counts[key] = int(s.split()[0])
    if "LCs used as LUT4 and DFF" not in counts:
        return None
    both = counts["LCs used as LUT4 and DFF"]
    luts = counts.get("LCs used as LUT4 only", 0) + both
    luts += counts.get("LUTs merged into carry LCs", 0)
    ffs = both + counts.get("LCs used as DFF only", 0)
    return luts, ffs


def make_report(
    board: Board, preset_cfg, parsed: Mapping[str, Any], clock_mhz: float
) -> dict[str, Any]:
    res = parsed["resources"]
    rep = {
        "board": board.name,
        "device": board.device,
        "preset": preset_cfg.name,
        "clock_mhz": float(clock_mhz),
        "fmax_mhz": float(parsed["fmax_mhz"]),
        "timing_met": bool(parsed["timing_met"]),
        "luts": res["luts"][0],
        "ffs": res["ffs"][0],
        "dsps": res["dsps"][0],
        "brams": res["brams"][0],
        "sprams": res["sprams"][0],
        "rows": preset_cfg.rows,
        "cols": preset_cfg.cols,
        "pb_bytes": preset_cfg.pb_bytes,
    }
    assert tuple(rep) == REPORT_KEYS
    return rep


def check_report(rep: Mapping[str, Any]) -> None:
    """Raise ValueError unless ``rep`` has exactly REPORT_KEYS with the right types."""
    types = {
        "board": str,
        "device": str,
        "preset": str,
        "clock_mhz": float,
        "fmax_mhz": float,
        "timing_met": bool,
    }
    if set(rep) != set(REPORT_KEYS):
        raise ValueError(f"report keys {sorted(rep)} != {sorted(REPORT_KEYS)}")
    for k in REPORT_KEYS:
        want = types.get(k, int)
        v = rep[k]
        if not isinstance(v, want) or (want is int and isinstance(v, bool)):
            raise ValueError(f"report field {k!r} = {v!r} is not {want.__name__}")
        if want is int and v < 0:
            raise ValueError(f"report field {k!r} = {v} is negative")


def utilization_from_log(text: str) -> dict[str, dict[str, int]]:
    """nextpnr's "Device utilisation" lines (``CELL: used/ available pct%``)."""
    util: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        s = line.replace("Info:", "").strip()
        if ":" in s and "/" in s and s.endswith("%"):
            cell, rest = s.split(":", 1)
            try:
                used, avail = rest.split("/")
                util[cell.strip()] = {
                    "used": int(used),
                    "available": int(avail.split()[0]),
                }
            except ValueError:
                continue
    return util


def slack_summary(log_text: str) -> dict[str, Any] | None:
    """The last "Slack histogram" of a nextpnr log, summed: endpoints, those with negative
    slack, and their total negative slack (ns). nextpnr prints bins of its own width with
    ``*`` per unit and ``+`` for a remainder (taken as half a unit), so the sums are estimates.
    One critical path moves with the seed by several MHz; these sums move less, so they judge
    a change that shortens many paths at once. None if the log has no histogram."""
    at = log_text.rfind("Slack histogram")
    if at < 0:
        return None
    text = log_text[at:]
    unit = re.search(r"\* represents (\d+) endpoint", text)
    if not unit:
        return None
    n_unit = int(unit.group(1))
    total = failing = tns_ps = 0.0
    for lo, hi, stars, plus in re.findall(r"\[\s*(-?\d+),\s*(-?\d+)\) \|(\**)(\+?)", text):
        lo_ps, hi_ps = int(lo), int(hi)
        n = len(stars) * n_unit + (n_unit / 2 if plus else 0)
        total += n
        if lo_ps < 0:  # the part of the bin below zero, its slack at the part's midpoint
            part = 1.0 if hi_ps <= 0 else -lo_ps / (hi_ps - lo_ps)
            failing += n * part
            tns_ps += n * part * (lo_ps + min(hi_ps, 0)) / 2
    return {
        "endpoints": round(total),
        "failing_endpoints": round(failing),
        "negative_slack_ns": round(tns_ps / 1000, 1),
    }


def critical_paths(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """From/to cells and total delay of each clock's critical path."""
    out = []
    for cp in report.get("critical_paths", []):
        path = cp.get("path", [])
        if not path:
            continue
        delay = sum(float(seg.get("delay", 0.0)) for seg in path)
        out.append(
            {
                "from": cp.get("from"),
                "to": cp.get("to"),
                "delay_ns": round(delay, 3),
                "start": path[0].get("from", {}).get("cell"),
                "end": path[-1].get("to", {}).get("cell"),
                "segments": [
                    {
                        "type": s.get("type"),
                        "net": s.get("net"),
                        "from": s.get("from", {}).get("cell"),
                        "to": s.get("to", {}).get("cell"),
                        "delay": s.get("delay"),
                    }
                    for s in path
                ],
            }
        )
    return out
