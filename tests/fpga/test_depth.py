"""Logic depth (:mod:`sushi_hw.fpga.depth`) on hand-made Yosys JSON netlists: LUT levels
counted, carries free, enables and resets are ends, clocks are not, loops do not hang."""

from __future__ import annotations

import pytest
from sushi_hw.fpga.depth import logic_depth


def _ff(d: int, q: int, *, en: int | None = None) -> dict:
    ports = {"C": "input", "D": "input", "Q": "output"}
    conn = {"C": [2], "D": [d], "Q": [q]}
    if en is not None:
        ports["E"] = "input"
        conn["E"] = [en]
    return {
        "type": "SB_DFFE" if en is not None else "SB_DFF",
        "port_directions": ports,
        "connections": conn,
    }


def _lut(ins: list, out: int) -> dict:
    ins = (ins + ["0"] * 4)[:4]
    return {
        "type": "SB_LUT4",
        "port_directions": {
            "I0": "input",
            "I1": "input",
            "I2": "input",
            "I3": "input",
            "O": "output",
        },
        "connections": {"I0": [ins[0]], "I1": [ins[1]], "I2": [ins[2]], "I3": [ins[3]], "O": [out]},
    }


def _carry(ci: int, i0: int, i1: int, co: int) -> dict:
    return {
        "type": "SB_CARRY",
        "port_directions": {"CI": "input", "I0": "input", "I1": "input", "CO": "output"},
        "connections": {"CI": [ci], "I0": [i0], "I1": [i1], "CO": [co]},
    }


def _netlist(cells: dict, names: dict) -> dict:
    return {
        "modules": {
            "top": {
                "attributes": {"top": "00000000000000000000000000000001"},
                "cells": cells,
                "netnames": {n: {"bits": [b]} for n, b in names.items()},
            }
        }
    }


def test_levels_carries_and_names() -> None:
    # a (10) -> LUT -> LUT -> carry -> carry -> LUT -> b.D (3 levels); b (11) -> LUT -> a.E (1)
    cells = {
        "fa": _ff(30, 10, en=31),
        "fb": _ff(24, 11),
        "l1": _lut([10], 20),
        "l2": _lut([20, 11], 21),
        "c1": _carry(21, 10, 11, 22),
        "c2": _carry(22, 10, 11, 23),
        "l3": _lut([23, 10], 24),
        "l4": _lut([11], 31),
    }
    names = {"ctl.a": 10, "ctl.b": 11, "ctl.b_SB_DFF_Q_D": 24, "x": 30}
    d = logic_depth(_netlist(cells, names), deep=3)
    # ends: fa.D (constant net 30, undriven: 0), fa.E (1), fb.D (3); the clock is no end
    assert d["histogram"] == {"0": 1, "1": 1, "3": 1}
    assert d["max_levels"] == 3 and d["deep_endpoints"] == 1
    assert d["deepest"] == [{"start": "ctl.a", "end": "ctl.b", "levels": 3, "endpoints": 1}]


def test_combinational_loop_terminates() -> None:
    cells = {"l1": _lut([21], 20), "l2": _lut([20], 21), "f": _ff(21, 10)}
    d = logic_depth(_netlist(cells, {"q": 10}))
    assert d["max_levels"] >= 1


def test_needs_one_flattened_top() -> None:
    net = _netlist({}, {})
    net["modules"]["other"] = dict(net["modules"]["top"])
    with pytest.raises(ValueError, match="top modules"):
        logic_depth(net)
