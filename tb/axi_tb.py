"""cocotb tests of ``sushi_axi`` against cocotbext-axi: its ``AxiRam`` is the DRAM (random
backpressure on every channel, a read latency) and its ``AxiLiteMaster`` carries the host
driver's register accesses (:class:`sushi_sched.runtime.axi_driver.AxiDriver`, run in a bridge
thread as a PYNQ host would run it).

``SUSHI_CONFIG`` carries the AccelConfig, ``SUSHI_SEED`` the seed (printed in every failure).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, Event, RisingEdge, SimTimeoutError, Timer, with_timeout
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam
from sushi_hw import isa
from sushi_hw.config import AccelConfig
from sushi_hw.program import act_bytes, int32_from_bytes
from sushi_hw.reference import gemm_ref
from sushi_sched.compiler import (
    LayerCall,
    PBLayout,
    WeightImage,
    cache_program,
    network_program,
)
from sushi_sched.runtime.axi_driver import AxiDriver, DesignMismatch

CLOCK_NS = 10
IRQ_TIMEOUT_CYCLES = 2_000_000
PROG_ADDR, CACHE_PROG_ADDR, IN_ADDR, OUT_ADDR, W_ADDR = 0x0, 0x800, 0x1000, 0x4000, 0x8000


def load_config() -> AccelConfig:
    return AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))


def seed() -> int:
    return int(os.environ.get("SUSHI_SEED", "1"))


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


async def setup(dut: Any, latency: int | None = None) -> Env:
    cfg = load_config()
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    env = Env(dut, cfg, cfg.mem_latency if latency is None else latency)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return env


# ---- workloads (as tb/accel_tb.py's, on full tensors with shapes that fit the buffers) ------


def random_net(cfg: AccelConfig, rng: np.random.Generator, layers: int):
    r = cfg.rows
    dims = [int(rng.integers(1, 4 * r + 1)) for _ in range(layers + 1)]
    m = int(rng.integers(1, 3 * r + 2))
    tensors, calls = {}, []
    for i in range(layers):
        tensors[f"t{i}"] = rng.integers(-128, 128, (dims[i], dims[i + 1]), dtype=np.int8)
        last = i == layers - 1
        rq = None if last else (int(rng.integers(1, 1 << 16)), int(rng.integers(8, 20)))
        calls.append(LayerCall(f"t{i}", dims[i], dims[i + 1], rq, relu=bool(rng.integers(0, 2))))
    x = rng.integers(-128, 128, (m, dims[0]), dtype=np.int8)
    return tensors, calls, x, m


def reference(tensors, calls, x) -> np.ndarray:  # noqa: ANN001
    a = x
    for c in calls:
        a = gemm_ref(a, tensors[c.tensor][: c.k, : c.n], None, c.requant, c.relu)
    return a


def blocks_for(cfg: AccelConfig, calls, mode: str, rng: np.random.Generator) -> dict:  # noqa: ANN001
    blocks = {}
    for c in calls:
        kt, nt = -(-c.k // cfg.rows), -(-c.n // cfg.cols)
        if mode == "pb":
            blocks[c.tensor] = (kt, nt)
        elif mode == "split":
            blocks[c.tensor] = (int(rng.integers(1, kt + 1)), int(rng.integers(1, nt + 1)))
    return blocks


def run_net(drv: AxiDriver, cfg: AccelConfig, tensors, calls, x, m, layout):  # noqa: ANN001
    """Load, (cache,) run; returns (int32 result, [RunResult])."""
    image = WeightImage.build(cfg, tensors, W_ADDR)
    for name, blob in image.blobs.items():
        drv.write(image.addr[name], blob)
    drv.write(IN_ADDR, act_bytes(cfg, x))
    runs = []
    if layout.blocks:
        drv.write(CACHE_PROG_ADDR, b"".join([*cache_program(cfg, image, layout), isa.done()]))
        runs.append(drv.run(CACHE_PROG_ADDR, "cache"))
    drv.write(PROG_ADDR, b"".join(network_program(cfg, image, layout, calls, m, IN_ADDR, OUT_ADDR)))
    runs.append(drv.run(PROG_ADDR, "network"))
    last = calls[-1]
    raw = drv.read(OUT_ADDR, m * -(-last.n // cfg.cols) * cfg.rows * 4)
    return int32_from_bytes(cfg, raw, m, last.n), runs


def expected_weight_bytes(cfg: AccelConfig, calls, blocks, m: int) -> int:  # noqa: ANN001
    t, total = cfg.tile_bytes, 0
    for c in calls:
        kt, nt = -(-c.k // cfg.rows), -(-c.n // cfg.cols)
        kc, nc = blocks.get(c.tensor, (0, 0))
        total += (kt * nt - min(kc, kt) * min(nc, nt)) * t * -(-m // cfg.acc_depth)
    return total


# ---- tests ---------------------------------------------------------------------------------


@cocotb.test()
async def registers(dut):
    """The configuration registers match the build's table (the driver's check), a driver
    expecting another configuration is refused, RW registers read back."""
    env = await setup(dut)
    s = seed()

    def body() -> None:
        drv = env.driver()
        assert drv.read_reg("AXI_DATA_BYTES") in (8, 16, 32), f"seed={s}"
        other = env.cfg.replace(pb_bytes=env.cfg.pb_bytes + env.cfg.tile_bytes)
        try:
            env.driver(other)
        except DesignMismatch as e:
            assert "PB_BYTES" in str(e) and "CONFIG_HASH" in str(e), str(e)
        else:
            raise AssertionError("a driver for another PB size was not refused")
        drv.write_reg("PROG_ADDR", 0x12345678)
        assert drv.read_reg("PROG_ADDR") == 0x12345678
        st = drv.status()
        assert not st.busy and not st.done and not st.error, st
        assert drv.counters()["cycles"] == 0

    await bridge(body)()


@cocotb.test()
async def gemm_programs(dut):
    """Random multi-layer programs (weights from the PB, off-chip and split) under random
    AXI backpressure and read latency, one with a non-zero MEM_BASE: bit-exact against numpy,
    exact off-chip weight bytes, and every burst inside a 4 KiB page (AxiRam asserts it)."""
    env = await setup(dut)
    cfg, s = env.cfg, seed()
    rng = np.random.default_rng(s)
    prng = random.Random(s)
    trials = int(os.environ.get("SUSHI_AXI_TRIALS", "6"))

    def body() -> None:
        drv = env.driver()
        for trial in range(trials):
            mode = ["offchip", "split", "pb"][trial % 3]
            tensors, calls, x, m = random_net(cfg, rng, int(rng.integers(1, 4)))
            blocks = blocks_for(cfg, calls, mode, rng)
            layout = PBLayout.allocate(cfg, blocks)
            p = prng.choice([0.0, 0.2, 0.5])
            lat = prng.choice([1, 8, cfg.mem_latency, 60])
            base = 0x8000_0000 if trial == 1 else 0
            env.backpressure(prng, p)
            env.set_latency(lat)
            drv.write_reg("MEM_BASE", base)
            what = (
                f"seed={s} trial {trial} mode={mode} m={m} layers={[(c.k, c.n) for c in calls]} "
                f"pause={p} latency={lat} base={base:#x}"
            )
            out, runs = run_net(drv, cfg, tensors, calls, x, m, layout)
            for r in runs:
                assert r.ok, f"{what}: {r.what} stopped: {r.status}"
            assert np.array_equal(out, reference(tensors, calls, x)), f"{what}: wrong result"
            got = runs[-1].counters["rd_weight_bytes"]
            want = expected_weight_bytes(cfg, calls, blocks, m)
            assert got == want, f"{what}: off-chip weight bytes {got} != {want}"
            dut._log.info(f"{what}: ok, {runs[-1].cycles} cycles")
        drv.write_reg("MEM_BASE", 0)
        env.backpressure(prng, 0.0)

    await bridge(body)()
    for kind, _, addr, ln in env.log:
        a = len(dut.m_axi_wdata) // 8  # bytes per beat
        assert addr % a == 0 and (addr % 4096) + (ln + 1) * a <= 4096, (kind, addr, ln)


@cocotb.test()
async def axi_errors_halt_and_recover(dut):
    """SLVERR on a weight read, on a command fetch and on the output's write: the program
    halts within a bounded time with STATUS.axi_error, the response and the direction; the
    next doorbell (faults removed) runs the same program bit-exactly."""
    env = await setup(dut)
    cfg, s = env.cfg, seed() + 7
    rng = np.random.default_rng(s)

    def body() -> None:
        drv = env.driver()
        tensors, calls, x, m = random_net(cfg, rng, 2)
        want = reference(tensors, calls, x)
        image = WeightImage.build(cfg, tensors, W_ADDR)
        cases = [
            ("weight read", "read", (W_ADDR, W_ADDR + 64), False),
            ("command fetch", "read", (PROG_ADDR + isa.CMD_BYTES, PROG_ADDR + 2 * isa.CMD_BYTES),
             False),
            ("output write", "write", (OUT_ADDR, OUT_ADDR + 64), True),
        ]  # fmt: skip
        for what, kind, rng_, is_write in cases:
            getattr(env.faults, kind).append(rng_)
            _, runs = run_net(drv, cfg, tensors, calls, x, m, PBLayout())
            res = runs[-1]
            st = res.status
            assert not res.ok and st.axi_error and st.error and not st.done, (
                f"seed={s} {what}: {st}"
            )
            assert st.axi_resp == 2 and st.axi_write == is_write, f"seed={s} {what}: {st}"
            assert res.cycles < 20_000, f"seed={s} {what}: halted only after {res.cycles} cycles"
            dut._log.info(f"{what}: {st}, core code {st.code}, {res.cycles} cycles")
            env.faults.clear()
            out, runs = run_net(drv, cfg, tensors, calls, x, m, PBLayout())
            assert runs[-1].ok, f"seed={s} after {what}: {runs[-1].status}"
            assert np.array_equal(out, want), f"seed={s} after {what}: wrong result"
        del image

    await bridge(body)()


@cocotb.test()
async def digits_query(dut):
    """A digits SubNet query served by the runtime's server through the AXI driver: logits
    bit-exact against the int8 reference, with and without a cached SubGraph."""
    if os.environ.get("SUSHI_AXI_DIGITS", "1") != "1":
        return
    env = await setup(dut)
    s = seed()

    def body() -> None:
        from sushi_sched.runtime.digits import subgraph_of
        from sushi_sched.runtime.server import Server

        drv = env.driver()
        server = Server(drv)
        server.load_weights()
        key = min(server.net.subnets(), key=lambda n: n.weight_bytes).id
        q = server.query(key, image=s % 100)
        assert q.match, f"seed={s}: {key} logits differ from the reference"
        cache = server.fill_pb(subgraph_of(server.net, key))
        q2 = server.query(key, image=s % 100, layout=cache.layout)
        assert q2.match, f"seed={s}: {key} with its SubGraph cached differs"
        dut._log.info(f"digits {key}: {q.run.cycles} cycles, {q2.run.cycles} with the PB")

    await bridge(body)()
