"""CommandCheck alone against the golden model's check: thousands of random commands, valid and
invalid, fields biased towards their limits, on configurations with and without the shared check
multiplier and the pipeline registers."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from amaranth.hdl import Shape
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.build_options import BuildOptions
from sushi_hw.check import CommandCheck
from sushi_hw.config import PRESETS, AccelConfig
from sushi_sched.isa_sim import check_command


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _near(rng: random.Random, limit: int, bits: int) -> int:
    """A value of ``bits`` bits, often at or next to ``limit`` (or 0, 1, the largest)."""
    top = (1 << bits) - 1
    v = rng.choice(
        [
            0,
            1,
            limit - 1,
            limit,
            limit + 1,
            rng.randrange(max(1, limit + 1)),
            rng.randrange(top + 1),
            top,
        ]
    )
    return min(max(v, 0), top)


def _fill(rng: random.Random, limit: int, used: int) -> int:
    """A start such that start + used is at, just below or just past ``limit``."""
    return max(0, limit - used + rng.choice([-1, 0, 0, 1, -rng.randrange(4)]))


def _cache(cfg: AccelConfig, rng: random.Random) -> dict[str, int]:
    tiles = rng.choice([1, cfg.pb_tiles, rng.randrange(1, cfg.pb_tiles + 1)])
    nbytes = tiles * cfg.tile_bytes
    mem_addr = rng.randrange(0, max(1, cfg.mem_bytes - nbytes + 1), cfg.mem_width)
    if rng.random() < 0.5:
        mem_addr = _fill(rng, cfg.mem_bytes, nbytes)
    return {"mem_addr": mem_addr, "pb_tile": _fill(rng, cfg.pb_tiles, tiles), "tiles": tiles}


def _act(cfg: AccelConfig, rng: random.Random) -> dict[str, int]:
    per_beat = max(1, cfg.mem_width // cfg.rows)  # words per memory beat
    words = rng.choice([per_beat, cfg.act_words, rng.randrange(1, cfg.act_words + 1)])
    if rng.random() < 0.7:
        words = max(per_beat, words // per_beat * per_beat)
    nbytes = words * cfg.rows
    mem_addr = rng.randrange(0, max(1, cfg.mem_bytes - nbytes + 1), cfg.mem_width)
    if rng.random() < 0.5:
        mem_addr = _fill(rng, cfg.mem_bytes, nbytes)
    return {
        "mem_addr": mem_addr,
        "buf": rng.randrange(2),
        "word": _fill(rng, cfg.act_words, words) if rng.random() < 0.5 else 0,
        "words": words,
    }


def _gemm(cfg: AccelConfig, rng: random.Random) -> dict[str, int]:
    R = cfg.rows

    def dim() -> int:
        return rng.choice(
            [1, R, cfg.max_dim, rng.randrange(1, cfg.max_dim + 1), rng.randrange(1, 4 * R)]
        )

    m, k, n = dim(), dim(), dim()
    acc = rng.random() < 0.2
    if acc:  # accumulate/hold need one M-tile of one N-tile
        m, n = min(m, cfg.acc_depth), min(n, R)
    kt, nt = _ceil(k, R), _ceil(n, R)
    while m * kt > cfg.act_words and m > 1:  # A must fit the buffer (usually)
        m = max(1, m // 2)
    requant = rng.randrange(2)
    hold = int(acc and rng.random() < 0.5)
    o_words = m * nt * (1 if requant else 4)
    a_buf, o_buf = rng.randrange(2), rng.randrange(2)
    a_word = _fill(rng, cfg.act_words, m * kt) if rng.random() < 0.4 else 0
    o_word = _fill(rng, cfg.act_words, o_words) if rng.random() < 0.4 else 0
    if a_buf == o_buf and rng.random() < 0.7:
        o_buf = 1 - a_buf
    pb_kt = rng.choice([0, kt, rng.randrange(kt + 1)])
    pb_nt = rng.choice([0, nt, rng.randrange(nt + 1)])
    pb_stride = pb_kt + rng.choice([0, 0, 1, rng.randrange(8)])
    pb_span = (pb_nt - 1) * pb_stride + pb_kt if pb_kt and pb_nt else 0
    pb_tile = _fill(rng, cfg.pb_tiles, pb_span) if rng.random() < 0.5 else 0
    w_stride = kt + rng.choice([0, 0, 1, rng.randrange(16)])
    w_span = (nt - 1) * w_stride + kt
    w_bytes = w_span * cfg.tile_bytes
    w_addr = rng.randrange(0, max(1, cfg.mem_bytes - w_bytes + 1), cfg.mem_width)
    if rng.random() < 0.4:
        w_addr = _fill(rng, cfg.mem_bytes, w_bytes)
    return {
        "m": m,
        "k": k,
        "n": n,
        "a_buf": a_buf,
        "a_word": a_word,
        "o_buf": o_buf,
        "o_word": o_word,
        "w_addr": w_addr,
        "w_stride": w_stride,
        "pb_tile": pb_tile,
        "pb_stride": pb_stride,
        "pb_kt": pb_kt,
        "pb_nt": pb_nt,
        "mult": rng.choice([0, 1, rng.randrange(1 << 15)]) if requant else rng.randrange(2),
        "shift": rng.randrange(1 << 6),
        "relu": rng.randrange(2),
        "requant": requant,
        "accumulate": int(acc and not hold) | int(rng.random() < 0.05),
        "hold": hold | int(rng.random() < 0.05),
    }


#: per-field limit, used to push a field of a plausible command to (or past) its limit
def _conv(cfg: AccelConfig, rng: random.Random) -> dict[str, int]:
    """A plausible CONV: a supported or nearly supported kernel, stride and padding, a map and
    weight walk near the buffer, PB and memory limits."""
    k = rng.choice([1, 3, 5, 7, 7, 2, 0])
    pad = rng.choice([0, k // 2, k // 2, k // 2 + 1])
    h, w = rng.choice([1, 2, 8, 16, 255]), rng.choice([1, 3, 8, 16])
    c_in, c_out = rng.randrange(1, 4 * cfg.rows + 1), rng.randrange(1, 4 * cfg.cols + 1)
    ct, nt, taps = _ceil(c_in, cfg.rows), _ceil(c_out, cfg.cols), k * k
    pb_nt, pb_ct, pb_t = rng.randrange(nt + 1), rng.randrange(ct + 1), rng.randrange(taps + 1)
    w_cstride = taps + rng.choice([0, 0, 1, -1])
    pb_cstride = pb_t + rng.choice([0, 0, 1, -1])
    a_words = ct * h * w
    return {
        "h": h,
        "w": w,
        "c_in": c_in,
        "c_out": c_out,
        "k": k,
        "stride": rng.choice([1, 2, 2, 0, 3]),
        "pad": min(3, pad),
        "a_buf": rng.randrange(2),
        "a_word": _fill(rng, cfg.act_words, a_words) if rng.random() < 0.3 else 0,
        "o_buf": rng.randrange(2),
        "o_word": rng.choice([0, a_words, cfg.act_words // 2]),
        "w_addr": rng.randrange(0, cfg.mem_bytes // 2, cfg.mem_width) + rng.choice([0, 0, 0, 1]),
        "w_cstride": max(0, w_cstride) % 256,
        "w_nstride": max(0, (ct - 1) * w_cstride + taps + rng.choice([0, 0, 1, -1])),
        "pb_tile": _fill(rng, cfg.pb_tiles, pb_nt * pb_ct * pb_t) if rng.random() < 0.3 else 0,
        "pb_cstride": max(0, pb_cstride) % 256,
        "pb_nstride": max(0, (pb_ct - 1) * pb_cstride + pb_t + rng.choice([0, 0, 1, -1])),
        "pb_nt": pb_nt,
        "pb_ct": pb_ct,
        "pb_t": pb_t,
        "mult": rng.choice([0, 1, 300]),
        "requant": rng.randrange(2),
    }


def _add(cfg: AccelConfig, rng: random.Random) -> dict[str, int]:
    words = rng.choice([1, 16, cfg.act_words // 2, rng.randrange(0, cfg.act_words + 1)])
    a_word = rng.choice([0, _fill(rng, cfg.act_words, words)])
    return {
        "a_buf": rng.randrange(2),
        "a_word": a_word,
        "b_buf": rng.randrange(2),
        "b_word": rng.choice([0, words, _fill(rng, cfg.act_words, words)]),
        "o_buf": rng.randrange(2),
        "o_word": rng.choice([a_word, a_word + 1, words, 0]),
        "words": words,
        "mult_a": rng.randrange(1 << 16),
        "mult_b": rng.randrange(1 << 16),
        "shift": rng.randrange(32),
    }


def _pool(cfg: AccelConfig, rng: random.Random) -> dict[str, int]:
    pixels, tiles = rng.choice([0, 1, 4, 64, 256]), rng.choice([0, 1, 4, 8])
    words = pixels * tiles
    return {
        "a_buf": rng.randrange(2),
        "a_word": rng.choice([0, _fill(rng, cfg.act_words, words)]),
        "o_buf": rng.randrange(2),
        "o_word": rng.choice([0, words, _fill(rng, cfg.act_words, tiles)]),
        "pixels": pixels,
        "tiles": tiles,
        "mult": rng.choice([0, 1, 1000]),
        "shift": rng.randrange(32),
    }


def _limits(cfg: AccelConfig) -> dict[str, int]:
    return {
        "mem_addr": cfg.mem_bytes,
        "w_addr": cfg.mem_bytes,
        "pb_tile": cfg.pb_tiles,
        "tiles": cfg.pb_tiles,
        "word": cfg.act_words,
        "words": cfg.act_words,
        "a_word": cfg.act_words,
        "o_word": cfg.act_words,
        "m": cfg.max_dim,
        "k": cfg.max_dim,
        "n": cfg.max_dim,
        "w_stride": _ceil(cfg.max_dim, cfg.rows),
        "pb_stride": _ceil(cfg.max_dim, cfg.rows),
        "pb_kt": _ceil(cfg.max_dim, cfg.rows),
        "pb_nt": _ceil(cfg.max_dim, cfg.rows),
        "mult": 1,
        "shift": 1,
    }


def random_command(cfg: AccelConfig, rng: random.Random) -> tuple[int, int, dict[str, int]]:
    """(opcode, the command as an integer, its fields): a plausible command, often with one or
    two fields pushed to or past a limit, or an illegal opcode; random bits above its fields."""
    conv_ops = [isa.Op.CONV, isa.Op.ADD, isa.Op.POOL]
    if rng.random() < 0.04:
        op = rng.choice([0, 8, 9, 10, 11, 12, 13, 14] + ([] if cfg.conv else conv_ops))
        value = rng.getrandbits(isa.CMD_BITS) & ~0xF | op
        return (
            op,
            value,
            isa.decode(value.to_bytes(isa.CMD_BYTES, "little"))[1] if op in conv_ops else {},
        )
    ops = [isa.Op.CACHE, isa.Op.LOAD_ACT, isa.Op.STORE_ACT, isa.Op.GEMM, isa.Op.GEMM]
    op = rng.choice(ops + (conv_ops + [isa.Op.CONV] * 2 if cfg.conv else []))
    if rng.random() < 0.03:
        op = isa.Op.DONE
    gens = {isa.Op.CACHE: _cache, isa.Op.GEMM: _gemm, isa.Op.CONV: _conv, isa.Op.ADD: _add}
    gen = {**gens, isa.Op.POOL: _pool}.get(op, _act)
    fields = gen(cfg, rng) if op != isa.Op.DONE else {}
    layout = isa.LAYOUTS[op]
    limits = _limits(cfg)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        name = rng.choice(list(fields) or ["-"])
        if name in limits:
            fields[name] = _near(rng, limits[name], Shape.cast(layout[name].shape).width)
        elif name != "-":
            fields[name] = rng.getrandbits(Shape.cast(layout[name].shape).width)
    value = layout.const({"opcode": op, **fields}).as_value().value
    value |= rng.getrandbits(isa.CMD_BITS) >> layout.size << layout.size
    return op, value, fields


@pytest.mark.parametrize(
    "preset, pipe, shared",
    [
        ("default", True, False),
        ("tiny", False, True),
        ("tiny", True, False),
        ("default", False, True),
    ],
    ids=["default-pipe", "tiny-ice40", "tiny-pipe", "default-shared"],
)
def test_check_matches_golden_model(preset: str, pipe: bool, shared: bool) -> None:
    cfg = PRESETS[preset]
    # a fixed seed per configuration; SUSHI_CHECK_SEED=<n> (or "random") explores others
    env = os.environ.get("SUSHI_CHECK_SEED")
    seed = random.randrange(1 << 30) if env == "random" else int(env or 0) + len(preset) + 2 * pipe
    rng = random.Random(seed)
    n_cmds = 2500
    cmds = [random_command(cfg, rng) for _ in range(n_cmds)]
    dut = CommandCheck(cfg, BuildOptions(pipeline_regs=pipe, shared_check_mul=shared))
    got: list[int] = []

    async def bench(ctx) -> None:
        for _, value, _ in cmds:
            ctx.set(dut.cmd, value)  # DECODE
            ctx.set(dut.ctl.start, 1)
            await ctx.tick()
            ctx.set(dut.ctl.start, 0)
            while not ctx.get(dut.ctl.ready):  # CHECK_PREP
                await ctx.tick()
            await ctx.tick()  # CHECK_WAIT
            await ctx.tick()  # CHECK
            got.append(ctx.get(dut.ctl.error))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    seen: Counter = Counter()
    for (op, value, fields), code in zip(cmds, got, strict=True):
        want = check_command(cfg, op, fields)
        seen[want] += 1
        assert code == want, (
            f"seed={seed} {preset}: op {op} {fields} (raw {value:#x}): RTL "
            f"{isa.ErrorCode(code).name}, golden model {want.name}"
        )
    # the generator reaches every outcome, and plenty of commands pass
    # (not the errors raised while a command runs: the memory's, a stale accumulate and an
    # uncached PB tile)
    E = isa.ErrorCode
    running = {E.MEM_TIMEOUT, E.BUS_ERROR, E.STALE_ACCUMULATE, E.PB_UNCACHED}
    every = set(isa.ErrorCode) - running - (set() if cfg.conv else {isa.ErrorCode.BAD_CONV})
    assert set(seen) == every, f"seed={seed}: outcomes {seen}"
    assert seen[isa.ErrorCode.NONE] > n_cmds // 5, f"seed={seed}: outcomes {seen}"
