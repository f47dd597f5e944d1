"""The one host interface of SushiAccel: write memory, read memory, run a program, read counters.

Every way to run a program implements :class:`Backend` and answers a run with the one
:class:`RunResult`:

* :class:`sushi_sched.runtime.golden.GoldenBackend`: the ISA golden model (``isa_sim``), no
  clock (``cycle_accurate`` is False: its ``cycles`` counter stays 0);
* :class:`sushi_sched.runtime.rtl.RtlBackend`: the ``sushi_sim`` RTL under cocotb (Verilator or
  Icarus), started by :func:`sushi_sched.runtime.rtl.run_on_rtl`;
* :class:`sushi_sched.runtime.board.BoardBackend`: a board over its UART host link.

The interface is synchronous: the RTL backend runs its caller in a cocotb bridge thread and
resumes the simulator for each call, so the host wakes once per call, never per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sushi_hw import isa
from sushi_hw.config import AccelConfig

#: counter names (``isa.Counter`` names in lower case), in counter order
COUNTER_NAMES: tuple[str, ...] = tuple(c.name.lower() for c in isa.Counter)


@dataclass
class RunResult:
    """One program run: how it stopped and the accelerator's counters after it.

    ``status`` is the backend's own status record when it has one (a board's
    :class:`sushi_hw.fpga.host.BoardStatus`), ``pc`` the address of the last command fetched
    when the backend knows it (the golden model). A counter that overflowed reads
    ``2**counter_bits - 1`` and is named in ``overflowed``."""

    done: bool
    error_code: int
    counters: dict[str, int] = field(default_factory=dict)
    what: str = ""
    pc: int | None = None
    status: Any = None
    #: counters that overflowed ``counter_bits`` (their values are saturated)
    overflowed: tuple[str, ...] = ()

    @property
    def error(self) -> isa.ErrorCode:
        return isa.ErrorCode(self.error_code)

    @property
    def error_name(self) -> str:
        try:
            return isa.ErrorCode(self.error_code).name
        except ValueError:
            return str(self.error_code)

    @property
    def cycles(self) -> int:
        return self.counters.get("cycles", 0)

    @property
    def ok(self) -> bool:
        """Finished with DONE and no error (and, on a board, no bus error)."""
        bus_error = bool(getattr(self.status, "bus_error", False))
        return self.done and self.error_code == 0 and not bus_error


class RunError(RuntimeError):
    """A program stopped with an error (or did not finish cleanly); ``result`` says how."""

    def __init__(self, msg: str, result: RunResult):
        super().__init__(msg)
        self.result = result

    @property
    def status(self) -> Any:
        return self.result.status

    @property
    def counters(self) -> dict[str, int]:
        return self.result.counters


@runtime_checkable
class Backend(Protocol):
    """What the host needs of an accelerator."""

    cfg: AccelConfig
    name: str  #: "golden", "rtl/verilator", "board", ...
    cycle_accurate: bool  #: False: the ``cycles`` counter is not a clock count

    def write(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr`` (aligned to ``cfg.mem_width``; padded with zeros to it)."""

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` (aligned to ``cfg.mem_width``)."""

    def run(self, prog_addr: int, what: str = "") -> RunResult:
        """Ring the doorbell for the program at ``prog_addr``; return when it has halted."""

    def counters(self) -> dict[str, int]:
        """The counters of the last program (:data:`COUNTER_NAMES`)."""

    def reset(self) -> None:
        """Return the accelerator's control state to power-on (memory and PB keep their
        contents); a no-op where the host cannot reset it (a board over UART)."""


def saturate_counters(cfg: AccelConfig, raw: dict[str, int]) -> tuple[dict, tuple[str, ...]]:
    """Counter reads (each with its overflow flag in bit ``counter_bits``, or unbounded
    counts) as the host reports them: saturated at ``2**counter_bits - 1``, and the names of
    those that overflowed."""
    top = (1 << cfg.counter_bits) - 1
    over = tuple(k for k, v in raw.items() if v > top)
    return {k: min(v, top) for k, v in raw.items()}, over


def require_ok(res: RunResult) -> RunResult:
    """``res``, or a :class:`RunError` naming how the program stopped."""
    if not res.ok:
        extra = f" ({res.status})" if res.status is not None else ""
        raise RunError(
            f"{res.what or 'program'}: the accelerator stopped with done={res.done} "
            f"error={res.error_name}{extra}",
            res,
        )
    return res


def pad_to(data: bytes, width: int) -> bytes:
    """``data`` zero-padded to a multiple of ``width`` bytes."""
    extra = -len(data) % width
    return bytes(data) + bytes(extra) if extra else bytes(data)


@dataclass
class Script:
    """A picklable host program for any backend: ``steps`` of ``("write", addr, data)``,
    ``("run", addr)``, ``("read", addr, n)`` and ``("reset",)``. Calling it on a backend returns
    one entry per run (a :class:`RunResult`) and per read (``bytes``), in order: the same
    script on two backends must give the same answers (except the clock)."""

    steps: list[tuple]

    def __call__(self, backend: Backend, progress: Any = None) -> list:
        out: list = []
        for step in self.steps:
            op = step[0]
            if op == "write":
                backend.write(step[1], step[2])
            elif op == "run":
                out.append(backend.run(step[1], f"program at {step[1]:#x}"))
            elif op == "read":
                out.append(backend.read(step[1], step[2]))
            elif op == "reset":
                backend.reset()
            else:
                raise ValueError(f"unknown script step {op!r}")
            if progress is not None:
                progress.update(1)
        return out
