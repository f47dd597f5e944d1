"""Host driver of ``sushi_axi`` through its AXI4-Lite registers (:mod:`sushi_hw.axi.regs`).

:class:`AxiDriver` is a :class:`sushi_sched.runtime.backend.Backend` (the serving runtime's one
host interface), so the server runs unchanged on an AXI-attached accelerator. It needs two
synchronous accessors, which is what a PYNQ-style host has:

* ``regs`` with ``read32(offset)`` and ``write32(offset, value)``: the register window
  (``pynq.MMIO(base, 0x1000)`` has exactly these as ``read``/``write``: wrap them);
* ``mem`` with ``write(addr, data)`` and ``read(addr, n)``: the memory the accelerator's AXI
  master sees, addressed as the accelerator addresses it (accelerator address 0 is AXI address
  ``mem_base``, which the driver writes to ``MEM_BASE``; on PYNQ: a contiguous buffer and its
  ``physical_address``).

A run writes ``PROG_ADDR`` and the doorbell, then waits: with ``wait_irq`` (a callable that
returns once the ``irq`` line is high, e.g. a UIO interrupt wait) the host wakes once per
program; without it, it polls ``STATUS``. The cocotb testbench (``tb/axi_tb.py``) runs this
class on the simulated top, with its accessors bridged into the simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sushi_hw import isa
from sushi_hw.axi import regs
from sushi_hw.config import AccelConfig

from .backend import COUNTER_NAMES, RunResult, pad_to, saturate_counters


class RegisterIO(Protocol):
    def read32(self, offset: int) -> int: ...

    def write32(self, offset: int, value: int) -> None: ...


class MemoryIO(Protocol):
    def write(self, addr: int, data: bytes) -> None: ...

    def read(self, addr: int, n: int) -> bytes: ...


class DesignMismatch(RuntimeError):
    """The registers describe another design than the configuration the host expects."""


class AxiTimeout(RuntimeError):
    """A program is still busy after the driver's timeout."""


@dataclass(frozen=True)
class AxiStatus:
    """``STATUS`` decoded (fields as in :data:`sushi_hw.axi.regs.STATUS_FIELDS`)."""

    busy: bool
    done: bool
    error: bool
    axi_error: bool
    code: int
    axi_resp: int
    axi_write: bool
    axi_err_addr: int = 0

    @classmethod
    def from_word(cls, word: int, err_addr: int = 0) -> AxiStatus:
        f = {fl.name: fl.get(word) for fl in regs.STATUS_FIELDS}
        return cls(
            busy=bool(f["busy"]),
            done=bool(f["done"]),
            error=bool(f["error"]),
            axi_error=bool(f["axi_error"]),
            code=f["code"],
            axi_resp=f["axi_resp"],
            axi_write=bool(f["axi_write"]),
            axi_err_addr=err_addr,
        )

    @property
    def bus_error(self) -> bool:
        """What :attr:`RunResult.ok` checks: an AXI error fails the run."""
        return self.axi_error

    def __str__(self) -> str:
        if not self.axi_error:
            return f"done={self.done} error={self.error} code={self.code}"
        kind = {2: "SLVERR", 3: "DECERR"}.get(self.axi_resp, str(self.axi_resp))
        way = "BRESP (write)" if self.axi_write else "RRESP (read)"
        return f"AXI {way} {kind} at accelerator address {self.axi_err_addr:#x}"


class AxiDriver:
    """The accelerator behind ``regs`` and ``mem`` (see the module docstring)."""

    cycle_accurate = True

    def __init__(
        self,
        cfg: AccelConfig,
        regs_io: RegisterIO,
        mem: MemoryIO,
        *,
        mem_base: int = 0,
        wait_irq: Callable[[], None] | None = None,
        timeout_s: float = 60.0,
        poll_s: float = 0.0,
        name: str = "axi",
        check: bool = True,
    ):
        self.cfg, self.regs, self.mem = cfg, regs_io, mem
        self.name = name
        self.wait_irq, self.timeout_s, self.poll_s = wait_irq, timeout_s, poll_s
        self._last: dict[str, int] = {}
        if check:
            self.check_design()
        self.write_reg("MEM_BASE", mem_base)
        self.write_reg("IRQ_ENABLE", 1 if wait_irq else 0)

    # ---- registers -----------------------------------------------------------------------
    def read_reg(self, name: str) -> int:
        return self.regs.read32(regs.offset(name))

    def write_reg(self, name: str, value: int) -> None:
        if regs.BY_NAME[name].access == "RO":
            raise ValueError(f"register {name} is read-only")
        self.regs.write32(regs.offset(name), value & 0xFFFFFFFF)

    @property
    def axi_bytes(self) -> int:
        return self.read_reg("AXI_DATA_BYTES")

    def check_design(self) -> None:
        """Raise :class:`DesignMismatch` naming every constant register that differs from
        what a build for ``cfg`` reads (ID, register map, ISA and configuration)."""
        ident = self.read_reg("ID")
        if ident != regs.MAGIC:
            raise DesignMismatch(f"ID reads {ident:#010x}, not {regs.MAGIC:#010x}: not sushi_axi")
        want = regs.config_values(self.cfg, self.axi_bytes)
        bad = []
        for name, value in want.items():
            got = self.read_reg(name)
            if got != value:
                bad.append(f"{name} = {got:#x} (expected {value:#x})")
        if bad:
            raise DesignMismatch(
                f"the accelerator is not a build of config {self.cfg.name!r}: " + ", ".join(bad)
            )

    def status(self) -> AxiStatus:
        word = self.read_reg("STATUS")
        err_addr = self.read_reg("AXI_ERR_ADDR") if regs.STATUS_FIELDS[3].get(word) else 0
        return AxiStatus.from_word(word, err_addr)

    # ---- Backend ---------------------------------------------------------------------------
    def write(self, addr: int, data: bytes) -> None:
        self.mem.write(addr, pad_to(data, self.cfg.mem_width))

    def read(self, addr: int, n: int) -> bytes:
        return self.mem.read(addr, n)

    def start(self, prog_addr: int) -> None:
        self.write_reg("PROG_ADDR", prog_addr)
        self.write_reg("CONTROL", 1)

    def wait(self) -> AxiStatus:
        """Until the program (and its AXI traffic) has finished."""
        deadline = time.monotonic() + self.timeout_s
        if self.wait_irq is not None:
            self.wait_irq()
        while True:
            st = self.status()
            if not st.busy:
                return st
            if time.monotonic() > deadline:
                raise AxiTimeout(f"still busy after {self.timeout_s} s ({st})")
            if self.poll_s:
                time.sleep(self.poll_s)

    def run(self, prog_addr: int, what: str = "") -> RunResult:
        self.start(prog_addr)
        st = self.wait()
        self._last, over = saturate_counters(self.cfg, self.counters())
        code = st.code if st.error else 0
        return RunResult(st.done, code, dict(self._last), what, status=st, overflowed=over)

    def counters(self) -> dict[str, int]:
        """Every counter, 64 bits each: ``_LO`` then ``_HI`` (latched by the ``_LO`` read)."""
        out = {}
        for c, name in zip(isa.Counter, COUNTER_NAMES, strict=True):
            lo = self.read_reg(f"CTR_{c.name}_LO")
            hi = self.read_reg(f"CTR_{c.name}_HI")
            out[name] = lo | hi << 32
        return out

    def reset(self) -> None:
        """The register map has no soft reset: wait until the accelerator is idle."""
        self.wait()
