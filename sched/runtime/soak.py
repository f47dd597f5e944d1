"""A soak with faults (issue 24 §4): a long serving run with faults injected into the programs
it runs, and the host's recovery after each.

:class:`SoakJob` serves a seeded query stream through the one
:class:`~sushi_sched.runtime.server.Server`: the ``sushi`` policy picks each query's SubNet
(a share of the queries name a random SubNet of the whole space instead) and updates the
Persistent Buffer when it decides to; every ``repin_every`` queries the PB also moves to the
SubGraph that best serves three random SubNets, so that CACHE programs run often. Each program
run (a query or a CACHE) gets a fault with probability ``fault_rate`` (none in the first query
after a fault), of one of :data:`FAULT_KINDS` (drawn as from a bag holding each kind once, so
that the kinds come equally often):

* ``illegal``: one command of the program is corrupted in memory before the doorbell (an
  illegal opcode, or a field set so that a check fails); the run must report that check's
  error code at that command;
* ``stall``: the memory is slow and stalls at random (latency up to 1024 cycles, a random
  bandwidth, a stall probability up to 94 %) for the run; it must end correctly;
* ``hang``: the memory stops answering at a byte the program fetches, reads or writes
  (:class:`sushi_hw.sim_memory.SimMemory`; ``IsaSim.hang_addr``); the run must report
  MEM_TIMEOUT, then the memory comes back;
* ``reset``: the accelerator is reset in the middle of the run; the host reports the query
  as interrupted;
* ``doorbell``: a doorbell for another address is rung in the middle of the run; it must be
  ignored (the run ends correctly) and counted in DOORBELLS_DROPPED.

The golden model has no clock and no doorbell: there ``stall`` and ``doorbell`` change nothing
(the report says so), and ``reset`` comes after a random number of the program's commands.

Every query ends as one outcome: ``ok`` (logits bit-exact and the byte counters as compiled,
as :meth:`Server.query` checks), ``reported`` (the run stopped with an error code, or was
reset, and the server raised it), ``wrong`` (no error, but the result or a counter differs
from the reference) or ``lost`` (no outcome: the host got no answer). A fault whose outcome
is not the one it must have (a corrupted command reported with another code, a stall that
fails, a dropped doorbell not counted) is listed in ``unexpected``. After a reported (or lost)
run the host runs :meth:`Server.recover` (with the PB's layout after a CACHE), and the next
query carries no fault: that query must be ``ok``. At the end the weight image is read back
and compared with what the host wrote.

The job is picklable: it runs in the caller's process on the golden model and inside the
simulator on the RTL (:func:`sushi_sched.runtime.rtl.run_on_rtl`).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sushi_hw import isa
from sushi_hw.build_options import BuildOptions

from ..isa_sim import IsaSim, check_command
from ..policies import Context, make_policies
from ..simulate import Setup
from ..subgraph import EMPTY, SubGraph
from ..traces import generate
from .backend import Backend, RunError, RunResult
from .digits import ServeError
from .models import served_model
from .server import Server, query_images

E = isa.ErrorCode
FAULT_KINDS = ("illegal", "stall", "hang", "reset", "doorbell")
OUTCOMES = ("ok", "reported", "wrong", "lost")
#: what each kind of fault must end as ("reported" ones with the error given in the Fault)
MUST = {
    "illegal": "reported",
    "stall": "ok",
    "hang": "reported",
    "reset": "reported",
    "doorbell": "ok",
}
#: opcodes no configuration decodes (CONV, ADD and POOL are added where ``conv`` is off)
ILLEGAL_OPS = (0, 8, 9, 10, 11, 12, 13, 14)
INTERRUPTED = "reset in the middle of the program"
#: errors a command's checks raise before it moves any data
CHECK_ERRORS = frozenset(int(e) for e in E if 1 <= e <= 8 or e == E.STALE_ACCUMULATE)
MAX_STALL_LATENCY = 1024  #: well below the watchdog's limit (BuildOptions.mem_timeout)


@dataclass
class Fault:
    """One injected fault: what, on which program, and what the run must show."""

    kind: str
    target: str  #: "query" or "cache"
    detail: str = ""
    error: int | None = None  #: the error code the run must report (None: must end ok)
    commands: int | None = None  #: the COMMANDS counter the failing run must show
    dropped: int | None = None  #: DOORBELLS_DROPPED the run must show
    landed: bool = True  #: False: the program ended before the fault could act (reset)
    reads_only: bool = False  #: a hang of a fetch or a read: no write is outstanding


# ---- fault injection, per backend ------------------------------------------------------------


class _GoldenFaults:
    """The golden model's side: a hang is ``IsaSim.hang_addr``; a reset comes after a
    number of commands; no clock (stalls change nothing), no doorbell to drop."""

    clocked = False

    def __init__(self, backend: Any):
        self.b = backend

    def timing(self, latency: int, bytes_per_cycle: int, stall: int, seed: int) -> None:
        pass

    def hang(self, addr: int | None) -> None:
        self.b.sim.hang_addr = addr

    def disturbed(
        self,
        prog_addr: int,
        frac: float,
        n_cmds: int,
        est_cycles: int,
        action: str,
        other: int,
        what: str,
    ) -> tuple[RunResult, bool]:
        sim = self.b.sim
        if action == "doorbell":
            return self.b.run(prog_addr, what), True
        at = 1 + int(frac * max(0, n_cmds - 2))  # commands run before the reset: not DONE
        try:
            res, landed = sim.run(prog_addr, max_commands=at), False
        except RuntimeError:  # the budget ran out: the reset lands in the middle
            res = RunResult(False, 0, dict(sim.counters), status=INTERRUPTED)
            landed = True
        sim.reset()
        res.what = what
        return res, landed


class _RtlFaults:
    """The RTL's side (``sushi_sim``: the memory model's timing and hang inputs, the doorbell
    and reset), called from the job's bridge thread."""

    clocked = True

    def __init__(self, backend: Any):
        from cocotb.task import resume

        self.b, self.host = backend, backend.host
        self._timing = resume(self.host.memory_model)
        self._disturbed = resume(self._disturbed_async)

    def timing(self, latency: int, bytes_per_cycle: int, stall: int, seed: int) -> None:
        self._timing(latency, bytes_per_cycle, stall, seed)

    def hang(self, addr: int | None) -> None:
        self.host.hang(addr)

    def disturbed(
        self,
        prog_addr: int,
        frac: float,
        n_cmds: int,
        est_cycles: int,
        action: str,
        other: int,
        what: str,
    ) -> tuple[RunResult, bool]:
        at = 1 + int(frac * max(0, est_cycles - 8))
        return self._disturbed(prog_addr, at, action, other, what)

    async def _disturbed_async(
        self, prog_addr: int, at: int, action: str, other: int, what: str
    ) -> tuple[RunResult, bool]:
        """Start the program, and ``at`` cycles later reset the accelerator or ring another
        doorbell if it still runs; (the result, whether the fault landed)."""
        from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

        host, d = self.host, self.host.dut
        await host.start(prog_addr)
        await ClockCycles(d.clk, at)
        await ReadOnly()
        running = bool(int(d.ctrl__busy.value))
        await RisingEdge(d.clk)
        if running and action == "reset":
            await host.reset()
            return RunResult(False, 0, {}, what, status=INTERRUPTED), True
        if running:  # a careless host rings for another program while this one runs
            d.ctrl__prog_addr.value = other
            d.ctrl__doorbell.value = 1
            await RisingEdge(d.clk)
            d.ctrl__doorbell.value = 0
        res = await host.run_started(prog_addr, self.b.timeout_cycles, what)
        if action == "reset":  # the program had finished: the reset lands between programs
            await host.reset()
        return res, running


