"""The AXI host driver against a fake register file (the RTL's side is tb/axi_tb.py): it
checks the build's constants, refuses another build naming the registers that differ, decodes
STATUS (an AXI error fails the run) and reads 64-bit counters as LO then HI."""

from __future__ import annotations

import pytest
from sushi_hw import isa
from sushi_hw.axi import regs
from sushi_hw.config import PRESETS
from sushi_sched.runtime.axi_driver import AxiDriver, AxiStatus, DesignMismatch


class FakeRegs:
    def __init__(self, cfg, axi_bytes: int = 8):
        self.values = {regs.offset(n): v for n, v in regs.config_values(cfg, axi_bytes).items()}
        self.writes: list[tuple[str, int]] = []
        self.status = 0

    def read32(self, offset: int) -> int:
        if offset == regs.offset("STATUS"):
            return self.status
        if offset >= regs.COUNTER_BASE:
            i, hi = divmod(offset - regs.COUNTER_BASE, 8)
            value = (i + 1) << 33 | i  # above 32 bits
            return value >> 32 if hi else value & 0xFFFFFFFF
        return self.values.get(offset, 0)

    def write32(self, offset: int, value: int) -> None:
        name = next(r.name for r in regs.REGISTERS if r.offset == offset)
        self.writes.append((name, value))
        if name == "CONTROL":
            self.status = self.next_status()


class Mem:
    def write(self, addr: int, data: bytes) -> None:
        pass

    def read(self, addr: int, n: int) -> bytes:
        return bytes(n)


def _word(**fields: int) -> int:
    f = {fl.name: fl for fl in regs.STATUS_FIELDS}
    return sum(v << f[k].lsb for k, v in fields.items())


def test_driver_checks_the_build() -> None:
    cfg = PRESETS["default"]
    AxiDriver(cfg, FakeRegs(cfg), Mem())
    with pytest.raises(DesignMismatch, match="ROWS.*CONFIG_HASH|CONFIG_HASH.*ROWS"):
        AxiDriver(cfg, FakeRegs(PRESETS["large"]), Mem())
    bad = FakeRegs(cfg)
    bad.values[regs.offset("ISA_HASH")] ^= 1
    with pytest.raises(DesignMismatch, match="ISA_HASH"):
        AxiDriver(cfg, bad, Mem())


def test_run_counters_and_status() -> None:
    cfg = PRESETS["default"]
    fake = FakeRegs(cfg)
    fake.next_status = lambda: _word(done=1)
    drv = AxiDriver(cfg, fake, Mem(), mem_base=0x4000_0000)
    assert ("MEM_BASE", 0x4000_0000) in fake.writes
    res = drv.run(0x800, "p")
    assert res.ok and res.done and fake.writes[-2:] == [("PROG_ADDR", 0x800), ("CONTROL", 1)]
    assert res.counters["cycles"] == 1 << 33 and res.counters["commands"] == 8 << 33 | 7
    assert len(res.counters) == isa.NUM_COUNTERS
    fake.next_status = lambda: _word(error=1, axi_error=1, code=1, axi_resp=2, axi_write=1)
    res = drv.run(0x800)
    assert not res.ok and not res.done and res.status.axi_error and res.status.axi_write
    assert "BRESP" in str(res.status) and "SLVERR" in str(res.status)
    with pytest.raises(ValueError, match="read-only"):
        drv.write_reg("STATUS", 0)


def test_status_fields_round_trip() -> None:
    st = AxiStatus.from_word(_word(busy=1, code=0xAB, axi_resp=3))
    assert st.busy and st.code == 0xAB and st.axi_resp == 3 and not st.axi_error
