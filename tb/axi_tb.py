"""cocotb tests of ``sushi_axi`` against cocotbext-axi: its ``AxiRam`` is the DRAM (random
backpressure on every channel, a read latency) and its ``AxiLiteMaster`` carries the host
driver's register accesses (:class:`sushi_sched.runtime.axi_driver.AxiDriver`, run in a bridge
thread as a PYNQ host would run it).

``SUSHI_CONFIG`` carries the AccelConfig, ``SUSHI_SEED`` the seed (printed in every failure).
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.triggers import ClockCycles
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
from sushi_sched.runtime.axi_sim import Env, start

PROG_ADDR, CACHE_PROG_ADDR, IN_ADDR, OUT_ADDR, W_ADDR = 0x0, 0x800, 0x1000, 0x4000, 0x8000


def load_config() -> AccelConfig:
    return AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))


def seed() -> int:
    return int(os.environ.get("SUSHI_SEED", "1"))


async def setup(dut: Any, latency: int | None = None) -> Env:
    cfg = load_config()
    return await start(dut, cfg, cfg.mem_latency if latency is None else latency)


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


def run_net(drv: AxiDriver, cfg: AccelConfig, tensors, calls, x, m, layout, w_addr=W_ADDR):  # noqa: ANN001
    """Load, (cache,) run; returns (int32 result, [RunResult])."""
    image = WeightImage.build(cfg, tensors, w_addr)
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
            # weights from 16 B below a 4 KiB page: tile requests that the master must split
            w_addr = 0x9000 - 16 if trial == 0 else W_ADDR
            env.backpressure(prng, p)
            env.set_latency(lat)
            drv.write_reg("MEM_BASE", base)
            what = (
                f"seed={s} trial {trial} mode={mode} m={m} layers={[(c.k, c.n) for c in calls]} "
                f"pause={p} latency={lat} base={base:#x} weights at {w_addr:#x}"
            )
            out, runs = run_net(drv, cfg, tensors, calls, x, m, layout, w_addr)
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
    a = len(dut.m_axi_wdata) // 8  # bytes per beat
    for kind, _, addr, ln in env.log:
        assert addr % a == 0 and (addr % 4096) + (ln + 1) * a <= 4096, (kind, addr, ln)
    ends = {addr + (ln + 1) * a for kind, _, addr, ln in env.log if kind == "ar"}
    starts = {addr for kind, _, addr, ln in env.log if kind == "ar"}
    assert 0x9000 in ends and 0x9000 in starts, f"seed={s}: no read split at the 4 KiB page"


@cocotb.test()
async def axi_errors_halt_and_recover(dut):
    """SLVERR on a weight read, on a command fetch and on the output's write: the program
    halts within a bounded time with STATUS.axi_error, the response and the direction, and the
    core with BUS_ERROR; the
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
            # the core halts on the bus error itself, with its code (not on the zeroed data)
            assert st.code == isa.ErrorCode.BUS_ERROR, f"seed={s} {what}: core code {st.code}"
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


@cocotb.test()
async def reset_in_the_middle(dut):
    """Reset at a random moment of a program (AXI bursts in flight, random pauses), then the
    same program again through a fresh driver: bit-exact."""
    env = await setup(dut)
    cfg, s = env.cfg, seed() + 3
    rng = np.random.default_rng(s)
    prng = random.Random(s)
    for trial in range(2):
        tensors, calls, x, m = random_net(cfg, rng, 3)
        layout = PBLayout.allocate(cfg, {c.tensor: (1, 1) for c in calls})
        image = WeightImage.build(cfg, tensors, W_ADDR)
        prog = [
            *cache_program(cfg, image, layout),
            *network_program(cfg, image, layout, calls, m, IN_ADDR, OUT_ADDR),
        ]

        def load_and_start(image=image, x=x, prog=prog) -> AxiDriver:
            drv = env.driver()
            for name, blob in image.blobs.items():
                drv.write(image.addr[name], blob)
            drv.write(IN_ADDR, act_bytes(cfg, x))
            drv.write(PROG_ADDR, b"".join(prog))
            env.backpressure(prng, 0.3)
            drv.start(PROG_ADDR)
            return drv

        await bridge(load_and_start)()
        at = int(rng.integers(10, 400))
        await ClockCycles(dut.clk, at)
        dut.rst.value = 1
        await ClockCycles(dut.clk, int(rng.integers(1, 4)))
        dut.rst.value = 0
        await ClockCycles(dut.clk, 2)

        def rerun(calls=calls, m=m, trial=trial, at=at) -> np.ndarray:
            drv = env.driver()
            res = drv.run(PROG_ADDR, "rerun")
            assert res.ok, f"seed={s} trial {trial}: rerun after reset at {at}: {res.status}"
            raw = drv.read(OUT_ADDR, m * -(-calls[-1].n // cfg.cols) * cfg.rows * 4)
            return int32_from_bytes(cfg, raw, m, calls[-1].n)

        out = await bridge(rerun)()
        want = reference(tensors, calls, x)
        assert np.array_equal(out, want), f"seed={s} trial {trial}: wrong after reset at {at}"
        dut._log.info(f"trial {trial}: reset {at} cycles in, rerun exact")