class FaultyBackend:
    """``backend`` with a fault armed for its next run (:meth:`arm`); otherwise it passes
    every call through. ``fault`` is the last fault injected, filled in as it was."""

    def __init__(self, backend: Backend, rng: np.random.Generator):
        self.inner, self.rng = backend, rng
        self.cfg, self.name = backend.cfg, backend.name
        self.cycle_accurate = backend.cycle_accurate
        rtl = backend.name.startswith("rtl")
        self.faults = _RtlFaults(backend) if rtl else _GoldenFaults(backend)
        self.armed: tuple[Fault, int] | None = None  #: (fault, estimated cycles)
        self.fault: Fault | None = None
        self._isa: IsaSim | None = None

    def write(self, addr: int, data: bytes) -> None:
        self.inner.write(addr, data)

    def read(self, addr: int, n: int) -> bytes:
        return self.inner.read(addr, n)

    def counters(self) -> dict[str, int]:
        return self.inner.counters()

    def reset(self) -> None:
        self.inner.reset()

    def arm(self, fault: Fault, est_cycles: int) -> None:
        self.armed = (fault, est_cycles)

    def run(self, prog_addr: int, what: str = "") -> RunResult:
        if self.armed is None:
            self.fault = None
            return self.inner.run(prog_addr, what)
        fault, est = self.armed
        self.armed, self.fault = None, fault
        return self._inject(fault, est, prog_addr, what)

    # ---- the faults --------------------------------------------------------------------
    def program(self, addr: int) -> list[bytes]:
        """The commands at ``addr`` up to DONE, as memory holds them."""
        out: list[bytes] = []
        while len(out) < 512:
            chunk = self.inner.read(addr + len(out) * isa.CMD_BYTES, 8 * isa.CMD_BYTES)
            for i in range(0, len(chunk), isa.CMD_BYTES):
                out.append(chunk[i : i + isa.CMD_BYTES])
                if out[-1][0] & 0xF == isa.Op.DONE:
                    return out
        raise RuntimeError(f"no DONE in the program at {addr:#x}")

    def _inject(self, f: Fault, est: int, addr: int, what: str) -> RunResult:
        rng, cfg, faults = self.rng, self.cfg, self.faults
        if f.kind == "stall":
            lat = int(rng.integers(cfg.mem_latency, MAX_STALL_LATENCY + 1))
            bpc = int(rng.integers(1, cfg.mem_bytes_per_cycle + 1))
            stall, seed = int(rng.integers(16, 241)), int(rng.integers(1, 1 << 16))
            f.detail = f"latency {lat}, {bpc} B/cycle, stall {stall}/256"
            faults.timing(lat, bpc, stall, seed)
            try:
                return self.inner.run(addr, what)
            finally:
                faults.timing(cfg.mem_latency, cfg.mem_bytes_per_cycle, 0, 1)
        cmds = self.program(addr)
        if f.kind == "illegal":
            i, bad, f.error, f.detail = corrupt(cfg, cmds, rng)
            f.commands = i + 1
            self.inner.write(addr + i * isa.CMD_BYTES, bad)
            return self.inner.run(addr, what)
        if f.kind == "hang":
            if self._isa is None:
                self._isa = IsaSim(cfg)  # for its accesses(): what each command touches
            at, f.commands, f.detail = hang_point(self._isa, addr, cmds, rng)
            f.reads_only = "write" not in f.detail
            f.error = int(E.MEM_TIMEOUT)
            faults.hang(at)
            try:
                return self.inner.run(addr, what)
            finally:
                faults.hang(None)  # the memory comes back (recovery resets what it holds)
        # reset or doorbell in the middle of the run
        other = int(rng.choice([0, addr + isa.CMD_BYTES, cfg.mem_bytes - isa.CMD_BYTES]))
        frac = float(rng.uniform(0.0, 0.9))
        res, f.landed = faults.disturbed(addr, frac, len(cmds), est, f.kind, other, what)
        f.detail = f"at {frac:.0%} of the program" + ("" if f.landed else ", after it ended")
        if f.kind == "doorbell":
            f.dropped = 1 if faults.clocked else 0
            f.detail = f"for {other:#x} {f.detail}"
        return res


