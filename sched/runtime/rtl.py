"""The RTL backend: the ``sushi_sim`` top (SushiAccel + the HDL memory model) under cocotb, on
Verilator or Icarus, as a library API.

:func:`run_on_rtl` builds the simulator model (cached per configuration, through
:mod:`sushi_sched.runtime.simbuild`), starts the simulator with this package's cocotb entry
module (:mod:`sushi_sched.runtime.rtl_entry`) and runs ``job(backend, progress)`` inside it,
where ``backend`` is an :class:`RtlBackend`. The job is a picklable callable (a top-level
function or a dataclass with ``__call__``); it crosses into the simulator's Python as a pickle
file, and its return value (or its exception) comes back the same way. A ``progress`` bar given
to :func:`run_on_rtl` is driven from the parent process while the simulator runs, so the
simulator's own output can go to a log file.

:class:`AccelHost` is the only code that knows the ``sushi_sim`` port names. The host sleeps on
``busy`` falling while a program runs: it wakes once per program, never per cycle.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sushi_hw import isa
from sushi_hw.config import AccelConfig
from sushi_hw.sim_memory import STORE
from sushi_hw.sim_top import MEMORY

from . import simbuild
from .backend import RunResult, pad_to, saturate_counters

TOP = "sushi_sim"
CLOCK_NS = 10
ENTRY_MODULE = "sushi_sched.runtime.rtl_entry"
JOB_ENV = "SUSHI_RTL_JOB"  #: path of the pickled :class:`RtlJob` (the only thing in the env)


class RtlError(RuntimeError):
    """The job failed inside the simulator (its traceback is in the message) or the simulator
    stopped without a result."""


# ---- the DUT (cocotb side) ------------------------------------------------------------------


class AccelHost:
    """Async driver of the ``sushi_sim`` top: backdoor memory access, doorbell, status and
    counters."""

    def __init__(self, dut: Any, cfg: AccelConfig):
        self.dut, self.cfg = dut, cfg
        self.W = cfg.mem_width
        self._array = None
        #: wall seconds the host slept while programs ran: the simulator free-running
        self.asleep_s = 0.0
        # drive every input before the first reset: an X left on the memory model's settings
        # would poison its token bucket under Icarus
        for name, value in (
            ("ctrl__doorbell", 0),
            ("ctrl__prog_addr", 0),
            ("ctrl__ctr_sel", 0),
            ("mem_seed_load", 0),
            ("mem_latency", cfg.mem_latency),
            ("mem_bytes_per_cycle", cfg.mem_bytes_per_cycle),
            ("mem_stall_prob", 0),
            ("mem_seed", 1),
            ("mem_hang_en", 0),
            ("mem_hang_addr", 0),
        ):
            getattr(dut, name).value = value

    def start_clock(self) -> None:
        import cocotb
        from cocotb.clock import Clock

        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())

    async def reset(self, cycles: int = 3) -> None:
        from cocotb.triggers import ClockCycles, RisingEdge

        self.dut.ctrl__doorbell.value = 0
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def memory_model(
        self, latency: int, bytes_per_cycle: int, stall_prob: int = 0, seed: int = 1
    ) -> None:
        from cocotb.triggers import RisingEdge

        d = self.dut
        d.mem_latency.value = latency
        d.mem_bytes_per_cycle.value = bytes_per_cycle
        d.mem_stall_prob.value = stall_prob
        d.mem_seed.value = seed & 0xFFFF
        d.mem_seed_load.value = 1
        await RisingEdge(d.clk)
        d.mem_seed_load.value = 0

    def hang(self, addr: int | None) -> None:
        """Fault injection: the memory stops answering from the first request that covers
        byte ``addr`` on (:class:`sushi_hw.sim_memory.SimMemory`); ``None`` lifts it (the
        memory then serves what it holds)."""
        self.dut.mem_hang_en.value = int(addr is not None)
        self.dut.mem_hang_addr.value = addr or 0

    async def idle_memory(self, limit: int = 1_000_000) -> None:
        """Wait until the memory model serves no request (``mem_busy`` low): the backdoor
        works only then (:class:`sushi_hw.sim_memory.SimMemory`). After a memory timeout
        the memory may still be answering the abandoned command's requests; a backdoor
        access in that time would be dropped (a write) or read the wrong word."""
        from cocotb.triggers import ReadOnly, RisingEdge

        for _ in range(limit):
            await ReadOnly()
            if not int(self.dut.mem_busy.value):
                await RisingEdge(self.dut.clk)
                return
            await RisingEdge(self.dut.clk)
        raise RuntimeError(f"the memory model is still busy after {limit} cycles (hung?)")

    async def write(self, addr: int, data: bytes) -> None:
        """Backdoor write (no simulated time: into the memory array through the simulator);
        ``addr`` and the length are padded to memory words. Waits for the memory to be idle
        (:meth:`idle_memory`)."""
        from cocotb.triggers import RisingEdge

        if addr % self.W:
            raise ValueError(f"address {addr:#x} is not aligned to {self.W} bytes")
        data = pad_to(data, self.W)
        if addr + len(data) > self.cfg.mem_bytes:
            raise ValueError(f"{len(data)} bytes at {addr:#x} exceed memory ({self.cfg.mem_bytes})")
        await self.idle_memory()
        store, base = self._store(), addr // self.W
        for i in range(len(data) // self.W):
            store[base + i].value = int.from_bytes(data[i * self.W : (i + 1) * self.W], "little")
        await RisingEdge(self.dut.clk)  # the writes land in this time step's write phase

    async def read(self, addr: int, length: int) -> bytes:
        """Backdoor read (no simulated time), once the memory is idle."""
        await self.idle_memory()
        store, out = self._store(), bytearray()
        for i in range(-(-length // self.W)):
            value = store[addr // self.W + i].value
            if not value.is_resolvable:
                raise ValueError(f"memory word at {addr + i * self.W:#x} holds X/Z: {value}")
            out += int(value).to_bytes(self.W, "little")
        return bytes(out[:length])

    def _store(self):  # noqa: ANN202 - the memory model's array (cocotb ArrayObject)
        if self._array is None:
            self._array = getattr(getattr(self.dut, MEMORY), STORE)
        return self._array

    async def counters(self, raw: bool = False) -> dict[str, int]:
        """Every counter: ``ctr_value`` follows ``ctr_sel`` two cycles later (block RAM, then
        registers in front of the sum); saturated at ``2**counter_bits - 1`` unless ``raw``
        (then with the overflow flag in bit ``counter_bits``)."""
        from cocotb.triggers import ReadOnly, RisingEdge

        d = self.dut
        out = {}
        names = [c.name.lower() for c in isa.Counter]
        # pipelined: a new select every cycle; select k is read after the second edge past it
        d.ctrl__ctr_sel.value = 0
        for i in range(len(names) + 1):
            await RisingEdge(d.clk)
            if i + 1 < len(names):
                d.ctrl__ctr_sel.value = i + 1
            if i >= 1:
                await ReadOnly()
                out[names[i - 1]] = int(d.ctrl__ctr_value.value)
        await RisingEdge(d.clk)
        return out if raw else saturate_counters(self.cfg, out)[0]

    async def start(self, prog_addr: int) -> None:
        from cocotb.triggers import RisingEdge

        d = self.dut
        d.ctrl__prog_addr.value = prog_addr
        d.ctrl__doorbell.value = 1
        await RisingEdge(d.clk)
        d.ctrl__doorbell.value = 0
        await RisingEdge(d.clk)

    async def run(
        self, prog_addr: int, timeout_cycles: int = 2_000_000, what: str = ""
    ) -> RunResult:
        """Ring the doorbell and sleep until the program halts (done or error)."""
        await self.start(prog_addr)
        return await self.run_started(prog_addr, timeout_cycles, what)

    async def run_started(
        self, prog_addr: int = 0, timeout_cycles: int = 2_000_000, what: str = ""
    ) -> RunResult:
        """Sleep until the program already started (:meth:`start`) halts."""
        from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

        d = self.dut
        if int(d.ctrl__busy.value):
            t0 = time.perf_counter()
            try:
                await with_timeout(FallingEdge(d.ctrl__busy), timeout_cycles * CLOCK_NS, "ns")
                self.asleep_s += time.perf_counter() - t0
            except SimTimeoutError:
                raise AssertionError(
                    f"program at {prog_addr:#x} still busy after {timeout_cycles} cycles "
                    f"(counters {await self.counters()})"
                ) from None
        await RisingEdge(d.clk)
        await ReadOnly()
        done, code = bool(d.ctrl__done.value), int(d.ctrl__error_code.value)
        await RisingEdge(d.clk)
        ctrs, over = saturate_counters(self.cfg, await self.counters(raw=True))
        return RunResult(done, code, ctrs, what, overflowed=over)


# ---- the backend (a cocotb bridge thread) ----------------------------------------------------


class RtlBackend:
    """:class:`sushi_sched.runtime.backend.Backend` on the RTL. Its methods block; call them
    from a cocotb bridge thread (what :func:`run_on_rtl` runs a job in)."""

    cycle_accurate = True

    def __init__(self, host: AccelHost, sim: str = "rtl", timeout_cycles: int = 50_000_000):
        from cocotb.task import resume

        self.host, self.cfg = host, host.cfg
        self.name = f"rtl/{sim}"
        self.timeout_cycles = timeout_cycles
        self._write, self._read = resume(host.write), resume(host.read)
        self._run, self._counters = resume(host.run), resume(host.counters)
        self._reset = resume(host.reset)
        self._last: dict[str, int] = {}

    @property
    def asleep_seconds(self) -> float:
        """Wall seconds so far in which programs ran with the host asleep (free-running)."""
        return self.host.asleep_s

    def write(self, addr: int, data: bytes) -> None:
        self._write(addr, bytes(data))

    def read(self, addr: int, n: int) -> bytes:
        return self._read(addr, n)

    def run(self, prog_addr: int, what: str = "") -> RunResult:
        res = self._run(prog_addr, self.timeout_cycles, what)
        self._last = dict(res.counters)
        return res

    def counters(self) -> dict[str, int]:
        return dict(self._last) if self._last else self._counters()

    def reset(self) -> None:
        self._reset()


# ---- the job (parent side) ---------------------------------------------------------------


class Progress:
    """What a job sees of the progress bar: ``update(n)``. In the simulator it appends to a
    file that :func:`run_on_rtl` watches; outside it drives a bar directly."""

    def __init__(self, path: str | None = None, bar: Any = None):
        self.path, self.bar = path, bar

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)
        if self.path is not None:
            with open(self.path, "ab") as f:
                f.write(b"." * n)


@dataclass
class RtlJob:
    """What crosses into the simulator: the job, the configuration, and where to answer."""

    fn: Callable[..., Any]
    cfg: AccelConfig
    sim: str
    result_path: str
    progress_path: str | None = None
    top: str = TOP


def build(cfg: AccelConfig, sim: str = "verilator", top: str = TOP) -> Path:
    """Build (or find cached) the simulator model of ``top`` for ``cfg``."""
    return simbuild.build(sim, top, cfg)


def run_on_rtl(
    cfg: AccelConfig,
    job: Callable[[RtlBackend, Progress], Any],
    *,
    sim: str = "verilator",
    workdir: Path,
    log_file: Path | None = None,
    progress: Any = None,
    top: str = TOP,
) -> Any:
    """Run ``job(backend, progress)`` on the ``sushi_sim`` RTL of ``cfg`` and return what it
    returns. The simulator's output (start-up lines, warnings) goes to ``log_file`` (default
    ``workdir/sim.log``); ``progress`` (e.g. a tqdm bar) advances as the job reports.

    With another ``top`` (``sushi_gemm``) the job is a coroutine function ``job(dut, cfg)``
    that drives that top itself (clock and reset included), e.g.
    :class:`sushi_sched.runtime.gemm_rtl.GemmJob`."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log_file = Path(log_file or workdir / "sim.log").resolve()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    job_path, result_path = workdir / "rtl_job.pkl", workdir / "rtl_result.pkl"
    progress_path = workdir / "rtl_progress" if progress is not None else None
    for p in (result_path, progress_path):
        if p is not None:
            p.unlink(missing_ok=True)
    progress_arg = str(progress_path) if progress_path else None
    spec = RtlJob(job, cfg, sim, str(result_path), progress_arg, top)
    job_path.write_bytes(pickle.dumps(spec))
    build(cfg, sim, top)  # cached; a first build takes minutes
    stop = threading.Event()
    watcher = None
    if progress_path is not None:
        watcher = threading.Thread(target=_watch, args=(progress_path, progress, stop), daemon=True)
        watcher.start()
    try:
        simbuild.run(
            sim,
            top,
            cfg,
            ENTRY_MODULE,
            env={JOB_ENV: str(job_path)},
            test_dir=workdir,
            log_file=log_file,
        )
    except SystemExit:
        pass  # the runner exits when the cocotb test failed: the result file says why
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
    if not result_path.exists():
        raise RtlError(f"the {sim} simulation stopped without a result; see {log_file}")
    ok, value = pickle.loads(result_path.read_bytes())
    if not ok:
        raise RtlError(f"the job failed in the {sim} simulation (log {log_file}):\n{value}")
    return value


def _watch(path: Path, bar: Any, stop: threading.Event) -> None:
    seen = 0
    while True:
        done = stop.is_set()
        try:
            n = os.path.getsize(path)
        except OSError:
            n = 0
        if n > seen:
            bar.update(n - seen)
            seen = n
        if done:
            return
        time.sleep(0.1)


def job_entry(spec: RtlJob, backend: RtlBackend) -> tuple[bool, Any]:
    """Run the job in the bridge thread: (True, result) or (False, traceback text)."""
    try:
        return True, spec.fn(backend, Progress(spec.progress_path))
    except Exception:  # noqa: BLE001 - handed back to the parent with its traceback
        return False, traceback.format_exc()
