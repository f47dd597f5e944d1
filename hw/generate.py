"""Verilog generation for each top-level design, cached per configuration."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.lib import wiring

from .accel import SushiAccel
from .axi.top import SushiAxi
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig
from .fpga.board import BoardCore, LinkParams
from .gemm_engine import GemmEngine
from .sim_top import SushiSim

#: Host-link timing of the simulated board (``sushi_board``), in cycles: the fastest UART the
#: receiver takes (4 cycles per bit), timeouts of a few byte times, SCLK = clk / 2 and a short
#: flash wake-up, so a cocotb test serves a query in tens of thousands of cycles. The flash
#: offset is the real boards' (weights 1 MiB into the flash).
BOARD_SIM_LINK = LinkParams(
    divisor=4, timeout=400, idle_cycles=160, spi_half_period=1, wake_cycles=10
)
#: On-chip RAM of the simulated board: programs, activations and results of a digits query.
BOARD_SIM_RAM_BYTES = 4096


#: the board whose build options the simulated accelerator carries for a preset no board has
BOARD_SIM_BOARD = "icebreaker"


def sim_board(cfg: AccelConfig):  # noqa: ANN201 - a sushi_hw.fpga.boards.Board or None
    """The board whose bitstream carries preset ``cfg.name`` (None: no board does)."""
    from .fpga.boards import BOARDS

    return next((b for b in BOARDS.values() if b.preset == cfg.name), None)


def board_sim_options(cfg: AccelConfig) -> BuildOptions:
    """The simulated board's build: the options of the board that carries ``cfg`` (else the
    iCEBreaker's: no pipeline registers, the shared check multiplier, ...) without its vendor
    primitives, so the variant on the board is the one simulated."""
    from .fpga.boards import get_board
    from .fpga.flow import sim_options

    return sim_options(sim_board(cfg) or get_board(BOARD_SIM_BOARD), cfg)


def board_sim_top(cfg: AccelConfig, opts: BuildOptions) -> BoardCore:
    """``sushi_board``: the platform-independent board design (UART pins, SPI flash pins,
    LEDs) with :data:`BOARD_SIM_LINK` timing, for cocotb (``tb/board_tb.py``)."""
    return BoardCore(cfg, BOARD_SIM_LINK, ram_bytes=BOARD_SIM_RAM_BYTES, opts=opts)


@dataclass(frozen=True)
class Top:
    make: Callable[[AccelConfig, BuildOptions], wiring.Component]
    #: what it is for (``sushi verilog`` prints it; the README's "Generated tops" table)
    use: str
    #: the options it is generated with unless the caller gives others
    default_options: Callable[[AccelConfig], BuildOptions] = lambda cfg: SIMULATION


#: top name -> component factory
TOPS: dict[str, Top] = {
    "sushi_gemm": Top(
        GemmEngine,
        "the GEMM engine alone (array, A feed, requantiser) with streams: cocotb GEMM tests, "
        "`sushi gemm`, `sushi bench` (gemm.json)",
    ),
    "sushi_accel": Top(
        SushiAccel,
        "the whole accelerator, memory port outside: the synthesizable product that a board or "
        "SoC wraps (the FPGA flow elaborates it inside its board top)",
    ),
    "sushi_sim": Top(
        SushiSim,
        "the accelerator with the HDL off-chip memory model: cocotb accelerator tests, "
        "`sushi demo`, `sushi bench` (memory.json, conv.json); the tests also build it with the "
        "iCEBreaker's build options (`board_sim_options`)",
    ),
    "sushi_board": Top(
        board_sim_top,
        "the board design (UART host link, RAM, SPI flash, accelerator) with fast link timing "
        "and the build options of the board that carries the preset (iCEBreaker: tiny, ULX3S: "
        "large): the cocotb board tests (digits MLP and CNN queries over the UART)",
        board_sim_options,
    ),
    "sushi_axi": Top(
        SushiAxi,
        "the accelerator as a drop-in IP: AXI4 memory master (`m_axi_*`) and AXI4-Lite "
        "registers (`s_axil_*`), docs/axi.md: cocotb tests against cocotbext-axi, "
        "`sushi_sched.runtime.axi_bench` (axi.json)",
    ),
}

#: largest off-chip memory the simulation top models (its HDL memory is a real array)
SIM_MEMORY_LIMIT = 16 << 20


def top_skip_reason(top: str, cfg: AccelConfig) -> str | None:
    """Why ``top`` is not generated for ``cfg`` by ``sushi verilog`` (None: it is).

    A preset gets only the tops it can be used for: no simulation top for a memory too large
    to simulate (an analytical preset), no simulated board for a preset the simulated board
    does not carry. ``generate_verilog`` itself builds any top asked for.
    """
    if top not in TOPS:
        raise ValueError(f"unknown top {top!r}; choose one of {', '.join(TOPS)}")
    if top == "sushi_sim" and cfg.mem_bytes > SIM_MEMORY_LIMIT:
        return (
            f"its memory model would hold {cfg.mem_bytes >> 20} MiB (an analytical preset; "
            "lower mem_bytes to simulate it)"
        )
    if top == "sushi_board" and sim_board(cfg) is None:
        from .fpga.boards import BOARDS

        carried = ", ".join(f"{b.preset} ({b.name})" for b in BOARDS.values())
        return (
            f"the simulated board, for the presets a board carries ({carried}) only; board "
            "builds elaborate their own top (sushi bitstream)"
        )
    return None


_SOURCES = Path(__file__).parent


def design_hash(cfg: AccelConfig, top: str, opts: BuildOptions) -> str:
    """Changes whenever the config, the build options or any RTL generator source changes."""
    h = hashlib.sha256(json.dumps([top, cfg.to_dict(), opts.to_dict()], sort_keys=True).encode())
    for p in sorted(_SOURCES.rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def generate_verilog(
    cfg: AccelConfig, top: str, out_dir: Path, opts: BuildOptions | None = None
) -> Path:
    """Write ``<out_dir>/<top>.v`` for ``cfg`` built with ``opts`` (default: the top's own)
    unless an identical one is already there."""
    if top not in TOPS:
        raise ValueError(f"unknown top {top!r}; choose one of {', '.join(TOPS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{top}.v"
    stamp = out_dir / f"{top}.hash"
    opts = TOPS[top].default_options(cfg) if opts is None else opts
    digest = design_hash(cfg, top, opts)
    if path.exists() and stamp.exists() and stamp.read_text() == digest:
        return path
    text = convert(TOPS[top].make(cfg, opts), name=top)
    tmp = path.with_suffix(f".v.{os.getpid()}.tmp")  # whole files only, also with two writers
    tmp.write_text(text)
    tmp.replace(path)
    stamp.write_text(digest)
    return path


def is_current(cfg: AccelConfig, top: str, out_dir: Path, opts: BuildOptions | None = None) -> bool:
    """``<out_dir>/<top>.v`` exists and was generated from this config, these options (default:
    the top's own) and these sources."""
    opts = TOPS[top].default_options(cfg) if opts is None else opts
    stamp = out_dir / f"{top}.hash"
    return (
        (out_dir / f"{top}.v").exists()
        and stamp.exists()
        and stamp.read_text() == design_hash(cfg, top, opts)
    )


def convert(design: wiring.Component, name: str, fast: bool = True) -> str:
    """``amaranth.back.verilog.convert`` of ``design``, every zero-initialised memory written as
    a loop.

    Amaranth writes a memory's initial value one bit at a time (RTLIL) and Yosys then one word
    per line: for the simulation's 1 MiB off-chip memory, or zcu104's 2 MiB PB, that took minutes
    and produced 10^5-10^6 lines. ``fast`` leaves the all-zero initial values out of the RTLIL
    and adds the loop to the Verilog instead (:func:`_zero_fill_memories`): the same text as the
    slow path (``tests/hw/test_generate.py`` compares both)."""
    if fast:
        with _zero_inits_elided():
            text = verilog.convert(design, name=name, emit_src=False)
        return _zero_fill_memories(text)
    text = verilog.convert(design, name=name, emit_src=False)
    return _compact_zero_inits(text)


@contextmanager
def _zero_inits_elided() -> Iterator[None]:
    """While converting, the RTLIL backend emits no ``$meminit`` for an all-zero memory."""
    emitter = getattr(rtlil, "ModuleEmitter", None)
    orig = getattr(emitter, "emit_memory", None)
    if orig is None:  # another Amaranth: the slow path, same result
        yield
        return

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            orig(self, cell_idx, cell)

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = orig


# a memory declaration that is not followed by its initial block (plain or escaped name)
_BARE_MEMORY = re.compile(
    r"^  reg (?:\[\d+:0\] )?(\w+|\\\S+ ) ?\[(\d+):0\];\n(?!  integer |  initial begin)", re.M
)


def _zero_fill_memories(text: str) -> str:
    """Give every memory declared without an initial value the zero-filling loop."""

    def loop(match: re.Match) -> str:
        name, words = match.group(1), int(match.group(2)) + 1
        var = re.sub(r"\W", "_", name.strip().lstrip("\\")) + "__init_i"
        return (
            f"{match.group(0)}  integer {var};\n  initial begin\n    for ({var} = 0; {var} < "
            f"{words}; {var} = {var} + 1) {name}[{var}] = 0;\n  end\n"
        )

    return _BARE_MEMORY.sub(loop, text)


_ZERO_INIT = re.compile(r"  initial begin\n((?:    (\w+)\[\d+\] = \d+'[hd]0+;\n)+)  end\n")


def _compact_zero_inits(text: str) -> str:
    """Amaranth writes one line per word to zero a memory; a loop says the same in one line.

    The large simulation memory would otherwise be 100k+ lines that slow every simulator build.
    """

    def loop(match: re.Match) -> str:
        lines = match.group(1).count("\n")
        name = match.group(2)
        var = f"{name}__init_i"
        return (
            f"  integer {var};\n  initial begin\n    for ({var} = 0; {var} < {lines}; "
            f"{var} = {var} + 1) {name}[{var}] = 0;\n  end\n"
        )

    return _ZERO_INIT.sub(loop, text)