def corrupt(cfg, cmds: list[bytes], rng: np.random.Generator) -> tuple[int, bytes, int, str]:  # noqa: ANN001
    """An illegal version of one of ``cmds``: (its index, the bytes, the error code its check
    must raise, a description). Either an opcode no configuration has (the rest random) or
    one field of the command set to a value its check rejects (``isa_sim.check_command``)."""
    ops = ILLEGAL_OPS if cfg.conv else (*ILLEGAL_OPS, 5, 6, 7)
    for _ in range(100):
        i = int(rng.integers(len(cmds)))
        op, fields = isa.decode(cmds[i])
        names = [n for n, _ in isa.LAYOUTS[op] if n != "opcode"]
        if op == isa.Op.DONE or not names or rng.random() < 0.3:
            o = int(rng.choice(ops))
            body = int.from_bytes(rng.bytes(isa.CMD_BYTES), "little") & ~0xF
            bad = (body | o).to_bytes(isa.CMD_BYTES, "little")
            return i, bad, int(E.ILLEGAL_OPCODE), f"command {i}: opcode {o}"
        name = str(rng.choice(names))
        fl = dict(isa.LAYOUTS[op])[name]
        width = fl.width
        top = (1 << width) - 1
        value = int(
            rng.choice(
                [
                    0,
                    top,
                    int(rng.integers(0, top + 1)),
                    fields[name] ^ (1 << int(rng.integers(width))),
                ]
            )
        )
        if value == fields[name]:
            continue
        err = check_command(cfg, op, {**fields, name: value})
        if err == E.NONE:
            continue  # still a legal command (a different result, not a fault this reports)
        raw = int.from_bytes(cmds[i], "little")
        raw = raw & ~(top << fl.offset) | value << fl.offset
        desc = f"command {i} ({op.name}): {name} {fields[name]} -> {value}"
        return i, raw.to_bytes(isa.CMD_BYTES, "little"), int(err), desc
    raise RuntimeError("no illegal variant found")


