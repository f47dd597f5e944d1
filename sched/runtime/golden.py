"""The golden-model backend: :class:`sushi_sched.isa_sim.IsaSim` behind the :class:`Backend`
interface. Bit-exact results and exact byte counters; no clock (the ``cycles`` counter stays 0,
so callers that need time take it from the cost model and say so)."""

from __future__ import annotations

from sushi_hw.config import AccelConfig

from ..isa_sim import IsaSim
from .backend import COUNTER_NAMES, RunResult, pad_to


class GoldenBackend:
    name = "golden"
    cycle_accurate = False

    def __init__(self, cfg: AccelConfig, sim: IsaSim | None = None):
        self.cfg = cfg
        self.sim = sim or IsaSim(cfg)
        self._last = dict.fromkeys(COUNTER_NAMES, 0)

    def _aligned(self, addr: int) -> None:
        if addr % self.cfg.mem_width:
            raise ValueError(f"address {addr:#x} is not aligned to {self.cfg.mem_width} bytes")

    def write(self, addr: int, data: bytes) -> None:
        self._aligned(addr)
        self.sim.write(addr, pad_to(data, self.cfg.mem_width))

    def read(self, addr: int, n: int) -> bytes:
        self._aligned(addr)
        return self.sim.read(addr, n)

    def run(self, prog_addr: int, what: str = "") -> RunResult:
        r = self.sim.run(prog_addr)
        r.what = what
        self._last = dict(r.counters)
        return r

    def counters(self) -> dict[str, int]:
        return dict(self._last)

    def reset(self) -> None:
        """Like the RTL's reset: control state only (memory, buffers, PB keep their data)."""
        self.sim.reset()
