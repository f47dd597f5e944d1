"""The boards SUSHI builds bitstreams for, with the resources of their FPGA.

Resource counts are the device's, as nextpnr reports them as "available" (checked against the
``--report`` JSON of a real build): iCE40UP5K has 5280 logic cells (one LUT4 + one FF each),
8 SB_MAC16, 30 EBR of 4 kbit and 4 SPRAM of 256 kbit; LFE5U-85F has 83,640 LUT4/FF pairs in
slices, 156 MULT18X18D and 208 DP16KD of 18 kbit (16 kbit of data at widths <= 16 bits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..bram import REPLICA_ATTR


class BoardError(ValueError):
    """An unknown board, or a preset that does not fit the board; raised before synthesis."""


@dataclass(frozen=True)
class DeviceResources:
    luts: int
    ffs: int
    dsps: int  #: hardware multipliers (SB_MAC16 / MULT18X18D)
    dsp_width: int  #: widest signed operand of one DSP multiplier
    brams: int  #: block RAMs (EBR / DP16KD)
    bram_bytes: int  #: data bytes of one block RAM at byte-multiple widths
    sprams: int = 0  #: single-port 256 kbit RAMs (iCE40UP only)
    spram_bytes: int = 0
    #: nextpnr cell type names for each resource in its report
    cells: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PllSetting:
    """One PLL configuration, as computed by icepll / ecppll for the board's input clock."""

    out_mhz: float
    params: dict[str, int | str]


@dataclass(frozen=True)
class Board:
    name: str
    device: str
    family: str  #: "ice40" or "ecp5"
    preset: str  #: the preset that fits this board
    clock_in_mhz: float
    resources: DeviceResources
    plls: tuple[PllSetting, ...]
    #: Yosys synth_<family> options
    synth_opts: tuple[str, ...]
    #: Yosys commands run after reading the design, before synthesis
    script_after_read: tuple[str, ...] = ()
    #: Yosys commands run after ``synth_<family> <synth_opts>``, before the netlist is written
    script_after_synth: tuple[str, ...] = ()
    #: nextpnr options of this board's builds, per preset; an option of the same name given
    #: with ``sushi bitstream --nextpnr-args`` replaces one
    #: (:func:`sushi_hw.fpga.flow.nextpnr_options`)
    nextpnr_opts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: on-chip RAM behind the memory port for programs and activations (bytes)
    ram_bytes: int = 32768
    #: platform factory (imported lazily: amaranth-boards is only needed to build)
    platform: Callable[[], object] = field(compare=False, repr=False, default=None)

    def pll(self, mhz: float) -> PllSetting:
        """The PLL setting for ``mhz``: the accelerator clock is the configuration's
        ``clock_mhz`` (``sushi bitstream --set clock_mhz=50`` builds at 50 MHz)."""
        for p in self.plls:
            if abs(p.out_mhz - mhz) < 1e-6:
                return p
        have = ", ".join(f"{p.out_mhz:g}" for p in self.plls)
        raise BoardError(f"board {self.name}: no PLL setting for {mhz:g} MHz (have {have} MHz)")


#: ``synth_ice40``'s own ``map_luts:`` and ``map_cells:`` steps (Yosys 0.70), with the UP5K's
#: cell delays (``ICE40_U``; synth_ice40 models the HX unless told ``-device u``) and an
#: inter-LUT wire delay of 2.5 ns for ABC9 instead of synth_ice40's 0.25 ns (0.75 with
#: ``-device u``). nextpnr routes a LUT-to-LUT hop on the nearly full UP5K in 1.8-3 ns, so
#: with 0.25 ns ABC chained LUTs to save area or follow a carry chain's arrival order
#: (8-10 LUTs in series, the critical paths of the builds). The deepest register-to-register
#: path of ``tiny`` (``logic_depth`` in the reports): 8 LUTs at 1.5 ns (5,242 cells), 7 at
#: 2 ns (5,248), 6 at 2.5 ns (5,260 of 5,280; docs/fpga.md has the builds).
ICE40_LUT_MAPPING = (
    "techmap -map +/ice40/latches_map.v",
    "read_verilog -D ICE40_U -icells -lib -specify +/ice40/abc9_model.v",
    "abc9 -W 2500",
    "ice40_wrapcarry -unwrap",
    "techmap -map +/ice40/ff_map.v",
    "clean",
    "opt_lut -tech ice40",
    "synth_ice40 -run map_cells:",
)