def hang_point(
    sim: IsaSim, addr: int, cmds: list[bytes], rng: np.random.Generator
) -> tuple[int, int | None, str]:
    """A byte the program at ``addr`` touches, where the memory stops answering: the fetch of
    one of its commands, or a byte one of them reads or writes (``sim.accesses``, an IsaSim
    of the configuration). Returns (the byte, the COMMANDS counter the run must show when it
    is a fetch, a description)."""
    where = rng.choice(["fetch", "data"])
    if where == "data":
        spans = []
        for i, raw in enumerate(cmds):
            op, f = isa.decode(raw)
            kind = "write" if op == isa.Op.STORE_ACT else "read"
            spans += [(i, kind, a, n) for a, n in sim.accesses(op, f) if n]
        if spans:
            i, kind, a, n = spans[int(rng.integers(len(spans)))]
            at = a + int(rng.integers(n))
            return at, None, f"{kind} of command {i} ({isa.decode(cmds[i])[0].name}) at {at:#x}"
    i = int(rng.integers(len(cmds)))
    at = addr + i * isa.CMD_BYTES + int(rng.integers(isa.CMD_BYTES))
    return at, i, f"fetch of command {i} at {at:#x}"


# ---- the job ---------------------------------------------------------------------------------


@dataclass
class SoakJob:
    """Serve ``queries`` queries of ``supernet`` with faults at ``fault_rate`` per program
    run (module doc); returns the report (:func:`report`)."""

    queries: int
    seed: int = 0
    fault_rate: float = 0.1
    supernet: str = "digits-mlp"
    kinds: tuple[str, ...] = FAULT_KINDS
    trace: str = "phases"
    named_share: float = 0.25  #: queries that name a random SubNet of the space
    update_every: int = 16
    #: every this many queries (0: never) the PB moves to what serves 3 random SubNets best,
    #: so that CACHE programs run (and take faults) often; the policy may move it in between
    repin_every: int = 20
    timeout_cycles: int = 4_000_000  #: the RTL host gives up on a run after this: ``lost``

    def __call__(self, backend: Backend, progress=None) -> dict:  # noqa: ANN001
        return _Soak(self, backend, progress).run()


