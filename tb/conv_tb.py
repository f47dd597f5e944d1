"""cocotb tests of CONV on SushiAccel (top ``sushi_sim``): random convolutions bit-exact against
numpy, weights from the PB, off-chip and split, on random memory timing; the conv error codes.

The feature-map and weight packing here follows docs/isa.md on its own (not the compiler's
code), so it checks the compiler's reading of the ISA as well as the RTL's.
``SUSHI_CONFIG`` carries the AccelConfig, ``SUSHI_SEED`` the seed (printed in every failure); the
set-up and the random memory timing are the accelerator testbench's.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from accel_host import AccelHost
from accel_tb import random_memory, seed, setup
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_sched.conv_image import cache_program, fmap_from_bytes, fmap_words
from sushi_tb.resnet_case import resnet_case

PROG_ADDR = 0x0
IN_ADDR = 0x1000
OUT_ADDR = 0x10000
W_ADDR = 0x40000
E = isa.ErrorCode


def conv_numpy(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """int32 ``[H_out, W_out, C_out]`` of x ``[H, W, C_in]`` and w ``[C_out, C_in, k, k]``."""
    k = w.shape[2]
    xp = np.pad(x.astype(np.int64), ((pad, pad), (pad, pad), (0, 0)))
    h_out = (x.shape[0] + 2 * pad - k) // stride + 1
    w_out = (x.shape[1] + 2 * pad - k) // stride + 1
    out = np.zeros((h_out, w_out, w.shape[0]), dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            patch = xp[ky : ky + stride * h_out : stride, kx : kx + stride * w_out : stride]
            out += patch @ w[:, :, ky, kx].astype(np.int64).T
    return ((out + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def requant(acc: np.ndarray, mult: int, shift: int, relu: bool) -> np.ndarray:
    y = acc.astype(np.int64) * mult
    if shift:
        y = (y + (1 << (shift - 1))) >> shift
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127).astype(np.int8)


def fmap_bytes(cfg: AccelConfig, x: np.ndarray) -> bytes:
    """x [H, W, C] as words of rows channels, [channel tile][y][x]."""
    h, w, c = x.shape
    ct_n = ceil_div(c, cfg.rows)
    padded = np.zeros((h, w, ct_n * cfg.rows), dtype=np.int8)
    padded[:, :, :c] = x
    return padded.reshape(h, w, ct_n, cfg.rows).transpose(2, 0, 1, 3).tobytes()


def weight_tiles(cfg: AccelConfig, w: np.ndarray) -> bytes:
    """A stored tensor [C_out, C_in, K, K] as tiles [nt][ct][t] (ring-order taps), each rows
    input channels x cols output channels."""
    c_out, c_in, k, _ = w.shape
    R, C = cfg.rows, cfg.cols
    nt_n, ct_n = ceil_div(c_out, C), ceil_div(c_in, R)
    full = np.zeros((nt_n * C, ct_n * R, k, k), dtype=np.int8)
    full[:c_out, :c_in] = w
    tiles = []
    for nt in range(nt_n):
        for ct in range(ct_n):
            for dy, dx in isa.ring_taps(k):
                blk = full[nt * C : (nt + 1) * C, ct * R : (ct + 1) * R, dy + k // 2, dx + k // 2]
                tiles.append(blk.T.tobytes())  # row r = input channel, column = output channel
    return b"".join(tiles)


class Conv:
    """One random convolution: a SubNet's slice (c_out, c_in, k) of a stored SuperNet tensor."""

    def __init__(self, cfg: AccelConfig, rng: np.random.Generator, budget_rows: int):
        R = cfg.rows
        while True:
            self.k = int(rng.choice(isa.KERNELS))
            self.stride = int(rng.choice(isa.STRIDES))
            self.pad = int(rng.integers(0, self.k // 2 + 1))
            self.h, self.w = (int(v) for v in rng.integers(1, 17, 2))
            self.c_in, self.c_out = (int(v) for v in rng.integers(1, 4 * R + 1, 2))
            self.h_out = isa.conv_out_size(self.h, self.k, self.stride, self.pad)
            self.w_out = isa.conv_out_size(self.w, self.k, self.stride, self.pad)
            if self.h_out < 1 or self.w_out < 1:
                continue
            self.ct_n, self.nt_n = ceil_div(self.c_in, R), ceil_div(self.c_out, R)
            self.pixels = self.h_out * self.w_out
            self.requant = bool(rng.integers(0, 4)) or 4 * self.nt_n * self.pixels > cfg.act_words
            rows = self.pixels * self.ct_n * self.k * self.k * self.nt_n
            fits = self.ct_n * self.h * self.w <= cfg.act_words
            if rows <= budget_rows and fits and self.ct_n * self.k**2 * R <= cfg.max_dim:
                break
        # the stored SuperNet tensor: more channels, a larger kernel (the SubNet crops it)
        self.k_max = int(rng.choice([kk for kk in isa.KERNELS if kk >= self.k]))
        self.c_out_max = self.c_out + int(rng.integers(0, R + 1))
        self.c_in_max = self.c_in + int(rng.integers(0, R + 1))
        self.w_full = rng.integers(
            -128, 128, (self.c_out_max, self.c_in_max, self.k_max, self.k_max), dtype=np.int8
        )
        off = (self.k_max - self.k) // 2
        self.weights = self.w_full[
            : self.c_out, : self.c_in, off : off + self.k, off : off + self.k
        ]
        self.x = rng.integers(-128, 128, (self.h, self.w, self.c_in), dtype=np.int8)
        self.mult, self.shift = int(rng.integers(1, 1 << 16)), int(rng.integers(10, 24))
        self.relu = bool(rng.integers(0, 2))
        # the PB holds a leading block of the SuperNet tensor: (nt, ct, t) < (pb_nt, pb_ct, pb_t)
        source = rng.choice(["pb", "offchip", "split"])
        taps = self.k * self.k
        if source == "pb":
            self.pb = (self.nt_n, self.ct_n, taps)
        elif source == "offchip":
            self.pb = (0, 0, 0)
        else:
            self.pb = (
                int(rng.integers(1, self.nt_n + 1)),
                int(rng.integers(1, self.ct_n + 1)),
                int(rng.integers(1, taps + 1)),
            )
        while self.pb[0] * self.pb[1] * self.pb[2] > cfg.pb_tiles:  # what the PB holds
            nt, ct, t = self.pb
            self.pb, source = (nt, ct, t // 2) if t > 1 else (nt, max(1, ct // 2), t), "split"
        self.source = source

    def expected(self) -> np.ndarray:
        acc = conv_numpy(self.x, self.weights, self.stride, self.pad)
        if self.requant:
            return requant(acc, self.mult, self.shift, self.relu)
        return np.maximum(acc, 0) if self.relu else acc  # ReLU applies to int32 output too

    def describe(self) -> str:
        return (
            f"{self.h}x{self.w}x{self.c_in} -> {self.c_out}, k={self.k} (of {self.k_max}) "
            f"stride={self.stride} pad={self.pad} weights={self.source} pb={self.pb} "
            f"requant={self.requant}"
        )


async def run_conv(host: AccelHost, cfg: AccelConfig, cv: Conv, s: int) -> None:
    R, tb = cfg.rows, cfg.tile_bytes
    taps_max = cv.k_max**2
    ct_max = ceil_div(cv.c_in_max, R)
    await host.write(W_ADDR, weight_tiles(cfg, cv.w_full))
    x_words = cv.ct_n * cv.h * cv.w
    await host.write(IN_ADDR, fmap_bytes(cfg, cv.x))
    pb_nt, pb_ct, pb_t = cv.pb
    prog = []
    # CACHE the block (dense in the PB: [pb_nt][pb_ct][pb_t]), one run of taps at a time
    for nt in range(pb_nt):
        for ct in range(pb_ct):
            src = W_ADDR + ((nt * ct_max + ct) * taps_max) * tb
            prog.append(isa.cache(src, (nt * pb_ct + ct) * pb_t, pb_t))
    load_words = x_words + (-x_words) % max(1, cfg.mem_width // R)  # whole memory beats
    prog.append(isa.load_act(IN_ADDR, 0, 0, load_words))
    prog.append(
        isa.conv(
            h=cv.h,
            w=cv.w,
            c_in=cv.c_in,
            c_out=cv.c_out,
            k=cv.k,
            stride=cv.stride,
            pad=cv.pad,
            a_buf=0,
            a_word=0,
            o_buf=1,
            o_word=0,
            w_addr=W_ADDR,
            w_cstride=taps_max,
            w_nstride=ct_max * taps_max,
            pb_tile=0,
            pb_cstride=pb_t,
            pb_nstride=pb_ct * pb_t,
            pb_nt=pb_nt,
            pb_ct=pb_ct,
            pb_t=pb_t,
            requant=(cv.mult, cv.shift) if cv.requant else None,
            relu=cv.relu,
        )
    )
    per_pixel = 1 if cv.requant else 4
    out_words = cv.nt_n * cv.pixels * per_pixel
    store_words = out_words + (-out_words) % max(1, cfg.mem_width // R)
    prog += [isa.store_act(OUT_ADDR, 1, 0, store_words), isa.done()]
    await host.write(PROG_ADDR, b"".join(prog))
    res = await host.run(PROG_ADDR)
    what = f"seed={s} {cv.describe()}"
    assert res.done and res.error_code == 0, f"{what}: error {res.error.name}"
    raw = np.frombuffer(await host.read(OUT_ADDR, out_words * R), dtype=np.uint8)
    if cv.requant:
        got = raw.view(np.int8).reshape(cv.nt_n, cv.h_out, cv.w_out, R)
    else:
        got = raw.view("<i4").reshape(cv.nt_n, cv.h_out, cv.w_out, R)
    got = got.transpose(1, 2, 0, 3).reshape(cv.h_out, cv.w_out, cv.nt_n * R)[:, :, : cv.c_out]
    want = cv.expected()
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{what}: {len(bad)} wrong outputs, first at {bad[0].tolist()}"
    # the traffic: the input map once, the off-chip tiles once per M-tile, nothing else
    c = res.counters
    taps = cv.k * cv.k
    tiles = cv.nt_n * cv.ct_n * taps
    in_pb = pb_nt * pb_ct * pb_t
    mt_n = ceil_div(cv.pixels, cfg.acc_depth)
    cached = in_pb * tb
    assert c["rd_act_bytes"] == load_words * R, f"{what}: {c['rd_act_bytes']} activation bytes"
    assert c["rd_weight_bytes"] == (tiles - in_pb) * tb * mt_n + cached, (
        f"{what}: {c['rd_weight_bytes']} weight bytes"
    )
    assert c["pb_read_bytes"] == cached * mt_n, f"{what}: {c['pb_read_bytes']} PB bytes"
    assert c["mac_active"] == cv.pixels * tiles, f"{what}: {c['mac_active']} rows issued"


@cocotb.test()
async def random_convolutions(dut):
    """Random convolutions (every kernel, stride and padding; SubNet slices of a larger stored
    tensor; weights from the PB, off-chip and split) on random memory timing, bit-exact, with
    exact traffic counters."""
    host, cfg = await setup(dut)
    s = seed()
    rng = np.random.default_rng(s)
    n = int(os.environ.get("SUSHI_CONVS", "6"))
    budget = int(os.environ.get("SUSHI_CONV_ROWS", "20000"))
    for i in range(n):
        mem = await random_memory(host, cfg, rng)
        cv = Conv(cfg, rng, budget)
        dut._log.info(f"conv {i}: {cv.describe()}, {mem}")
        await run_conv(host, cfg, cv, s)


async def expect_error(host, cmds: list[bytes], code: isa.ErrorCode, s: int, what: str) -> None:
    await host.write(PROG_ADDR, b"".join([*cmds, isa.done()]))
    res = await host.run(PROG_ADDR, timeout_cycles=5000)
    assert not res.done and res.error == code, (
        f"seed={s} {what}: expected {code.name}, got done={res.done} error={res.error.name}"
    )
    assert res.counters["cycles"] < 1000, f"seed={s} {what}: took {res.counters['cycles']}"


@cocotb.test()
async def conv_errors_halt(dut):
    """Each CONV error, and ADD's and POOL's, halts before any data moves; a good convolution
    runs afterwards."""
    host, cfg = await setup(dut)
    s = seed() + 1
    R = cfg.rows
    good = dict(
        h=4, w=4, c_in=R, c_out=R, k=3, stride=1, pad=1, a_buf=0, a_word=0, o_buf=1, o_word=0,
        w_addr=W_ADDR, w_cstride=9, w_nstride=9, requant=(1, 0),
    )  # fmt: skip
    cases = [
        ("kernel 2", dict(k=2), E.BAD_CONV),
        ("stride 3", dict(stride=3), E.BAD_CONV),
        ("padding beyond the kernel", dict(pad=2), E.BAD_CONV),
        ("zero channels", dict(c_in=0), E.BAD_SHAPE),
        ("kernel larger than the padded map", dict(h=1, pad=0), E.BAD_SHAPE),
        ("tap stride below the taps", dict(w_cstride=8), E.BAD_SHAPE),
        ("cached block beyond the taps", dict(pb_nt=1, pb_ct=1, pb_t=10), E.BAD_SHAPE),
        ("input beyond the buffer", dict(a_word=cfg.act_words - 15), E.ACT_RANGE),
        ("output over the input", dict(o_buf=0, o_word=8), E.ACT_RANGE),
        (
            "cached block beyond the PB",
            dict(pb_tile=cfg.pb_tiles - 4, pb_nt=1, pb_ct=1, pb_t=9, pb_cstride=9, pb_nstride=9),
            E.PB_RANGE,
        ),
        ("unaligned weights", dict(w_addr=W_ADDR + 1), E.BAD_ALIGN),
        ("weights beyond memory", dict(w_addr=cfg.mem_bytes - cfg.tile_bytes), E.MEM_RANGE),
    ]
    for what, change, code in cases:
        await expect_error(host, [isa.conv(**{**good, **change})], code, s, what)
    vec = dict(a_buf=0, a_word=0, o_buf=1, o_word=0)
    add = dict(vec, b_buf=0, b_word=64, words=16, mult_a=1, mult_b=1, shift=0)
    await expect_error(host, [isa.add(**{**add, "words": 0})], E.BAD_SHAPE, s, "ADD of no words")
    await expect_error(
        host, [isa.add(**{**add, "o_buf": 0, "o_word": 8})], E.ACT_RANGE, s, "ADD over part of A"
    )
    pool = dict(vec, pixels=16, tiles=2, mult=1, shift=4)
    await expect_error(host, [isa.pool(**{**pool, "mult": 0})], E.BAD_SHAPE, s, "POOL mult 0")
    await expect_error(
        host, [isa.pool(**{**pool, "o_buf": 0, "o_word": 31})], E.ACT_RANGE, s, "POOL over input"
    )
    rng = np.random.default_rng(s)
    await run_conv(host, cfg, Conv(cfg, rng, 4000), s)


@cocotb.test()
async def resnet_blocks_on_chip(dut):
    """Basic and bottleneck blocks with identity and projection shortcuts, global average
    pooling and the classifier, chained on chip (one LOAD_ACT, one STORE_ACT), with part of the
    weights cached in the PB; bit-exact against the numpy reference, on random memory timing."""
    host, cfg = await setup(dut)
    s = seed() + 2
    rng = np.random.default_rng(s)
    for cached in (False, True):
        mem = await random_memory(host, cfg, rng)
        case = resnet_case(cfg, s, cached, W_ADDR, IN_ADDR, OUT_ADDR)
        what = f"seed={s} cached={cached} {mem}"
        for addr, blob in case.image.writes():
            await host.write(addr, blob)
        if case.layout is not None:
            await host.write(
                PROG_ADDR, b"".join([*cache_program(cfg, case.image, case.layout), isa.done()])
            )
            res = await host.run(PROG_ADDR)
            assert res.done and res.error_code == 0, f"{what}: cache program {res.error.name}"
        await host.write(IN_ADDR, fmap_bytes(cfg, case.x))
        await host.write(PROG_ADDR, b"".join(case.program))
        res = await host.run(PROG_ADDR)
        assert res.done and res.error_code == 0, f"{what}: {res.error.name}"
        raw = await host.read(OUT_ADDR, fmap_words(cfg, 1, 1, 10, True) * cfg.rows)
        got = fmap_from_bytes(cfg, raw, 1, 1, 10, True).reshape(1, 10)
        assert np.array_equal(got, case.want), f"{what}: logits {got} want {case.want}"
        h, w, c = case.x.shape
        assert res.counters["rd_act_bytes"] == h * w * c, f"{what}: activation bytes"
        if cached:
            assert res.counters["pb_read_bytes"] > 0, f"{what}: nothing from the PB"
