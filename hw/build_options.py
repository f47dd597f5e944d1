"""How a configuration is built: the implementation choices that a target's timing and
resources call for. They never change a result; :attr:`BuildOptions.pipeline_regs` changes
latencies (and so cycle counts), nothing else does.

The board flow's fit plan produces one value (:meth:`sushi_hw.fpga.fit.FitPlan.build_options`),
constructors take it, and it is part of the design hash (:func:`sushi_hw.generate.design_hash`),
so a cached build names exactly what was built. Simulation builds use :data:`SIMULATION`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BuildOptions:
    #: registers that exist for the ECP5's 100 MHz: after block RAM reads, stream register
    #: slices, registered compares. At the iCE40's 30 MHz they are logic cells the UP5K does
    #: not have, so its flow turns them off.
    pipeline_regs: bool = True
    #: PEs (row-major) allowed a hardware multiplier; the rest get LUT multipliers
    #: (``sushi_hw.array.lut_mul_s8``). None: every PE writes ``a * w`` and the synthesis
    #: tool decides.
    dsp_pes: int | None = None
    #: registered multiplies as MULT18X18D instances with their own registers (ECP5)
    ecp5_dsp: bool = False
    #: registered RAM reads in the DP16KD output registers (ECP5)
    ecp5_bram: bool = False
    #: names of the single-port RAMs to build from SB_SPRAM256KA (iCE40UP)
    spram: frozenset[str] = frozenset()
    #: the command check's products from one shift-add multiplier instead of four parallel
    #: ones (when the requantiser and the PEs take every DSP)
    shared_check_mul: bool = False
    #: the memory watchdog (:mod:`sushi_hw.watchdog`): cycles the memory may owe the core an
    #: answer (read data it requested, or room for write data or a request) before the program
    #: halts with MEM_TIMEOUT; 0 builds no watchdog. 4096 cycles is 41 us at 100 MHz, 14 us at
    #: 300 MHz: over ten times the worst response of a DRAM controller (DDR4 refresh tRFC
    #: 350 ns plus a closed-page access, about 0.5 us; JEDEC JESD79-4) behind an arbitrating
    #: interconnect, and far above the simulation memory's latencies (presets <= 100 cycles).
    mem_timeout: int = 4096
    #: count doorbells rung while a program runs (Counter.DOORBELLS_DROPPED); without, the
    #: counter reads 0 (a host link that never rings while busy, as the boards' does)
    count_dropped_doorbells: bool = True
    #: flag a counter that overflowed (bit ``counter_bits`` of its value, sticky until the
    #: doorbell; hosts read it as saturated at 2**counter_bits - 1): :mod:`sushi_hw.counters`
    counter_overflow: bool = True
    #: Persistent Buffer valid tags (:mod:`sushi_hw.pb_tags`): a tag RAM of one entry per PB
    #: tile (a valid bit and the off-chip address CACHE copied it from) that every PB tile a
    #: GEMM/CONV reads is checked against: a tile not cached from the address it stands for
    #: halts the program with PB_UNCACHED when the command ends. Without, such a command
    #: computes with whatever the PB holds, silently. No cycle on the legal path; the cost is
    #: the tag RAM (``pb_tiles`` x (log2(mem_bytes / mem_width) + 1) bits) and a comparator.
    pb_tags: bool = True

    def __post_init__(self) -> None:
        if self.dsp_pes is not None and self.dsp_pes < 0:
            raise ValueError(f"dsp_pes must be >= 0 or None, got {self.dsp_pes}")
        if not isinstance(self.mem_timeout, int) or not 0 <= self.mem_timeout < 1 << 24:
            raise ValueError(
                f"mem_timeout must be 0 (off) or cycles below 2**24, got {self.mem_timeout}"
            )
        object.__setattr__(self, "spram", frozenset(self.spram))

    def dsp_pe_count(self, n_pes: int) -> int:
        """PEs of an array of ``n_pes`` that may use a hardware multiplier."""
        return n_pes if self.dsp_pes is None else min(n_pes, self.dsp_pes)

    def without_vendor_primitives(self) -> BuildOptions:
        """The same design with generic RAMs and multipliers: what a simulator can run of a
        board build (its logic, latencies and registers are unchanged)."""
        return dataclasses.replace(self, spram=frozenset(), ecp5_dsp=False, ecp5_bram=False)

    def digest(self) -> str:
        """A short name for these options (build directories)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["spram"] = sorted(self.spram)
        return d


#: simulation and generic Verilog: every register, no vendor primitive
SIMULATION = BuildOptions()
