"""Host driver for the ``sushi_sim`` top: bulk memory access, doorbell, status and counters.

The host sleeps on the accelerator's ``busy`` falling edge while a program runs: it wakes once
per program, never per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cocotb.triggers import (
    ClockCycles,
    FallingEdge,
    ReadOnly,
    RisingEdge,
    SimTimeoutError,
    with_timeout,
)
from sushi_hw import isa
from sushi_hw.config import AccelConfig


@dataclass
class RunResult:
    done: bool
    error_code: int
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def error(self) -> isa.ErrorCode:
        return isa.ErrorCode(self.error_code)


class AccelHost:
    def __init__(self, dut, cfg: AccelConfig):
        self.dut, self.cfg = dut, cfg
        self.W = cfg.mem_width
        # drive every input before the first reset: an X left on the memory model's settings
        # would poison its token bucket under Icarus
        for name, value in (
            ("ctrl__doorbell", 0),
            ("bd_we", 0),
            ("bd_addr", 0),
            ("bd_wdata", 0),
            ("ctrl__prog_addr", 0),
            ("ctrl__ctr_sel", 0),
            ("mem_seed_load", 0),
            ("mem_latency", cfg.mem_latency),
            ("mem_bytes_per_cycle", cfg.mem_bytes_per_cycle),
            ("mem_stall_prob", 0),
            ("mem_seed", 1),
        ):
            getattr(dut, name).value = value

    async def reset(self, cycles: int = 3) -> None:
        self.dut.ctrl__doorbell.value = 0
        self.dut.bd_we.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def memory_model(
        self, latency: int, bytes_per_cycle: int, stall_prob: int = 0, seed: int = 1
    ) -> None:
        d = self.dut
        d.mem_latency.value = latency
        d.mem_bytes_per_cycle.value = bytes_per_cycle
        d.mem_stall_prob.value = stall_prob
        d.mem_seed.value = seed & 0xFFFF
        d.mem_seed_load.value = 1
        await RisingEdge(d.clk)
        d.mem_seed_load.value = 0

    async def write(self, addr: int, data: bytes) -> None:
        """Backdoor write; ``addr`` and the length are padded to memory words."""
        if addr % self.W:
            raise ValueError(f"address {addr:#x} is not aligned to {self.W} bytes")
        if len(data) % self.W:
            data = data + bytes(self.W - len(data) % self.W)
        if addr + len(data) > self.cfg.mem_bytes:
            raise ValueError(f"{len(data)} bytes at {addr:#x} exceed memory ({self.cfg.mem_bytes})")
        d = self.dut
        base = addr // self.W
        for i in range(len(data) // self.W):
            d.bd_addr.value = base + i
            d.bd_wdata.value = int.from_bytes(data[i * self.W : (i + 1) * self.W], "little")
            d.bd_we.value = 1
            await RisingEdge(d.clk)
        d.bd_we.value = 0

    async def read(self, addr: int, length: int) -> bytes:
        """Backdoor read, pipelined: one word per cycle."""
        d = self.dut
        out = bytearray()
        n = -(-length // self.W)
        d.bd_addr.value = addr // self.W
        await RisingEdge(d.clk)
        for i in range(n):
            if i + 1 < n:
                d.bd_addr.value = addr // self.W + i + 1
            await ReadOnly()
            value = d.bd_rdata.value
            if not value.is_resolvable:
                raise ValueError(f"memory word at {addr + i * self.W:#x} holds X/Z: {value}")
            out += int(value).to_bytes(self.W, "little")
            await RisingEdge(d.clk)
        return bytes(out[:length])

    async def counters(self) -> dict[str, int]:
        """Every counter: ``ctr_value`` follows ``ctr_sel`` two cycles later (block RAM, then
        registers in front of the sum)."""
        d = self.dut
        out = {}
        for c in isa.Counter:
            d.ctrl__ctr_sel.value = int(c)
            for _ in range(2):
                await RisingEdge(d.clk)
            await ReadOnly()
            out[c.name.lower()] = int(d.ctrl__ctr_value.value)
            await RisingEdge(d.clk)
        return out

    async def start(self, prog_addr: int) -> None:
        d = self.dut
        d.ctrl__prog_addr.value = prog_addr
        d.ctrl__doorbell.value = 1
        await RisingEdge(d.clk)
        d.ctrl__doorbell.value = 0
        await RisingEdge(d.clk)

    async def run(self, prog_addr: int, timeout_cycles: int = 2_000_000) -> RunResult:
        """Ring the doorbell and sleep until the program halts (done or error)."""
        d = self.dut
        await self.start(prog_addr)
        if int(d.ctrl__busy.value):
            try:
                await with_timeout(FallingEdge(d.ctrl__busy), timeout_cycles * 10, "ns")
            except SimTimeoutError:
                state = int(d.accel.seq.cp_state.value)
                raise AssertionError(
                    f"program at {prog_addr:#x} still busy after {timeout_cycles} cycles "
                    f"(command processor state {state}, counters {await self.counters()})"
                ) from None
        await RisingEdge(d.clk)
        await ReadOnly()
        done, code = bool(d.ctrl__done.value), int(d.ctrl__error_code.value)
        await RisingEdge(d.clk)
        return RunResult(done, code, await self.counters())
