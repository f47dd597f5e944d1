"""Logic depth of a synthesised netlist: LUT levels from a register to each register input.

nextpnr reports one critical path per clock, and on a nearly full iCE40UP5K which path that is
changes with the seed and with unrelated netlist changes (two builds of the same logic differed
by 5 MHz). The number of LUTs between two registers does not: it is what placement and routing
can only make worse. This module counts it on Yosys's JSON netlist (after ``synth_ice40`` or
``synth_ecp5``), so a change is judged on every deep path at once, not on the one nextpnr
happened to show.

Counting: a LUT (or a wide-LUT mux) is one level; a carry cell is none (its chain is fast and
the LUT that reads a carry-out sits beside it). Starts are register, RAM, DSP, PLL and I/O
outputs and constants; ends are the data, enable and reset inputs of registers, RAMs, DSPs and
I/O cells. A path is named by its start and end registers' nets, with Yosys's
``_SB_LUT4_...`` suffixes cut off.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

#: cell types that are one level of logic
LUT_TYPES = frozenset({"SB_LUT4", "LUT4", "PFUMX", "L6MUX21"})
#: carry cells: no level of their own
CARRY_TYPES = frozenset({"SB_CARRY", "CCU2C"})
#: clock inputs: not the end of a logic path
_CLOCK_PORTS = frozenset(
    {"C", "CLK", "CLK0", "CLK1", "CLK2", "CLK3", "CLKA", "CLKB", "RCLK", "WCLK", "CLOCK"}
)
_SUFFIX = re.compile(r"(_SB_|_TRELLIS_).*$")


def _top_module(netlist: Mapping[str, Any]) -> Mapping[str, Any]:
    mods = netlist["modules"]
    tops = [m for m in mods.values() if str(m.get("attributes", {}).get("top", "0")) not in "0"]
    if len(tops) != 1:
        raise ValueError(f"netlist has {len(tops)} top modules; expected one (flattened)")
    return tops[0]


def _clean(name: str) -> str:
    name = name.lstrip("\\")
    return _SUFFIX.sub("", name) or name


def logic_depth(netlist: Mapping[str, Any], *, deep: int = 8, families: int = 12) -> dict:
    """``histogram``: endpoints per LUT level; ``deepest``: the ``families`` largest groups of
    endpoints at ``deep`` levels or more, as (start, end, levels, endpoints)."""
    mod = _top_module(netlist)
    cells = mod["cells"]
    best_name: dict[int, tuple[tuple[int, int], str]] = {}
    for name, net in mod.get("netnames", {}).items():
        score = (name.count("_SB_") + name.count("$"), len(name))
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in best_name or score < best_name[bit][0]):
                best_name[bit] = (score, name)
    driver: dict[int, str] = {}
    for cname, c in cells.items():
        for port, direction in c.get("port_directions", {}).items():
            if direction == "output":
                for bit in c["connections"].get(port, []):
                    if isinstance(bit, int):
                        driver[bit] = cname

    # levels and start bit of each net, by an iterative depth-first walk (chains run long)
    level: dict[int, tuple[int, int]] = {}

    def inputs(cname: str) -> list[int]:
        c = cells[cname]
        return [
            x
            for p, d in c["port_directions"].items()
            if d == "input"
            for x in c["connections"].get(p, [])
            if isinstance(x, int)
        ]

    def resolve(bit: int) -> tuple[int, int]:
        stack, open_ = [(bit, False)], set()
        while stack:
            b, expanded = stack.pop()
            if b in level:
                continue
            cname = driver.get(b)
            ctype = cells[cname]["type"] if cname else None
            if ctype not in LUT_TYPES and ctype not in CARRY_TYPES:
                level[b] = (0, b)  # a register, RAM, DSP or I/O output, or undriven
                continue
            if not expanded:
                open_.add(b)
                stack.append((b, True))
                stack.extend((x, False) for x in inputs(cname) if x not in level and x not in open_)
                continue
            open_.discard(b)
            # an input still open is a combinational loop: read it as a start
            lv, start = max((level.get(x, (0, x)) for x in inputs(cname)), default=(0, b))
            level[b] = (lv + (ctype in LUT_TYPES), start)
        return level[bit]

    def end_name(cname: str) -> str:
        """A register by the net it drives (its own name is Yosys's), else the cell."""
        c = cells[cname]
        for port, direction in c.get("port_directions", {}).items():
            bits = c["connections"].get(port, [])
            if direction == "output" and bits and isinstance(bits[0], int):
                return best_name.get(bits[0], ((0, 0), cname))[1]
        return cname

    hist: Counter[int] = Counter()
    groups: Counter[tuple[str, str, int]] = Counter()
    for cname, c in cells.items():
        ctype = c["type"]
        if ctype in LUT_TYPES or ctype in CARRY_TYPES or ctype.startswith("$"):
            continue
        for port, direction in c.get("port_directions", {}).items():
            if direction != "input" or port in _CLOCK_PORTS:
                continue
            for bit in c["connections"].get(port, []):
                if not isinstance(bit, int):
                    continue
                lv, start = resolve(bit)
                hist[lv] += 1
                if lv >= deep:
                    src = best_name.get(start, ((0, 0), str(start)))[1]
                    groups[(_clean(src), _clean(end_name(cname)), lv)] += 1
    deepest = sorted(groups.items(), key=lambda kv: (-kv[0][2], -kv[1]))[:families]
    return {
        "histogram": {str(k): hist[k] for k in sorted(hist)},
        "max_levels": max(hist) if hist else 0,
        "deep_threshold": deep,
        "deep_endpoints": sum(v for k, v in hist.items() if k >= deep),
        "deepest": [
            {"start": s, "end": e, "levels": lv, "endpoints": n} for (s, e, lv), n in deepest
        ],
    }
