"""The off-chip memory port: valid/ready request and data streams.

Seen from the accelerator (the master):

* ``req``: ``{addr, beats, write}``. ``addr`` is a byte address aligned to ``mem_width``;
  ``beats`` is the burst length in ``mem_width``-byte beats (1..65535).
* ``wdata``: for a write request, exactly ``beats`` beats follow on this stream, in order.
* ``rdata``: for a read request, exactly ``beats`` beats come back, in request order.

A memory with any latency and any backpressure can sit behind it: the simulation model
(:mod:`sushi_hw.sim_memory`), a board's SPI flash, or on-chip RAM.
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import AccelConfig

MEM_ADDR_BITS = 32
MEM_BEATS_BITS = 16

MemReq = data.StructLayout(
    {"addr": unsigned(MEM_ADDR_BITS), "beats": unsigned(MEM_BEATS_BITS), "write": 1}
)


def mem_port_signature(cfg: AccelConfig) -> wiring.Signature:
    """The master side; ``wiring.flipped``/``.flip()`` gives the memory's side."""
    beat = unsigned(8 * cfg.mem_width)
    return wiring.Signature(
        {
            "req": Out(stream.Signature(MemReq)),
            "wdata": Out(stream.Signature(beat)),
            "rdata": In(stream.Signature(beat)),
        }
    )
