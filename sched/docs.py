"""Sections of the README and docs that are generated from the code and the committed reports.

A generated section sits between ``<!-- generated: NAME ... -->`` and ``<!-- end: NAME -->``;
``sushi docs`` rewrites each from its source, ``sushi docs --check`` (and
``tests/sched/test_docs.py``) fails while one differs:

* ``timing`` (docs/architecture.md): the constants of :class:`sushi_sched.timing.TimingModel`;
* ``builds`` (README.md, docs/fpga.md): the FPGA builds in ``docs/builds/``
  (:mod:`sushi_hw.fpga.report_table`);
* ``tops`` (README.md): what each top of ``sushi verilog`` is for, and for which presets
  (:data:`sushi_hw.generate.TOPS`, :func:`sushi_hw.generate.top_skip_reason`);
* ``cnn-regime`` (docs/demo.md): where the digits CNN's layers sit on ``default``;
* ``presets`` (README.md, docs/platforms.md): the numbers of every preset
  (:data:`sushi_hw.config.PRESETS`); ``preset-notes`` (docs/platforms.md): their notes (sources);
* ``errors`` and ``counters`` (docs/isa.md): :class:`sushi_hw.isa.ErrorCode` and
  :class:`sushi_hw.isa.Counter` with :data:`sushi_hw.isa.ERROR_DOC` / ``COUNTER_DOC``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sushi_hw import isa
from sushi_hw.array import array_latency
from sushi_hw.config import PRESETS
from sushi_hw.fpga.report_table import load_builds, render_table
from sushi_hw.generate import TOPS, top_skip_reason
from sushi_hw.isa import CMD_BYTES
from sushi_hw.requant import Requantizer

from .timing import TimingModel

ROOT = Path(__file__).resolve().parents[1]


def render_timing() -> str:
    """The timing model's constants, with their values on the ``default`` preset."""
    cfg = PRESETS["default"]
    tm = TimingModel(cfg)
    r = cfg.rows
    arr = array_latency(cfg.rows, cfg.cols)
    feed = tm.gemm_overhead - arr - Requantizer.latency - tm.gemm_fixed
    pb_tile = tm.tile_period(1, from_pb=True)
    off_tile = tm.tile_period(1, from_pb=False)
    return "\n".join(
        [
            f"Constants of `TimingModel`, in cycles, with what they add up to on `{cfg.name}` "
            f"(R = C = {r}, `mem_latency` {cfg.mem_latency}, {tm.bandwidth} B/cycle):",
            "",
            "| constant | cycles | where it counts |",
            "|---|---|---|",
            f"| `cmd_overhead` | {tm.cmd_overhead} | every command: a fetch (`mem_latency` + "
            f"{CMD_BYTES} B at the memory bandwidth) + decode and checks: {tm.cmd_cycles} cycles "
            "per command |",
            f"| `query_overhead` | {tm.query_overhead} | the doorbell; a query also pays its "
            "closing `DONE` command |",
            f"| `load_overhead` / `store_overhead` / `cache_overhead` | {tm.load_overhead} / "
            f"{tm.store_overhead} / {tm.cache_overhead} | LOAD_ACT / STORE_ACT / CACHE: "
            "`mem_latency` + bytes / bandwidth + this |",
            f"| `pb_tile_overhead` | {tm.pb_tile_overhead} | GEMM tiles issue in order, tile j "
            f"starting `max(m_rows, R + {tm.pb_tile_overhead})` after tile j-1: a PB tile needs "
            f"its R weight rows plus {tm.pb_tile_overhead} cycle of hand-over ({pb_tile} cycles "
            "at batch 1); the last tile takes only its rows |",
            f"| `first_fetch` | {tm.first_fetch} | an off-chip tile starts no earlier than the "
            f"weight stream delivers it: `mem_latency + {tm.first_fetch}` after the GEMM "
            f"starts, then one tile per `tile_bytes / bandwidth` ({tm.mem_fetch_cycles} cycles; "
            "the dynamic buffer prefetches while PB tiles compute) |",
            f"| `gemm_fixed` | {tm.gemm_fixed} | GEMM issue, drain and completion; with the A "
            f"feed ({feed}), the array (`array_latency(R, C)` = {arr}) and the requantiser "
            f"({Requantizer.latency}), all three taken from the RTL generator: `gemm_overhead` "
            f"= {tm.gemm_overhead} |",
            f"| `int32_row_cycles` | {tm.int32_row_cycles} | int32 output rows cost "
            f"{tm.int32_row_cycles} more cycles each at the end, or the 4-word writer bounds "
            "the GEMM |",
            "",
            f"So on `{cfg.name}` at batch 1 a PB tile costs {pb_tile} cycles and an off-chip "
            f"tile {off_tile} (bandwidth bound): {round(100 * (1 - pb_tile / off_tile))}% fewer "
            f"per tile from the PB; from `m_rows >= {tm.mem_fetch_cycles}` both are compute "
            "bound.",
        ]
    )


