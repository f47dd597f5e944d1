"""``sushi_axi`` in a cocotb simulation with cocotbext-axi's models: :class:`Env` puts an
``AxiRam`` (the DRAM: a pipelined read latency, random or throttled pauses on its channels, SLVERR
injection, a log of every burst) and an ``AxiLiteMaster`` (the registers) on the top and gives
:class:`~sushi_sched.runtime.axi_driver.AxiDriver` its accessors. The testbench
(``tb/axi_tb.py``) and the benchmark (:mod:`sushi_sched.runtime.axi_bench`) both use it; it
only runs inside a simulator.
"""

from __future__ import annotations

import collections
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.task import resume
from cocotb.triggers import ClockCycles, Event, RisingEdge, SimTimeoutError, Timer, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam
from sushi_hw.config import AccelConfig

from .axi_driver import AxiDriver

CLOCK_NS = 10
IRQ_TIMEOUT_CYCLES = 2_000_000


def now_cycles() -> int:
    return int(get_sim_time("ns")) // CLOCK_NS


class DelayedChannel:
    """Stands in for ``AxiRam``'s AR sink: every request is handed to the RAM ``latency``
    cycles after the bus accepted it (pipelined: many requests can wait at once), and each is
    logged as ``(cycle, addr, len)``."""

    def __init__(self, channel: Any, latency: int, log: list, kind: str):
        self.channel, self.latency, self.log, self.kind = channel, latency, log, kind
        self.queue: collections.deque = collections.deque()
        self.event = Event()
        cocotb.start_soon(self._pump())

    async def _pump(self) -> None:
        while True:
            t = await self.channel.recv()
            stamp = now_cycles()
            addr = int(getattr(t, f"{self.kind}addr"))
            self.log.append((self.kind, stamp, addr, int(getattr(t, f"{self.kind}len"))))
            self.queue.append((stamp, t))
            self.event.set()

    async def recv(self) -> Any:
        while not self.queue:
            self.event.clear()
            await self.event.wait()
        stamp, t = self.queue.popleft()
        wait = stamp + self.latency - now_cycles()
        if wait > 0:
            await Timer(wait * CLOCK_NS, "ns")
        return t

    def clear(self) -> None:
        self.queue.clear()
        self.channel.clear()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.channel, name)


@dataclass
class Faults:
    """Address ranges [lo, hi) whose reads or writes the RAM answers with SLVERR."""

    read: list[tuple[int, int]] = field(default_factory=list)
    write: list[tuple[int, int]] = field(default_factory=list)

    def clear(self) -> None:
        self.read.clear()
        self.write.clear()


def pauses(rng: random.Random, p: float):
    """A pause generator: each cycle paused with probability ``p``."""
    while True:
        yield rng.random() < p


def throttle(period: int):
    """One beat every ``period`` cycles."""
    while True:
        yield False
        for _ in range(period - 1):
            yield True


class Env:
    """The DUT with its AXI models and the host driver's accessors."""

    def __init__(self, dut: Any, cfg: AccelConfig, latency: int = 0):
        self.dut, self.cfg = dut, cfg
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=cfg.mem_bytes)
        self.lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.log: list = []
        rd, wr = self.ram.read_if, self.ram.write_if
        self.ar = rd.ar_channel = DelayedChannel(rd.ar_channel, latency, self.log, "ar")
        self.aw = wr.aw_channel = DelayedChannel(wr.aw_channel, 0, self.log, "aw")
        self.faults = Faults()
        for model in (rd, wr, self.lite.read_if, self.lite.write_if):
            model.log.setLevel(logging.WARNING)  # a line per transaction slows the simulation
        orig_read, orig_write = rd._read, wr._write

        async def faulty_read(address: int, length: int) -> bytes:
            a = address % cfg.mem_bytes
            if any(lo <= a < hi for lo, hi in self.faults.read):
                raise OSError(f"injected read error at {address:#x}")
            return await orig_read(address, length)

        async def faulty_write(address: int, data: bytes) -> None:
            a = address % cfg.mem_bytes
            if any(lo <= a < hi for lo, hi in self.faults.write):
                raise OSError(f"injected write error at {address:#x}")
            await orig_write(address, data)

        rd._read, wr._write = faulty_read, faulty_write

    def set_latency(self, latency: int) -> None:
        self.ar.latency = latency

    def channels(self) -> list:
        rd, wr = self.ram.read_if, self.ram.write_if
        return [rd.ar_channel.channel, rd.r_channel, wr.aw_channel.channel, wr.w_channel,
                wr.b_channel]  # fmt: skip

    async def _backpressure(self, seed: int, p: float) -> None:
        rng = random.Random(seed)
        for ch in self.channels():
            ch.set_pause_generator(pauses(random.Random(rng.random()), p) if p else None)
            if not p:
                ch.pause = False  # a stopped generator leaves its last value

    async def set_throttle(self, period: int) -> None:
        """R and W data at one beat every ``period`` cycles (the native memory model's
        bytes per cycle), no other pauses."""
        rd, wr = self.ram.read_if, self.ram.write_if
        for ch in self.channels():
            ch.set_pause_generator(None)
            ch.pause = False
        if period > 1:
            rd.r_channel.set_pause_generator(throttle(period))
            wr.w_channel.set_pause_generator(throttle(period))

    def backpressure(self, rng: random.Random, p: float) -> None:
        """Random pauses with probability ``p`` on every channel of the RAM (from a bridge
        thread: the generators start in the simulator's scheduler)."""
        resume(self._backpressure)(rng.getrandbits(32), p)

    # accessors for the driver (synchronous, from a bridge thread)
    async def _read32(self, offset: int) -> int:
        return int.from_bytes((await self.lite.read(offset, 4)).data, "little")

    async def _write32(self, offset: int, value: int) -> None:
        await self.lite.write(offset, value.to_bytes(4, "little"))

    async def _wait_irq(self) -> None:
        if not int(self.dut.irq.value):
            try:  # a hang shows as the driver's timeout on STATUS.busy, not a stuck test
                await with_timeout(RisingEdge(self.dut.irq), IRQ_TIMEOUT_CYCLES * CLOCK_NS, "ns")
            except SimTimeoutError:
                pass

    def driver(self, cfg: AccelConfig | None = None, **kw: Any) -> AxiDriver:
        env = self

        class Regs:
            read32 = staticmethod(resume(env._read32))
            write32 = staticmethod(resume(env._write32))

        class Mem:
            @staticmethod
            def write(addr: int, data: bytes) -> None:
                env.ram.write(addr, data)

            @staticmethod
            def read(addr: int, n: int) -> bytes:
                return env.ram.read(addr, n)

        kw.setdefault("wait_irq", resume(self._wait_irq))
        return AxiDriver(cfg or self.cfg, Regs(), Mem(), name="axi/cocotb", **kw)


async def start(dut: Any, cfg: AccelConfig, latency: int) -> Env:
    """Clock, the AXI models, reset: an :class:`Env` ready for a driver."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    env = Env(dut, cfg, latency)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return env
