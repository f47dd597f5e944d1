"""Does a preset fit a board? Checked before synthesis, with errors that say what does not fit.

The model counts what SushiAccel instantiates for a configuration:

* multipliers: ``rows*cols`` int8 PEs and ``cols`` requantiser lanes; a lane needs two DSPs
  (two 16x16 products, see :mod:`sushi_hw.requant`). The requantiser gets its DSPs first; the
  PEs take what is left and the rest of the PEs get LUT multipliers
  (:func:`sushi_hw.array.lut_mul_s8`).
* memories: the Persistent Buffer (one weight row of ``cols`` bytes per word), two activation
  buffers (``rows`` bytes per word), the accumulator (``acc_depth`` x ``cols`` int32), the
  dynamic weight buffer, the board's host RAM and the link's write buffer (SushiAccel's GemmCore
  has no output or C_in FIFO). On the iCE40UP the single-ported PB and host RAM go to SPRAM
  (instantiated as SB_SPRAM256KA, :mod:`sushi_hw.spram`); the activation buffers are read and
  written in the same cycle, so they stay in block RAM, costed in the device's block geometries.
* logic: a rough LUT estimate, per PE, per requantiser lane and a fixed part for the command
  processor, memory system, host link and SPI flash controller. Calibrated on Yosys
  ``synth_ice40`` of the parts (see docs/fpga.md); it only rejects presets that are clearly
  too big.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sushi_hw import isa
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import AccelConfig, clog2
from sushi_hw.pb_tags import entry_layout

from .boards import Board, BoardError

# block RAM geometries (width bits, depth) each device offers
_BRAM_SHAPES = {
    "ice40": ((16, 256), (8, 512), (4, 1024), (2, 2048)),
    "ecp5": ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
}
_SPRAM_SHAPE = (16, 16384)
#: memories at most this many bits go to LUT RAM / flip-flops, not block RAM
_SMALL_MEM_BITS = {"ice40": 0, "ecp5": 2048}

# Logic estimate, in iCE40 logic cells (a LUT4 and/or a flip-flop each; ECP5 LUTs are
# counted the same way), calibrated on the packed tiny board top (docs/fpga.md: 5202 LCs for
# 2x2, 2 requantiser lanes): PE adders and registers, LUT multipliers, the requantiser and
# the accumulate adders per column, and what does not scale with the array.
_LUTS_PER_LUT_MULT = {"ice40": 200, "ecp5": 85}
_LUTS_PER_PE = 2  # + psum_bits: the partial-sum adder and the weight bank mux
_LUTS_PER_RQ_LANE = 300
_LUTS_PER_COL = 110  # accumulate adder and input muxes, per int32 lane
#: command processor, DMA, counters, UART host link, SPI flash controller, memory interconnect
_LUTS_FIXED = 4300
#: the PB's valid tags (BuildOptions.pb_tags): their walker, check and write (Yosys synth_ecp5
#: of large and default, on against off: +263 and +252 LUT4; docs/isa.md, "PB valid tags")
_LUTS_PB_TAGS = 260
#: other multipliers Yosys puts on DSPs (SushiAccel's GemmCore has no A-row product, and the
#: command processor's CHECK products share one shift-add multiplier, see sushi_hw.accel)
_CORE_DSPS = 0


class FitError(ValueError):
    """The preset does not fit the board; the message lists every resource that overflows."""


@dataclass(frozen=True)
class MemoryUse:
    name: str
    width_bits: int
    depth: int
    where: str  # "spram", "bram" or "lut"
    blocks: int

    @property
    def bytes(self) -> int:
        return self.width_bits * self.depth // 8


@dataclass
class FitPlan:
    board: Board
    cfg: AccelConfig
    array_dsp_pes: int
    array_lut_pes: int
    requant_dsps: int
    memories: list[MemoryUse] = field(default_factory=list)
    est_luts: int = 0
    #: BuildOptions.pb_tags: the PB's valid tags (see :func:`plan`)
    pb_tags: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def dsps(self) -> int:
        return self.array_dsp_pes + self.requant_dsps

    @property
    def brams(self) -> int:
        return sum(m.blocks for m in self.memories if m.where == "bram")

    @property
    def sprams(self) -> int:
        return sum(m.blocks for m in self.memories if m.where == "spram")

    def build_options(self) -> BuildOptions:
        """How the board builds ``cfg`` under this plan."""
        ecp5 = self.board.family == "ecp5"
        ice40 = self.board.family == "ice40"
        return BuildOptions(
            # registers after block RAM reads and stream register slices are there for the
            # ECP5's 100 MHz; at the iCE40's 30 MHz they are logic cells the UP5K lacks
            pipeline_regs=self.board.family != "ice40",
            # PEs beyond the DSP budget get LUT multipliers
            dsp_pes=self.array_dsp_pes,
            # PE and requantiser multipliers as MULT18X18D with their own registers, RAM reads
            # in the DP16KD output registers (sushi_hw.dsp, sushi_hw.bram)
            ecp5_dsp=ecp5,
            ecp5_bram=ecp5,
            # single-port RAMs the plan puts in SPRAM are instantiated as SB_SPRAM256KA
            spram=frozenset(mu.name for mu in self.memories if mu.where == "spram"),
            # the requantiser and the PEs take every DSP: the command check's products share
            # one shift-add multiplier (sushi_hw.check.CheckProducts)
            shared_check_mul=True,
            # the memory watchdog is for a memory that can stop answering (an SoC's bus); a
            # board's memory is this design's own RAM and SPI flash reader, which answer every
            # request by construction, and the UP5K has no logic cells to spare for it
            mem_timeout=0 if ice40 else BuildOptions.mem_timeout,
            # the boards' host link answers a RUN while busy with BUSY and never rings then
            count_dropped_doorbells=not ice40,
            # no logic cells to spare; a 32-bit counter of tiny wraps only after 2**32 events,
            # a program of over 143 s at 30 MHz (docs/isa.md, "Counters")
            counter_overflow=not ice40,
            pb_tags=self.pb_tags,
        )

    def summary(self) -> str:
        r = self.board.resources
        lines = [
            f"{self.cfg.name} on {self.board.name} ({self.board.device}):",
            f"  DSPs  {self.dsps}/{r.dsps} (requantiser and vector unit {self.requant_dsps}, "
            f"PEs {self.array_dsp_pes}; {self.array_lut_pes} PEs with LUT multipliers)",
            f"  BRAM  {self.brams}/{r.brams}   SPRAM {self.sprams}/{r.sprams}",
            f"  LUTs  ~{self.est_luts}/{r.luts} (estimate)",
        ]
        for mu in self.memories:
            lines.append(
                f"    {mu.name:14s} {mu.depth:6d} x {mu.width_bits:3d} b "
                f"({mu.bytes:7d} B) -> {mu.where} x{mu.blocks}"
            )
        return "\n".join(lines)


def bram_blocks(family: str, width_bits: int, depth: int) -> int:
    """Fewest block RAMs holding ``depth`` words of ``width_bits`` (cascading width and depth)."""
    return min(-(-width_bits // w) * -(-depth // d) for w, d in _BRAM_SHAPES[family])


def spram_blocks(width_bits: int, depth: int) -> int:
    w, d = _SPRAM_SHAPE
    return -(-width_bits // w) * -(-depth // d)


def _memories(
    cfg: AccelConfig, ram_bytes: int, host: bool = True, pb_tags: bool = True
) -> list[tuple[str, int, int, bool]]:
    """(name, width bits, depth, may live in SPRAM) of every RAM SushiAccel builds, and with
    ``host`` the board design's host RAM and link write buffer; ``pb_tags``: the PB's tag RAM
    (read and written by different commands, but a few bits wide: block RAM)."""
    # SushiAccel's GemmCore has neither a C_in FIFO nor an output FIFO (see GemmCore's
    # with_c_in / int32_gap); the activation buffers are read and written in the same cycle
    # during a GEMM, so they cannot be single-ported SPRAM
    mems = [
        ("pb", 8 * cfg.cols, cfg.pb_bytes // cfg.cols, True),
        ("act0", 8 * cfg.rows, cfg.act_words, False),
        ("act1", 8 * cfg.rows, cfg.act_words, False),
        ("accumulator", 32 * cfg.cols, cfg.acc_depth, False),
        ("dyn", 8 * cfg.cols, cfg.dyn_bytes // cfg.cols, False),
    ]
    if pb_tags and cfg.pb_tiles:
        mems.append(("pb_tags", entry_layout(cfg).size, max(2, cfg.pb_tiles), False))
    if host:
        mems += [
            ("host_ram", 8 * cfg.mem_width, ram_bytes // cfg.mem_width, True),
            ("link_wbuf", 8 * cfg.mem_width, 256 // cfg.mem_width, False),
        ]
    # the counters (sushi_hw.counters.CounterBank, ram_style "block"): one copy per read port
    slots = 1 << clog2(len(isa.Counter) - 1)
    mems += [(name, cfg.counter_bits, slots, False) for name in ("counters", "counters_read")]
    return [m for m in mems if m[2] > 0]


def plan(board: Board, cfg: AccelConfig, host: bool = True) -> FitPlan:
    """Map ``cfg`` onto ``board``; ``problems`` lists what does not fit (empty: it fits).
    ``host=False``: the accelerator without the board design's host RAM and link (the AXI
    top, :mod:`sushi_hw.fpga.axi_board`); the logic estimate keeps its fixed part."""
    r, fam = board.resources, board.family
    pes = cfg.rows * cfg.cols
    # the requantiser's two per column, and the vector unit's one per lane (configurations with
    # convolutions: sushi_hw.vector_unit)
    rq = 2 * cfg.cols + _CORE_DSPS + (cfg.rows if cfg.conv else 0)
    dsp_pes = max(0, min(pes, r.dsps - rq))
    # the PB's valid tags: not on the iCE40UP5K, whose tiny build fills 5,2xx of its 5,280
    # logic cells and whose 4,096-tile PB would need 18 of its 30 block RAMs for the tags
    # (pb_tiles x 18 bits); the ECP5's large PB needs one DP16KD
    p = FitPlan(board, cfg, dsp_pes, pes - dsp_pes, rq, pb_tags=fam != "ice40")
    if rq > r.dsps:
        p.problems.append(
            f"DSPs: the requantiser and the vector unit need {rq} for cols={cfg.cols}, "
            f"the device has {r.dsps}"
        )
    spram_left = r.sprams
    for name, width, depth, spram_ok in _memories(cfg, board.ram_bytes, host, p.pb_tags):
        if spram_ok and spram_left and depth <= _SPRAM_SHAPE[1]:
            n = spram_blocks(width, depth)
            if n <= spram_left:
                spram_left -= n
                p.memories.append(MemoryUse(name, width, depth, "spram", n))
                continue
        if width * depth <= _SMALL_MEM_BITS[fam] and not name.startswith("counters"):
            p.memories.append(MemoryUse(name, width, depth, "lut", 0))
        else:
            p.memories.append(MemoryUse(name, width, depth, "bram", bram_blocks(fam, width, depth)))
    if p.brams > r.brams:
        detail = ", ".join(f"{m.name} {m.blocks}" for m in p.memories if m.where == "bram")
        p.problems.append(f"block RAM: needs {p.brams} of {r.brams} ({detail})")
    p.est_luts = (
        _LUTS_FIXED
        + pes * (_LUTS_PER_PE + cfg.psum_bits)
        + p.array_lut_pes * _LUTS_PER_LUT_MULT[fam]
        + cfg.cols * (_LUTS_PER_RQ_LANE + _LUTS_PER_COL)
        + (_LUTS_PB_TAGS if p.pb_tags else 0)
    )
    try:
        board.pll(cfg.clock_mhz)
    except BoardError as e:
        p.problems.append(f"clock: {e}")
    if p.est_luts > r.luts:
        p.problems.append(
            f"logic: about {p.est_luts} LUTs estimated ({p.array_lut_pes} PEs need LUT "
            f"multipliers), the device has {r.luts}"
        )
    return p


def check_fit(board: Board, cfg: AccelConfig, host: bool = True) -> FitPlan:
    """The plan, or :class:`FitError` naming every resource that overflows."""
    p = plan(board, cfg, host)
    if p.problems:
        raise FitError(
            f"preset {cfg.name!r} ({cfg.rows}x{cfg.cols}, PB {cfg.pb_bytes} B) does not fit "
            f"{board.name} ({board.device}): " + "; ".join(p.problems)
        )
    return p
