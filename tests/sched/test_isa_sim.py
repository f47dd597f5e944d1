"""The ISA-level golden model (``sushi_sched.isa_sim``) and, through it, the compiler.

* single GEMMs on random shapes and weight sources agree with ``gemm_ref``, counters exact;
* every error code is raised by a program built to trigger it, in the RTL's check order, before
  any data moves;
* every digits SubNet compiled for several PB states runs bit-exactly and reads exactly the
  expected off-chip weight bytes.
"""

from __future__ import annotations

import numpy as np
import pytest
from sushi_hw import isa
from sushi_hw.config import PRESETS, AccelConfig, make_config
from sushi_hw.program import act_bytes, act_from_bytes, int32_from_bytes, weight_tiles
from sushi_hw.reference import conv2d_ref, gemm_ref
from sushi_sched.compiler import (
    CompileError,
    LayerCall,
    PBLayout,
    WeightImage,
    cache_program,
    network_program,
    offchip_weight_bytes,
)
from sushi_sched.digits import load_digits_supernet
from sushi_sched.isa_sim import COUNTER_NAMES, IsaSim, Memory, check_command, run_program

E = isa.ErrorCode
# memory map of the tests (the tiny preset has 256 KiB)
PROG, CACHE_PROG, IN, OUT, W_ADDR = 0x0, 0x800, 0x1000, 0x8000, 0x10000
JUNK = 0x30000  # garbage source for filling the PB


