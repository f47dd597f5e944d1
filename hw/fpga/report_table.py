"""The FPGA build figures quoted in the README and docs, rendered from committed reports.

Each quoted build has one file ``docs/builds/<board>-<preset>.json`` (the board design) or
``docs/builds/<board>-<top>-<preset>.json`` (another top of ``sushi bitstream --top``, named in
its ``top`` key): the build's ``report.json`` (``sushi bitstream``, keys
:data:`sushi_hw.fpga.nextpnr_report.REPORT_KEYS`) under ``report``, plus ``seed``, ``commit``,
``build_s`` and optional ``logic_cells`` (iCE40) and ``note``. To quote a new build, copy
its ``build/<board>[-<top>]/report.json`` into that file, set the seed and commit, and run
``sushi docs`` (it rewrites every generated table; ``tests/sched/test_docs.py`` fails while a
table differs from its reports).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .boards import BOARDS
from .nextpnr_report import check_report

#: the repository's committed build reports
BUILDS_DIR = Path(__file__).resolve().parents[2] / "docs" / "builds"

_BOARD_TITLE = {"icebreaker": "iCEBreaker", "ulx3s": "ULX3S"}
#: what each ``top`` is, in the table (``board``: the board design, the default)
_TOP_TITLE = {"board": "board design", "axi": "`sushi_axi` (ports on scan chains)"}
_EXTRA_KEYS = {
    "top",
    "seed",
    "commit",
    "build_s",
    "command",
    "note",
    "logic_cells",
    "logic_cells_available",
}


def load_builds(builds_dir: Path = BUILDS_DIR) -> list[dict[str, Any]]:
    """Every committed build, checked, ordered by board then array size."""
    out = []
    for path in sorted(builds_dir.glob("*.json")):
        b = json.loads(path.read_text())
        rep = b.get("report")
        if not isinstance(rep, Mapping):
            raise ValueError(f"{path}: no 'report' object")
        check_report(rep)
        unknown = set(b) - _EXTRA_KEYS - {"report"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        for k in ("seed", "commit", "build_s"):
            if k not in b:
                raise ValueError(f"{path}: missing {k!r}")
        top = b.get("top", "board")
        if top not in _TOP_TITLE:
            raise ValueError(f"{path}: unknown top {top!r}; one of {', '.join(_TOP_TITLE)}")
        middle = "" if top == "board" else f"{top}-"
        want = f"{rep['board']}-{middle}{rep['preset']}.json"
        if path.name != want:
            raise ValueError(f"{path}: a report of {rep['board']} {rep['preset']} is named {want}")
        out.append(b)
    out.sort(
        key=lambda b: (b["report"]["board"], b.get("top", "board") != "board", b["report"]["rows"])
    )
    return out


def _n(x: int) -> str:
    return f"{x:,}"


def render_table(builds: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table of the builds (one row each)."""
    lines = [
        "| board | preset | top | clock | Fmax | timing | logic | FF | DSP | block RAM | build |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in builds:
        r = b["report"]
        board = BOARDS[r["board"]]
        res = board.resources
        if "logic_cells" in b:
            logic = (
                f"{_n(b['logic_cells'])} of {_n(b.get('logic_cells_available', res.luts))} LC"
                f" ({_n(r['luts'])} LUT)"
            )
        else:
            logic = f"{_n(r['luts'])} of {_n(res.luts)} LUT4"
        ram = f"{r['brams']} of {res.brams}"
        if res.sprams:
            ram += f" + {r['sprams']} of {res.sprams} SPRAM"
        met = "**met**" if r["timing_met"] else "missed"
        lines.append(
            f"| {_BOARD_TITLE.get(r['board'], r['board'])} ({board.device.split('-')[0]}) "
            f"| `{r['preset']}` | {_TOP_TITLE[b.get('top', 'board')]} "
            f"| {r['clock_mhz']:g} MHz | {r['fmax_mhz']:.2f} MHz | {met} "
            f"| {logic} | {_n(r['ffs'])} | {r['dsps']} of {res.dsps} | {ram} "
            f"| seed {b['seed']} at {b['commit']}, {round(b['build_s'] / 60)} min |"
        )
    return "\n".join(lines)


def main() -> None:
    print(render_table(load_builds()))


if __name__ == "__main__":
    main()