#: Amaranth's FSM state registers (``fsm_state``, ``<name>_state``) carry an init value, so
#: Yosys leaves them binary-encoded; one-hot makes every state test a flip-flop, and it halved
#: the paths of 8 LUTs or more (the command processor's and the host link's state decodes sat
#: in front of most of them). Yosys then ignores the init value (it warns): the board's reset,
#: held until the PLL locks, puts each FSM in its first state before it runs.
ICE40_ONE_HOT_FSMS = ('setattr -set fsm_encoding "one-hot" w:fsm_state w:*_state',)


#: Register copies (``sushi_hw.bram``: the address and enable of a RAM spread over many block
#: RAMs, a copy per group) are equal flip-flops, which Yosys's ``opt_merge`` would merge back
#: into one; ``keep`` on the flip-flops that drive a wire marked ``REPLICA_ATTR`` stops it.
#: Every board runs it (a design without copies selects nothing).
KEEP_REPLICAS = (f"setattr -set keep 1 a:{REPLICA_ATTR} %ci1:+$dff[Q] a:{REPLICA_ATTR} %d",)


def _icebreaker_platform():
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    return ICEBreakerPlatform()


def _ulx3s_platform():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    return ULX3S_85F_Platform()


# SB_PLL40_PAD settings from `icepll -i 12 -o F` (simple feedback)
_ICE40_PLLS = tuple(
    PllSetting(f, {"DIVR": r, "DIVF": d, "DIVQ": q, "FILTER_RANGE": 1})
    for f, r, d, q in ((24.0, 0, 63, 5), (30.0, 0, 79, 5), (36.0, 0, 47, 4), (48.0, 0, 63, 4))
)
# EHXPLLL settings from `ecppll -i 25 -o F`
_ECP5_PLLS = tuple(
    PllSetting(f, {"CLKI_DIV": i, "CLKFB_DIV": fb, "CLKOP_DIV": op, "CLKOP_CPHASE": cp})
    for f, i, fb, op, cp in ((50.0, 1, 2, 12, 5), (75.0, 1, 3, 8, 4), (100.0, 1, 4, 6, 2))
)

BOARDS: dict[str, Board] = {
    b.name: b
    for b in (
        Board(
            name="icebreaker",
            device="iCE40UP5K-SG48",
            family="ice40",
            preset="tiny",
            clock_in_mhz=12.0,
            resources=DeviceResources(
                luts=5280,
                ffs=5280,
                dsps=8,
                dsp_width=16,
                brams=30,
                bram_bytes=512,
                sprams=4,
                spram_bytes=32768,
                cells={
                    "luts": ("ICESTORM_LC",),
                    "ffs": ("ICESTORM_LC",),
                    "dsps": ("ICESTORM_DSP",),
                    "brams": ("ICESTORM_RAM",),
                    "sprams": ("ICESTORM_SPRAM",),
                },
            ),
            plls=_ICE40_PLLS,
            # synthesis stops before LUT mapping, which ICE40_LUT_MAPPING then does
            synth_opts=("-dsp", "-spram", "-run", ":map_luts"),
            script_after_synth=ICE40_LUT_MAPPING,
            script_after_read=ICE40_ONE_HOT_FSMS,
            ram_bytes=32768,
            platform=_icebreaker_platform,
        ),
        Board(
            name="ulx3s",
            device="LFE5U-85F",
            family="ecp5",
            preset="large",
            clock_in_mhz=25.0,
            resources=DeviceResources(
                luts=83640,
                ffs=83640,
                dsps=156,
                dsp_width=18,
                brams=208,
                bram_bytes=2048,
                cells={
                    "luts": ("TRELLIS_COMB",),
                    "ffs": ("TRELLIS_FF",),
                    "dsps": ("MULT18X18D",),
                    "brams": ("DP16KD",),
                    "sprams": (),
                },
            ),
            plls=_ECP5_PLLS,
            synth_opts=(),
            # large (132 LUT-multiplier PEs, 64 block RAMs in the PB) with router1 and the
            # default placement density had not finished routing after an hour; router2 on a
            # placement spread to 60% density routes it in about 5 minutes. default routes
            # faster with router1 and is 20 MHz slower with these (docs/fpga.md)
            nextpnr_opts={"large": ("--router", "router2", "--placer-heap-beta", "0.6")},
            ram_bytes=65536,
            platform=_ulx3s_platform,
        ),
    )
}


def get_board(name: str) -> Board:
    if name not in BOARDS:
        raise BoardError(f"unknown board {name!r}; choose one of {', '.join(BOARDS)}")
    return BOARDS[name]
