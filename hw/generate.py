"""Verilog generation for each top-level design, cached per configuration."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from .accel import SushiAccel
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


#: the board whose build options the simulated board top carries
BOARD_SIM_BOARD = "icebreaker"


def board_sim_options(cfg: AccelConfig) -> BuildOptions:
    """The simulated board's build: the iCEBreaker's options for ``cfg`` (no pipeline
    registers, the shared check multiplier, ...) without its vendor primitives, so the variant
    on the board is the one simulated."""
    from .fpga.boards import get_board
    from .fpga.flow import sim_options

    return sim_options(get_board(BOARD_SIM_BOARD), cfg)


def board_sim_top(cfg: AccelConfig, opts: BuildOptions) -> BoardCore:
    """``sushi_board``: the platform-independent board design (UART pins, SPI flash pins,
    LEDs) with :data:`BOARD_SIM_LINK` timing, for cocotb (``tb/board_tb.py``)."""
    return BoardCore(cfg, BOARD_SIM_LINK, ram_bytes=BOARD_SIM_RAM_BYTES, opts=opts)


@dataclass(frozen=True)
class Top:
    make: Callable[[AccelConfig, BuildOptions], wiring.Component]
    #: the options it is generated with unless the caller gives others
    default_options: Callable[[AccelConfig], BuildOptions] = lambda cfg: SIMULATION


#: top name -> component factory
TOPS: dict[str, Top] = {
    "sushi_gemm": Top(GemmEngine),  # the compute core alone, with streams
    "sushi_accel": Top(SushiAccel),  # the accelerator, memory port outside (FPGA tops wrap it)
    "sushi_sim": Top(SushiSim),  # the accelerator with the HDL memory model, for cocotb
    # the board: UART, host link, RAM, SPI flash, accelerator
    "sushi_board": Top(board_sim_top, board_sim_options),
}

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
    design = TOPS[top].make(cfg, opts)
    text = verilog.convert(design, name=top, emit_src=False)
    text = _compact_zero_inits(text)
    path.write_text(text)
    stamp.write_text(digest)
    return path


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
