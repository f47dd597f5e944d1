"""VectorUnit alone: random ADD and POOL commands, back to back, against the formulas of
docs/isa.md, on a two-buffer RAM model with the activation buffers' read latency. Checks every
word of both buffers after each command (nothing written outside the output), the write order,
``done`` (high when idle, low from start until the cycle after the last write) and the cycle
count (:func:`vector_cycles`). ``SUSHI_SEED=n`` reruns with another seed."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.act_buffers import act_read_latency
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import AccelConfig, make_config
from sushi_hw.vector_unit import VectorUnit, vector_cycles, vector_latency

CONFIGS = {"default": make_config("default"), "rows4": make_config("default", rows=4, cols=4)}


def add_ref(a: np.ndarray, b: np.ndarray, f: dict) -> np.ndarray:
    """docs/isa.md ADD: sat8(relu((A*mult_a + B*mult_b + round) >> shift)), lane-wise."""
    s = f["shift"]
    y = a.astype(np.int64) * f["mult_a"] + b.astype(np.int64) * f["mult_b"]
    y = (y + ((1 << (s - 1)) if s else 0)) >> s
    if f["relu"]:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127)


def pool_ref(a: np.ndarray, f: dict) -> np.ndarray:
    """docs/isa.md POOL: sat8((sum_p A[ct*pixels + p] * mult + round) >> shift)."""
    s = f["shift"]
    y = a.astype(np.int64).reshape(f["tiles"], f["pixels"], -1).sum(axis=1) * f["mult"]
    return np.clip((y + ((1 << (s - 1)) if s else 0)) >> s, -128, 127)


def _requant(rng: random.Random) -> tuple[int, int]:
    """A multiplier and a shift that land the results in, around, or far beyond int8."""
    mult = rng.choice([1, rng.randrange(1, 1 << 16), (1 << 16) - 1, rng.randrange(1, 256)])
    kind = rng.random()
    if kind < 0.15:
        return mult, 0
    if kind < 0.25:
        return mult, 31
    return mult, max(0, min(31, mult.bit_length() + rng.randrange(-4, 5)))


def _random_add(rng: random.Random, cfg: AccelConfig) -> dict:
    n = rng.choice([1, 1, 2, rng.randrange(1, 40)])
    a_buf, b_buf = rng.randrange(2), rng.randrange(2)
    a_word = rng.randrange(cfg.act_words - n + 1)
    b_word = a_word if rng.random() < 0.1 else rng.randrange(cfg.act_words - n + 1)
    mult_a, shift = _requant(rng)
    mult_b = rng.choice([mult_a, rng.randrange(1, 1 << 16)])
    where = rng.choice(["a", "b", "else"])
    if where == "a":
        o_buf, o_word = a_buf, a_word
    elif where == "b":
        o_buf, o_word = b_buf, b_word
    else:  # elsewhere: a range of the other buffer or one clear of A and B (or in place)
        o_buf = rng.randrange(2)
        o_word = rng.randrange(cfg.act_words - n + 1)
        for buf, word in ((a_buf, a_word), (b_buf, b_word)):
            if buf == o_buf and abs(word - o_word) < n:
                o_word = word  # a partial overlap is illegal: make it in place
    return dict(
        a_buf=a_buf, a_word=a_word, b_buf=b_buf, b_word=b_word, o_buf=o_buf, o_word=o_word,
        words=n, mult_a=mult_a, mult_b=mult_b, shift=shift, relu=rng.randrange(2),
    )  # fmt: skip


def _random_pool(rng: random.Random, cfg: AccelConfig, pixels: int = 0) -> dict:
    pixels = pixels or rng.choice([1, rng.randrange(1, 65), 64])
    tiles = rng.randrange(1, 9)
    n = pixels * tiles
    a_buf, o_buf = rng.randrange(2), rng.randrange(2)
    a_word = rng.randrange(cfg.act_words - n + 1)
    o_word = rng.randrange(cfg.act_words - tiles + 1)
    if a_buf == o_buf and o_word + tiles > a_word and a_word + n > o_word:
        o_buf ^= 1  # input and output may not overlap in one buffer
    mult, shift = _requant(rng)
    shift = min(31, shift + (pixels.bit_length() if rng.random() < 0.7 else 0))  # the average
    return dict(
        a_buf=a_buf, a_word=a_word, o_buf=o_buf, o_word=o_word, pixels=pixels, tiles=tiles,
        mult=mult, shift=shift,
    )  # fmt: skip


def _lanes(words: list[int], rows: int) -> np.ndarray:
    """Words -> int8 lanes [n, rows] (not through np.array: numpy 2 turns a list of ints on
    both sides of 2**63 into float64)."""
    raw = b"".join(w.to_bytes(rows, "little") for w in words)
    return np.frombuffer(raw, dtype=np.int8).reshape(-1, rows)


def _words(lanes: np.ndarray) -> list[int]:
    return [int.from_bytes(row.astype(np.int8).tobytes(), "little") for row in lanes]


@pytest.mark.parametrize("pipe", [True, False])
@pytest.mark.parametrize("preset", list(CONFIGS))
def test_vector_unit_random(preset: str, pipe: bool) -> None:
    cfg = CONFIGS[preset]
    R, depth = cfg.rows, cfg.act_words
    seed = int(os.environ.get("SUSHI_SEED", 0)) * 4 + 2 * list(CONFIGS).index(preset) + pipe
    rng = random.Random(seed)
    opts = BuildOptions(pipeline_regs=pipe)
    latency = act_read_latency(pipe)
    dut = VectorUnit(cfg, opts)
    assert dut.latency == vector_latency(opts)
    mem = [[rng.randrange(1 << (8 * R)) for _ in range(depth)] for _ in range(2)]
    cmds = [("add", _random_add(rng, cfg)) for _ in range(30)]
    cmds += [("pool", _random_pool(rng, cfg)) for _ in range(12)]
    rng.shuffle(cmds)
    cmds.insert(0, ("add", {**_random_add(rng, cfg), "words": 1}))
    cmds.append(("pool", {**_random_pool(rng, cfg), "mult": (1 << 16) - 1, "shift": 2}))
    cmds.append(("pool", _random_pool(rng, cfg, pixels=1)))
    checked: list[str] = []
    seen: set[str] = set()  # the cases the commands covered

    async def bench(ctx) -> None:
        pending: dict[int, int] = {}  # cycle -> the word rd.data carries in it
        cycle = 0

        async def step() -> tuple[bool, tuple[int, int, int] | None]:
            """One cycle of the RAM model: serve the read due now, take this cycle's read
            (read-first: before this cycle's write) and write."""
            nonlocal cycle
            ctx.set(dut.rd.data, pending.pop(cycle, rng.randrange(1 << (8 * R))))
            if ctx.get(dut.rd.en):
                buf, addr = ctx.get(dut.rd.buf), ctx.get(dut.rd.addr)
                pending[cycle + latency] = mem[buf][addr]
            write = None
            if ctx.get(dut.wr.en):
                write = (ctx.get(dut.wr.buf), ctx.get(dut.wr.addr), ctx.get(dut.wr.data))
                mem[write[0]][write[1]] = write[2]
            done = bool(ctx.get(dut.ctl.done))
            await ctx.tick()
            cycle += 1
            return done, write

        for _ in range(3):  # idle after reset: done high, nothing moves
            done, write = await step()
            assert done and write is None and not ctx.get(dut.rd.en), f"seed {seed}"
        for op, f in cmds:
            before = [list(b) for b in mem]
            if op == "add":
                cmd = isa.add(**f)
                a = _lanes(before[f["a_buf"]][f["a_word"] :][: f["words"]], R)
                b = _lanes(before[f["b_buf"]][f["b_word"] :][: f["words"]], R)
                out, reads = add_ref(a, b, f), 2 * f["words"]
            else:
                cmd = isa.pool(**f)
                n = f["pixels"] * f["tiles"]
                a = _lanes(before[f["a_buf"]][f["a_word"] :][:n], R)
                out, reads = pool_ref(a, f), n
            ctx.set(dut.cmd, int.from_bytes(cmd, "little"))
            ctx.set(dut.ctl.start, 1)
            await step()
            ctx.set(dut.ctl.start, 0)
            ctx.set(dut.ctl.run, 1)
            writes, busy, last_write = [], 0, 0
            while True:
                done, write = await step()
                if done:
                    break
                busy += 1
                assert busy < 4 * reads + 100, f"seed {seed}: {op} {f} hangs"
                if write is not None:
                    writes.append(write)
                    last_write = busy
            ctx.set(dut.ctl.run, 0)
            msg = f"seed {seed}: {op} {f}"
            # ADD: 2 cycles per word, POOL: 1 per input word, plus a fixed latency
            assert busy == vector_cycles(reads, opts), f"{msg}: {busy} cycles"
            per = 2 * f["words"] if op == "add" else f["pixels"] * f["tiles"]
            assert busy <= per + dut.latency, f"{msg}: {busy} cycles"
            assert last_write == busy, f"{msg}: done rose {busy - last_write} cycles late"
            want = [(f["o_buf"], f["o_word"] + i, w) for i, w in enumerate(_words(out))]
            assert writes == want, f"{msg}: writes differ"
            for w in want:  # every other word of both buffers as it was
                before[w[0]][w[1]] = w[2]
            assert mem == before, f"{msg}: a word outside the output changed"
            for _ in range(rng.randrange(3)):  # a gap before the next command (or none)
                done, write = await step()
                assert done and write is None, msg
            checked.append(op)
            seen.update(_cases(op, f, out))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == len(cmds), f"seed {seed}"
    assert seen >= CASES, f"seed {seed}: not covered: {CASES - seen}"


CASES = {
    "add over A", "add over B", "add elsewhere", "add words=1", "add relu", "add no relu",
    "add shift 0", "add shift > 0", "add saturates", "pool pixels=1", "pool pixels>1",
    "pool shift > 0", "pool saturates",
}  # fmt: skip


def _cases(op: str, f: dict, out: np.ndarray) -> set[str]:
    sat = "saturates" if ((out == 127) | (out == -128)).any() else ""
    shift = "shift 0" if f["shift"] == 0 else "shift > 0"
    if op == "pool":
        pixels = "pixels=1" if f["pixels"] == 1 else "pixels>1"
        return {f"pool {x}" for x in (shift, sat, pixels) if x}
    over = {(f["a_buf"], f["a_word"]): "over A", (f["b_buf"], f["b_word"]): "over B"}
    where = over.get((f["o_buf"], f["o_word"]), "elsewhere")
    relu = "relu" if f["relu"] else "no relu"
    words = "words=1" if f["words"] == 1 else ""
    return {f"add {x}" for x in (shift, sat, where, relu, words) if x}
