"""The PB's valid tags alone (:class:`sushi_hw.pb_tags.PbTags`): CACHE's PB writes tag each
tile with its source address once its last word is in, a look-up of a tile with another address,
an invalid tile or an unaligned address raises ``uncached`` ``latency`` cycles later, sticky
until ``clear``; with and without the pipeline registers (one more cycle of read latency)."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import PRESETS
from sushi_hw.pb_tags import PbTags, tag_bits

CFG = PRESETS["default"]  # 8x8 tiles (8 PB words each), mem_width 8: a tile is 8 units
R = CFG.rows
UNIT = CFG.tile_bytes // CFG.mem_width  # a tile in tag units


def _run(pipe: bool, steps: list[dict]) -> tuple[list[int], int]:
    """Apply ``steps`` (input values per cycle, 0 where not given, ``look`` a dict of the look
    port's members); returns ``uncached`` as seen in each cycle and the look-up latency."""
    dut = PbTags(CFG, BuildOptions(pipeline_regs=pipe))
    seen: list[int] = []

    async def bench(ctx) -> None:  # noqa: ANN001
        for step in steps:
            for name in ("cache_start", "cache_addr", "pb_we", "pb_waddr", "clear"):
                ctx.set(getattr(dut, name), step.get(name, 0))
            look = step.get("look", {})
            for name in ("en", "tile", "addr", "bad"):
                ctx.set(getattr(dut.look, name), look.get(name, 0))
            seen.append(ctx.get(dut.uncached))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen, dut.latency


def _cache(addr: int, pb_tile: int, tiles: int, words: int | None = None) -> list[dict]:
    """The cycles of a CACHE of ``tiles`` tiles (``words`` of them, if cut short)."""
    steps = [{"cache_start": 1, "cache_addr": addr}]
    n = tiles * R if words is None else words
    steps += [{"pb_we": 1, "pb_waddr": pb_tile * R + i} for i in range(n)]
    return [*steps, {}, {}]


def _look(tile: int, addr: int, bad: int = 0) -> dict:
    return {"look": {"en": 1, "tile": tile, "addr": addr, "bad": bad}}


def _verdicts(pipe: bool, setup: list[dict], looks: list[dict]) -> list[int]:
    """``uncached`` after each look-up on its own (a clear before each)."""
    out = []
    for look in looks:
        seen, lat = _run(pipe, [*setup, {"clear": 1}, look, *[{}] * 4])
        at = len(setup) + 1  # the look-up's cycle
        assert seen[at : at + lat] == [0] * lat  # not before its latency
        out.append(seen[at + lat])
        assert seen[at + lat :] == [seen[at + lat]] * (len(seen) - at - lat)  # sticky
    return out


@pytest.mark.parametrize("pipe", [False, True])
def test_cached_tiles_match_their_source(pipe: bool) -> None:
    """Tiles 5, 6, 7 cached from 0x1000: each matches its own address, nothing else."""
    base = 0x1000 // CFG.mem_width
    setup = _cache(0x1000, 5, 3)
    looks = [_look(5, base), _look(6, base + UNIT), _look(7, base + 2 * UNIT)]
    assert _verdicts(pipe, setup, looks) == [0, 0, 0]
    wrong = [
        _look(6, base),  # tile 6 with tile 5's address
        _look(8, base + 3 * UNIT),  # never cached
        _look(5, base + 1),  # another address (a beat on)
        _look(5, (base - UNIT) % (1 << tag_bits(CFG))),  # a tile before
        _look(5, base, bad=1),  # unaligned w_addr
    ]
    assert _verdicts(pipe, setup, wrong) == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("pipe", [False, True])
def test_overwrite_and_cut_short(pipe: bool) -> None:
    """A second CACHE over tile 6 retags it; a CACHE cut short after three words leaves its
    tile invalid, also when that tile held a valid tag before."""
    a, b = 0x1000 // CFG.mem_width, 0x8000 // CFG.mem_width
    setup = [*_cache(0x1000, 5, 3), *_cache(0x8000, 6, 1)]
    looks = [_look(5, a), _look(6, a + UNIT), _look(6, b), _look(7, a + 2 * UNIT)]
    assert _verdicts(pipe, setup, looks) == [0, 1, 0, 0]
    cut = [*_cache(0x1000, 5, 3), *_cache(0x1000 + UNIT * CFG.mem_width, 6, 1, words=3)]
    assert _verdicts(pipe, cut, [_look(6, a + UNIT), _look(5, a)]) == [1, 0]


def test_clear_and_sticky() -> None:
    """A failing look-up sets ``uncached`` until ``clear``; passing ones do not reset it."""
    base = 0x1000 // CFG.mem_width
    steps = [*_cache(0x1000, 5, 1), _look(9, base), {}, {}, _look(5, base), {}, {}, {"clear": 1}]
    seen, lat = _run(False, [*steps, {}, {}])
    first = len(_cache(0x1000, 5, 1))
    assert seen[first : first + lat + 1] == [0] * lat + [1]
    assert seen[first + lat : len(steps)] == [1] * (len(steps) - first - lat)
    assert seen[len(steps) :] == [0, 0]
