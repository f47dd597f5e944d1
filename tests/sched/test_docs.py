"""Every number held once: the generated sections of the README and docs match their sources
(``sushi docs`` rewrites them), and the README quotes no build figure that is not a committed
report's."""

from __future__ import annotations

import re

import pytest
from sushi_hw.config import PRESETS
from sushi_hw.fpga.boards import BOARDS
from sushi_hw.fpga.report_table import load_builds
from sushi_sched.docs import ROOT, SECTIONS, section_text, update
from sushi_sched.timing import TimingModel


@pytest.mark.parametrize("where", [f"{f}:{n}" for f, n in SECTIONS])
def test_generated_section_matches_its_source(where: str) -> None:
    rel, name = where.split(":")
    want = SECTIONS[(rel, name)]() + "\n"
    assert section_text(ROOT / rel, name) == want, f"{rel} ({name}) is stale: run `sushi docs`"


def test_nothing_is_stale() -> None:
    assert update(ROOT, check=True) == []


def test_timing_table_gives_the_models_constants() -> None:
    """Parse the doc's table: each constant's figure is the code's."""
    tm = TimingModel(PRESETS["default"])
    rows = re.findall(
        r"^\| (`[^|]+`) \| ([\d / ]+) \|",
        section_text(ROOT / "docs/architecture.md", "timing"),
        re.M,
    )
    assert rows
    for names, values in rows:
        names = re.findall(r"`(\w+)`", names)
        values = [int(v) for v in values.split("/")]
        assert [getattr(tm, n) for n in names] == values, names


def test_readme_quotes_each_build_once() -> None:
    """Every MHz figure in the README is a clock (a preset's, or a board PLL's) or a committed
    build's Fmax."""
    readme = (ROOT / "README.md").read_text()
    allowed = {float(b["report"]["fmax_mhz"]) for b in load_builds()}
    allowed |= {float(c.clock_mhz) for c in PRESETS.values()}
    allowed |= {p.out_mhz for b in BOARDS.values() for p in b.plls}
    quoted = {float(x) for x in re.findall(r"(\d+(?:\.\d+)?) MHz", readme)}
    assert quoted <= allowed, f"figures not from docs/builds/: {sorted(quoted - allowed)}"


def test_fpga_doc_states_the_quoted_builds_only_in_its_table() -> None:
    """docs/fpga.md quotes other measurements as evidence, but a committed build's own Fmax only
    in the generated table."""
    text = (ROOT / "docs/fpga.md").read_text()
    outside = text.replace(section_text(ROOT / "docs/fpga.md", "builds"), "")
    for b in load_builds():
        fmax = f"{b['report']['fmax_mhz']:.2f}"
        assert fmax not in outside, f"docs/fpga.md restates {fmax} MHz outside its table"


def test_platforms_doc_tables_every_preset_with_its_sources() -> None:
    table = section_text(ROOT / "docs/platforms.md", "presets")
    notes = section_text(ROOT / "docs/platforms.md", "preset-notes")
    for name, cfg in PRESETS.items():
        assert f"| `{name}` |" in table, name
        assert cfg.note and cfg.note in notes, name
    assert "(docs/platforms.md)" in (ROOT / "README.md").read_text()