def ceil(a: int, b: int) -> int:
    return -(-a // b)


@pytest.fixture(scope="module")
def net():
    return load_digits_supernet()


# ---- helpers ----------------------------------------------------------------------------------
def run_ok(sim: IsaSim, addr: int, cmds: list[bytes], what: str = ""):
    sim.write_program(addr, cmds)
    res = sim.run(addr)
    assert res.done and res.error == E.NONE, f"{what}: done={res.done} error={res.error.name}"
    assert res.counters["commands"] == len(cmds), what
    assert res.counters["cycles"] == 0
    return res


def fill_pb_with_junk(sim: IsaSim, rng: np.random.Generator) -> None:
    """Fill the whole PB with random tiles (through CACHE), so a wrong source is visible."""
    cfg = sim.cfg
    if cfg.pb_tiles == 0:
        return
    sim.write(JUNK, rng.integers(0, 256, cfg.pb_bytes, dtype=np.uint8).tobytes())
    res = run_ok(sim, CACHE_PROG, [isa.cache(JUNK, 0, cfg.pb_tiles), isa.done()], "junk")
    assert res.counters["rd_weight_bytes"] == cfg.pb_bytes


def read_out(sim: IsaSim, requant: bool, m: int, n: int, addr: int = OUT) -> np.ndarray:
    cfg = sim.cfg
    words = m * ceil(n, cfg.cols) * (1 if requant else 4)
    raw = sim.read(addr, words * cfg.rows)
    return act_from_bytes(cfg, raw, m, n) if requant else int32_from_bytes(cfg, raw, m, n)


def store_words(cfg: AccelConfig, words: int) -> int:
    per_beat = max(1, cfg.mem_width // cfg.rows)
    return ceil(words, per_beat) * per_beat


# ---- random single GEMMs ----------------------------------------------------------------------
def random_gemm(cfg: AccelConfig, sim: IsaSim, rng: np.random.Generator, trial: int) -> None:
    r, d, tb = cfg.rows, cfg.acc_depth, cfg.tile_bytes
    requant = bool(rng.integers(0, 4))  # 3 in 4 requantise
    owpr = 1 if requant else 4
    if trial % 4 == 3:  # more than one M-tile
        m = d * int(rng.integers(1, 3)) + int(rng.choice([1, int(rng.integers(1, d))]))
        m = min(m, cfg.act_words // owpr)
        assert m > d
    else:
        m = int(rng.choice([1, int(rng.integers(1, 3 * r + 2)), d]))
    kt_cap = max(1, cfg.act_words // m)  # A and OUT each fit a buffer
    nt_cap = max(1, cfg.act_words // (m * owpr))
    k = int(rng.choice([1, r, int(rng.integers(1, min(6 * r, kt_cap * r) + 1))]))
    n = int(rng.choice([1, r, int(rng.integers(1, min(6 * r, nt_cap * r) + 1))]))
    k, n = min(k, kt_cap * r), min(n, nt_cap * r)
    kt, nt, mt = ceil(k, r), ceil(n, r), ceil(m, d)
    # the GEMM uses the leading k x n slice of a bigger tensor (w_stride > KT)
    t = rng.integers(-128, 128, (k + int(rng.integers(0, 2 * r)), n + int(rng.integers(0, r))))
    t = t.astype(np.int8)
    t_kt = ceil(t.shape[0], r)
    blob = np.ascontiguousarray(weight_tiles(cfg, t))
    sim.write(W_ADDR, blob.tobytes())

    fill_pb_with_junk(sim, rng)
    source = ["offchip", "pb", "split"][trial % 3]
    pb_kt = pb_nt = pb_tile = pb_stride = 0
    if source != "offchip":
        pb_kt, pb_nt = (
            (kt, nt)
            if source == "pb"
            else (
                int(rng.integers(1, kt + 1)),
                int(rng.integers(1, nt + 1)),
            )
        )
        pb_stride = pb_kt + int(rng.integers(0, 3))
        pb_nt = max(0, min(pb_nt, (cfg.pb_tiles - pb_kt) // pb_stride + 1))
        if pb_nt == 0:
            pb_kt = pb_stride = 0
    if pb_kt * pb_nt:
        span = (pb_nt - 1) * pb_stride + pb_kt
        pb_tile = int(rng.integers(0, cfg.pb_tiles - span + 1))
        cmds = [
            isa.cache(W_ADDR + j * t_kt * tb, pb_tile + j * pb_stride, pb_kt) for j in range(pb_nt)
        ]
        res = run_ok(sim, CACHE_PROG, [*cmds, isa.done()], "cache")
        assert res.counters["rd_weight_bytes"] == pb_kt * pb_nt * tb
        # scribble over the off-chip copies of the cached tiles: they must not be read
        junk = rng.integers(-128, 128, blob[:pb_nt, :pb_kt].shape, dtype=np.int8)
        blob[:pb_nt, :pb_kt] = junk
        sim.write(W_ADDR, blob.tobytes())

    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    a_buf = int(rng.integers(0, 2))
    a_word = int(rng.integers(0, cfg.act_words - m * kt + 1))
    o_words = m * nt * owpr
    o_word = int(rng.integers(0, cfg.act_words - o_words + 1))
    mult, shift = int(rng.integers(1, 1 << 16)), int(rng.integers(0, 24))
    relu = bool(rng.integers(0, 2))
    sim.write(IN, act_bytes(cfg, x))
    sim.write(OUT, bytes([0xA5]) * (store_words(cfg, o_words) * r))
    cmds = [
        isa.load_act(IN, a_buf, a_word, m * kt),
        isa.gemm(
            m=m,
            k=k,
            n=n,
            a_buf=a_buf,
            a_word=a_word,
            o_buf=1 - a_buf,
            o_word=o_word,
            w_addr=W_ADDR,
            w_stride=t_kt,
            pb_tile=pb_tile,
            pb_stride=pb_stride,
            pb_kt=pb_kt,
            pb_nt=pb_nt,
            requant=(mult, shift) if requant else None,
            relu=relu,
        ),
        isa.store_act(OUT, 1 - a_buf, o_word, o_words),
        isa.done(),
    ]
    what = f"trial {trial} {source} m={m} k={k} n={n} pb={pb_kt}x{pb_nt} requant={requant}"
    res = run_ok(sim, PROG, cmds, what)
    want = gemm_ref(x, t[:k, :n], requant=(mult, shift) if requant else None, relu=relu)
    got = read_out(sim, requant, m, n)
    assert np.array_equal(got, want), what
    c = res.counters
    assert c["rd_weight_bytes"] == mt * (kt * nt - pb_kt * pb_nt) * tb, what
    assert c["pb_read_bytes"] == mt * pb_kt * pb_nt * tb, what
    assert c["mac_active"] == m * kt * nt, what
    assert c["rd_act_bytes"] == m * kt * r, what
    assert c["wr_bytes"] == o_words * r, what
    assert c["rd_cmd_bytes"] == 4 * max(32, cfg.mem_width), what


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_random_gemms_match_gemm_ref(preset):
    cfg = PRESETS[preset]
    sim = IsaSim(cfg)
    rng = np.random.default_rng(11 if preset == "tiny" else 12)
    for trial in range(48):
        random_gemm(cfg, sim, rng, trial)


def hold_acc_program(cfg, parts, requant, relu, m, n):
    """K split into ``parts`` GEMMs: hold, accumulate+hold ..., accumulate (+ output)."""
    cmds, words = [], 0
    for i, (x, w_addr, kt) in enumerate(parts):
        last = i == len(parts) - 1
        cmds.append(
            isa.gemm(
                m=m,
                k=x.shape[1],
                n=n,
                a_buf=0,
                a_word=words,
                o_buf=1,
                o_word=0,
                w_addr=w_addr,
                w_stride=kt,
                requant=requant if last else None,
                relu=relu and last,
                accumulate=i > 0,
                hold=not last,
            )
        )
        words += m * ceil(x.shape[1], cfg.rows)
    return cmds


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_hold_then_accumulate(preset):
    """A GEMM split along K into held/accumulated parts equals the whole GEMM (n <= cols), also
    when the hold and the accumulate are in different programs."""
    cfg = PRESETS[preset]
    r, tb = cfg.rows, cfg.tile_bytes
    sim = IsaSim(cfg)
    rng = np.random.default_rng(5)
    for trial in range(16):
        m = int(rng.choice([1, int(rng.integers(1, cfg.acc_depth + 1)), cfg.acc_depth]))
        n = int(rng.integers(1, cfg.cols + 1))
        nparts = int(rng.integers(2, 4))
        ks = [r * int(rng.integers(1, 3)) for _ in range(nparts - 1)] + [
            int(rng.integers(1, 2 * r + 1))
        ]
        k = sum(ks)
        x = rng.integers(-128, 128, (m, k), dtype=np.int8)
        w = rng.integers(-128, 128, (k, n), dtype=np.int8)
        parts, at, k0, loads, words = [], W_ADDR, 0, b"", 0
        for kp in ks:
            wp = w[k0 : k0 + kp]
            blob = np.ascontiguousarray(weight_tiles(cfg, wp)).tobytes()
            sim.write(at, blob)
            parts.append((x[:, k0 : k0 + kp], at, ceil(kp, r)))
            loads += act_bytes(cfg, x[:, k0 : k0 + kp])
            words += m * ceil(kp, r)
            at += len(blob) + tb
            k0 += kp
        requant = (int(rng.integers(1, 1 << 16)), int(rng.integers(0, 24))) if trial % 2 else None
        relu = bool(rng.integers(0, 2))
        sim.write(IN, loads)
        sim.write(OUT, bytes([0x5A]) * m * 4 * r)
        gemms = hold_acc_program(cfg, parts, requant, relu, m, n)
        owords = m * (1 if requant else 4)
        head = [isa.load_act(IN, 0, 0, words)]
        tail = [isa.store_act(OUT, 1, 0, owords), isa.done()]
        if trial % 3 == 0:  # the accumulator survives from one program to the next
            run_ok(sim, PROG, [*head, *gemms[:-1], isa.done()], "hold program")
            res = run_ok(sim, PROG, [gemms[-1], *tail], "accumulate program")
        else:
            res = run_ok(sim, PROG, [*head, *gemms, *tail], "hold/accumulate")
        want = gemm_ref(x, w, requant=requant, relu=relu)
        what = f"trial {trial} m={m} ks={ks} n={n} requant={requant}"
        assert np.array_equal(read_out(sim, requant is not None, m, n), want), what
        if trial % 3:
            assert res.counters["mac_active"] == m * sum(ceil(kp, r) for kp in ks)
            assert res.counters["wr_bytes"] == owords * r
        # a fresh (non-accumulating) GEMM ignores what a held GEMM left in the accumulator
        x2 = rng.integers(-128, 128, (m, ks[0]), dtype=np.int8)
        sim.write(IN, act_bytes(cfg, x2))
        fresh = isa.gemm(
            m=m,
            k=ks[0],
            n=n,
            a_buf=0,
            a_word=0,
            o_buf=1,
            o_word=0,
            w_addr=W_ADDR,
            w_stride=ceil(ks[0], r),
        )
        load = isa.load_act(IN, 0, 0, m * ceil(ks[0], r))
        run_ok(sim, PROG, [load, gemms[0], fresh, isa.store_act(OUT, 1, 0, 4 * m), isa.done()])
        assert np.array_equal(read_out(sim, False, m, n), gemm_ref(x2, w[: ks[0]])), what


def test_gemm_checks_added_after_review():
    """hold/accumulate need one N-tile (the accumulator holds cols lanes), requant needs
    mult >= 1, and a GEMM's output may not overlap its own A in the same buffer."""
    cfg = PRESETS["tiny"]
    r, c = cfg.rows, cfg.cols
    sim = IsaSim(cfg)
    g = dict(m=5, k=2 * r, a_buf=0, a_word=0, o_buf=1, o_word=0, w_addr=W_ADDR, w_stride=2)
    cases = [
        (isa.gemm(**g, n=3 * c, hold=True), isa.ErrorCode.BAD_ACCUMULATE),
        (isa.gemm(**g, n=2 * c, accumulate=True), isa.ErrorCode.BAD_ACCUMULATE),
        (isa.gemm(**{**g, "o_buf": 0, "o_word": 9}, n=c, requant=(1, 0)), isa.ErrorCode.ACT_RANGE),
    ]
    raw = bytearray(isa.gemm(**g, n=c, requant=(1, 0)))
    mult = isa.GEMM["mult"]
    value = int.from_bytes(raw, "little") & ~(((1 << mult.width) - 1) << mult.offset)
    cases.append((value.to_bytes(isa.CMD_BYTES, "little"), isa.ErrorCode.BAD_SHAPE))
    for cmd, code in cases:
        sim.write(PROG, cmd + isa.done())
        res = sim.run(PROG)
        assert not res.done and res.error == code, (isa.decode(cmd)[1], res.error)
    # no overlap: A at words 0..9, output at 10.. in the same buffer is fine
    sim.write(PROG, isa.gemm(**{**g, "o_buf": 0, "o_word": 10}, n=c, requant=(1, 0)) + isa.done())
    assert sim.run(PROG).done


def _gemm(cfg: AccelConfig, **over) -> bytes:
    g = dict(
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
    g.update(over)
    return isa.gemm(**g)


def error_cases(cfg: AccelConfig) -> list[tuple[str, list[bytes], E, int]]:
    """(name, program, expected error, program address)."""
    end, r, tb, aw = cfg.mem_bytes, cfg.rows, cfg.tile_bytes, cfg.act_words
    wpb, bb = max(1, cfg.mem_width // r), max(cfg.mem_width, r)  # words / bytes of a beat
    w_past = end - tb // 2 if (tb // 2) % cfg.mem_width == 0 else end
    half = max(1, cfg.mem_width // 2)  # an address off the memory-beat grid
    good = isa.cache(W_ADDR, 0, 1)
    pb1 = dict(pb_kt=1, pb_nt=1, pb_stride=1)
    cases = [
        # as tb/accel_tb.py::illegal_commands_halt
        ("opcode 9 after a good command", [good, isa.raw(9)], E.ILLEGAL_OPCODE, PROG),
        ("opcode 0 (zeroed memory)", [isa.raw(0)], E.ILLEGAL_OPCODE, PROG),
        ("CACHE at the PB end", [isa.cache(W_ADDR, cfg.pb_tiles, 1)], E.PB_RANGE, PROG),
        ("CACHE across the PB end", [isa.cache(W_ADDR, cfg.pb_tiles - 1, 2)], E.PB_RANGE, PROG),
        ("LOAD across the buffer end", [isa.load_act(IN, 0, aw - 1, 2)], E.ACT_RANGE, PROG),
        ("LOAD past memory", [isa.load_act(end - bb, 0, 0, 2 * wpb)], E.MEM_RANGE, PROG),
        ("LOAD misaligned", [isa.load_act(IN + 1, 0, 0, 1)], E.BAD_ALIGN, PROG),
        ("GEMM PB tile", [_gemm(cfg, **pb1, pb_tile=cfg.pb_tiles)], E.PB_RANGE, PROG),
        ("GEMM m=0", [_gemm(cfg, m=0)], E.BAD_SHAPE, PROG),
        ("GEMM pb_kt > KT", [_gemm(cfg, pb_kt=2, pb_nt=1, pb_stride=2)], E.BAD_SHAPE, PROG),
        ("hold, 2 M-tiles", [_gemm(cfg, m=cfg.acc_depth + 1, hold=True)], E.BAD_ACCUMULATE, PROG),
        # a fresh model has held nothing: the accumulator's sums are stale
        ("accumulate, no hold", [_gemm(cfg, accumulate=True)], E.STALE_ACCUMULATE, PROG),
        ("GEMM weights past memory", [_gemm(cfg, w_addr=w_past)], E.MEM_RANGE, PROG),
        ("runs off memory", [good, good], E.MEM_RANGE, end - 2 * isa.CMD_BYTES),
        # the rest of the checks
        ("fetch misaligned", [isa.done()], E.BAD_ALIGN, PROG + 16),
        ("opcode 12", [isa.raw(12)], E.ILLEGAL_OPCODE, PROG),
        ("CACHE 0 tiles", [isa.cache(W_ADDR, 0, 0)], E.BAD_SHAPE, PROG),
        ("CACHE misaligned", [isa.cache(W_ADDR + half, 0, 1)], E.BAD_ALIGN, PROG),
        ("CACHE past memory", [isa.cache(end - tb, 0, 2)], E.MEM_RANGE, PROG),
        ("LOAD 0 words", [isa.load_act(IN, 0, 0, 0)], E.BAD_SHAPE, PROG),
        ("STORE 0 words", [isa.store_act(OUT, 1, 0, 0)], E.BAD_SHAPE, PROG),
        ("STORE buffer end", [isa.store_act(OUT, 1, aw, 1)], E.ACT_RANGE, PROG),
        ("STORE misaligned", [isa.store_act(OUT + half, 1, 0, 1)], E.BAD_ALIGN, PROG),
        ("STORE past memory", [isa.store_act(end - bb, 1, 0, 2 * wpb)], E.MEM_RANGE, PROG),
        ("GEMM k=0", [_gemm(cfg, k=0)], E.BAD_SHAPE, PROG),
        ("GEMM n=0", [_gemm(cfg, n=0)], E.BAD_SHAPE, PROG),
        ("GEMM m > max_dim", [_gemm(cfg, m=cfg.max_dim + 1)], E.BAD_SHAPE, PROG),
        ("GEMM k > max_dim", [_gemm(cfg, k=cfg.max_dim + 1)], E.BAD_SHAPE, PROG),
        ("GEMM n > max_dim", [_gemm(cfg, n=cfg.max_dim + 1)], E.BAD_SHAPE, PROG),
        ("GEMM pb_nt > NT", [_gemm(cfg, pb_kt=1, pb_nt=2, pb_stride=1)], E.BAD_SHAPE, PROG),
        ("GEMM w_stride < KT", [_gemm(cfg, k=2 * r, w_stride=1)], E.BAD_SHAPE, PROG),
        ("w_stride < KT, all cached", [_gemm(cfg, w_stride=0, **pb1)], E.BAD_SHAPE, PROG),
        (
            "GEMM pb_stride < pb_kt",
            [_gemm(cfg, k=2 * r, n=2 * r, w_stride=2, pb_kt=2, pb_nt=2, pb_stride=1)],
            E.BAD_SHAPE,
            PROG,
        ),
        (
            "accumulate, 2 M-tiles",
            [_gemm(cfg, m=cfg.acc_depth + 1, accumulate=True)],
            E.BAD_ACCUMULATE,
            PROG,
        ),
        ("GEMM A past buffer", [_gemm(cfg, a_word=aw - 1)], E.ACT_RANGE, PROG),
        ("GEMM out past buffer", [_gemm(cfg, o_word=aw - 1)], E.ACT_RANGE, PROG),
        ("int32 out past buffer", [_gemm(cfg, o_word=aw - 7, requant=None)], E.ACT_RANGE, PROG),
        (
            "GEMM PB block past the PB",
            [
                _gemm(
                    cfg,
                    k=2 * r,
                    w_stride=2,
                    pb_kt=2,
                    pb_nt=1,
                    pb_stride=2,
                    pb_tile=cfg.pb_tiles - 1,
                )
            ],
            E.PB_RANGE,
            PROG,
        ),
        ("GEMM w_addr misaligned", [_gemm(cfg, w_addr=W_ADDR + 1)], E.BAD_ALIGN, PROG),
        (
            "GEMM stride span past memory",
            [_gemm(cfg, n=2 * cfg.cols, w_addr=end - 2 * tb, w_stride=2)],
            E.MEM_RANGE,
            PROG,
        ),
        # first failing check wins, in the RTL's order
        ("CACHE shape before PB", [isa.cache(W_ADDR + 1, cfg.pb_tiles, 0)], E.BAD_SHAPE, PROG),
        ("CACHE PB before align", [isa.cache(end - 1, cfg.pb_tiles, 1)], E.PB_RANGE, PROG),
        ("CACHE align before mem", [isa.cache(end - 1, 0, 1)], E.BAD_ALIGN, PROG),
        ("LOAD shape before act", [isa.load_act(end - 1, 0, aw, 0)], E.BAD_SHAPE, PROG),
        ("LOAD act before align", [isa.load_act(end - 1, 0, aw, 1)], E.ACT_RANGE, PROG),
        ("LOAD align before mem", [isa.load_act(end - 1, 0, 0, 1)], E.BAD_ALIGN, PROG),
        (
            "GEMM shape before accumulate",
            [_gemm(cfg, m=cfg.acc_depth + 1, hold=True, w_stride=0, a_word=aw)],
            E.BAD_SHAPE,
            PROG,
        ),
        (
            "GEMM accumulate before act",
            [_gemm(cfg, m=cfg.acc_depth + 1, accumulate=True, a_word=aw)],
            E.BAD_ACCUMULATE,
            PROG,
        ),
        (
            "GEMM act before PB",
            [_gemm(cfg, a_word=aw, **pb1, pb_tile=cfg.pb_tiles)],
            E.ACT_RANGE,
            PROG,
        ),
        (
            "GEMM PB before align",
            [_gemm(cfg, n=2 * cfg.cols, w_addr=end - 1, **pb1, pb_tile=cfg.pb_tiles)],
            E.PB_RANGE,
            PROG,
        ),
        ("GEMM align before mem", [_gemm(cfg, w_addr=end - 1)], E.BAD_ALIGN, PROG),
    ]
    if wpb > 1:  # words x rows not a whole number of memory beats
        cases.append(("LOAD length misaligned", [isa.load_act(IN, 0, 0, 1)], E.BAD_ALIGN, PROG))
        cases.append(("STORE length misaligned", [isa.store_act(OUT, 0, 0, 1)], E.BAD_ALIGN, PROG))
    return cases


CFG_IDS = ["tiny", "default", "wide16", "wide64"]


def config(name: str) -> AccelConfig:
    if name.startswith("wide"):  # memory beats wider than a word / than a command
        return make_config("default", mem_width=int(name[4:]))
    return PRESETS[name]


@pytest.mark.parametrize("cfg_name", CFG_IDS)
def test_every_error_code(cfg_name):
    cfg = config(cfg_name)
    seen = set()
    for name, cmds, code, addr in error_cases(cfg):
        sim = IsaSim(cfg)
        rng = np.random.default_rng(len(name))
        sim.write(W_ADDR, rng.integers(0, 256, 4 * cfg.tile_bytes, dtype=np.uint8).tobytes())
        sim.write(IN, rng.integers(0, 256, 4 * cfg.rows, dtype=np.uint8).tobytes())
        sim.write(addr, b"".join(cmds))
        mem_before = sim.read(0, cfg.mem_bytes) if cfg.mem_bytes <= 1 << 20 else None
        act_before, acc_before = sim.act.copy(), sim.acc.copy()
        pb_before = sim.pb.copy()
        res = sim.run(addr)
        what = f"{cfg_name}: {name}"
        assert not res.done and res.error == code, f"{what}: got {res.error.name}"
        seen.add(code)
        fetch_fail = addr % 32 != 0 or addr + len(cmds) * isa.CMD_BYTES >= cfg.mem_bytes
        fetched = 0 if addr % 32 else len(cmds)
        assert res.counters["commands"] == fetched, what
        assert res.counters["rd_cmd_bytes"] == fetched * max(32, cfg.mem_width), what
        assert res.pc == addr + (fetched - (not fetch_fail)) * isa.CMD_BYTES, what
        # the failing command moved nothing (a leading good CACHE may have filled PB tile 0)
        assert np.array_equal(sim.act, act_before) and np.array_equal(sim.acc, acc_before), what
        if len(cmds) == 1:
            assert np.array_equal(sim.pb, pb_before), what
            assert res.counters["rd_weight_bytes"] == 0, what
        assert sum(res.counters[k] for k in ("rd_act_bytes", "wr_bytes", "mac_active")) == 0
        if mem_before is not None:
            assert sim.read(0, cfg.mem_bytes) == mem_before, what
        # the same verdict from the check function on its own
        if not fetch_fail:
            op, f = (None, {})
            try:
                op, f = isa.decode(cmds[-1])
            except ValueError:
                pass
            if op is not None:  # the stateful check is the model's, not the function's
                stateless = E.NONE if code == E.STALE_ACCUMULATE else code
                assert check_command(cfg, op, f) == stateless, what
        # and a good program still runs afterwards on the same state
        wpb = max(1, cfg.mem_width // cfg.rows)
        good = [isa.load_act(IN, 0, 0, 2 * wpb), isa.store_act(OUT, 0, 0, 2 * wpb), isa.done()]
        run_ok(sim, PROG, good, what)
        assert sim.read(OUT, 2 * wpb * cfg.rows) == sim.read(IN, 2 * wpb * cfg.rows), what
    # BAD_CONV: test_conv_add_pool_checks; the memory's own errors: test_memory_timeout (the
    # golden memory never answers with a bus error); PB_UNCACHED, which moves data before it
    # halts: tests/sched/test_pb_tags.py
    assert seen == set(E) - {E.NONE, E.BAD_CONV, E.MEM_TIMEOUT, E.BUS_ERROR, E.PB_UNCACHED}


def test_checks_that_do_not_apply_are_skipped():
    """The RTL only checks what a GEMM uses: no output range with hold, no off-chip address
    when every tile is cached, no PB range when no tile is cached."""
    cfg = PRESETS["default"]
    aw, end = cfg.act_words, cfg.mem_bytes
    # the PB holds junk, not these GEMMs' tiles: without tags (with, they fail PB_UNCACHED)
    sim = IsaSim(cfg, pb_tags=False)
    fill_pb_with_junk(sim, np.random.default_rng(1))
    cmds = [
        _gemm(cfg, o_word=aw, requant=None, hold=True),  # nothing written, o_word unchecked
        _gemm(cfg, w_addr=end - 1, pb_kt=1, pb_nt=1, pb_stride=1),  # all tiles from the PB
        _gemm(cfg, pb_kt=0, pb_nt=1, pb_tile=(1 << 20) - 1),  # no PB tile: pb_tile unchecked
        _gemm(cfg, k=2 * cfg.rows, w_stride=2, pb_kt=1, pb_nt=1, pb_stride=1, w_addr=end - 128),
        isa.done(),
    ]
    res = run_ok(sim, PROG, cmds)
    tb = cfg.tile_bytes
    assert res.counters["rd_weight_bytes"] == (1 + 0 + 1 + 1) * tb
    assert res.counters["pb_read_bytes"] == (0 + 1 + 0 + 1) * tb
    assert res.counters["mac_active"] == 2 * (1 + 1 + 1 + 2)


def test_wide_memory_fetch_and_store():
    """mem_width 64 > a command: a fetch reads a whole beat, and the command at pc is kept."""
    cfg = make_config("default", mem_width=64)
    sim = IsaSim(cfg)
    x = np.arange(-64, 64, dtype=np.int8).reshape(16, 8)
    sim.write(IN, x.tobytes())
    prog = [isa.load_act(IN, 1, 3, 8), isa.store_act(OUT + 64, 1, 3, 8), isa.done()]
    sim.write_program(PROG + 32, prog)  # starts in the middle of a beat
    res = sim.run(PROG + 32)
    assert res.done and res.counters["rd_cmd_bytes"] == 3 * 64
    assert sim.read(OUT + 64, 64) == x[:8].tobytes()
    assert (res.counters["rd_act_bytes"], res.counters["wr_bytes"]) == (64, 64)
    sim.write_program(PROG, [isa.load_act(IN, 0, 0, 1), isa.done()])  # 8 of 64 bytes
    assert sim.run(PROG).error == E.BAD_ALIGN


def test_sparse_memory_matches_dense():
    rng = np.random.default_rng(3)
    dense, sparse = Memory(1 << 20), Memory(1 << 30)
    for _ in range(50):
        addr = int(rng.integers(0, (1 << 20) - 300_000))
        data = rng.integers(0, 256, int(rng.integers(1, 300_000)), dtype=np.uint8)
        dense.write(addr, data)
        sparse.write(addr, data.tobytes())
        a2, n2 = int(rng.integers(0, 1 << 19)), int(rng.integers(0, 1 << 19))
        assert np.array_equal(dense.read(a2, n2), sparse.read(a2, n2))
    starts = rng.integers(0, (1 << 20) - 64, 20)
    assert np.array_equal(dense.gather(starts, 64), sparse.gather(starts, 64))
    with pytest.raises(ValueError):
        sparse.read((1 << 30) - 4, 8)


# ---- the compiler on every digits SubNet --------------------------------------------------------
def fit(cfg: AccelConfig, wanted: list[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
    """Leading blocks of ``(tensor, kt, nt)`` in order, as far as the PB holds them."""
    free, plan = cfg.pb_tiles, {}
    for name, kt, nt in wanted:
        if free <= 0 or kt * nt == 0:
            continue
        if kt * nt <= free:
            kc, nc = kt, nt
        elif free >= kt:
            kc, nc = kt, free // kt
        else:
            kc, nc = free, 1
        plan[name] = (kc, nc)
        free -= kc * nc
    return plan


def tiles_of(cfg, k, n):
    return ceil(k, cfg.rows), ceil(n, cfg.cols)


def plans(cfg, net, state: str, layers, rng) -> dict[str, tuple[int, int]]:
    shapes = net.spec.tensor_shapes()
    if state == "empty":
        return {}
    if state == "largest":
        return fit(cfg, [(g.name, *tiles_of(cfg, g.k, g.n)) for g in net.layers(net.largest().id)])
    if state == "own":
        return fit(cfg, [(g.name, *tiles_of(cfg, g.k, g.n)) for g in layers])
    assert state == "random"  # a random leading SubGraph, tensors in random order
    names = list(shapes)
    rng.shuffle(names)
    wanted = []
    for name in names:
        kt, nt = tiles_of(cfg, *shapes[name])
        wanted.append((name, int(rng.integers(0, kt + 1)), int(rng.integers(0, nt + 1))))
    return fit(cfg, wanted)


def expected_offchip(cfg, layers, plan, m) -> tuple[int, int]:
    """(off-chip weight bytes, PB bytes) from shapes and the plan alone."""
    off = pb = 0
    for g in layers:
        kt, nt = tiles_of(cfg, g.k, g.n)
        kc, nc = plan.get(g.name, (0, 0))
        cached = min(kc, kt) * min(nc, nt)
        off += (kt * nt - cached) * cfg.tile_bytes * ceil(m, cfg.acc_depth)
        pb += cached * cfg.tile_bytes * ceil(m, cfg.acc_depth)
    return off, pb


def run_cache(sim, cfg, net, image, plan) -> PBLayout:
    layout = PBLayout.allocate(cfg, plan)
    if not layout.blocks:
        return layout
    res = run_ok(sim, CACHE_PROG, [*cache_program(cfg, image, layout), isa.done()], "cache")
    assert res.counters["rd_weight_bytes"] == layout.tiles * cfg.tile_bytes
    for name, (at, kc, nc) in layout.blocks.items():
        want = weight_tiles(cfg, net.tensor(name))[:nc, :kc]
        got = sim.pb[at : at + kc * nc].reshape(nc, kc, cfg.rows, cfg.cols)
        assert np.array_equal(got, want), f"PB block of {name}"
    return layout


def check_subnet(sim, cfg, net, image, layout, plan, info, x_all, idx, ms=(1, 4)) -> None:
    layers = net.layers(info.id)
    calls = [LayerCall(g.name, g.k, g.n, g.requant, g.relu) for g in layers]
    n_test = x_all.shape[0]
    for m in ms:
        start = (idx * 7 * m) % (n_test - m)
        x = x_all[start : start + m]
        sim.write(IN, act_bytes(cfg, x[:, : layers[0].k]))
        prog = network_program(cfg, image, layout, calls, m, IN, OUT)
        out_w = m * ceil(10, cfg.cols) * 4
        sim.write(OUT, bytes([0xA5]) * out_w * cfg.rows)
        res = run_ok(sim, PROG, prog, f"{info.id} m={m}")
        got = read_out(sim, False, m, 10)
        want = net.reference_logits(info.id, x)
        assert np.array_equal(got, want), f"{info.id} m={m} plan={plan}: logits differ"
        c = res.counters
        off, pb = expected_offchip(cfg, layers, plan, m)
        assert c["rd_weight_bytes"] == offchip_weight_bytes(cfg, layout, calls, m) == off, (
            f"{info.id} m={m} plan={plan}"
        )
        assert c["pb_read_bytes"] == pb, f"{info.id} m={m}"
        tiles = [tiles_of(cfg, g.k, g.n) for g in layers]
        assert c["mac_active"] == sum(m * kt * nt for kt, nt in tiles)
        assert c["commands"] == len(layers) + 3


DIGITS = [(p, s) for p in ("default", "tiny") for s in ("empty", "largest", "random", "own")]


@pytest.mark.parametrize("preset,state", DIGITS)
def test_compiler_every_digits_subnet(net, preset, state):
    cfg = PRESETS[preset]
    sim = IsaSim(cfg)
    tensors = {name: net.tensor(name) for name in net.tensor_names()}
    image = WeightImage.build(cfg, tensors, W_ADDR)
    for name, blob in image.blobs.items():
        sim.write(image.addr[name], blob)
    x_all, _ = net.test_set()
    rng = np.random.default_rng(sum(map(ord, preset + state)))
    subnets = net.subnets()
    assert len(subnets) == 336
    layout = plan = None
    partial = 0
    for idx, info in enumerate(subnets):
        if layout is None or state in ("random", "own"):
            plan = plans(cfg, net, state, net.layers(info.id), rng)
            layout = run_cache(sim, cfg, net, image, plan)
        partial += any(
            plan.get(g.name, (0, 0)) not in ((0, 0), tiles_of(cfg, g.k, g.n))
            for g in net.layers(info.id)
        )
        check_subnet(sim, cfg, net, image, layout, plan, info, x_all, idx)
    if state != "empty" and (preset, state) != ("tiny", "own"):
        assert partial > 0  # blocks bigger or smaller than the layer were covered


@pytest.mark.parametrize("preset", ["large", "zcu104"])
def test_compiler_digits_other_presets(net, preset):
    """Larger arrays: rows 16 / 32 (zcu104: 64-byte memory beats, wider than an activation word,
    and a 2 GiB sparse memory)."""
    cfg = PRESETS[preset]
    sim = IsaSim(cfg)
    tensors = {name: net.tensor(name) for name in net.tensor_names()}
    image = WeightImage.build(cfg, tensors, W_ADDR)
    for name, blob in image.blobs.items():
        sim.write(image.addr[name], blob)
    x_all, _ = net.test_set()
    rng = np.random.default_rng(4)
    shapes = net.spec.tensor_shapes()
    ran = 0
    for idx, info in enumerate(net.subnets()[::3]):
        layers = net.layers(info.id)
        whole = all(
            (g.k % cfg.rows == 0 or g.k == shapes[g.name][0])
            and (g.n % cfg.cols == 0 or g.n == shapes[g.name][1])
            for g in layers
        )
        if not whole:  # a slice ending inside a tile would see another SubNet's weights
            calls = [LayerCall(g.name, g.k, g.n, g.requant, g.relu) for g in layers]
            with pytest.raises(CompileError, match="not a multiple"):
                network_program(cfg, image, PBLayout(), calls, 1, IN, OUT)
            continue
        state = ["empty", "own", "random"][idx % 3]
        plan = plans(cfg, net, state, layers, rng)
        layout = run_cache(sim, cfg, net, image, plan)
        check_subnet(sim, cfg, net, image, layout, plan, info, x_all, idx)
        ran += 1
    assert ran >= 10


def test_compiler_digits_two_m_tiles(net):
    """M = 70 images on the tiny preset (acc_depth 64): two M-tiles, weights streamed twice.
    SubNets whose activations do not fit a buffer are refused at compile time."""
    cfg = PRESETS["tiny"]
    m = cfg.acc_depth + 6
    sim = IsaSim(cfg)
    tensors = {name: net.tensor(name) for name in net.tensor_names()}
    image = WeightImage.build(cfg, tensors, W_ADDR)
    for name, blob in image.blobs.items():
        sim.write(image.addr[name], blob)
    x_all, _ = net.test_set()
    rng = np.random.default_rng(6)
    ran = refused = 0
    for idx, info in enumerate(net.subnets()):
        layers = net.layers(info.id)
        words = [m * ceil(g.k, cfg.rows) for g in layers] + [m * ceil(10, cfg.cols) * 4]
        if max(words) > cfg.act_words:
            calls = [LayerCall(g.name, g.k, g.n, g.requant, g.relu) for g in layers]
            with pytest.raises(CompileError, match="activation words"):
                network_program(cfg, image, PBLayout(), calls, m, IN, OUT)
            refused += 1
            continue
        plan = plans(cfg, net, ["empty", "own", "random"][idx % 3], layers, rng)
        layout = run_cache(sim, cfg, net, image, plan)
        check_subnet(sim, cfg, net, image, layout, plan, info, x_all, idx, ms=(m,))
        ran += 1
    assert ran >= 50 and refused >= 50


def test_compiler_rejects_what_cannot_run():
    cfg = PRESETS["tiny"]
    r, half = cfg.rows, max(1, cfg.mem_width // 2)
    w = np.zeros((64, 64), dtype=np.int8)
    image = WeightImage.build(cfg, {"t": w}, W_ADDR)
    rows = cfg.act_words // (64 // r) + 1  # A of 64 // r K-tiles that overflows the buffer
    with pytest.raises(CompileError):
        network_program(cfg, image, PBLayout(), [LayerCall("t", 64, 64, None)], rows, IN, OUT)
    with pytest.raises(CompileError):  # k not a whole number of tiles
        network_program(cfg, image, PBLayout(), [LayerCall("t", r + 1, 64, None)], 1, IN, OUT)
    call = [LayerCall("t", 64, 64, None)]
    with pytest.raises(CompileError, match="aligned"):
        network_program(cfg, image, PBLayout(), call, 1, IN + half, OUT)
    with pytest.raises(CompileError, match="aligned"):
        network_program(cfg, image, PBLayout(), call, 1, IN, OUT + half)
    with pytest.raises(CompileError, match="aligned"):
        WeightImage.build(cfg, {"t": w}, W_ADDR + half)
    per = (64 // r) ** 2  # tiles of one 64 x 64 block
    with pytest.raises(CompileError):
        PBLayout.allocate(cfg, {f"t{i}": (64, 64) for i in range(cfg.pb_tiles // per + 1)})
    assert set(COUNTER_NAMES) == {c.name.lower() for c in isa.Counter}


# ---- CONV, ADD, POOL checks ---------------------------------------------------------------------
def _patch(cmd: bytes, layout, name: str, value: int) -> bytes:  # noqa: ANN001
    """``cmd`` with field ``name`` set to ``value`` (for fields the assembler refuses)."""
    f = layout[name]
    v = int.from_bytes(cmd, "little") & ~(((1 << f.width) - 1) << f.offset)
    return (v | (value << f.offset)).to_bytes(isa.CMD_BYTES, "little")


def _conv(cfg: AccelConfig, **over) -> bytes:
    c = dict(h=4, w=4, c_in=cfg.rows, c_out=cfg.cols, k=3, stride=1, pad=1, a_buf=0,
             a_word=0, o_buf=1, o_word=0, w_addr=W_ADDR, w_cstride=9, w_nstride=9,
             requant=(1, 0))  # fmt: skip
    c.update(over)
    return isa.conv(**c)


def conv_error_cases(cfg: AccelConfig) -> list[tuple[str, bytes, E]]:
    aw, tb, end = cfg.act_words, cfg.tile_bytes, cfg.mem_bytes
    pb = dict(pb_nt=1, pb_ct=1, pb_t=9, pb_cstride=9, pb_nstride=9)
    add = dict(a_buf=0, a_word=0, b_buf=0, b_word=16, o_buf=1, o_word=0, words=16, mult_a=1,
               mult_b=1, shift=0)  # fmt: skip
    pool = dict(a_buf=0, a_word=0, o_buf=1, o_word=0, pixels=16, tiles=1, mult=1, shift=4)
    return [
        ("kernel 2", _conv(cfg, k=2, pad=0), E.BAD_CONV),
        ("kernel 0 and h 0 (BAD_CONV first)", _conv(cfg, k=0, pad=0, h=0), E.BAD_CONV),
        ("stride 3", _conv(cfg, stride=3), E.BAD_CONV),
        ("stride 0", _conv(cfg, stride=0), E.BAD_CONV),
        ("pad 2 on a 3x3", _conv(cfg, pad=2), E.BAD_CONV),
        ("h 0", _conv(cfg, h=0), E.BAD_SHAPE),
        ("c_out 0", _conv(cfg, c_out=0), E.BAD_SHAPE),
        ("c_in 0", _conv(cfg, c_in=0), E.BAD_SHAPE),
        (
            "7x7 kernel on a 2x2 map padded by 2",
            _conv(cfg, h=2, k=7, pad=2, w_cstride=49, w_nstride=49),
            E.BAD_SHAPE,
        ),  # fmt: skip
        ("h_out*w_out above max_dim", _conv(cfg, h=255, w=255, k=1, pad=0), E.BAD_SHAPE),
        (
            "K above max_dim",
            _conv(cfg, c_in=4095, k=7, pad=0, w_cstride=49, w_nstride=1 << 15),
            E.BAD_SHAPE,
        ),  # fmt: skip
        ("w_cstride < k*k", _conv(cfg, w_cstride=8), E.BAD_SHAPE),
        ("w_nstride too small", _conv(cfg, c_in=2 * cfg.rows, w_nstride=17), E.BAD_SHAPE),
        ("pb_nt > nt", _conv(cfg, **{**pb, "pb_nt": 2}), E.BAD_SHAPE),
        (
            "pb_t > k*k",
            _conv(cfg, **{**pb, "pb_t": 10, "pb_cstride": 10, "pb_nstride": 10}),
            E.BAD_SHAPE,
        ),  # fmt: skip
        ("pb_cstride < pb_t", _conv(cfg, **{**pb, "pb_cstride": 8}), E.BAD_SHAPE),
        ("requant with mult 0", _patch(_conv(cfg), isa.CONV, "mult", 0), E.BAD_SHAPE),
        ("input beyond the buffer", _conv(cfg, a_word=aw - 15), E.ACT_RANGE),
        ("output beyond the buffer", _conv(cfg, o_word=aw - 15), E.ACT_RANGE),
        ("int32 output beyond the buffer", _conv(cfg, o_word=aw - 63, requant=None), E.ACT_RANGE),
        ("output over the input", _conv(cfg, o_buf=0, o_word=15), E.ACT_RANGE),
        ("PB block beyond the PB", _conv(cfg, pb_tile=cfg.pb_tiles - 8, **pb), E.PB_RANGE),
        ("unaligned w_addr", _conv(cfg, w_addr=W_ADDR + cfg.mem_width // 2 or 1), E.BAD_ALIGN),
        ("tiles beyond memory", _conv(cfg, w_addr=end - 8 * tb), E.MEM_RANGE),
        ("ADD of 0 words", isa.add(**{**add, "words": 0}), E.BAD_SHAPE),
        ("ADD beyond the buffer", isa.add(**{**add, "b_word": aw - 15}), E.ACT_RANGE),
        ("ADD output over part of A", isa.add(**{**add, "o_buf": 0, "o_word": 8}), E.ACT_RANGE),
        ("ADD output over part of B", isa.add(**{**add, "o_buf": 0, "o_word": 20}), E.ACT_RANGE),
        ("POOL of 0 pixels", isa.pool(**{**pool, "pixels": 0}), E.BAD_SHAPE),
        ("POOL of 0 tiles", isa.pool(**{**pool, "tiles": 0}), E.BAD_SHAPE),
        ("POOL with mult 0", isa.pool(**{**pool, "mult": 0}), E.BAD_SHAPE),
        ("POOL beyond the buffer", isa.pool(**{**pool, "a_word": aw - 15}), E.ACT_RANGE),
        (
            "POOL output over its input",
            isa.pool(**{**pool, "o_buf": 0, "o_word": 15}),
            E.ACT_RANGE,
        ),  # fmt: skip
    ]


def test_conv_add_pool_checks():
    """Each check in the documented order, before any data moves; a good program runs after."""
    cfg = PRESETS["default"]
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (4, 4, cfg.rows), dtype=np.int8)
    w = rng.integers(-128, 128, (cfg.cols, cfg.rows, 3, 3), dtype=np.int8)
    wt = np.ascontiguousarray(
        np.stack([w[:, :, dy + 1, dx + 1].T for dy, dx in isa.ring_taps(3)])
    )  # [t][r][c]: tiles (0, 0, t)
    for name, cmd, code in conv_error_cases(cfg):
        sim = IsaSim(cfg)
        sim.write(W_ADDR, wt.tobytes())
        sim.write(IN, x.reshape(16, cfg.rows).tobytes())
        pb_before = sim.pb.copy()
        sim.write_program(PROG, [isa.load_act(IN, 0, 0, 16), cmd, isa.done()])
        res = sim.run(PROG)
        assert not res.done and res.error == code, f"{name}: got {res.error.name}"
        assert check_command(cfg, *isa.decode(cmd)) == code, name
        assert res.counters["rd_weight_bytes"] == res.counters["pb_read_bytes"] == 0, name
        assert res.counters["mac_active"] == 0 and np.array_equal(sim.pb, pb_before), name
        assert not sim.act[1].any(), name  # nothing written
        good = [isa.load_act(IN, 0, 0, 16), _conv(cfg), isa.store_act(OUT, 1, 0, 16), isa.done()]
        run_ok(sim, PROG, good, name)
        got = np.frombuffer(sim.read(OUT, 16 * cfg.rows), np.int8).reshape(4, 4, cfg.cols)
        assert np.array_equal(got, conv2d_ref(x, w, 1, 1, (1, 0))), name


def test_conv_opcodes_illegal_without_conv():
    cfg = PRESETS["tiny"]
    assert not cfg.conv
    cmds = [
        _conv(cfg),
        isa.add(
            a_buf=0,
            a_word=0,
            b_buf=0,
            b_word=4,
            o_buf=1,
            o_word=0,
            words=4,
            mult_a=1,
            mult_b=1,
            shift=0,
        ),  # fmt: skip
        isa.pool(a_buf=0, a_word=0, o_buf=1, o_word=0, pixels=4, tiles=1, mult=1, shift=2),
    ]
    for cmd in cmds:
        sim, res = run_program(cfg, [cmd])
        assert res.error == E.ILLEGAL_OPCODE and res.counters["commands"] == 1
        assert check_command(cfg, *isa.decode(cmd)) == E.ILLEGAL_OPCODE


def test_conv_checks_that_do_not_apply_are_skipped():
    """All tiles from the PB: w_addr is neither aligned nor in memory; ADD in place over A."""
    cfg = PRESETS["default"]
    sim = IsaSim(cfg, pb_tags=False)  # junk in the PB, as above
    fill_pb_with_junk(sim, np.random.default_rng(2))
    pb = dict(pb_nt=1, pb_ct=1, pb_t=9, pb_cstride=9, pb_nstride=9)
    cmds = [
        _conv(cfg, w_addr=cfg.mem_bytes - 1, **pb),
        isa.add(
            a_buf=1,
            a_word=0,
            b_buf=0,
            b_word=0,
            o_buf=1,
            o_word=0,
            words=16,
            mult_a=1,
            mult_b=1,
            shift=0,
        ),  # fmt: skip
        isa.pool(a_buf=1, a_word=0, o_buf=0, o_word=0, pixels=16, tiles=1, mult=1, shift=4),
        isa.done(),
    ]
    res = run_ok(sim, PROG, cmds)
    assert res.counters["rd_weight_bytes"] == 0
    assert res.counters["pb_read_bytes"] == 9 * cfg.tile_bytes


@pytest.mark.parametrize("preset", ["tiny", "default", "wide64"])
def test_memory_timeout(preset):
    """A memory that stops answering (``IsaSim.hang_addr``, the simulation memory's fault
    injection): the program halts with MEM_TIMEOUT at the first command whose fetch or data
    covers the byte; a hang at a fetch leaves exactly the state of the commands before it."""
    cfg = config(preset)
    wpb = max(1, cfg.mem_width // cfg.rows)
    prog = [
        isa.load_act(IN, 0, 0, 2 * wpb),
        isa.store_act(OUT, 0, 0, 2 * wpb),
        isa.store_act(OUT + 0x100, 0, 0, 2 * wpb),
        isa.done(),
    ]
    data = bytes(range(1, 1 + 2 * wpb * cfg.rows))
    fetch = max(isa.CMD_BYTES, cfg.mem_width)
    for hang, pc, commands in (
        (PROG + 2 * isa.CMD_BYTES + 5, PROG + 2 * isa.CMD_BYTES, 2),  # fetch of command 2
        (IN + 1, PROG, 1),  # LOAD_ACT's data: halts at command 0, counted
        (OUT + 0x100, PROG + 2 * isa.CMD_BYTES, 3),  # the second store's write
        (0x7000, None, 4),  # never touched: runs to DONE
    ):
        sim = IsaSim(cfg)
        sim.write(IN, data)
        sim.write_program(PROG, prog)
        sim.hang_addr = hang
        res = sim.run(PROG)
        what = f"{preset}: hang at {hang:#x}"
        if pc is None:
            assert res.done and res.error == E.NONE, what
            continue
        assert (
            not res.done
            and res.error == E.MEM_TIMEOUT
            and res.pc - res.pc % fetch == (pc - pc % fetch)
        ), f"{what}: {res}"
        assert res.counters["commands"] == commands, f"{what}: {res.counters}"
        if commands == 2:
            assert sim.read(OUT, len(data)) == data and res.counters["wr_bytes"] == len(data)
    # a memory that never answers: the first fetch times out, nothing is counted
    sim = IsaSim(cfg)
    sim.write_program(PROG, prog)
    sim.hang_addr = PROG
    res = sim.run(PROG)
    assert res.error == E.MEM_TIMEOUT and not any(res.counters.values()), res


def test_accumulate_needs_a_held_result():
    """accumulate=1 is STALE_ACCUMULATE unless the last GEMM/CONV held its result: not after a
    fresh start, a GEMM without hold, a reset or a memory timeout; a hold in an earlier program
    still counts (the accumulator survives programs)."""
    cfg = PRESETS["tiny"]
    sim = IsaSim(cfg)
    sim.write(W_ADDR, bytes(range(4 * cfg.tile_bytes)))
    hold, acc, plain = (_gemm(cfg, hold=True), _gemm(cfg, accumulate=True), _gemm(cfg))
    acc_hold = _gemm(cfg, accumulate=True, hold=True)
    load = isa.load_act(IN, 0, 0, 2)

    def run(cmds: list[bytes]) -> isa.ErrorCode:
        sim.write_program(PROG, [*cmds, isa.done()])
        return sim.run(PROG).error

    assert run([load, acc]) == E.STALE_ACCUMULATE
    assert run([load, hold, acc_hold, acc, isa.done()]) == E.NONE
    assert run([load, hold, acc, acc]) == E.STALE_ACCUMULATE  # the first used it up
    assert run([load, hold, plain, acc]) == E.STALE_ACCUMULATE
    assert run([load, hold, load, acc]) == E.NONE  # a LOAD_ACT leaves the accumulator alone
    assert run([hold]) == E.NONE and run([acc]) == E.NONE  # across programs
    run([hold])
    sim.reset()
    assert run([acc]) == E.STALE_ACCUMULATE
    run([hold])
    sim.hang_addr = PROG + isa.CMD_BYTES
    assert run([load, acc]) == E.MEM_TIMEOUT
    sim.hang_addr = None
    assert run([acc]) == E.STALE_ACCUMULATE
