"""The one configuration object of SushiAccel.

Every part of the project (RTL generator, simulation memory model, cost model, scheduler, reports)
reads its sizes from an :class:`AccelConfig`. Named presets live in :data:`PRESETS`; a preset can
be modified with :func:`make_config` overrides (``rows=16`` ...). Construction validates every
field and raises :class:`ConfigError` naming the field that is wrong.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A configuration that cannot be built. The message names the offending field."""


def _is_pow2(x: int) -> bool:
    return x > 0 and (x & (x - 1)) == 0


def clog2(x: int) -> int:
    """Bits needed to index ``x`` items (at least 1)."""
    return max(1, (x - 1).bit_length())


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for integers (``b > 0``), without floats."""
    return -(-a // b)


@dataclass(frozen=True)
class AccelConfig:
    """Sizes of one SushiAccel instance.

    Tiling vocabulary used everywhere: a GEMM ``C[M,N] = A[M,K] @ W[K,N]`` is cut into weight tiles
    of ``rows x cols`` (K-tile x N-tile) and M-tiles of at most ``acc_depth`` rows.
    """

    name: str = "default"
    #: PE rows = K elements per weight tile. Power of two, >= 2.
    rows: int = 8
    #: PE columns = N elements per weight tile. Power of two, >= 2.
    cols: int = 8
    #: Accumulator rows = largest M-tile. Power of two.
    acc_depth: int = 256
    #: Bytes of each of the two (ping/pong) activation buffers.
    act_bytes: int = 16384
    #: Bytes of the Persistent Buffer holding the cached SubGraph.
    pb_bytes: int = 8192
    #: Bytes of the dynamic (streaming) weight buffer; at least two weight tiles (double buffer).
    dyn_bytes: int = 2048
    #: Off-chip memory port width in bytes per beat. Power of two.
    mem_width: int = 8
    #: Simulation memory model: cycles from request accepted to first response beat.
    mem_latency: int = 24
    #: Simulation memory model: sustained bytes per cycle (<= mem_width).
    mem_bytes_per_cycle: int = 4
    #: Nominal clock used to turn cycles into milliseconds.
    clock_mhz: float = 100.0
    #: Largest M, K or N of one GEMM; sets descriptor field widths.
    max_dim: int = 4096
    #: Bytes of off-chip memory the accelerator may address (and the simulation model holds).
    mem_bytes: int = 1 << 20
    #: Width of each hardware counter (cycles, bytes, ...; reset by every doorbell). 32 bits
    #: count 143 s at 30 MHz, more than one program ever runs; the host reads 64 either way.
    counter_bits: int = 48
    #: Convolutions on chip (CONV, ADD and POOL; docs/isa.md). Without: those opcodes are illegal
    #: (the iCE40UP5K has no room for the address generator and the vector unit).
    conv: bool = True
    #: Free-text note on where the numbers come from.
    note: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        def need(cond: bool, fld: str, msg: str) -> None:
            if not cond:
                raise ConfigError(
                    f"config {self.name!r}: field '{fld}' = {getattr(self, fld)!r}: {msg}"
                )

        for f in (
            "rows",
            "cols",
            "acc_depth",
            "act_bytes",
            "pb_bytes",
            "dyn_bytes",
            "mem_width",
            "mem_latency",
            "mem_bytes_per_cycle",
            "max_dim",
            "counter_bits",
        ):
            v = getattr(self, f)
            need(isinstance(v, int) and not isinstance(v, bool), f, "must be an integer")
        need(self.rows >= 2 and _is_pow2(self.rows), "rows", "must be a power of two >= 2")
        need(self.cols >= 2 and _is_pow2(self.cols), "cols", "must be a power of two >= 2")
        need(self.rows <= 64, "rows", "must be <= 64")
        need(
            self.cols == self.rows,
            "cols",
            f"must equal rows ({self.rows}): a layer's output rows are the next layer's input "
            "words, so the activation layout needs a square array",
        )
        need(self.cols <= 64, "cols", "must be <= 64")
        need(
            _is_pow2(self.acc_depth) and self.acc_depth >= 2,
            "acc_depth",
            "must be a power of two >= 2",
        )
        need(
            self.act_bytes >= self.rows * self.acc_depth,
            "act_bytes",
            f"must hold at least one full M-tile of one K-tile ({self.rows * self.acc_depth} B)",
        )
        need(self.act_bytes % self.rows == 0, "act_bytes", "must be a multiple of rows")
        need(
            self.pb_bytes >= 0 and self.pb_bytes % self.tile_bytes == 0,
            "pb_bytes",
            f"must be a non-negative multiple of the weight tile size ({self.tile_bytes} B)",
        )
        need(
            self.dyn_bytes >= 2 * self.tile_bytes and self.dyn_bytes % self.tile_bytes == 0,
            "dyn_bytes",
            f"must be a multiple of the tile size and hold at least two weight "
            f"tiles ({2 * self.tile_bytes} B)",
        )
        need(
            _is_pow2(self.mem_width) and self.mem_width <= 256,
            "mem_width",
            "must be a power of two <= 256",
        )
        need(self.mem_latency >= 1, "mem_latency", "must be >= 1 cycle")
        need(
            1 <= self.mem_bytes_per_cycle <= self.mem_width,
            "mem_bytes_per_cycle",
            f"must be between 1 and mem_width ({self.mem_width})",
        )
        need(
            isinstance(self.clock_mhz, (int, float)) and self.clock_mhz > 0,
            "clock_mhz",
            "must be > 0",
        )
        need(isinstance(self.conv, bool), "conv", "must be true or false")
        need(16 <= self.counter_bits <= 64, "counter_bits", "must be between 16 and 64")
        need(self.max_dim >= max(self.rows, self.cols), "max_dim", "must be >= rows and cols")
        need(self.max_dim < (1 << 16), "max_dim", "must fit the 16-bit GEMM fields of the ISA")
        need(
            self.mem_width <= self.tile_bytes,
            "mem_width",
            f"must be <= one weight tile ({self.tile_bytes} B)",
        )
        need(
            _is_pow2(self.mem_bytes)
            and self.mem_bytes <= (1 << 32)
            and self.mem_bytes >= 64 * self.mem_width,
            "mem_bytes",
            "must be a power of two, at least 64 memory words, at most 4 GiB",
        )

    # ---- derived quantities (never stored twice) -------------------------------------------
    @property
    def tile_bytes(self) -> int:
        """Bytes of one int8 weight tile (rows x cols)."""
        return self.rows * self.cols

    @property
    def pb_tiles(self) -> int:
        return self.pb_bytes // self.tile_bytes

    @property
    def act_words(self) -> int:
        """Depth of one activation buffer in rows-byte words."""
        return self.act_bytes // self.rows

    @property
    def dim_bits(self) -> int:
        return self.max_dim.bit_length()

    @property
    def psum_bits(self) -> int:
        """Width of the in-array partial sum: a sum of ``rows`` int8 x int8 products."""
        return 16 + clog2(self.rows) + 1

    @property
    def macs_per_cycle(self) -> int:
        return self.rows * self.cols

    def cycles_to_ms(self, cycles: float) -> float:
        return cycles / (self.clock_mhz * 1e3)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> AccelConfig:
        return make_config(self, **overrides)


#: The ``default`` preset: the class defaults (one base; every other preset overrides fields of
#: it, and ``tests/hw/test_config.py`` checks that ``AccelConfig()`` is this preset).
_DEFAULT = AccelConfig(
    note="Simulation default (class defaults): 8x8 array, off-chip at half the array's "
    "weight-row rate (4 of 8 B/cycle, 24 cycles); an 8 KiB PB holds a SubGraph of the digits "
    "SuperNet (13 KB in all), not all of it. Also builds on the ULX3S (docs/builds/)."
)

#: The SUSHI deployment on the ZCU104; ``zcu104-dpu`` is the same chip pushed hard.
_ZCU104 = dataclasses.replace(
    _DEFAULT,
    name="zcu104",
    rows=32,
    cols=32,
    acc_depth=1024,
    act_bytes=1 << 20,
    pb_bytes=2 << 20,
    dyn_bytes=64 << 10,
    mem_width=16,
    mem_latency=33,
    mem_bytes_per_cycle=16,
    clock_mhz=100.0,
    max_dim=(1 << 16) - 1,
    mem_bytes=1 << 31,
    note=(
        "The SUSHI authors' ZCU104 deployment as their FEATHER repository "
        "(maeri-project/FEATHER, End2end_Deployment: bitstream metadata and notebook) "
        "shows it: an HLS accelerator at 100 MHz; weights over one 128-bit AXI master = "
        "16 B/cycle = 1.6 GB/s, the rate its late layers measurably stream weights at; "
        "about 1296 int8 MACs/cycle there, 32x32 = 1024 here (rows and cols must be equal "
        "powers of two; 64x64 would need 4096 DSPs of the 1728). On-chip RAM of the "
        "XCZU7EV (Xilinx DS891: 312 BRAM36 + 96 URAM, about 4.75 MiB): PB 2 MiB + 2x1 MiB "
        "activations + 64 KiB dynamic buffer = 4.06 MiB. mem_latency 33 cycles (330 ns) "
        "is an assumption, not a measurement. 2 GiB: the board's PS DDR4."
    ),
)


PRESETS: dict[str, AccelConfig] = {
    p.name: p
    for p in (
        dataclasses.replace(
            _DEFAULT,
            name="tiny",
            rows=2,
            cols=2,
            acc_depth=64,
            act_bytes=4096,
            pb_bytes=16384,
            dyn_bytes=64,
            mem_width=2,
            mem_latency=8,
            mem_bytes_per_cycle=2,
            clock_mhz=30.0,
            max_dim=256,
            mem_bytes=1 << 18,
            counter_bits=32,
            conv=False,
            note="Fits an iCE40UP5K (5,280 LCs, 8 DSPs, 4x32 KiB SPRAM: Lattice iCE40 UltraPlus "
            "family data sheet): 4 PEs and 2 requantiser lanes on its 8 DSPs; PB and host RAM in "
            "SPRAM; 30 MHz is the build target (docs/builds/icebreaker-tiny.json).",
        ),
        _DEFAULT,
        dataclasses.replace(
            _DEFAULT,
            name="large",
            rows=16,
            cols=16,
            act_bytes=32768,
            pb_bytes=131072,
            dyn_bytes=4096,
            mem_width=16,
            mem_latency=32,
            mem_bytes_per_cycle=8,
            note="Sized for an ECP5-85F (84k LUT4, 156 MULT18X18D as nextpnr counts them, 208 "
            "DP16KD = 416 KiB of EBR: Lattice ECP5 family data sheet): 256 int8 multipliers, "
            "PB 128 KiB of its EBR; 100 MHz is the target, not met (docs/builds/ulx3s-large.json).",
        ),
        _ZCU104,
        dataclasses.replace(
            _ZCU104,
            name="zcu104-dpu",
            mem_width=64,
            mem_latency=100,
            mem_bytes_per_cycle=42,
            clock_mhz=300.0,
            note=(
                "The same XCZU7EV pushed hard: 300 MHz as the Vitis AI DPU runs on the ZCU104 "
                "(Xilinx PG338; the DPU B4096 has 2048 MACs/cycle, this array keeps 32x32 = "
                "1024); off-chip at the PL-to-DDR throughput measured on the same family, about "
                "75% of the 64-bit DDR4-2133 peak of 17 GB/s (Manev et al., FPT 2019): "
                "12.8 GB/s = 42 B/cycle at 300 MHz (12.6 GB/s) over a 64-byte port (port width "
                "is a power of two). Same buffers as zcu104 (they fit the 4.75 MiB on chip, "
                "Xilinx DS891). mem_latency 100 cycles (333 ns, as zcu104's 33 at 100 MHz) is an "
                "assumption, not a measurement."
            ),
        ),
    )
}


def make_config(base: str | AccelConfig = "default", **overrides: Any) -> AccelConfig:
    """A preset (by name or object) with fields overridden, validated."""
    if isinstance(base, str):
        if base not in PRESETS:
            raise ConfigError(f"unknown preset {base!r}; choose one of {', '.join(PRESETS)}")
        base = PRESETS[base]
    names = {f.name for f in dataclasses.fields(AccelConfig)}
    for k in overrides:
        if k not in names:
            raise ConfigError(f"unknown config field {k!r}; fields are {', '.join(sorted(names))}")
    if overrides and "name" not in overrides:
        overrides["name"] = base.name
    return dataclasses.replace(base, **overrides)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse CLI ``FIELD=VALUE`` overrides into typed values."""
    types = {f.name: f.type for f in dataclasses.fields(AccelConfig)}
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like FIELD=VALUE")
        k, v = item.split("=", 1)
        if k not in types:
            raise ConfigError(f"unknown config field {k!r}")
        if types[k] == "bool":
            if v.lower() not in ("0", "1", "true", "false"):
                raise ConfigError(f"override {item!r}: {v!r} is not true or false")
            out[k] = v.lower() in ("1", "true")
            continue
        try:
            out[k] = float(v) if types[k] == "float" else (v if types[k] == "str" else int(v, 0))
        except ValueError:
            raise ConfigError(f"override {item!r}: {v!r} is not a valid {types[k]}") from None
    return out
