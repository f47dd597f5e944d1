"""Dma alone (with the activation buffers and the read queue it shares in SushiAccel): CACHE
and LOAD_ACT write every word where the command says, STORE_ACT sends a buffer's words back as
memory beats; the memory stalls at random; ``done`` comes with the last word or beat."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.act_buffers import ActBuffers, act_read_latency
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS
from sushi_hw.dma import Dma
from sushi_hw.pipeline import CreditedReadQueue


def _cmd(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


@pytest.mark.parametrize("preset, pipe", [("tiny", False), ("default", True)])
def test_dma_cache_load_store(preset: str, pipe: bool) -> None:
    cfg = PRESETS[preset]
    R, W = cfg.rows, cfg.mem_width
    rng = random.Random(R + pipe)
    m = Module()
    m.submodules.dma = dma = Dma(cfg)
    m.submodules.acts = acts = ActBuffers(cfg, BuildOptions(pipeline_regs=pipe))
    m.submodules.readq = readq = CreditedReadQueue(
        8 * R, depth=8 if pipe else 4, latency=act_read_latency(pipe)
    )
    wiring.connect(m, dma.act_w, acts.load)
    wiring.connect(m, dma.act_r, acts.store)
    wiring.connect(m, readq.o, dma.rd_words)
    m.d.comb += [
        readq.issue.eq(dma.rd.issue),
        readq.data.eq(dma.rd.data),
        dma.rd.room.eq(readq.room),
    ]
    words = [rng.getrandbits(8 * R) for _ in range(24)]
    per_beat = max(1, W // R)
    n = len(words) // per_beat * per_beat
    cache = isa.cache(mem_addr=5 * W, pb_tile=3, tiles=n // R)
    load = isa.load_act(mem_addr=7 * W, buf=1, word=9, words=n)
    store = isa.store_act(mem_addr=11 * W, buf=1, word=9, words=n)
    got: dict[str, list] = {"pb": [], "act": [], "beats": []}

    async def run(ctx, raw: bytes, state: str, *, act_bytes: int = 0) -> dict:
        ctx.set(dma.cmd, _cmd(raw))
        ctx.set(dma.act_bytes, act_bytes)
        ctx.set(dma.ctl.start, 1)
        issue = {k: ctx.get(getattr(dma.issue, k)) for k in ("start", "addr", "beats", "write")}
        await ctx.tick()
        ctx.set(dma.ctl.start, 0)
        ctx.set(getattr(dma.ctl, state), 1)
        todo = list(words[:n])
        for _ in range(2000):
            if state != "store":
                valid = bool(todo) and rng.random() < 0.7
                ctx.set(dma.words.valid, valid)
                ctx.set(dma.words.payload, todo[0] if todo else 0)
                if ctx.get(dma.pb_w.en):
                    got["pb"].append((ctx.get(dma.pb_w.addr), ctx.get(dma.pb_w.data)))
                if ctx.get(dma.act_w.en):
                    w = dma.act_w
                    got["act"].append((ctx.get(w.buf), ctx.get(w.addr), ctx.get(w.data)))
                if valid:
                    todo.pop(0)
            else:
                ctx.set(dma.wdata.ready, rng.random() < 0.7)
                if ctx.get(dma.wdata.valid) and ctx.get(dma.wdata.ready):
                    got["beats"].append(ctx.get(dma.wdata.payload))
            done = ctx.get(dma.ctl.done)
            await ctx.tick()
            if done:
                break
        ctx.set(dma.words.valid, 0)
        ctx.set(getattr(dma.ctl, state), 0)
        assert not todo or state == "store", f"{state}: words left"
        await ctx.tick()
        return issue

    async def bench(ctx) -> None:
        issue = await run(ctx, cache, "cache")
        assert issue == {"start": 1, "addr": 5 * W, "beats": n * R // W, "write": 0}
        issue = await run(ctx, load, "load", act_bytes=n * R)
        assert issue == {"start": 1, "addr": 7 * W, "beats": n * R // W, "write": 0}
        issue = await run(ctx, store, "store", act_bytes=n * R)
        assert issue == {"start": 1, "addr": 11 * W, "beats": n * R // W, "write": 1}

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got["pb"] == [(3 * R + i, w) for i, w in enumerate(words[:n])]
    assert got["act"] == [(1, 9 + i, w) for i, w in enumerate(words[:n])]
    raw = b"".join(w.to_bytes(R, "little") for w in words[:n])
    assert got["beats"] == [int.from_bytes(raw[i : i + W], "little") for i in range(0, len(raw), W)]
