"""Simulation top ``sushi_sim``: SushiAccel with the HDL memory model behind its memory port.

The control port's Verilog ports are ``ctrl__doorbell``, ``ctrl__busy``, ... The host loads and
reads memory through the simulator (``memory.store``, :data:`BACKDOOR`), in no simulated time.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .accel import SushiAccel
from .build_options import SIMULATION, BuildOptions
from .config import AccelConfig
from .control import ControlSignature
from .sim_memory import STORE, SimMemory

#: the memory model's instance: the host reads and writes ``<MEMORY>.<STORE>`` through VPI
MEMORY = "memory"
#: the Verilog module and array the simulator must make visible for that
BACKDOOR = (f"sushi_sim.{MEMORY}", STORE)


class SushiSim(wiring.Component):
    def __init__(self, cfg: AccelConfig, opts: BuildOptions = SIMULATION):
        self.cfg, self.opts = cfg, opts
        super().__init__(
            {
                "ctrl": In(ControlSignature()),
                "mem_latency": In(16),
                "mem_bytes_per_cycle": In(range(cfg.mem_width + 1)),
                "mem_stall_prob": In(8),
                "mem_seed": In(16),
                "mem_seed_load": In(1),
                "mem_busy": Out(1),
                "mem_hang_en": In(1),  # fault injection (SimMemory): stop answering from the
                "mem_hang_addr": In(32),  # first request that covers this address on
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accel = accel = SushiAccel(self.cfg, self.opts)
        m.submodules[MEMORY] = mem = SimMemory(self.cfg)
        wiring.connect(m, accel.mem, mem.port)
        wiring.connect(m, wiring.flipped(self.ctrl), accel.ctrl)
        m.d.comb += [
            mem.latency.eq(self.mem_latency),
            mem.bytes_per_cycle.eq(self.mem_bytes_per_cycle),
            mem.stall_prob.eq(self.mem_stall_prob),
            mem.seed.eq(self.mem_seed),
            mem.seed_load.eq(self.mem_seed_load),
            self.mem_busy.eq(mem.busy),
            mem.hang_en.eq(self.mem_hang_en),
            mem.hang_addr.eq(self.mem_hang_addr),
        ]
        return m
