"""WeightFeed alone: every tile of random GEMMs reaches the array in feed order, from the PB
inside the cached block and from off-chip memory outside it, with the memory and the array
stalling at random."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.act_buffers import act_read_latency
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS
from sushi_hw.pipeline import CreditedReadQueue
from sushi_hw.weight_feed import WeightFeed


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


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
    for _ in range(10):
        k, n = rng.randrange(1, 4 * R + 1), rng.randrange(1, 3 * R + 1)
        m_rows = rng.choice([1, cfg.acc_depth + 1, 2 * cfg.acc_depth + 3])
        kt, nt, mt = _ceil(k, R), _ceil(n, R), _ceil(m_rows, cfg.acc_depth)
        pb_kt, pb_nt = rng.randrange(kt + 1), rng.randrange(nt + 1)
        used = pb_kt and pb_nt
        gemms.append(
            dict(
                m=m_rows,
                k=k,
                n=n,
                w_addr=rng.randrange(64) * cfg.tile_bytes,
                w_stride=kt + rng.randrange(3),
                pb_tile=rng.randrange(4),
                pb_stride=pb_kt + rng.randrange(3),
                pb_kt=pb_kt if used else 0,
                pb_nt=pb_nt if used else rng.randrange(nt + 1),
                geom=dict(kt_n=kt, nt_n=nt, mt_n=mt, pb_used=int(bool(used))),
            )
        )
    words_out: list[int] = []
    pb_words = [0]
    reqs: list[int] = []
    pending: list[int] = []  # off-chip words requested, not yet delivered

    async def bench(ctx) -> None:
        for a in range(32 * R):  # CACHE the tiles the GEMMs below may use
            ctx.set(feed.pb_w.en, 1)
            ctx.set(feed.pb_w.addr, a)
            ctx.set(feed.pb_w.data, _word(a, bits))
            await ctx.tick()
        ctx.set(feed.pb_w.en, 0)
        for g in gemms:
            fields = {k: v for k, v in g.items() if k != "geom"}
            value = isa.GEMM.const({"opcode": isa.Op.GEMM, **fields}).as_value().value
            ctx.set(feed.cmd, value)
            kt, nt = g["geom"]["kt_n"], g["geom"]["nt_n"]
            geom = dict(g["geom"], off_used=int(g["pb_kt"] < kt or g["pb_nt"] < nt))
            for name, v in geom.items():
                ctx.set(getattr(feed.geom, name), v)
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

    want, want_reqs, want_pb = [], [], 0
    for g in gemms:
        kt, nt, mt = g["geom"]["kt_n"], g["geom"]["nt_n"], g["geom"]["mt_n"]
        for _ in range(mt):
            for t_n in range(nt):
                for t_k in range(kt):
                    if t_n < g["pb_nt"] and t_k < g["pb_kt"]:
                        tile = g["pb_tile"] + t_n * g["pb_stride"] + t_k
                        want += [_word(tile * R + r, bits) for r in range(R)]
                        want_pb += R
                    else:
                        addr = g["w_addr"] + (t_n * g["w_stride"] + t_k) * cfg.tile_bytes
                        want_reqs.append(addr)
                        want += [_word((1 << 20) + addr + r * R, bits) for r in range(R)]
    assert reqs == want_reqs, f"seed={seed}: off-chip requests"
    assert words_out == want, f"seed={seed}: fed words"
    assert pb_words[0] == want_pb, f"seed={seed}: PB words counted"
