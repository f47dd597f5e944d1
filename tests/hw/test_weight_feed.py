"""WeightFeed alone: every tile of random GEMM and CONV weight walks reaches the array in feed
order, from the PB inside the cached block and from off-chip memory outside it, with the memory
and the array stalling at random; each PB tile is named to the PB's tags (``pb_look``) with the
off-chip address it stands for."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from sushi_hw.act_buffers import act_read_latency
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS
from sushi_hw.pipeline import CreditedReadQueue
from sushi_hw.weight_feed import WeightFeed


def _word(addr: int, bits: int) -> int:
    """A recognisable word for PB word ``addr`` (or off-chip word ``addr`` + 1 << 20)."""
    return (addr * 2654435761 + 12345) % (1 << bits)


@pytest.mark.parametrize("preset, pipe", [("tiny", False), ("tiny", True), ("default", True)])
def test_weight_feed_tile_order_and_sources(preset: str, pipe: bool) -> None:
    cfg = PRESETS[preset]
    R, bits = cfg.rows, 8 * cfg.rows
    seed = 11 + len(preset) + pipe
    rng = random.Random(seed)
    m = Module()
    m.submodules.feed = feed = WeightFeed(cfg, BuildOptions(pipeline_regs=pipe))
    m.submodules.readq = readq = CreditedReadQueue(
        bits, depth=8 if pipe else 4, latency=act_read_latency(pipe)
    )
    m.d.comb += [
        readq.issue.eq(feed.pb_rd.issue),
        readq.data.eq(feed.pb_rd.data),
        feed.pb_rd.room.eq(readq.room),
    ]
    wiring.connect(m, readq.o, feed.pb_words)
    gemms = []
    for i in range(12):
        conv = i % 2 and cfg.conv  # a CONV walk (taps) or a GEMM's (one tap, unit strides)
        t_n = rng.randrange(1, 10) if conv else 1
        ct_n, nt_n = rng.randrange(1, 5), rng.randrange(1, 4)
        mt_n = rng.choice([1, 2, 3])
        pb_t, pb_ct, pb_nt = (
            rng.randrange(t_n + 1),
            rng.randrange(ct_n + 1),
            rng.randrange(nt_n + 1),
        )
        if i == 0:  # all from the PB, w_addr unaligned (below): the look-ups say ``bad``
            pb_t, pb_ct, pb_nt = t_n, ct_n, nt_n
        used = bool(pb_t and pb_ct and pb_nt)
        if not used:
            pb_t = pb_ct = pb_nt = 0
        w_cstride = t_n + rng.randrange(3) if conv else 1
        pb_cstride = pb_t + rng.randrange(2) if conv else 1
        walk = dict(
            # the first unaligned (a GEMM from the PB alone is not checked for it: the
            # look-ups say so, ``bad``)
            w_addr=rng.randrange(64) * cfg.tile_bytes + int(i == 0),
            w_cstride=w_cstride,
            w_nstride=(ct_n - 1) * w_cstride + t_n + rng.randrange(3),
            pb_tile=rng.randrange(4),
            pb_cstride=pb_cstride,
            pb_nstride=max(0, pb_ct - 1) * pb_cstride + pb_t + rng.randrange(2),
            pb_nt=pb_nt,
            pb_ct=pb_ct,
            pb_t=pb_t,
        )
        off = pb_nt < nt_n or pb_ct < ct_n or pb_t < t_n
        gemms.append(
            dict(
                walk=walk,
                geom=dict(
                    kt_n=ct_n * t_n,
                    t_n=t_n,
                    ct_n=ct_n,
                    nt_n=nt_n,
                    mt_n=mt_n,
                    pb_used=int(used),
                    off_used=int(off),
                ),
            )
        )
    cached = 128  # PB tiles written
    assert cached <= cfg.pb_tiles
    words_out: list[int] = []
    pb_words = [0]
    reqs: list[int] = []
    looks: list[tuple[int, int, int]] = []  # (PB tile, address in mem_width units, bad)
    pending: list[int] = []  # off-chip words requested, not yet delivered

    async def bench(ctx) -> None:
        for a in range(cached * R):  # CACHE the tiles the walks below may use
            ctx.set(feed.pb_w.en, 1)
            ctx.set(feed.pb_w.addr, a)
            ctx.set(feed.pb_w.data, _word(a, bits))
            await ctx.tick()
        ctx.set(feed.pb_w.en, 0)
        for g in gemms:
            for name, v in g["geom"].items():
                ctx.set(getattr(feed.geom, name), v)
            for name, v in g["walk"].items():
                ctx.set(getattr(feed.geom.walk, name), v)
            await ctx.tick().repeat(2)  # DECODE, CHECK_PREP/WAIT: the counts settle
            ctx.set(feed.ctl.start, 1)
            await ctx.tick()
            ctx.set(feed.ctl.start, 0)
            ctx.set(feed.ctl.run, 1)
            cycles = 0
            while not ctx.get(feed.ctl.done) or pending or ctx.get(feed.w.valid):
                ctx.set(feed.req.ready, rng.random() < 0.7)
                ctx.set(feed.words.valid, bool(pending) and rng.random() < 0.8)
                ctx.set(feed.words.payload, pending[0] if pending else 0)
                ctx.set(feed.w.ready, rng.random() < 0.8)
                req = ctx.get(feed.req.valid) and ctx.get(feed.req.ready)
                addr = ctx.get(feed.req.payload.addr)
                took = ctx.get(feed.words.valid) and ctx.get(feed.words.ready)
                out = ctx.get(feed.w.valid) and ctx.get(feed.w.ready)
                word = ctx.get(feed.w.payload.as_value())
                pb_words[0] += ctx.get(feed.pb_word)
                look = feed.pb_look
                if ctx.get(look.en):
                    looks.append((ctx.get(look.tile), ctx.get(look.addr), ctx.get(look.bad)))
                await ctx.tick()
                if req:
                    reqs.append(addr)
                    assert ctx.get(feed.req.payload.beats) == cfg.tile_bytes // cfg.mem_width
                    pending.extend(_word((1 << 20) + addr + i * R, bits) for i in range(R))
                if took:
                    pending.pop(0)
                if out:
                    words_out.append(word)
                cycles += 1
                assert cycles < 20000, f"seed={seed}: GEMM {g} hangs"
            ctx.set(feed.ctl.run, 0)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    want, want_reqs, want_pb, want_looks = [], [], 0, []
    lw = cfg.mem_width.bit_length() - 1
    for g in gemms:
        geo, w = g["geom"], g["walk"]
        for _ in range(geo["mt_n"]):
            for nt in range(geo["nt_n"]):
                for ct in range(geo["ct_n"]):
                    for t in range(geo["t_n"]):
                        if nt < w["pb_nt"] and ct < w["pb_ct"] and t < w["pb_t"]:
                            tile = w["pb_tile"] + nt * w["pb_nstride"] + ct * w["pb_cstride"] + t
                            assert tile < cached
                            want += [_word(tile * R + r, bits) for r in range(R)]
                            want_pb += R
                            idx = nt * w["w_nstride"] + ct * w["w_cstride"] + t
                            addr = (w["w_addr"] + idx * cfg.tile_bytes) % cfg.mem_bytes
                            want_looks.append((tile, addr >> lw, int(addr % cfg.mem_width != 0)))
                        else:
                            idx = nt * w["w_nstride"] + ct * w["w_cstride"] + t
                            addr = w["w_addr"] + idx * cfg.tile_bytes
                            want_reqs.append(addr)
                            want += [_word((1 << 20) + addr + r * R, bits) for r in range(R)]
    assert reqs == want_reqs, f"seed={seed}: off-chip requests"
    assert words_out == want, f"seed={seed}: fed words"
    assert pb_words[0] == want_pb, f"seed={seed}: PB words counted"
    assert looks == want_looks, f"seed={seed}: PB tag look-ups"
    assert any(bad for _, _, bad in looks) and not all(bad for _, _, bad in looks), looks
