"""The golden model's PB valid tags (``IsaSim(pb_tags=...)``, ``BuildOptions.pb_tags``).

A GEMM/CONV that reads a PB tile not cached from the off-chip tile it stands for halts with
PB_UNCACHED after running to its end (its effects are the untagged model's, its accumulator not
held); legal CACHE + GEMM/CONV programs, and every program without tags, run as before.
"""

from __future__ import annotations

import numpy as np
import pytest
from sushi_hw import isa
from sushi_hw.config import PRESETS, AccelConfig
from sushi_sched.isa_sim import IsaSim

E = isa.ErrorCode
PROG, IN, W_A, W_B = 0x0, 0x1000, 0x10000, 0x20000


def _model(cfg: AccelConfig, pb_tags: bool, seed: int = 1) -> IsaSim:
    """A model with random weights at W_A and W_B and random activations in buffer 0."""
    sim = IsaSim(cfg, pb_tags=pb_tags)
    rng = np.random.default_rng(seed)
    for at in (W_A, W_B):
        sim.write(at, rng.integers(0, 256, 16 * cfg.tile_bytes, dtype=np.uint8).tobytes())
    sim.act[0] = rng.integers(-128, 128, sim.act[0].shape, dtype=np.int8)
    return sim


def _gemm(cfg: AccelConfig, **over) -> bytes:
    """A GEMM of 3 K-tiles x 2 N-tiles, its weights at W_A (w_stride 3), all from PB tiles 4..9
    (pb_stride 3) unless overridden."""
    g = dict(m=5, k=3 * cfg.rows, n=2 * cfg.cols, a_buf=0, a_word=0, o_buf=1, o_word=0,
             w_addr=W_A, w_stride=3, pb_tile=4, pb_stride=3, pb_kt=3, pb_nt=2,
             requant=(3, 4))  # fmt: skip
    g.update(over)
    return isa.gemm(**g)


def _cache_rows(cfg: AccelConfig, w_addr: int = W_A, pb_tile: int = 4) -> list[bytes]:
    """CACHE of _gemm's block: each N-tile's 3 K-tiles, contiguous off-chip and in the PB."""
    tb = cfg.tile_bytes
    return [isa.cache(w_addr + 3 * nt * tb, pb_tile + 3 * nt, 3) for nt in range(2)]


def _run(sim: IsaSim, cmds: list[bytes]):
    sim.write_program(PROG, cmds)
    return sim.run(PROG)


def _same_effects(a: IsaSim, b: IsaSim, b_extra_commands: int = 0) -> bool:
    """The same buffers, accumulator and counters; ``b`` fetched that many commands more (the
    DONE after the command ``a`` halted at)."""
    fetched = b_extra_commands * max(isa.CMD_BYTES, b.cfg.mem_width)
    ctr = dict(
        b.counters,
        commands=b.counters["commands"] - b_extra_commands,
        rd_cmd_bytes=b.counters["rd_cmd_bytes"] - fetched,
    )
    return np.array_equal(a.act, b.act) and np.array_equal(a.acc, b.acc) and a.counters == ctr


