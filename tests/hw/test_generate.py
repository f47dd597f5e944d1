"""Verilog generation: the fast conversion writes the same Verilog as Amaranth's own, and
``sushi verilog`` generates each preset's tops (in parallel, cached) and skips the others."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from sushi_hw.config import PRESETS
from sushi_hw.generate import TOPS, convert, top_skip_reason
from sushi_sched.cli import main


def _lines(text: str) -> Counter:
    # Yosys numbers its anonymous registers (_0_, _1_, ...) in the order it meets them
    return Counter(re.sub(r"\b_\d+_\b", "_N_", text).splitlines())


@pytest.mark.parametrize("top", ["sushi_gemm", "sushi_board"])
def test_fast_conversion_writes_the_same_verilog(top: str) -> None:
    cfg = PRESETS["tiny"]
    spec = TOPS[top]
    fast = convert(spec.make(cfg, spec.default_options(cfg)), top, fast=True)
    slow = convert(spec.make(cfg, spec.default_options(cfg)), top, fast=False)
    assert "__init_i" in fast  # its memories are zero-filled by a loop
    assert _lines(fast) == _lines(slow)


def test_each_preset_gets_the_tops_it_is_used_for() -> None:
    made = {
        name: [t for t in TOPS if top_skip_reason(t, cfg) is None] for name, cfg in PRESETS.items()
    }
    assert made["tiny"] == list(TOPS)
    assert made["default"] == ["sushi_gemm", "sushi_accel", "sushi_sim", "sushi_axi"]
    assert made["large"] == list(TOPS)  # the ULX3S's preset: its simulated board too
    assert made["zcu104"] == ["sushi_gemm", "sushi_accel", "sushi_axi"]
    assert "MiB" in top_skip_reason("sushi_sim", PRESETS["zcu104"])


def test_sushi_verilog_generates_then_reuses(tmp_path, capsys) -> None:
    args = ["verilog", "--preset", "tiny", "--out", str(tmp_path), "--jobs", "2"]
    assert main([*args, "--top", "sushi_gemm", "--top", "sushi_accel"]) == 0
    out = capsys.readouterr().out
    assert "[2/2]" in out and (tmp_path / "tiny" / "sushi_gemm.v").exists()
    assert main([*args, "--top", "sushi_gemm"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_zero_fill_covers_plain_and_escaped_memory_names() -> None:
    from sushi_hw.generate import _zero_fill_memories

    text = "  reg [7:0] mem [3:0];\n  reg [7:0] \\m$1  [1:0];\n  reg [7:0] rom [1:0];\n"
    text += "  initial begin\n    rom[0] = 8'h01;\n  end\n"
    out = _zero_fill_memories(text)
    assert "mem[mem__init_i] = 0;" in out and "\\m$1 [m_1__init_i] = 0;" in out
    assert "rom__init_i" not in out  # a memory with its own initial value keeps it
