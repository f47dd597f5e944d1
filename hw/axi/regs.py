"""The AXI4-Lite register map of ``sushi_axi``: the one definition.

The RTL (:mod:`sushi_hw.axi.top`) decodes exactly these offsets, the host driver
(:mod:`sushi_sched.runtime.axi_driver`) addresses registers by these names, and the table in
docs/axi.md is :func:`markdown` of this module (``tests/hw/test_axi_regs.py`` fails when they
differ; ``python -m sushi_hw.axi.regs`` rewrites it).

Every register is 32 bits. Read-only configuration registers hold constants of the build, so a
driver can check it talks to the design it expects (:func:`config_values`).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import isa
from ..config import AccelConfig

#: "SUSH" in ASCII: the ID register
MAGIC = 0x53555348
#: version of this register map (bumped on any incompatible change)
REGMAP_VERSION = 1
#: bytes of the AXI4-Lite window (address bits decoded: 12)
WINDOW_BYTES = 0x1000
ADDR_BITS = 12
#: first counter register; counter ``i`` is ``LO`` at ``COUNTER_BASE + 8 i``, ``HI`` at ``+ 4``
COUNTER_BASE = 0x100


@dataclass(frozen=True)
class Field:
    name: str
    lsb: int
    width: int
    doc: str

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, word: int) -> int:
        return (word >> self.lsb) & ((1 << self.width) - 1)


@dataclass(frozen=True)
class Reg:
    name: str
    offset: int
    access: str  #: "RO", "RW", "WO"
    doc: str
    fields: tuple[Field, ...] = ()
    #: a constant of the build (RO configuration registers): value(cfg, axi_bytes)
    value: Callable[[AccelConfig, int], int] | None = None


def isa_hash() -> int:
    """32 bits of a digest of the ISA: opcodes, error codes, counters and every command
    layout (field names, offsets, widths). Changes with any change to :mod:`sushi_hw.isa`'s
    encoding."""
    desc = {
        "cmd_bytes": isa.CMD_BYTES,
        "ops": {o.name: int(o) for o in isa.Op},
        "errors": {e.name: int(e) for e in isa.ErrorCode},
        "counters": [c.name for c in isa.Counter],
        "layouts": {
            int(op): [(name, f.offset, f.width) for name, f in layout]
            for op, layout in isa.LAYOUTS.items()
        },
    }
    return _digest32(desc)


def config_hash(cfg: AccelConfig, axi_bytes: int) -> int:
    """32 bits of a digest of the configuration (every field but the name and the note) and
    the AXI data width."""
    d = {k: v for k, v in cfg.to_dict().items() if k not in ("name", "note")}
    return _digest32({"config": d, "axi_bytes": axi_bytes})


def _digest32(obj: object) -> int:
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little")


STATUS_FIELDS = (
    Field("busy", 0, 1, "a program runs, a doorbell waits, or AXI transfers are in flight"),
    Field("done", 1, 1, "the last program reached DONE without an AXI error"),
    Field("error", 2, 1, "the last program halted on an error (ISA error or AXI error)"),
    Field("axi_error", 3, 1, "an AXI read or write response was SLVERR/DECERR"),
    Field(
        "code",
        8,
        8,
        "the core's error code (`isa.ErrorCode`; BUS_ERROR after an AXI error)",
    ),
    Field("axi_resp", 16, 2, "the failing RRESP/BRESP (2 SLVERR, 3 DECERR)"),
    Field("axi_write", 18, 1, "the failing response was a write's BRESP (0: a read's RRESP)"),
)

CONTROL_FIELDS = (
    Field(
        "start",
        0,
        1,
        "write 1: the doorbell (runs the program at PROG_ADDR once the "
        "core and the AXI master are idle; clears done, error and the AXI error)",
    ),
)


def _cfg(f: Callable[[AccelConfig], int]) -> Callable[[AccelConfig, int], int]:
    return lambda cfg, axi_bytes: int(f(cfg))


REGISTERS: tuple[Reg, ...] = (
    Reg("ID", 0x000, "RO", '0x53555348 ("SUSH")', value=lambda c, a: MAGIC),
    Reg(
        "REGMAP_VERSION",
        0x004,
        "RO",
        "version of this register map",
        value=lambda c, a: REGMAP_VERSION,
    ),
    Reg(
        "ISA_HASH",
        0x008,
        "RO",
        "digest of the ISA encoding (`regs.isa_hash()`)",
        value=lambda c, a: isa_hash(),
    ),
    Reg(
        "CONFIG_HASH",
        0x00C,
        "RO",
        "digest of the AccelConfig and AXI width (`regs.config_hash(cfg, axi_bytes)`)",
        value=config_hash,
    ),
    Reg("CONTROL", 0x010, "WO", "doorbell", CONTROL_FIELDS),
    Reg("PROG_ADDR", 0x014, "RW", "byte address of the program's first command"),
    Reg("STATUS", 0x018, "RO", "status of the last program", STATUS_FIELDS),
    Reg(
        "AXI_ERR_ADDR",
        0x01C,
        "RO",
        "accelerator address of the request whose response failed (for a BRESP: of the "
        "latest write request); valid while `axi_error`",
    ),
    Reg("IRQ_ENABLE", 0x020, "RW", "bit 0: drive `irq` while STATUS.done or STATUS.error"),
    Reg(
        "MEM_BASE",
        0x024,
        "RW",
        "AXI address of accelerator address 0 (bits [11:0] ignored: 4 KiB aligned)",
    ),
    Reg("ROWS", 0x040, "RO", "PE array rows", value=_cfg(lambda c: c.rows)),
    Reg("COLS", 0x044, "RO", "PE array columns", value=_cfg(lambda c: c.cols)),
    Reg(
        "ACC_DEPTH",
        0x048,
        "RO",
        "accumulator rows (largest M-tile)",
        value=_cfg(lambda c: c.acc_depth),
    ),
    Reg("PB_BYTES", 0x04C, "RO", "Persistent Buffer bytes", value=_cfg(lambda c: c.pb_bytes)),
    Reg(
        "ACT_BYTES",
        0x050,
        "RO",
        "bytes of each activation buffer",
        value=_cfg(lambda c: c.act_bytes),
    ),
    Reg("DYN_BYTES", 0x054, "RO", "dynamic weight buffer bytes", value=_cfg(lambda c: c.dyn_bytes)),
    Reg(
        "MEM_WIDTH",
        0x058,
        "RO",
        "the core's memory beat in bytes (`mem_width`)",
        value=_cfg(lambda c: c.mem_width),
    ),
    Reg(
        "AXI_DATA_BYTES", 0x05C, "RO", "the AXI4 master's data width in bytes", value=lambda c, a: a
    ),
    Reg(
        "MEM_BYTES_LOG2",
        0x060,
        "RO",
        "log2 of the addressable memory (`mem_bytes`)",
        value=_cfg(lambda c: c.mem_bytes.bit_length() - 1),
    ),
    Reg("MAX_DIM", 0x064, "RO", "largest GEMM dimension", value=_cfg(lambda c: c.max_dim)),
    Reg("COUNTER_BITS", 0x068, "RO", "width of each counter", value=_cfg(lambda c: c.counter_bits)),
    Reg(
        "CLOCK_KHZ",
        0x06C,
        "RO",
        "the configuration's nominal clock",
        value=_cfg(lambda c: round(c.clock_mhz * 1000)),
    ),
    Reg(
        "NUM_COUNTERS",
        0x070,
        "RO",
        "counters from COUNTER_BASE",
        value=lambda c, a: isa.NUM_COUNTERS,
    ),
) + tuple(
    r
    for c in isa.Counter
    for r in (
        Reg(
            f"CTR_{c.name}_LO",
            COUNTER_BASE + 8 * int(c),
            "RO",
            f"counter `{c.name.lower()}` bits [31:0]; latches bits [63:32] for `_HI`",
        ),
        Reg(
            f"CTR_{c.name}_HI",
            COUNTER_BASE + 8 * int(c) + 4,
            "RO",
            f"counter `{c.name.lower()}` bits [63:32] as of the last `_LO` read",
        ),
    )
)

BY_NAME: dict[str, Reg] = {r.name: r for r in REGISTERS}


def offset(name: str) -> int:
    return BY_NAME[name].offset


def config_values(cfg: AccelConfig, axi_bytes: int) -> dict[str, int]:
    """What every constant register of a build for ``cfg`` reads."""
    return {r.name: r.value(cfg, axi_bytes) & 0xFFFFFFFF for r in REGISTERS if r.value}


def _check() -> None:
    seen: dict[int, str] = {}
    for r in REGISTERS:
        if r.offset % 4 or not 0 <= r.offset < WINDOW_BYTES:
            raise ValueError(f"register {r.name}: bad offset {r.offset:#x}")
        if r.offset in seen:
            raise ValueError(f"registers {seen[r.offset]} and {r.name} share {r.offset:#x}")
        seen[r.offset] = r.name


_check()


# ---- docs/axi.md -------------------------------------------------------------------------

DOC_BEGIN = "<!-- generated: regmap (python -m sushi_hw.axi.regs, from sushi_hw.axi.regs) -->"
DOC_END = "<!-- end: regmap -->"


def markdown() -> str:
    """The register map as the Markdown table in docs/axi.md (between the markers)."""
    lines = ["| offset | name | access | meaning |", "|---|---|---|---|"]
    for r in REGISTERS:
        if r.name.startswith("CTR_") and r.offset >= COUNTER_BASE + 8:
            continue  # one counter shown in full; the rest in one row below
        doc = r.doc
        if r.fields:
            doc += ": " + "; ".join(
                f"[{f.lsb + f.width - 1}:{f.lsb}] `{f.name}` {f.doc}"
                if f.width > 1
                else f"[{f.lsb}] `{f.name}` {f.doc}"
                for f in r.fields
            )
        lines.append(f"| `{r.offset:#05x}` | `{r.name}` | {r.access} | {doc} |")
    ctrs = ", ".join(f"{COUNTER_BASE + 8 * int(c):#05x} `{c.name}`" for c in isa.Counter)
    lines.append(
        f"| `{COUNTER_BASE:#05x}` + 8 i | `CTR_<NAME>_LO` / `_HI` | RO | counter i "
        f"(`isa.Counter`): {ctrs} |"
    )
    return "\n".join(lines)


def update_doc(path: Path) -> bool:
    """Rewrite the generated block of ``path``; True if it changed."""
    text = path.read_text()
    pat = re.compile(re.escape(DOC_BEGIN) + r"\n.*?" + re.escape(DOC_END), re.S)
    new = pat.sub(lambda m: f"{DOC_BEGIN}\n{markdown()}\n{DOC_END}", text)
    if new != text:
        path.write_text(new)
    return new != text


def doc_block(text: str) -> str | None:
    pat = re.compile(re.escape(DOC_BEGIN) + r"\n(.*?)\n" + re.escape(DOC_END), re.S)
    m = pat.search(text)
    return m.group(1) if m else None


if __name__ == "__main__":
    doc = Path(__file__).resolve().parents[2] / "docs" / "axi.md"
    print(f"{doc}: {'updated' if update_doc(doc) else 'up to date'}", file=sys.stderr)
