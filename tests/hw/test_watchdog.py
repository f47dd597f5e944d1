"""The memory watchdog alone (:class:`sushi_hw.watchdog.MemWatchdog`): the timeout on a memory
that owes an answer, and the stale read beats of an abandoned command, counted through the
next doorbell (the soak found a program that took them for its own data)."""

from __future__ import annotations

from amaranth.sim import Simulator
from sushi_hw.config import PRESETS
from sushi_hw.watchdog import MemWatchdog

LIMIT = 8


def _sim(steps: list[dict]) -> list[tuple[int, int]]:
    """Apply ``steps`` (one dict of input values per cycle, 0 where not given); returns
    (draining, timeout) as seen in each cycle."""
    dut = MemWatchdog(PRESETS["tiny"], LIMIT)
    seen: list[tuple[int, int]] = []
    inputs = ("req_valid", "req_ready", "req_write", "req_beats", "rdata_valid", "rdata_ready",
              "wdata_valid", "wdata_ready", "clear")  # fmt: skip

    async def bench(ctx) -> None:  # noqa: ANN001
        for step in steps:
            for name in inputs:
                ctx.set(getattr(dut, name), step.get(name, 0))
            seen.append((ctx.get(dut.draining), ctx.get(dut.timeout)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


def read(beats: int) -> dict:
    return {"req_valid": 1, "req_ready": 1, "req_beats": beats}


BEAT = {"rdata_valid": 1, "rdata_ready": 1}
CLEAR = {"clear": 1}


def test_times_out_on_a_read_never_answered() -> None:
    seen = _sim([read(4), *[{}] * (LIMIT + 2)])
    assert [t for _, t in seen] == [0] * (LIMIT + 1) + [1, 1]
    assert not any(d for d, _ in seen)


def test_stale_beats_drain_through_the_next_doorbell() -> None:
    """5 beats requested, 2 in, the command abandoned (clear): the 3 still owed are stale,
    also after the next doorbell (clear) and its own request; its beats come after them."""
    steps = [read(5), BEAT, BEAT, CLEAR, {}, CLEAR, read(2), BEAT, BEAT, BEAT, BEAT, BEAT, {}]
    draining = [d for d, _ in _sim(steps)]
    assert draining == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]


def test_stale_beats_are_progress_not_owed() -> None:
    """While the stale beats arrive the new program's request does not time out; once they
    are in, its own beats are owed, and a silence of LIMIT cycles is a timeout."""
    steps = [read(3), CLEAR, read(1), *[BEAT, {}] * 3, *[{}] * (LIMIT + 1)]
    seen = _sim(steps)
    assert not any(t for _, t in seen[: 2 + 6 + LIMIT - 1])
    assert seen[-1][1] == 1
    # a clear in the same cycle as a request: its beats are stale too
    seen = _sim([{**read(2), **CLEAR}, BEAT, BEAT, {}])
    assert [d for d, _ in seen] == [0, 1, 1, 0]
