"""cocotb drivers for ``amaranth.lib.stream`` ports (``<name>__valid/__ready/__payload``).

Handshakes are sampled in the ReadOnly phase of each cycle and take effect at the next rising
edge, so random stalls never lose or duplicate a beat.
"""

from __future__ import annotations

import random

from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time


class StreamSource:
    def __init__(self, dut, name: str, clk, rng: random.Random | None = None, stall: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk, self.rng, self.stall = clk, rng or random.Random(0), stall
        self.first_time: int | None = None  # sim time (ps) of the first accepted beat
        self.valid.value = 0

    async def send(self, words: list[int]) -> None:
        for w in words:
            while self.stall and self.rng.random() < self.stall:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = w
            while True:
                await ReadOnly()
                fired = bool(self.ready.value)
                await RisingEdge(self.clk)
                if fired:
                    break
            if self.first_time is None:
                self.first_time = get_sim_time("ps")  # the edge that accepted it
        self.valid.value = 0


class StreamSink:
    def __init__(self, dut, name: str, clk, rng: random.Random | None = None, stall: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk, self.rng, self.stall = clk, rng or random.Random(0), stall
        self.last_time: int | None = None
        self.ready.value = 0

    async def recv(self, count: int) -> list[int]:
        out: list[int] = []
        while len(out) < count:
            rdy = not (self.stall and self.rng.random() < self.stall)
            self.ready.value = int(rdy)
            await ReadOnly()
            if rdy and self.valid.value:
                out.append(int(self.payload.value))
                self.last_time = get_sim_time("ps")
            await RisingEdge(self.clk)
        self.ready.value = 0
        return out
