"""Axi4Master alone (Amaranth's simulator) against a Python AXI4 slave with random ready/valid
on every channel: random reads and writes of random lengths and addresses (across 4 KiB pages,
longer than 256 beats) give the same memory as doing them in order, at every width ratio
(up-sizing, equal, down-sizing); every burst is INCR, full width, at most 256 beats and inside
a page; write strobes cover exactly the request; read-after-write waits for the write response;
an error response sets ``error`` and later reads return zeros without reaching the bus."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from sushi_hw.axi.master import RESP_SLVERR, Axi4Master
from sushi_hw.config import PRESETS

MEM = 1 << 15


def _cfg(mem_width: int):
    return PRESETS["default"].replace(
        mem_width=mem_width, mem_bytes_per_cycle=min(4, mem_width), mem_bytes=1 << 16
    )


class Slave:
    """The bus side: a byte memory, the bursts seen, and error injection."""

    def __init__(self, dut: Axi4Master, rng: random.Random, stall: float):
        self.dut, self.rng, self.stall = dut, rng, stall
        self.A = dut.data_bytes
        self.mem = bytearray(MEM)
        self.bursts: list[tuple[str, int, int]] = []
        self.reads: list[tuple[int, int]] = []  # (addr, beats) accepted, not yet returned
        self.aws: list[tuple[int, int]] = []
        self.wbeats: list[tuple[int, int, int]] = []  # (data, strb, last)
        self.fail_reads: set[int] = set()  # burst addresses answered with SLVERR
        self.outstanding_writes = 0
        self.raw_violations = 0

    def go(self) -> bool:
        return not (self.stall and self.rng.random() < self.stall)

    def check_burst(self, kind: str, addr: int, ln: int) -> None:
        beats = ln + 1
        assert addr % self.A == 0, f"{kind} {addr:#x} not aligned to {self.A}"
        assert (addr % 4096) + beats * self.A <= 4096, f"{kind} {addr:#x}+{beats} crosses 4 KiB"
        self.bursts.append((kind, addr, beats))

    async def ar(self, ctx) -> None:
        a = self.dut.axi
        while True:
            ready = self.go()
            ctx.set(a.arready, ready)
            _, _, v, addr, ln, size, burst = await ctx.tick().sample(
                a.arvalid, a.araddr, a.arlen, a.arsize, a.arburst
            )
            if v and ready:
                assert burst == 1 and 1 << size == self.A
                self.check_burst("ar", addr, ln)
                if self.outstanding_writes:
                    self.raw_violations += 1
                self.reads.append((addr, ln + 1))

    async def r(self, ctx) -> None:
        a = self.dut.axi
        while True:
            if not self.reads or not self.go():
                ctx.set(a.rvalid, 0)
                await ctx.tick()
                continue
            addr, beats = self.reads[0]
            for i in range(beats):
                at = (addr + i * self.A) % MEM
                ctx.set(a.rdata, int.from_bytes(self.mem[at : at + self.A], "little"))
                ctx.set(a.rresp, RESP_SLVERR if addr in self.fail_reads else 0)
                ctx.set(a.rlast, i == beats - 1)
                ctx.set(a.rvalid, 1)
                await ctx.tick().until(a.rready)
                if i < beats - 1 and not self.go():
                    ctx.set(a.rvalid, 0)
                    await ctx.tick()
            ctx.set(a.rvalid, 0)
            self.reads.pop(0)

    async def aw(self, ctx) -> None:
        a = self.dut.axi
        while True:
            ready = self.go()
            ctx.set(a.awready, ready)
            _, _, v, addr, ln = await ctx.tick().sample(a.awvalid, a.awaddr, a.awlen)
            if v and ready:
                self.check_burst("aw", addr, ln)
                self.aws.append((addr, ln + 1))
                self.outstanding_writes += 1

    async def w(self, ctx) -> None:
        a = self.dut.axi
        while True:
            ready = self.go()
            ctx.set(a.wready, ready)
            _, _, v, d, s, last = await ctx.tick().sample(a.wvalid, a.wdata, a.wstrb, a.wlast)
            if v and ready:
                self.wbeats.append((d, s, last))

    async def b(self, ctx) -> None:
        a = self.dut.axi
        while True:
            if not self.aws or len(self.wbeats) < self.aws[0][1]:
                await ctx.tick()
                continue
            addr, beats = self.aws.pop(0)
            for i in range(beats):
                d, s, last = self.wbeats.pop(0)
                assert last == (i == beats - 1), f"WLAST wrong at beat {i} of {beats}"
                base = (addr + i * self.A) % MEM
                for j in range(self.A):
                    if s >> j & 1:
                        self.mem[base + j] = d >> (8 * j) & 0xFF
            ctx.set(a.bresp, 0)
            ctx.set(a.bvalid, 1)
            await ctx.tick().until(a.bready)
            ctx.set(a.bvalid, 0)
            self.outstanding_writes -= 1


def _run(mem_width: int, data_bytes: int, seed: int, stall: float, n_req: int = 14):
    cfg = _cfg(mem_width)
    W = cfg.mem_width
    dut = Axi4Master(cfg, data_bytes, reads=4)
    rng = random.Random(seed)
    slave = Slave(dut, random.Random(seed + 1), stall)
    ref = bytearray(MEM)
    for i in range(MEM):
        ref[i] = slave.mem[i] = rng.getrandbits(8)
    reqs = []
    for _ in range(n_req):
        beats = rng.choice([1, 2, 3, rng.randint(1, 40), rng.randint(200, 600) // W + 1])
        beats = max(1, min(beats, (MEM // 4) // W))
        addr = rng.randrange(0, (MEM - beats * W) // W) * W
        if rng.random() < 0.3:  # start just below a page boundary
            addr = max(0, (addr // 4096 + 1) * 4096 - W * rng.randint(1, 4))
            addr = min(addr, MEM - beats * W)
        write = rng.random() < 0.4
        data = [rng.getrandbits(8 * W) for _ in range(beats)] if write else None
        reqs.append((addr, beats, write, data))
    expect: list[list[int]] = []
    for addr, beats, write, data in reqs:
        if write:
            for i, d in enumerate(data):
                ref[addr + i * W : addr + (i + 1) * W] = d.to_bytes(W, "little")
        else:
            expect.append(
                [int.from_bytes(ref[addr + i * W : addr + (i + 1) * W], "little")
                 for i in range(beats)]
            )  # fmt: skip
    got: list[list[int]] = []
    port = dut.mem

    async def core(ctx) -> None:
        for addr, beats, write, data in reqs:
            ctx.set(port.req.payload.addr, addr)
            ctx.set(port.req.payload.beats, beats)
            ctx.set(port.req.payload.write, write)
            ctx.set(port.req.valid, 1)
            await ctx.tick().until(port.req.ready)
            ctx.set(port.req.valid, 0)
            if write:
                for d in data:
                    while stall and rng.random() < stall:
                        await ctx.tick()
                    ctx.set(port.wdata.payload, d)
                    ctx.set(port.wdata.valid, 1)
                    await ctx.tick().until(port.wdata.ready)
                    ctx.set(port.wdata.valid, 0)

    async def sink(ctx) -> None:
        r2 = random.Random(seed + 2)
        for want in expect:
            beats = []
            while len(beats) < len(want):
                ready = not (stall and r2.random() < stall)
                ctx.set(port.rdata.ready, ready)
                _, _, v, d = await ctx.tick().sample(port.rdata.valid, port.rdata.payload)
                if v and ready:
                    beats.append(d)
            got.append(beats)
        ctx.set(port.rdata.ready, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for proc in (slave.ar, slave.r, slave.aw, slave.w, slave.b):
        sim.add_process(_wrap(proc))
    sim.add_testbench(core)
    sim.add_testbench(sink)

    async def wait_idle(ctx) -> None:
        while len(got) < len(expect):
            await ctx.tick()
        await ctx.tick().until(dut.idle)
        await ctx.tick().repeat(4)

    sim.add_testbench(wait_idle)
    sim.run()
    return slave, ref, expect, got


def _wrap(proc):
    async def run(ctx) -> None:
        await proc(ctx)

    return run


@pytest.mark.parametrize(
    ("mem_width", "data_bytes", "stall"),
    [(2, 8, 0.3), (8, 8, 0.0), (8, 8, 0.3), (8, 32, 0.3), (16, 8, 0.3), (64, 32, 0.2)],
)
def test_master_random_traffic(mem_width: int, data_bytes: int, stall: float) -> None:
    seed = 11 * mem_width + data_bytes
    slave, ref, expect, got = _run(mem_width, data_bytes, seed, stall)
    assert len(got) == len(expect), f"seed={seed}: {len(got)} of {len(expect)} reads returned"
    for i, (g, e) in enumerate(zip(got, expect, strict=True)):
        assert g == e, f"seed={seed}: read {i} differs"
    assert slave.mem == ref, f"seed={seed}: memory differs after the writes"
    assert slave.raw_violations == 0, f"seed={seed}: a read went out before a write's B"
    assert any(b[2] > 1 for b in slave.bursts), "no multi-beat burst"
    assert all(b[2] <= 256 for b in slave.bursts)


def test_master_read_error_poisons_until_clear() -> None:
    cfg = _cfg(8)
    dut = Axi4Master(cfg, 8, reads=4)
    slave = Slave(dut, random.Random(0), 0.0)
    slave.fail_reads.add(0x100)
    port = dut.mem
    seen: list[tuple] = []

    async def bench(ctx) -> None:
        async def read(addr: int, beats: int) -> list[int]:
            ctx.set(port.req.payload.addr, addr)
            ctx.set(port.req.payload.beats, beats)
            ctx.set(port.req.payload.write, 0)
            ctx.set(port.req.valid, 1)
            await ctx.tick().until(port.req.ready)
            ctx.set(port.req.valid, 0)
            ctx.set(port.rdata.ready, 1)
            out = []
            while len(out) < beats:
                _, _, v, d = await ctx.tick().sample(port.rdata.valid, port.rdata.payload)
                if v:
                    out.append(d)
            return out

        slave.mem[0x200:0x208] = bytes(range(1, 9))
        await read(0x100, 2)
        seen.append(("error", ctx.get(dut.error), ctx.get(dut.error_resp), ctx.get(dut.error_addr)))
        n_bursts = len(slave.bursts)
        seen.append(("poisoned", await read(0x200, 1), len(slave.bursts) - n_bursts))
        await ctx.tick().until(dut.idle)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        seen.append(("cleared", ctx.get(dut.error), await read(0x200, 1)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for proc in (slave.ar, slave.r, slave.aw, slave.w, slave.b):
        sim.add_process(_wrap(proc))
    sim.add_testbench(bench)
    sim.run()
    assert seen[0] == ("error", 1, RESP_SLVERR, 0x100), seen
    assert seen[1] == ("poisoned", [0], 0), seen  # zeros, and no burst on the bus
    assert seen[2] == ("cleared", 0, [int.from_bytes(bytes(range(1, 9)), "little")]), seen
