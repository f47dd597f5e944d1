"""The AXI4-Lite register map: one table (sushi_hw.axi.regs) for the RTL, the driver and
docs/axi.md. The doc's table is the table's rendering; the RTL (``sushi_axi`` on ``tiny``, in
Amaranth's simulator) reads every constant register as the table says, honours write strobes,
and reads a 64-bit counter as LO then HI."""

from __future__ import annotations

from pathlib import Path

from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.axi import regs
from sushi_hw.axi.master import default_data_bytes
from sushi_hw.axi.top import SushiAxi
from sushi_hw.config import PRESETS

DOC = Path(__file__).resolve().parents[2] / "docs" / "axi.md"


def test_doc_table_is_generated_from_the_table() -> None:
    block = regs.doc_block(DOC.read_text())
    assert block is not None, f"{DOC} lacks the generated register map block"
    assert block == regs.markdown(), "docs/axi.md is stale: python -m sushi_hw.axi.regs"


def test_map_is_consistent() -> None:
    names = [r.name for r in regs.REGISTERS]
    assert len(names) == len(set(names))
    for c in isa.Counter:
        assert regs.offset(f"CTR_{c.name}_LO") == regs.COUNTER_BASE + 8 * int(c)
        assert regs.offset(f"CTR_{c.name}_HI") == regs.offset(f"CTR_{c.name}_LO") + 4
    used = 0
    for f in regs.STATUS_FIELDS:
        assert not used & f.mask, f"STATUS field {f.name} overlaps"
        used |= f.mask
    # the hashes depend on what they describe
    a, b = PRESETS["default"], PRESETS["default"].replace(pb_bytes=4096)
    assert regs.config_hash(a, 8) != regs.config_hash(b, 8)
    assert regs.config_hash(a, 8) != regs.config_hash(a, 16)
    assert regs.config_hash(a, 8) == regs.config_hash(a.replace(name="x", note="y"), 8)


async def _write(ctx, bus, addr: int, value: int, strb: int = 0xF) -> None:
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.wdata, value)
    ctx.set(bus.wstrb, strb)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wvalid, 1)
    ctx.set(bus.bready, 1)
    await ctx.tick().until(bus.awready)
    ctx.set(bus.awvalid, 0)
    ctx.set(bus.wvalid, 0)
    await ctx.tick().until(bus.bvalid)


async def _read(ctx, bus, addr: int) -> int:
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arvalid, 1)
    ctx.set(bus.rready, 1)
    await ctx.tick().until(bus.arready)
    ctx.set(bus.arvalid, 0)
    while not ctx.get(bus.rvalid):
        await ctx.tick()
    return ctx.get(bus.rdata)


class _Bus:
    """The ``s_axil_*`` ports of the top under their AXI names."""

    def __init__(self, top: SushiAxi):
        for name in top._axil_sig.members:
            setattr(self, name, getattr(top, f"s_axil_{name}"))


def test_rtl_reads_the_table() -> None:
    cfg = PRESETS["tiny"]
    top = SushiAxi(cfg)
    bus = _Bus(top)
    want = regs.config_values(cfg, default_data_bytes(cfg))
    got: dict[str, int] = {}

    async def bench(ctx) -> None:
        await ctx.tick().repeat(2)
        for name in want:
            got[name] = await _read(ctx, bus, regs.offset(name))
        await _write(ctx, bus, regs.offset("PROG_ADDR"), 0x11223344)
        await _write(ctx, bus, regs.offset("PROG_ADDR"), 0xAABBCCDD, strb=0b0101)
        got["PROG_ADDR"] = await _read(ctx, bus, regs.offset("PROG_ADDR"))
        got["STATUS"] = await _read(ctx, bus, regs.offset("STATUS"))
        got["CTR_CYCLES_LO"] = await _read(ctx, bus, regs.offset("CTR_CYCLES_LO"))
        got["CTR_CYCLES_HI"] = await _read(ctx, bus, regs.offset("CTR_CYCLES_HI"))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for name, value in want.items():
        assert got[name] == value, f"{name}: RTL {got[name]:#x}, table {value:#x}"
    assert got["PROG_ADDR"] == 0x11BB33DD
    assert got["STATUS"] == 0  # idle, nothing ran
    assert got["CTR_CYCLES_LO"] == 0 and got["CTR_CYCLES_HI"] == 0
