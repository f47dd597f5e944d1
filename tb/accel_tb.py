"""cocotb tests of SushiAccel with the HDL memory model (top ``sushi_sim``).

``SUSHI_CONFIG`` carries the AccelConfig, ``SUSHI_SEED`` the seed (printed in every failure).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from accel_host import AccelHost
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from sushi_hw import isa
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import AccelConfig
from sushi_hw.program import act_bytes, int32_from_bytes, weight_tiles
from sushi_hw.reference import gemm_ref
from sushi_sched.compiler import (
    LayerCall,
    PBLayout,
    WeightImage,
    cache_program,
    network_program,
)
from sushi_sched.isa_sim import IsaSim

PROG_ADDR = 0x0
CACHE_PROG_ADDR = 0x800
IN_ADDR = 0x1000
OUT_ADDR = 0x4000
W_ADDR = 0x8000


def load_config() -> AccelConfig:
    return AccelConfig(**json.loads(os.environ["SUSHI_CONFIG"]))


def seed() -> int:
    return int(os.environ.get("SUSHI_SEED", "1"))


async def setup(dut) -> tuple[AccelHost, AccelConfig]:
    cfg = load_config()
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    host = AccelHost(dut, cfg)
    await host.reset()
    await host.memory_model(cfg.mem_latency, cfg.mem_bytes_per_cycle)
    return host, cfg


def random_net(cfg: AccelConfig, rng: np.random.Generator, layers: int, big_m: bool = False):
    """A random chain of layers on full tensors, with shapes that fit the buffers."""
    r = cfg.rows
    dims = [int(rng.integers(1, 4 * r + 1)) for _ in range(layers + 1)]
    if big_m:
        # more than one M-tile; keep A (m*KT words) and the int32 output (4*m*NT) in a buffer
        m = cfg.acc_depth + int(rng.integers(1, r + 1))
        kt_max = max(1, cfg.act_words // m)
        dims = [min(d, kt_max * r) for d in dims]
        dims[-1] = min(dims[-1], max(1, cfg.act_words // (4 * m)) * r)
    else:
        m = int(rng.integers(1, 3 * r + 2))
    tensors, calls = {}, []
    for i in range(layers):
        w = rng.integers(-128, 128, (dims[i], dims[i + 1]), dtype=np.int8)
        tensors[f"t{i}"] = w
        last = i == layers - 1
        rq = None if last else (int(rng.integers(1, 1 << 16)), int(rng.integers(8, 20)))
        calls.append(LayerCall(f"t{i}", dims[i], dims[i + 1], rq, relu=bool(rng.integers(0, 2))))
    x = rng.integers(-128, 128, (m, dims[0]), dtype=np.int8)
    return tensors, calls, x, m


def reference(tensors, calls, x) -> np.ndarray:
    a = x
    for c in calls:
        a = gemm_ref(a, tensors[c.tensor][: c.k, : c.n], None, c.requant, c.relu)
    return a


async def load_net(host: AccelHost, cfg: AccelConfig, tensors, x) -> WeightImage:  # noqa: ANN001
    """Write the weight image of ``tensors`` at W_ADDR and the input ``x`` at IN_ADDR."""
    image = WeightImage.build(cfg, tensors, W_ADDR)
    for addr, blob in image.writes():
        await host.write(addr, blob)
    await host.write(IN_ADDR, act_bytes(cfg, x))
    return image


async def write_program(host: AccelHost, addr: int, cmds: list[bytes]) -> None:
    await host.write(addr, b"".join(cmds))


async def run_net(host, cfg, tensors, calls, x, m, layout, *, with_cache: bool = True):
    """Load everything, run (cache program +) network program; return (result, run results)."""
    image = await load_net(host, cfg, tensors, x)
    runs = []
    if with_cache and layout.blocks:
        await write_program(host, CACHE_PROG_ADDR, [*cache_program(cfg, image, layout), isa.done()])
        runs.append(await host.run(CACHE_PROG_ADDR))
    prog = network_program(cfg, image, layout, calls, m, IN_ADDR, OUT_ADDR)
    await write_program(host, PROG_ADDR, prog)
    res = await host.run(PROG_ADDR)
    runs.append(res)
    last = calls[-1]
    raw = await host.read(OUT_ADDR, m * -(-last.n // cfg.cols) * cfg.rows * 4)
    out = int32_from_bytes(cfg, raw, m, last.n)
    return out, runs


def expected_weight_bytes(cfg: AccelConfig, calls, blocks: dict[str, tuple[int, int]], m: int):
    """Off-chip weight bytes from shapes alone (independent of the compiler)."""
    t = cfg.tile_bytes
    total = 0
    for c in calls:
        kt, nt = -(-c.k // cfg.rows), -(-c.n // cfg.cols)
        kc, nc = blocks.get(c.tensor, (0, 0))
        total += (kt * nt - min(kc, kt) * min(nc, nt)) * t * -(-m // cfg.acc_depth)
    return total


def assert_ok(res, what: str, s: int) -> None:
    assert res.done and res.error_code == 0, (
        f"seed={s} {what}: done={res.done} error={res.error.name}"
    )


async def random_memory(host, cfg, rng) -> str:
    lat = int(rng.integers(1, 64))
    bpc = int(rng.integers(1, cfg.mem_width + 1))
    stall = int(rng.choice([0, 32, 128]))
    mseed = int(rng.integers(1, 1 << 16))
    await host.memory_model(lat, bpc, stall, mseed)
    return f"latency={lat} bytes/cycle={bpc} stall={stall}/256 mem_seed={mseed}"


@cocotb.test()
async def multilayer_pb_offchip_split(dut):
    """Multi-layer programs with weights all in the PB, all off-chip, and split, on random memory
    latency/bandwidth/stalls; bit-exact results and exact off-chip weight-byte counts."""
    host, cfg = await setup(dut)
    s = seed()
    rng = np.random.default_rng(s)
    for trial in range(6):
        mode = ["pb", "offchip", "split"][trial % 3]
        tensors, calls, x, m = random_net(cfg, rng, int(rng.integers(1, 4)), big_m=(trial == 4))
        blocks = {}
        for c in calls:
            kt, nt = -(-c.k // cfg.rows), -(-c.n // cfg.cols)
            if mode == "pb":
                blocks[c.tensor] = (kt, nt)
            elif mode == "split":
                blocks[c.tensor] = (int(rng.integers(1, kt + 1)), int(rng.integers(1, nt + 1)))
        layout = PBLayout.allocate(cfg, blocks)
        mem = await random_memory(host, cfg, rng)
        what = f"trial {trial} mode={mode} m={m} layers={[(c.k, c.n) for c in calls]} {mem}"
        out, runs = await run_net(host, cfg, tensors, calls, x, m, layout)
        for r in runs:
            assert_ok(r, what, s)
        exp = reference(tensors, calls, x)
        assert np.array_equal(out, exp), f"seed={s} {what}: result differs from numpy"
        got = runs[-1].counters["rd_weight_bytes"]
        want = expected_weight_bytes(cfg, calls, blocks, m)
        assert got == want, f"seed={s} {what}: off-chip weight bytes {got} != {want}"
        if mode == "pb":
            assert got == 0, f"seed={s} {what}: weights read off-chip with everything cached"
        dut._log.info(f"{what}: ok, {runs[-1].counters['cycles']} cycles, {got} weight bytes")


@cocotb.test()
async def subgraph_stationary(dut):
    """Cache a SubGraph once; two different SubNets that share it both run correctly without
    re-caching, and each reads exactly its uncached weight bytes off-chip."""
    host, cfg = await setup(dut)
    s = seed() + 1
    rng = np.random.default_rng(s)
    r = cfg.rows
    kmax = [4 * r, 4 * r, 3 * r]
    nmax = [4 * r, 3 * r, 10]
    tensors = {
        f"t{i}": rng.integers(-128, 128, (kmax[i], nmax[i]), dtype=np.int8) for i in range(3)
    }

    def subnet(w1: int, w2: int) -> list[LayerCall]:
        return [
            LayerCall("t0", kmax[0], w1, (int(rng.integers(1 << 12, 1 << 16)), 16), True),
            LayerCall("t1", w1, w2, (int(rng.integers(1 << 12, 1 << 16)), 16), True),
            LayerCall("t2", w2, 10, None),
        ]

    a_net, b_net = subnet(2 * r, 2 * r), subnet(4 * r, 3 * r)
    # the SubGraph: the shared leading block, cached in tiles
    blocks = {"t0": (4, 2), "t1": (2, 2), "t2": (2, 1)}
    layout = PBLayout.allocate(cfg, blocks)
    x = rng.integers(-128, 128, (3, kmax[0]), dtype=np.int8)
    out_a, runs_a = await run_net(host, cfg, tensors, a_net, x, 3, layout, with_cache=True)
    assert_ok(runs_a[0], "cache program", s)
    cache_bytes = runs_a[0].counters["rd_weight_bytes"]
    assert cache_bytes == layout.tiles * cfg.tile_bytes, f"seed={s}: CACHE read {cache_bytes}"
    out_b, runs_b = await run_net(host, cfg, tensors, b_net, x, 3, layout, with_cache=False)
    for name, out, runs, net in (("A", out_a, runs_a, a_net), ("B", out_b, runs_b, b_net)):
        assert_ok(runs[-1], f"SubNet {name}", s)
        assert np.array_equal(out, reference(tensors, net, x)), f"seed={s}: SubNet {name} wrong"
        want = expected_weight_bytes(cfg, net, blocks, 3)
        got = runs[-1].counters["rd_weight_bytes"]
        assert got == want, f"seed={s}: SubNet {name} read {got} weight bytes, expected {want}"
        assert runs[-1].counters["pb_read_bytes"] > 0, f"seed={s}: SubNet {name} missed the PB"
        dut._log.info(
            f"SubNet {name}: {got} off-chip weight bytes, "
            f"{runs[-1].counters['pb_read_bytes']} PB bytes"
        )


async def expect_error(
    host, cfg, cmds: list[bytes], code: isa.ErrorCode, s: int, addr: int = PROG_ADDR
) -> None:
    await write_program(host, addr, cmds)
    res = await host.run(addr, timeout_cycles=5000)
    assert not res.done and res.error == code, (
        f"seed={s}: expected {code.name}, got done={res.done} error={res.error.name}"
    )
    assert res.counters["cycles"] < 1000, f"seed={s}: {code.name} took {res.counters['cycles']}"


@cocotb.test()
async def illegal_commands_halt(dut):
    """Illegal opcode, out-of-range PB/activation addresses, misalignment and a program that
    runs off the end of memory each raise their error within a bounded number of cycles; after
    a reset a good program still works."""
    host, cfg = await setup(dut)
    s = seed() + 2
    end = cfg.mem_bytes
    good = isa.cache(W_ADDR, 0, 1)
    await expect_error(host, cfg, [good, isa.raw(9)], isa.ErrorCode.ILLEGAL_OPCODE, s)
    await expect_error(host, cfg, [isa.raw(0)], isa.ErrorCode.ILLEGAL_OPCODE, s)
    await expect_error(host, cfg, [isa.cache(W_ADDR, cfg.pb_tiles, 1)], isa.ErrorCode.PB_RANGE, s)
    await expect_error(
        host, cfg, [isa.cache(W_ADDR, cfg.pb_tiles - 1, 2)], isa.ErrorCode.PB_RANGE, s
    )
    await expect_error(
        host, cfg, [isa.load_act(IN_ADDR, 0, cfg.act_words - 1, 2)], isa.ErrorCode.ACT_RANGE, s
    )
    await expect_error(
        host, cfg, [isa.load_act(end - cfg.rows, 0, 0, 2)], isa.ErrorCode.MEM_RANGE, s
    )
    if cfg.mem_width > 1:
        await expect_error(
            host, cfg, [isa.load_act(IN_ADDR + 1, 0, 0, 1)], isa.ErrorCode.BAD_ALIGN, s
        )
    gemm = dict(
        m=2,
        k=cfg.rows,
        n=cfg.cols,
        a_buf=0,
        a_word=0,
        o_buf=1,
        o_word=0,
        w_addr=W_ADDR,
        w_stride=1,
        requant=(1, 0),
    )
    await expect_error(
        host,
        cfg,
        [isa.gemm(**{**gemm, "pb_kt": 1, "pb_nt": 1, "pb_stride": 1, "pb_tile": cfg.pb_tiles})],
        isa.ErrorCode.PB_RANGE,
        s,
    )
    await expect_error(host, cfg, [isa.gemm(**{**gemm, "m": 0})], isa.ErrorCode.BAD_SHAPE, s)
    await expect_error(
        host,
        cfg,
        [isa.gemm(**{**gemm, "pb_kt": 2, "pb_nt": 1, "pb_stride": 2})],
        isa.ErrorCode.BAD_SHAPE,
        s,
    )
    await expect_error(
        host,
        cfg,
        [isa.gemm(**{**gemm, "m": cfg.acc_depth + 1, "hold": True})],
        isa.ErrorCode.BAD_ACCUMULATE,
        s,
    )
    await expect_error(
        host,
        cfg,
        [isa.gemm(**{**gemm, "w_addr": end - cfg.tile_bytes // 2})],
        isa.ErrorCode.MEM_RANGE,
        s,
    )
    # fields far beyond every limit: the RTL narrows its adders to the configuration's sizes,
    # so the bits above them must still be seen
    top = (1 << isa.ADDR_BITS) - 64
    await expect_error(host, cfg, [isa.cache(top, 0, 1)], isa.ErrorCode.MEM_RANGE, s)
    await expect_error(host, cfg, [isa.cache(end, 0, 1)], isa.ErrorCode.MEM_RANGE, s)
    max_index = (1 << isa.INDEX_BITS) - 1
    await expect_error(host, cfg, [isa.cache(W_ADDR, 0, max_index)], isa.ErrorCode.PB_RANGE, s)
    await expect_error(
        host, cfg, [isa.load_act(IN_ADDR, 1, max_index, 1)], isa.ErrorCode.ACT_RANGE, s
    )
    await expect_error(host, cfg, [isa.load_act(top, 0, 0, 1)], isa.ErrorCode.MEM_RANGE, s)
    await expect_error(
        host, cfg, [isa.gemm(**{**gemm, "w_addr": 1 << 31})], isa.ErrorCode.MEM_RANGE, s
    )
    await expect_error(
        host, cfg, [isa.gemm(**{**gemm, "a_word": max_index})], isa.ErrorCode.ACT_RANGE, s
    )
    res = await host.run(1 << 31, timeout_cycles=5000)  # the doorbell points outside memory
    assert res.error == isa.ErrorCode.MEM_RANGE, f"seed={s}: doorbell outside: {res.error.name}"
    # a program without DONE at the very end of memory runs off it
    await expect_error(
        host, cfg, [good, good], isa.ErrorCode.MEM_RANGE, s, addr=end - 2 * isa.CMD_BYTES
    )
    await host.reset()
    await host.memory_model(cfg.mem_latency, cfg.mem_bytes_per_cycle)
    rng = np.random.default_rng(s)
    tensors, calls, x, m = random_net(cfg, rng, 2)
    out, runs = await run_net(host, cfg, tensors, calls, x, m, PBLayout())
    assert_ok(runs[-1], "good program after errors", s)
    assert np.array_equal(out, reference(tensors, calls, x)), f"seed={s}: wrong after errors"


@cocotb.test()
async def reset_in_the_middle(dut):
    """Reset while a program runs (random moment, random memory timing), then rerun: exact."""
    host, cfg = await setup(dut)
    s = seed() + 3
    rng = np.random.default_rng(s)
    for trial in range(3):
        tensors, calls, x, m = random_net(cfg, rng, 3)
        blocks = {c.tensor: (1, 1) for c in calls}
        layout = PBLayout.allocate(cfg, blocks)
        image = await load_net(host, cfg, tensors, x)
        cmds = [
            *cache_program(cfg, image, layout),
            *network_program(cfg, image, layout, calls, m, IN_ADDR, OUT_ADDR),
        ]
        await write_program(host, PROG_ADDR, cmds)
        mem = await random_memory(host, cfg, rng)
        await host.start(PROG_ADDR)
        await ClockCycles(dut.clk, int(rng.integers(10, 400)))
        await host.reset(int(rng.integers(1, 4)))
        await host.memory_model(cfg.mem_latency, cfg.mem_bytes_per_cycle)
        res = await host.run(PROG_ADDR)
        assert_ok(res, f"trial {trial} rerun after reset ({mem})", s)
        raw = await host.read(OUT_ADDR, m * -(-calls[-1].n // cfg.cols) * cfg.rows * 4)
        out = int32_from_bytes(cfg, raw, m, calls[-1].n)
        assert np.array_equal(out, reference(tensors, calls, x)), f"seed={s} trial {trial}"


def build_opts() -> dict:
    """The build options the model was built with (``SUSHI_OPTS``)."""
    return json.loads(os.environ.get("SUSHI_OPTS", "{}"))


@cocotb.test()
async def memory_timeout_halts(dut):
    """A memory that stops answering (SimMemory's fault injection) at a command fetch, a
    weight read in the middle of a GEMM and an output write: the program halts with
    MEM_TIMEOUT within the watchdog's limit, the core is idle, and the same program then runs
    bit-exactly: re-rung without a reset after a read hung (its late answers are drained, also
    when the doorbell comes before they are in), after a reset when a write hung (the memory
    took the write request and still expects its beats, which the abandoned command will not
    send: docs/isa.md, "Memory errors")."""
    limit = build_opts().get("mem_timeout", BuildOptions().mem_timeout)
    if not limit:
        dut._log.info("no watchdog in this build (BuildOptions.mem_timeout = 0)")
        return
    host, cfg = await setup(dut)
    s = seed() + 11
    rng = np.random.default_rng(s)
    tensors, calls, x, m = random_net(cfg, rng, 2)
    want = reference(tensors, calls, x)
    image = await load_net(host, cfg, tensors, x)
    prog = network_program(cfg, image, PBLayout(), calls, m, IN_ADDR, OUT_ADDR)
    await write_program(host, PROG_ADDR, prog)
    out_bytes = m * -(-calls[-1].n // cfg.cols) * cfg.rows * 4
    clean = await host.run(PROG_ADDR)
    assert_ok(clean, "the program before any hang", s)
    first_w = image.addr["t0"]
    # (what, where the memory stops answering, then: "reset", "idle" (200 idle cycles), or
    # "now": re-rung in the next cycle, while the memory still delivers the abandoned reads,
    # which the core must drain, not take for the new program's fetch or data; the soak,
    # sushi_sched.runtime.soak, found a rerun that took them)
    cases = [
        ("fetch of command 2", PROG_ADDR + 2 * isa.CMD_BYTES, "idle"),
        ("weight read", first_w + len(image.blobs["t0"]) - cfg.tile_bytes, "idle"),
        ("output write", OUT_ADDR + cfg.mem_width, "reset"),
        ("fetch of command 1, re-rung at once", PROG_ADDR + isa.CMD_BYTES, "now"),
        ("first weight read, re-rung at once", first_w + cfg.mem_width, "now"),
        ("last weight read, re-rung at once", first_w + len(image.blobs["t0"]) - 1, "now"),
    ]
    for what, addr, then in cases:
        await host.write(OUT_ADDR, bytes(out_bytes))
        host.hang(addr)
        res = await host.run(PROG_ADDR, timeout_cycles=50 * limit)
        assert not res.done and res.error == isa.ErrorCode.MEM_TIMEOUT, (
            f"seed={s} {what}: done={res.done} error={res.error.name}"
        )
        assert not int(dut.ctrl__busy.value), f"seed={s} {what}: busy after the timeout"
        if what.startswith("fetch"):
            want_cmds = int(what.split()[3].rstrip(","))
            assert res.counters["commands"] == want_cmds, f"seed={s} {what}: {res.counters}"
        host.hang(None)  # the memory comes back: it answers what it had taken
        if then == "reset":
            await host.reset()
            await host.memory_model(cfg.mem_latency, cfg.mem_bytes_per_cycle)
        elif then == "idle":
            await ClockCycles(dut.clk, 200)  # idle: the late answers are drained
        res = await host.run(PROG_ADDR)
        assert_ok(res, f"rerun after a timeout at the {what}", s)
        for k, v in clean.counters.items():  # the stale beats count as nobody's bytes
            if k != "cycles":
                assert res.counters[k] == v, f"seed={s} {what}: {k} {res.counters[k]} != {v}"
        out = int32_from_bytes(cfg, await host.read(OUT_ADDR, out_bytes), m, calls[-1].n)
        assert np.array_equal(out, want), f"seed={s}: wrong after a timeout at the {what}"
        dut._log.info(f"timeout at the {what}: halted, rerun exact")


@cocotb.test()
async def stale_accumulate_halts(dut):
    """accumulate=1 onto an accumulator that holds no result (after the reset, or after a GEMM
    without hold) halts with STALE_ACCUMULATE and the same as the golden model; a hold then an
    accumulate, also across programs, still adds up exactly."""
    host, cfg = await setup(dut)
    s = seed() + 12
    rng = np.random.default_rng(s)
    r = cfg.rows
    golden = IsaSim(cfg, pb_tags=build_opts().get("pb_tags", BuildOptions().pb_tags))
    x = rng.integers(-128, 128, (2, 2 * r), dtype=np.int8)
    w = rng.integers(-128, 128, (2 * r, cfg.cols), dtype=np.int8)
    blob = np.ascontiguousarray(weight_tiles(cfg, w)).tobytes()
    for dst in (host, golden):
        await _maybe(dst.write(W_ADDR, blob))
        await _maybe(dst.write(IN_ADDR, act_bytes(cfg, x)))
    g = dict(m=2, n=cfg.cols, a_buf=0, o_buf=1, o_word=0, w_stride=2, k=r)
    half0 = dict(g, a_word=0, w_addr=W_ADDR)
    half1 = dict(g, a_word=2, w_addr=W_ADDR + cfg.tile_bytes)
    load = isa.load_act(IN_ADDR, 0, 0, 4)
    store = isa.store_act(OUT_ADDR, 1, 0, 8)
    hold, acc = isa.gemm(**half0, hold=True), isa.gemm(**half1, accumulate=True)
    programs = [
        ("accumulate after the reset", [load, acc]),
        ("hold, accumulate", [load, hold, acc, store]),
        ("accumulate after a plain GEMM", [load, isa.gemm(**half0), acc]),
        ("hold (program 1)", [load, hold]),
        ("accumulate (program 2)", [acc, store]),
    ]
    for what, cmds in programs:
        await write_program(host, PROG_ADDR, [*cmds, isa.done()])
        golden.write_program(PROG_ADDR, [*cmds, isa.done()])
        res, want = await host.run(PROG_ADDR, timeout_cycles=20_000), golden.run(PROG_ADDR)
        assert (res.done, res.error) == (want.done, want.error), (
            f"seed={s} {what}: RTL done={res.done} {res.error.name}, golden {want.error.name}"
        )
        if what.startswith("accumulate after"):
            assert res.error == isa.ErrorCode.STALE_ACCUMULATE, f"seed={s} {what}"
        elif cmds[-1] == store:
            assert_ok(res, what, s)
            out = int32_from_bytes(cfg, await host.read(OUT_ADDR, 8 * r), 2, cfg.cols)
            assert np.array_equal(out, gemm_ref(x, w)), f"seed={s} {what}: wrong sums"


async def _maybe(x):
    """Await ``x`` when it is awaitable (the RTL host), else take it (the golden model)."""
    return await x if hasattr(x, "__await__") else x


@cocotb.test()
async def doorbell_while_busy_counted(dut):
    """Doorbells rung while a program runs are ignored (the program runs to its exact end)
    and counted in DOORBELLS_DROPPED; the next program's doorbell restarts the count."""
    host, cfg = await setup(dut)
    s = seed() + 13
    rng = np.random.default_rng(s)
    tensors, calls, x, m = random_net(cfg, rng, 2)
    image = await load_net(host, cfg, tensors, x)
    prog = network_program(cfg, image, PBLayout(), calls, m, IN_ADDR, OUT_ADDR)
    await write_program(host, PROG_ADDR, prog)
    extra = int(rng.integers(1, 4))
    await host.start(PROG_ADDR)
    for _ in range(extra):  # rung at a bad address: taken, it would fail with BAD_ALIGN
        await ClockCycles(dut.clk, int(rng.integers(5, 40)))
        await host.start(PROG_ADDR + 4)
    res = await host.run_started(what="the program rung over")
    assert_ok(res, f"{extra} doorbells while busy", s)
    raw = await host.read(OUT_ADDR, m * -(-calls[-1].n // cfg.cols) * cfg.rows * 4)
    out = int32_from_bytes(cfg, raw, m, calls[-1].n)
    assert np.array_equal(out, reference(tensors, calls, x)), f"seed={s}: wrong result"
    got = res.counters["doorbells_dropped"]
    # builds for a host link that never rings while busy count nothing (BuildOptions)
    want = extra if build_opts().get("count_dropped_doorbells", True) else 0
    assert got == want, f"seed={s}: DOORBELLS_DROPPED {got}, rang {extra} times while busy"
    res = await host.run(PROG_ADDR)
    assert_ok(res, "the next program", s)
    assert res.counters["doorbells_dropped"] == 0, f"seed={s}: {res.counters}"


@cocotb.test()
async def pb_uncached_halts(dut):
    """PB valid tags (BuildOptions.pb_tags): a GEMM from PB tiles never cached, from a block
    another tensor's CACHE partly overwrote (its first or only its last tile), or cached from
    another address halts with PB_UNCACHED after running to its end; a legal CACHE + GEMM, also
    the next program after each failure, runs bit-exactly. Every program against the golden
    model told the build's option: done, error, counters (but cycles) and the output region;
    without tags every program runs to DONE, computing with whatever the PB holds, as before."""
    host, cfg = await setup(dut)
    s = seed() + 14
    rng = np.random.default_rng(s)
    r, c, tb = cfg.rows, cfg.cols, cfg.tile_bytes
    tags = build_opts().get("pb_tags", BuildOptions().pb_tags)
    golden = IsaSim(cfg, pb_tags=tags)
    w_a = rng.integers(-128, 128, (2 * r, 2 * c), dtype=np.int8)
    w_b = rng.integers(-128, 128, (2 * r, 2 * c), dtype=np.int8)
    x = rng.integers(-128, 128, (2, 2 * r), dtype=np.int8)
    w_b_addr = W_ADDR + 4 * tb
    image = {
        W_ADDR: np.ascontiguousarray(weight_tiles(cfg, w_a)).tobytes(),
        w_b_addr: np.ascontiguousarray(weight_tiles(cfg, w_b)).tobytes(),
        IN_ADDR: act_bytes(cfg, x),
    }
    for dst in (host, golden):
        for at, blob in image.items():
            await _maybe(dst.write(at, blob))
    # the top four PB tiles: no earlier test of this file caches there (their layouts start
    # at tile 0 and take far fewer); with tags, "never cached" below fails if one did
    p = cfg.pb_tiles - 4
    gemm = isa.gemm(m=2, k=2 * r, n=2 * c, a_buf=0, a_word=0, o_buf=1, o_word=0, w_addr=W_ADDR,
                    w_stride=2, pb_tile=p, pb_stride=2, pb_kt=2, pb_nt=2)  # fmt: skip
    run = [isa.load_act(IN_ADDR, 0, 0, 4), gemm, isa.store_act(OUT_ADDR, 1, 0, 16), isa.done()]
    cache_a = isa.cache(W_ADDR, p, 4)  # the 2 x 2 block is contiguous in both
    uncached = isa.ErrorCode.PB_UNCACHED if tags else isa.ErrorCode.NONE
    ok = isa.ErrorCode.NONE
    programs = [  # (what, program, error, the PB holds A's block: the exact product)
        ("never cached", run, uncached, False),
        ("cached", [cache_a, *run], ok, True),
        ("B over A's tiles 1 and 2", [cache_a, isa.cache(w_b_addr, p + 1, 2), *run], uncached,
         False),
        ("the next legal program", [cache_a, *run], ok, True),
        ("B over A's last tile", [isa.cache(w_b_addr + 3 * tb, p + 3, 1), *run], uncached,
         False),
        ("A cached from B's address", [isa.cache(w_b_addr, p, 4), *run], uncached, False),
        ("the next legal program, again", [cache_a, *run], ok, True),
    ]  # fmt: skip
    out_bytes = 16 * r
    cycles: dict[str, list] = {}  # what: [error, cycles] (for tb/test_accel.py's comparison)
    for what, cmds, code, exact in programs:
        for dst in (host, golden):
            await _maybe(dst.write(OUT_ADDR, bytes(out_bytes)))
        await write_program(host, PROG_ADDR, cmds)
        golden.write_program(PROG_ADDR, cmds)
        res, want = await host.run(PROG_ADDR, timeout_cycles=20_000), golden.run(PROG_ADDR)
        assert (res.done, res.error) == (not code, code), (
            f"seed={s} {what}: done={res.done} error={res.error.name}, expected {code.name}"
        )
        assert (want.done, want.error) == (not code, code), f"seed={s} {what}: golden {want}"
        if code:  # halted at the GEMM, before its STORE
            assert res.counters["commands"] == len(cmds) - 2, f"seed={s} {what}: {res.counters}"
        for k, v in want.counters.items():
            if k != "cycles":
                assert res.counters[k] == v, f"seed={s} {what}: {k} RTL {res.counters[k]}, {v}"
        got = await host.read(OUT_ADDR, out_bytes)
        assert got == golden.read(OUT_ADDR, out_bytes), f"seed={s} {what}: output differs"
        if exact:
            out = int32_from_bytes(cfg, got, 2, 2 * c)
            assert np.array_equal(out, gemm_ref(x, w_a)), f"seed={s} {what}: wrong result"
        dut._log.info(f"{what}: {res.error.name}, {res.counters['cycles']} cycles")
        cycles[what] = [int(res.error), res.counters["cycles"]]
    if "SUSHI_CYCLES_OUT" in os.environ:
        Path(os.environ["SUSHI_CYCLES_OUT"]).write_text(json.dumps(cycles, indent=1))
