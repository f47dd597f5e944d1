"""Sequencer alone: the state sequence, cycle by cycle, for DONE, each kind of command, a
failed fetch and a failed check; busy/done/error as the host sees them."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator
from sushi_hw import isa
from sushi_hw.sequencer import Sequencer

E = isa.ErrorCode


def _phases(dut: Sequencer) -> list:
    """Outputs that name what the sequencer does in a cycle, in priority order."""
    return [
        ("fetch_start", dut.fetch.start),
        ("fetch_data", dut.fetch_data),
        ("decode", dut.check.start),
        ("dma_start", dut.dma.start),
        ("gemm_start", dut.feed.start),
        ("cache", dut.dma.cache),
        ("load", dut.dma.load),
        ("store", dut.dma.store),
        ("gemm", dut.feed.run),
        ("next", dut.fetch.advance),
        ("halt", dut.halt),
        ("ring", dut.fetch.load),
    ]


def _run(program: list[dict], *, fetch_error: int = 0, cycles: int = 60) -> tuple[list, dict]:
    """Runs ``program`` (one dict per command: ``op``, ``error``, ``run`` cycles of its unit)
    from a doorbell; returns the phase of each cycle and the final status."""
    dut = Sequencer()
    trace: list[str] = []
    status: dict = {}

    async def bench(ctx) -> None:
        ctx.set(dut.doorbell, 1)
        ctx.set(dut.fetch.error, fetch_error)
        ctx.set(dut.issuer_busy, 1)
        ctx.set(dut.feed.done, 1)
        await ctx.tick()
        ctx.set(dut.doorbell, 0)
        pc, unit_cycles, halt_cycles = 0, 0, 0
        for _ in range(cycles):
            cmd = program[min(pc, len(program) - 1)]
            ctx.set(dut.op, cmd["op"])
            ctx.set(dut.check.error, cmd.get("error", 0))
            ctx.set(dut.fetch.done, ctx.get(dut.fetch_data))  # one beat
            ctx.set(dut.check.ready, 1)
            running = any(
                ctx.get(s) for s in (dut.dma.cache, dut.dma.load, dut.dma.store, dut.feed.run)
            )
            unit_cycles = unit_cycles + 1 if running else 0
            ctx.set(dut.dma.done, unit_cycles == cmd.get("run", 1))
            ctx.set(dut.core_ready, unit_cycles == 2)
            ctx.set(dut.core_idle, unit_cycles >= cmd.get("run", 1))
            halt_cycles += ctx.get(dut.halt)
            ctx.set(dut.issuer_busy, halt_cycles < 3)
            phase = [p for p, s in _phases(dut) if ctx.get(s)]
            trace.append(phase[0] if phase else "-")
            if ctx.get(dut.fetch.advance):
                pc += 1
            await ctx.tick()
            if not ctx.get(dut.busy):
                break
        status.update(busy=ctx.get(dut.busy), done=ctx.get(dut.done), error=ctx.get(dut.error_code))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return trace, status


CHECKS = ["decode", "-", "-", "-"]  # DECODE, CHECK_PREP, CHECK_WAIT, CHECK (deciding)


def test_done_program() -> None:
    trace, status = _run([{"op": isa.Op.DONE}])
    assert trace == ["fetch_start", "fetch_data", *CHECKS]
    assert status == {"busy": 0, "done": 1, "error": 0}


@pytest.mark.parametrize(
    "op, state", [(isa.Op.CACHE, "cache"), (isa.Op.LOAD_ACT, "load"), (isa.Op.STORE_ACT, "store")]
)
def test_dma_command_then_done(op: isa.Op, state: str) -> None:
    trace, status = _run([{"op": op, "run": 3}, {"op": isa.Op.DONE}])
    one = ["fetch_start", "fetch_data", *CHECKS[:-1], "dma_start", state, state, state, "next"]
    assert trace == [*one, "fetch_start", "fetch_data", *CHECKS]
    assert status == {"busy": 0, "done": 1, "error": 0}


def test_gemm_waits_for_core_and_feed() -> None:
    trace, status = _run([{"op": isa.Op.GEMM, "run": 5}, {"op": isa.Op.DONE}])
    gemm = ["fetch_start", "fetch_data", *CHECKS[:-1], "gemm_start", *["gemm"] * 5, "next"]
    assert trace == [*gemm, "fetch_start", "fetch_data", *CHECKS]
    assert status == {"busy": 0, "done": 1, "error": 0}


def test_check_error_halts_after_drain() -> None:
    trace, status = _run([{"op": isa.Op.GEMM, "error": E.ACT_RANGE}])
    assert trace == ["fetch_start", "fetch_data", *CHECKS, "halt", "halt", "halt"]
    assert status == {"busy": 0, "done": 0, "error": E.ACT_RANGE}


def test_fetch_error_halts() -> None:
    trace, status = _run([{"op": isa.Op.DONE}], fetch_error=E.BAD_ALIGN)
    assert trace == ["-", "halt", "halt", "halt"]
    assert status == {"busy": 0, "done": 0, "error": E.BAD_ALIGN}