PRESET_NAMES = ["tiny", "default"]


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_legal_cache_then_gemm_runs_bit_exactly(preset: str) -> None:
    """CACHE of the block, then the GEMM from the PB: done, the same result as from off-chip."""
    cfg = PRESETS[preset]
    tagged, offchip = _model(cfg, True), _model(cfg, True)
    res = _run(tagged, [*_cache_rows(cfg), _gemm(cfg), isa.done()])
    assert res.done and res.error == E.NONE
    assert res.counters["pb_read_bytes"] == 6 * cfg.tile_bytes
    res = _run(offchip, [_gemm(cfg, pb_kt=0, pb_nt=0, pb_stride=0, pb_tile=0), isa.done()])
    assert res.done and np.array_equal(tagged.act, offchip.act)
    assert tagged.uncached_tiles(isa.Op.GEMM, isa.decode(_gemm(cfg))[1]) == []


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_never_cached_halts_after_running(preset: str) -> None:
    """A GEMM from PB tiles no CACHE filled: PB_UNCACHED at that command, after computing as
    the untagged model does; the accumulator is not held; the next legal program runs."""
    cfg = PRESETS[preset]
    tagged, plain = _model(cfg, True), _model(cfg, False)
    gemm = _gemm(cfg, m=3, n=cfg.cols, pb_nt=1, hold=True)  # one tile: hold is legal
    prog = [isa.load_act(IN, 1, 0, max(1, cfg.mem_width // cfg.rows)), gemm, isa.done()]
    res = _run(tagged, prog)
    assert not res.done and res.error == E.PB_UNCACHED
    assert res.pc == PROG + 32 and res.counters["commands"] == 2
    assert _run(plain, prog).done
    # it ran to its end, computing with the PB's zeros
    assert _same_effects(tagged, plain, b_extra_commands=1)
    assert not tagged.acc_held and plain.acc_held
    f = isa.decode(gemm)[1]
    assert tagged.uncached_tiles(isa.Op.GEMM, f) == [4, 5, 6]
    # an accumulate on that result is stale
    res = _run(tagged, [_gemm(cfg, m=3, n=cfg.cols, pb_nt=0, pb_kt=0, accumulate=True)])
    assert res.error == E.STALE_ACCUMULATE
    # the next legal program: CACHE, then the same GEMM, runs
    res = _run(tagged, [*_cache_rows(cfg), _gemm(cfg), isa.done()])
    assert res.done and res.error == E.NONE


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_overwritten_by_another_tensor(preset: str) -> None:
    """CACHE of tensor A, a CACHE of tensor B over two of A's tiles, the GEMM of A: exactly
    those two tiles are uncached, and the GEMM halts with PB_UNCACHED."""
    cfg = PRESETS[preset]
    sim = _model(cfg, True)
    cmds = [*_cache_rows(cfg), isa.cache(W_B, 5, 2), _gemm(cfg), isa.done()]
    res = _run(sim, cmds)
    assert not res.done and res.error == E.PB_UNCACHED and res.pc == PROG + 3 * 32
    assert sim.uncached_tiles(isa.Op.GEMM, isa.decode(_gemm(cfg))[1]) == [5, 6]
    # re-caching A's first N-tile row repairs it
    res = _run(sim, [_cache_rows(cfg)[0], _gemm(cfg), isa.done()])
    assert res.done


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_tags_are_addresses(preset: str) -> None:
    """The same bytes cached from another address, a tile one off, an unaligned ``w_addr`` for
    an all-PB GEMM (no off-chip tile, so BAD_ALIGN does not apply): each is PB_UNCACHED."""
    cfg = PRESETS[preset]
    tb = cfg.tile_bytes
    sim = _model(cfg, True)
    sim.write(W_B, sim.read(W_A, 6 * tb))  # a copy of A elsewhere
    assert _run(sim, [*_cache_rows(cfg, w_addr=W_B), _gemm(cfg), isa.done()]).error == (
        E.PB_UNCACHED
    )
    assert _run(sim, [*_cache_rows(cfg), _gemm(cfg, w_addr=W_A + tb)]).error == E.PB_UNCACHED
    assert _run(sim, [*_cache_rows(cfg), _gemm(cfg), isa.done()]).done
    assert cfg.mem_width > 1
    assert _run(sim, [_gemm(cfg, w_addr=W_A + 1), isa.done()]).error == E.PB_UNCACHED
    # a split GEMM: only its cached block is checked (off-chip tiles need no tag), and a CACHE
    # elsewhere in the PB leaves that block valid
    split = _gemm(cfg, pb_kt=2, pb_nt=1)
    assert _run(sim, [isa.cache(W_B, 7, 2), split, isa.done()]).done


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_addresses_wrap_as_the_rtl(preset: str) -> None:
    """The expected address is taken modulo mem_bytes, as the RTL's walkers' registers: a
    ``w_addr`` above memory for an all-PB GEMM matches the tile cached from its image."""
    cfg = PRESETS[preset]
    sim = _model(cfg, True)
    wrapped = _gemm(cfg, w_addr=W_A + cfg.mem_bytes)
    assert _run(sim, [*_cache_rows(cfg), wrapped, isa.done()]).done


def test_reset_keeps_the_tags() -> None:
    """A reset keeps the PB's contents, and with them its tags."""
    cfg = PRESETS["default"]
    sim = _model(cfg, True)
    assert _run(sim, [*_cache_rows(cfg), isa.done()]).done
    sim.reset()
    assert _run(sim, [_gemm(cfg), isa.done()]).done


def test_conv_block() -> None:
    """A CONV's cached block (nt, ct, t): CACHE one row of taps per (nt, ct) as the conv
    compiler does, and it runs; a tap row cached one tile off fails PB_UNCACHED."""
    cfg = PRESETS["default"]
    tb = cfg.tile_bytes
    conv = dict(h=4, w=4, c_in=2 * cfg.rows, c_out=2 * cfg.cols, k=3, stride=1, pad=1,
                a_buf=0, a_word=0, o_buf=1, o_word=0, w_addr=W_A, w_cstride=9, w_nstride=18,
                pb_tile=0, pb_cstride=5, pb_nstride=10, pb_nt=2, pb_ct=2, pb_t=5,
                requant=(3, 4))  # fmt: skip
    rows = [
        isa.cache(W_A + (nt * 18 + ct * 9) * tb, nt * 10 + ct * 5, 5)
        for nt in range(2)
        for ct in range(2)
    ]
    tagged, plain = _model(cfg, True), _model(cfg, False)
    assert _run(tagged, [*rows, isa.conv(**conv), isa.done()]).done
    assert _run(plain, [*rows, isa.conv(**conv), isa.done()]).done
    assert _same_effects(tagged, plain)
    bad = [*rows[:3], isa.cache(W_A + (18 + 9 + 1) * tb, 15, 5)]  # (1, 1): one tile off
    res = _run(tagged, [*bad, isa.conv(**conv), isa.done()])
    assert res.error == E.PB_UNCACHED
    f = isa.decode(isa.conv(**conv))[1]
    assert tagged.uncached_tiles(isa.Op.CONV, f) == [15, 16, 17, 18, 19]


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_without_tags_nothing_changes(preset: str) -> None:
    """``pb_tags=False`` (a build without the tags): every program above runs to DONE, with the
    effects the tagged model has up to its PB_UNCACHED."""
    cfg = PRESETS[preset]
    progs = [
        [_gemm(cfg), isa.done()],
        [*_cache_rows(cfg), isa.cache(W_B, 5, 2), _gemm(cfg), isa.done()],
        [*_cache_rows(cfg, w_addr=W_B), _gemm(cfg), isa.done()],
    ]
    for i, prog in enumerate(progs):
        tagged, plain = _model(cfg, True, seed=i), _model(cfg, False, seed=i)
        assert _run(tagged, prog).error == E.PB_UNCACHED
        res = _run(plain, prog)
        assert res.done and res.error == E.NONE
        # the tagged run stopped at the GEMM, before DONE
        assert _same_effects(tagged, plain, b_extra_commands=1), i


@pytest.mark.parametrize("pb_tags", [True, False])
def test_fuzzer_reaches_pb_uncached(pb_tags: bool) -> None:
    """The fuzzer's programs (golden side only) reach PB_UNCACHED from GEMMs and CONVs and
    still run PB-served GEMMs and CONVs to the end; without tags they never fail so. Every
    program fits the program area (a GEMM/CONV brings the CACHEs of its block)."""
    from collections import Counter

    from sushi_sched.fuzz import PROG_BASE, PROG_SIZE, Generator, golden_run, outcome_bins

    cfg = PRESETS["default"]
    tally: Counter = Counter()
    for seed in range(1, 6):
        gen = Generator(cfg, seed)
        sim = IsaSim(cfg, pb_tags=pb_tags)
        sim.write(0, gen.memory())
        acc: dict = {}
        for i in range(40):
            case = gen.case(i, acc)
            end = case.prog_addr + isa.CMD_BYTES * len(case.cmds)
            assert end <= PROG_BASE + PROG_SIZE or end == cfg.mem_bytes, case.describe()
            tally.update(
                "|".join(b.split("|")[:3]) for b in outcome_bins(cfg, case, golden_run(sim, case))
            )
    uncached = {b for b in tally if "PB_UNCACHED" in b}
    if pb_tags:
        assert {b.split("|")[0] for b in uncached} == {"GEMM", "CONV"}, tally
    else:
        assert not uncached, tally
    for op in ("GEMM", "CONV"):
        assert tally[f"{op}|NONE|pb"] > 5 and tally[f"{op}|NONE|split"] > 5, tally