def render_builds() -> str:
    return render_table(load_builds())


def render_tops() -> str:
    """What each generated top is for, and the presets ``sushi verilog`` generates it for."""
    lines = ["| top | what it is for | presets |", "|---|---|---|"]
    for top, spec in TOPS.items():
        use = spec.use
        presets = [n for n, cfg in PRESETS.items() if top_skip_reason(top, cfg) is None]
        lines.append(f"| `{top}` | {use} | {', '.join(f'`{n}`' for n in presets)} |")
    return "\n".join(lines)


#: what each preset stands for (one line; its note gives the sources)
PRESET_TARGET = {
    "tiny": "iCE40UP5K (iCEBreaker)",
    "default": "simulation; also builds on the ULX3S",
    "large": "ECP5-85F (ULX3S); 100 MHz is not met (docs/fpga.md says what limits it)",
    "zcu104": "the SUSHI deployment on the ZCU104 (XCZU7EV), analytical",
    "zcu104-dpu": "the same chip pushed hard (300 MHz, 75% of DDR4 peak), analytical",
}


def _size(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20} MiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1024:
        return f"{n >> 10} KiB" if n % 1024 == 0 else f"{n / 1024:.1f} KiB"
    return f"{n} B"


def render_presets() -> str:
    """Every preset's numbers, from :data:`PRESETS` (one row each)."""
    lines = [
        "| preset | array (MACs/cycle) | PB | act buffers | dyn buffer | off-chip model | clock "
        "| weight-bound below | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in PRESETS.items():
        bw = min(c.mem_bytes_per_cycle, c.mem_width)
        gbs = bw * c.clock_mhz / 1e3
        ns = c.mem_latency * 1e3 / c.clock_mhz
        onchip = c.pb_bytes + 2 * c.act_bytes + c.dyn_bytes
        lines.append(
            f"| `{name}` | {c.rows}×{c.cols} ({c.macs_per_cycle}) | {_size(c.pb_bytes)} "
            f"| 2×{_size(c.act_bytes)} | {_size(c.dyn_bytes)} (on chip {_size(onchip)}) "
            f"| {bw} B/cycle = {gbs:.3g} GB/s over a {c.mem_width} B port, "
            f"{c.mem_latency} cycles ({ns:.0f} ns) | {c.clock_mhz:g} MHz "
            f"| {c.macs_per_cycle // bw} pixels | {PRESET_TARGET.get(name, '')} |"
        )
    return "\n".join(lines)


def render_preset_notes() -> str:
    """Each preset's note: where its numbers come from."""
    return "\n".join(f"* `{name}`: {c.note}" for name, c in PRESETS.items())


def render_errors() -> str:
    """The error codes of :class:`sushi_hw.isa.ErrorCode` and what raises each."""
    lines = ["| code | name | raised by |", "|---|---|---|"]
    lines += [f"| {int(e)} | `{e.name}` | {isa.ERROR_DOC[e]} |" for e in isa.ErrorCode]
    return "\n".join(lines)


def render_counters() -> str:
    """The counters of :class:`sushi_hw.isa.Counter` and what each counts."""
    lines = ["| index | counter | counts |", "|---|---|---|"]
    lines += [f"| {int(c)} | `{c.name}` | {isa.COUNTER_DOC[c]} |" for c in isa.Counter]
    return "\n".join(lines)


#: (file, section name) -> renderer
def render_cnn_regime() -> str:
    """Where the digits CNN's layers sit on the ``default`` preset: compute- or weight-bound
    (DESIGN §8's rule: weight-bound when a layer's output pixels are fewer than MACs per cycle
    over weight bytes per cycle), and the PB against the SubNets' weights."""
    from .cnn.space import DigitsCNNSpace, pb_bytes

    cfg = PRESETS["default"]
    space = DigitsCNNSpace()
    macs, bw = cfg.rows * cfg.cols, cfg.mem_bytes_per_cycle
    bound = macs / bw
    rows = ["| stage | map | output pixels per conv | bound on `default` |", "|---|---|---|---|"]
    seen = {}
    for op in space.net.spec.plan(space.net.largest().config):
        if op.kind == "conv":
            seen.setdefault(op.name.split(".")[0], (op.h_in, op.h_out))
    for stage, (h_in, h_out) in seen.items():
        px = h_out * h_out
        kind = "weights" if px < bound else ("compute" if px > bound else "balanced")
        rows.append(f"| `{stage}` | {h_in}x{h_in} -> {h_out}x{h_out} | {px} | {kind} |")
    table = space.accuracy_table()
    sizes = sorted(pb_bytes(cfg, s.tensor_dims) for s in table)
    return "\n".join(
        [
            f"On `{cfg.name}` ({cfg.rows}x{cfg.cols} = {macs} MACs per cycle, {bw} weight bytes "
            f"per cycle off-chip, `mem_latency` {cfg.mem_latency}) a layer is weight-bound below "
            f"{bound:g} output pixels:",
            "",
            *rows,
            "",
            f"The PB holds {cfg.pb_bytes} B; the {len(table)} SubNets of the accuracy table take "
            f"{sizes[0]} to {sizes[-1]} B of whole weight tiles (median {sizes[len(sizes) // 2]}"
            f"), so the PB holds the smallest SubNets whole and a shared SubGraph of the others.",
        ]
    )


SECTIONS: dict[tuple[str, str], Callable[[], str]] = {
    ("docs/demo.md", "cnn-regime"): render_cnn_regime,
    ("docs/architecture.md", "timing"): render_timing,
    ("README.md", "builds"): render_builds,
    ("README.md", "tops"): render_tops,
    ("docs/fpga.md", "builds"): render_builds,
    ("README.md", "presets"): render_presets,
    ("docs/platforms.md", "presets"): render_presets,
    ("docs/platforms.md", "preset-notes"): render_preset_notes,
    ("docs/isa.md", "errors"): render_errors,
    ("docs/isa.md", "counters"): render_counters,
}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- generated: {name}\b[^\n]*-->\n)(.*?)(<!-- end: {name} -->)", re.S)


def section_text(path: Path, name: str) -> str:
    """The current text of section ``name`` in ``path``."""
    m = _pattern(name).search(path.read_text())
    if not m:
        raise ValueError(f"{path}: no generated section {name!r}")
    return m.group(2)


def update(root: Path = ROOT, check: bool = False) -> list[str]:
    """Rewrite (or with ``check``, only compare) every generated section; the stale ones."""
    stale = []
    for (rel, name), render in SECTIONS.items():
        path = root / rel
        text = path.read_text()
        want = render() + "\n"
        if section_text(path, name) == want:
            continue
        stale.append(f"{rel}: {name}")
        if not check:
            path.write_text(_pattern(name).sub(lambda m, w=want: m.group(1) + w + m.group(3), text))
    return stale