@dataclass
class _Tally:
    outcomes: Counter = field(default_factory=Counter)  #: outcome -> queries
    by_fault: dict = field(default_factory=dict)  #: kind ("none") -> outcome -> queries
    faults: dict = field(default_factory=dict)  #: kind -> target -> injected
    errors: Counter = field(default_factory=Counter)  #: what the reported runs said
    cache: Counter = field(default_factory=Counter)  #: CACHE runs' outcomes
    missed: Counter = field(default_factory=Counter)  #: faults the program outran
    dropped: int = 0  #: DOORBELLS_DROPPED over all runs
    recoveries: int = 0
    resets: int = 0  #: recoveries that reset the accelerator
    post_fault: int = 0
    post_fault_ok: int = 0
    unexpected: list = field(default_factory=list)
    lost_why: list = field(default_factory=list)


class _Soak:
    def __init__(self, job: SoakJob, backend: Backend, progress: Any):
        self.job, self.progress = job, progress
        bad = [k for k in job.kinds if k not in FAULT_KINDS]
        if bad or not job.kinds:
            raise ValueError(f"fault kinds {bad or '(none)'}: choose from {FAULT_KINDS}")
        self.cfg = backend.cfg
        if hasattr(backend, "timeout_cycles"):
            backend.timeout_cycles = job.timeout_cycles
        self.rng = np.random.default_rng([job.seed, 24])
        self.backend = FaultyBackend(backend, np.random.default_rng([job.seed, 4]))
        self.model = served_model(job.supernet, self.cfg)
        self.setup = Setup.build(self.model.space, self.cfg)
        self.server = Server(self.backend, self.model)
        self.t = _Tally()
        self.quiet = False  #: a fault happened: no new one until a query has been served
        self.last = ""  #: the last fault and its recovery, for the report
        self._bag: list[str] = []  #: the kinds of the next faults

    # ---- faults ------------------------------------------------------------------------
    def _draw(self, target: str, est_cycles: int) -> Fault | None:
        job = self.job
        if self.quiet or self.rng.random() >= job.fault_rate:
            return None
        if not self._bag:  # every kind once per len(kinds) faults, in a random order
            self._bag = [str(k) for k in self.rng.permutation(list(job.kinds))]
        f = Fault(self._bag.pop(), target)
        self.backend.arm(f, est_cycles)
        self.t.faults.setdefault(f.kind, Counter())[target] += 1
        self.quiet = True
        return f

    def _check(self, f: Fault | None, outcome: str, res: RunResult | None, where: str) -> None:
        """List a fault (or a clean run) whose run did not end as it must."""
        if res is not None:
            self.t.dropped += res.counters.get("doorbells_dropped", 0)
        if f is None:
            ok = outcome == "ok" and (res is None or not res.counters.get("doorbells_dropped"))
            if not ok:
                self._unexpected(where, f"no fault, yet {outcome} ({_said(res)})")
            return
        if not f.landed:
            self.t.missed[f.kind] += 1
            if outcome != "ok":
                self._unexpected(where, f"{f.kind} after DONE ({f.detail}): {outcome}")
            return
        must = MUST[f.kind]
        problems = []
        if outcome != must:
            problems.append(f"ended {outcome}, must be {must}")
        elif res is not None and must == "reported" and f.error is not None:
            if res.error_code != f.error:
                problems.append(f"reported {res.error_name}, must be {E(f.error).name}")
            got = res.counters.get("commands")
            if f.commands is not None and got != f.commands:
                problems.append(f"COMMANDS {got}, must be {f.commands}")
        if f.dropped is not None and res is not None:
            got = res.counters.get("doorbells_dropped")
            if got != f.dropped:
                problems.append(f"DOORBELLS_DROPPED {got}, must be {f.dropped}")
        if problems:
            self._unexpected(where, f"{f.kind} ({f.detail}): {'; '.join(problems)}")

    def _unexpected(self, where: str, what: str) -> None:
        if len(self.t.unexpected) < 50:
            self.t.unexpected.append(f"{where}: {what}")
        else:
            self.t.unexpected.append("...")

    def _recover(self, res: RunResult | None, layout=None) -> None:  # noqa: ANN001
        """:meth:`Server.recover`; without the reset (half the time) where docs/isa.md says
        none is needed: after a check's error, or MEM_TIMEOUT with only reads outstanding."""
        f = self.backend.fault
        skip = (
            res is not None
            and res.status != INTERRUPTED
            and (
                res.error_code in CHECK_ERRORS
                or (res.error_code == E.MEM_TIMEOUT and f is not None and f.reads_only)
            )
        )
        reset = not skip or self.rng.random() < 0.5
        self.t.resets += reset
        self.last = f"{f.kind if f else 'no fault'} ({f.detail if f else _said(res)}), " + (
            "recovered with a reset" if reset else "recovered without a reset"
        )
        c = self.server.recover(layout, reset=reset)
        self.t.recoveries += 1
        if c is not None and c.problems:
            raise RuntimeError(f"recovery: PB refill: {'; '.join(c.problems)}")

    # ---- the PB ------------------------------------------------------------------------
    def _fill(self, layout, old, i: int) -> bool:  # noqa: ANN001
        """Fill the PB with ``layout`` (``old`` in it now), maybe with a fault; recover
        (refilling all of ``layout``) if the CACHE program did not finish."""
        todo = type(layout)({t: b for t, b in layout.blocks.items() if old.blocks.get(t) != b})
        n_cmds = len(self.server.cache_program(todo)) // isa.CMD_BYTES
        est = self.setup.cost.load_cost(todo.tiles * self.cfg.tile_bytes, n_cmds - 1)[0]
        f = self._draw("cache", est)
        res, outcome = None, "ok"
        try:
            c = self.server.fill_pb(layout, old)
            res = c.run
            outcome = "wrong" if c.problems else "ok"
        except RunError as e:
            res, outcome = e.result, "reported"
            self.t.errors[_said(res)] += 1
        except ServeError:
            outcome = "reported"
        self.t.cache[outcome] += 1
        self._check(f, outcome, res, f"query {i}, CACHE")
        if outcome != "ok":
            self._recover(res, layout)
        return outcome == "ok"

    # ---- the stream ----------------------------------------------------------------------
    def run(self) -> dict:
        job, server, setup, t = self.job, self.server, self.setup, self.t
        cfg = self.cfg
        trace = generate(job.trace, job.queries, job.seed, setup.scale())
        images = query_images(job.queries, job.seed, len(server.y_test))
        ctx = Context(
            setup.cost,
            setup.candidates,
            "latency",
            setup.selector,
            trace,
            job.update_every,
            2 * job.update_every,
            max(2, job.update_every // 2),
        )
        policy = make_policies(["sushi"], ctx)[0]
        table = list(self.model.space.accuracy_table())
        t0 = time.perf_counter()
        self.backend.reset()
        server.load_weights()
        layout = server.empty_layout()
        first = policy.start()
        if first != EMPTY:
            policy.cache = first
            new = server.layout(first)
            self._fill(new, layout, -1)
            layout = new
        outcomes: list[str | None] = [None] * job.queries
        stopped = None
        for i, q in enumerate(trace):
            try:
                s = policy.choose(q, 0.0).subnet
                if self.rng.random() < job.named_share:
                    s = table[int(self.rng.integers(len(table)))]
                probe = self.quiet  # the first query after a fault: it carries none
                why = self.last if self.last else "a fault that needed no recovery"
                self.last = ""
                outcomes[i] = self._query(i, s, int(images[i]), layout, policy.cache)
                if probe:
                    self.quiet = False
                    t.post_fault += 1
                    t.post_fault_ok += outcomes[i] == "ok"
                    if outcomes[i] != "ok":
                        self._unexpected(f"query {i}", f"first query after {why}: {outcomes[i]}")
                new = policy.after(i, q, s)
                if new is None and job.repin_every and (i + 1) % job.repin_every == 0:
                    window = [table[j] for j in self.rng.integers(len(table), size=3)]
                    new = setup.selector.select(window)
                if new is not None and new != policy.cache:
                    new_layout = server.layout(new)
                    if any(layout.blocks.get(k) != b for k, b in new_layout.blocks.items()):
                        self._fill(new_layout, layout, i)
                    policy.cache, layout = new, new_layout
            except Exception as e:  # noqa: BLE001 - the stack could not recover: the rest is lost
                stopped = f"query {i}: {type(e).__name__}: {e}"
                break
            finally:
                if self.progress is not None:
                    self.progress.update(1)
        wall = time.perf_counter() - t0
        for o in outcomes:
            t.outcomes[o or "lost"] += 1
        if stopped:
            t.lost_why.append(f"stopped at {stopped}")
        intact = self._weights_intact() if stopped is None else None
        return self._report(cfg, wall, intact, stopped)

    def _query(self, i: int, s, image: int, layout, cache: SubGraph) -> str:  # noqa: ANN001
        est = self.setup.cost.query(s, cache).cycles
        f = self._draw("query", est)
        res, outcome = None, "ok"
        try:
            r = self.server.query(s.key, image=image, layout=layout)
            res = r.run
            outcome = "ok" if r.ok else "wrong"
        except RunError as e:
            res, outcome = e.result, "reported"
            self.t.errors[_said(res)] += 1
        except ServeError as e:
            outcome = "reported"
            self.t.errors[f"ServeError: {e}"[:80]] += 1
        except Exception as e:  # noqa: BLE001 - no answer from the backend: the query is lost
            outcome = "lost"
            self.t.lost_why.append(f"query {i}: {type(e).__name__}: {str(e)[:200]}")
        kind = f.kind if f is not None else "none"
        self.t.by_fault.setdefault(kind, Counter())[outcome] += 1
        if f is None and outcome != "ok":
            self._unexpected(f"query {i}", self._diagnose(s.key, image, layout))
        self._check(f, outcome, res, f"query {i} (SubNet {s.key})")
        if outcome in ("reported", "lost"):
            self._recover(res)  # a query program only reads the PB: it is intact
        return outcome if outcome != "lost" else None  # type: ignore[return-value]

    def _diagnose(self, key: str, image: int, layout) -> str:  # noqa: ANN001
        """What memory holds that the host did not write there: the program and the input
        of a query that failed without a fault."""
        server, model = self.server, self.model
        sid = model.subnet_id(key)
        out = []
        prog = server.query_program(sid, layout)
        slot = server._slot_of.get((sid, layout.key()))
        if slot is not None:
            held = self.backend.read(server.mem.slot(slot), len(prog))
            bad = [
                j
                for j in range(0, len(prog), isa.CMD_BYTES)
                if held[j : j + isa.CMD_BYTES] != prog[j : j + isa.CMD_BYTES]
            ]
            out.append(
                f"program commands {[j // isa.CMD_BYTES for j in bad]} differ"
                if bad
                else "program as written"
            )
        data = model.input_bytes(model.check_input(server.x_test[image]))
        held = self.backend.read(server.mem.input, len(data))
        out.append("input as written" if held == data else "input differs")
        return "diagnosis: " + ", ".join(out)

    def _weights_intact(self) -> bool:
        return all(self.backend.read(a, len(b)) == bytes(b) for a, b in self.server.image.writes())

    def _report(self, cfg, wall: float, intact: bool | None, stopped: str | None) -> dict:  # noqa: ANN001
        t, job = self.t, self.job
        out = dict(t.outcomes)
        clocked = self.backend.faults.clocked
        faults = sum(sum(v.values()) for v in t.faults.values())
        runs = job.queries + sum(t.cache.values())
        notes = []
        if not self.backend.faults.clocked:
            notes.append(
                "golden model: no clock and no doorbell, so 'stall' and 'doorbell' faults "
                "change nothing there; 'reset' lands after a random number of commands"
            )
        rep = {
            "backend": self.backend.name,
            "supernet": self.model.name,
            "preset": cfg.name,
            "queries": job.queries,
            "seed": job.seed,
            "fault_rate": job.fault_rate,
            "fault_kinds": list(job.kinds),
            "mem_timeout_cycles": BuildOptions().mem_timeout if clocked else None,
            "wall_seconds": wall,
            "queries_per_second": job.queries / wall if wall else None,
            "outcomes": {k: out.get(k, 0) for k in OUTCOMES},
            "outcomes_by_fault": {
                k: {o: v.get(o, 0) for o in OUTCOMES if v.get(o, 0)}
                for k, v in sorted(t.by_fault.items())
            },
            "faults": {k: dict(sorted(v.items())) for k, v in sorted(t.faults.items())},
            "faults_total": faults,
            "program_runs": runs,  #: queries and CACHE programs the stream ran
            "faults_per_run": faults / runs if runs else None,
            "faults_missed": dict(t.missed),
            "errors_reported": dict(t.errors.most_common()),
            "cache_runs": dict(t.cache),
            "doorbells_dropped": t.dropped,
            "recoveries": t.recoveries,
            "recoveries_with_reset": t.resets,
            "post_fault_queries": t.post_fault,
            "post_fault_ok": t.post_fault_ok,
            "unexpected": t.unexpected,
            "lost_why": t.lost_why[:50],
            "weights_intact": intact,
            "stopped": stopped,
            "notes": notes,
        }
        rep["passed"] = not problems(rep)
        return rep


def problems(rep: dict, *, kinds: tuple[str, ...] | None = None, cache: bool = False) -> list[str]:
    """What is wrong with a soak's report, one line each (none: it passed): a wrong or lost
    query, a fault that did not end as it must, a first query after a fault that was not ok,
    a weight image that changed, a run that stopped. With ``kinds``, also a kind of fault
    never injected; with ``cache``, no fault on a CACHE program."""
    o, out = rep["outcomes"], []
    if o["wrong"] or o["lost"]:
        out.append(f"{o['wrong']} wrong and {o['lost']} lost queries {rep['lost_why'][:3]}")
    if sum(o.values()) != rep["queries"]:
        out.append(f"outcomes {o} do not add up to {rep['queries']} queries")
    out += rep["unexpected"]
    if rep["post_fault_ok"] != rep["post_fault_queries"]:
        bad = rep["post_fault_queries"] - rep["post_fault_ok"]
        out.append(f"{bad} first queries after a fault were not ok")
    if rep["weights_intact"] is not True:
        out.append(f"weight image intact: {rep['weights_intact']}")
    if rep["stopped"]:
        out.append(f"stopped: {rep['stopped']}")
    missing = [k for k in kinds or () if k not in rep["faults"]]
    if missing:
        out.append(f"never injected: {', '.join(missing)}")
    if cache and not any("cache" in v for v in rep["faults"].values()):
        out.append("no fault on a CACHE program")
    return out


def _said(res: RunResult | None) -> str:
    if res is None:
        return "no run"
    if res.status == INTERRUPTED:
        return "interrupted by a reset"
    return res.error_name if res.error_code else f"done={res.done}"
