"""The accelerator's control port: one signature for SushiAccel, the host link and the tops."""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from . import isa


class ControlSignature(wiring.Signature):
    """The host's side: ring ``doorbell`` (one cycle) with the program's address in
    ``prog_addr``; ``busy`` until the program halts with ``done`` or ``error`` (code
    ``error_code``, :class:`~.isa.ErrorCode`). ``ctr_value`` is counter ``ctr_sel``
    (:class:`~.isa.Counter`) two cycles after the select. The accelerator takes ``In(...)``."""

    def __init__(self):
        super().__init__(
            {
                "doorbell": Out(1),
                "prog_addr": Out(32),
                "busy": In(1),
                "done": In(1),
                "error": In(1),
                "error_code": In(8),
                "ctr_sel": Out(range(isa.NUM_COUNTERS)),
                "ctr_value": In(64),
            }
        )
