"""Signatures shared by SushiAccel's components, and the mux that shares one resource.

Several resources have more than one user, one at a time (the sequencer's state says which):
the memory request port, the read data, the width converter into the buffers, the read queue
and the activation RAMs. Each is instantiated once (the iCE40UP5K is 99.6% full) and
:func:`share` connects the current user, as the one FSM did before the split.
"""

from __future__ import annotations

from amaranth.hdl import Module, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from . import isa
from .mem_port import MemReq


def buffer_write(depth: int, width: int, *, banks: int = 1) -> wiring.Signature:
    """Write a word into a buffer (the writer's side): ``data`` at ``addr`` while ``en``;
    ``buf`` picks one of ``banks`` buffers."""
    members = {"en": Out(1), "addr": Out(range(depth)), "data": Out(width)}
    if banks > 1:
        members["buf"] = Out(range(banks))
    return wiring.Signature(members)


def buffer_read(depth: int, width: int, *, banks: int = 1) -> wiring.Signature:
    """Read a buffer word (the reader's side): ``addr`` while ``en``, its word on ``data`` the
    buffer's read latency later; ``buf`` picks one of ``banks`` buffers (hold it until then)."""
    members = {"en": Out(1), "addr": Out(range(depth)), "data": In(width)}
    if banks > 1:
        members["buf"] = Out(range(banks))
    return wiring.Signature(members)


def issue_signature(addr_bits: int, beat_bits: int) -> wiring.Signature:
    """Start a transfer of ``beats`` memory beats at ``addr`` (:class:`~.dma.RequestIssuer`)."""
    return wiring.Signature(
        {"start": Out(1), "addr": Out(addr_bits), "beats": Out(beat_bits), "write": Out(1)}
    )


def read_issue_signature(width: int) -> wiring.Signature:
    """Reads into a :class:`~.pipeline.CreditedReadQueue` (the reader's side): ``issue`` a
    read while ``room``, and present its word on ``data`` the RAM's read latency later. The
    words leave the queue on its ``o`` stream."""
    return wiring.Signature({"issue": Out(1), "data": Out(width), "room": In(1)})


def mem_req_signature() -> stream.Signature:
    return stream.Signature(MemReq)


def _at(obj, path: tuple) -> Value:
    for p in path:
        obj = obj[p] if isinstance(p, int) else getattr(obj, p)
    return obj


def share(m: Module, resource, users: list[tuple[Value, object]], *, gate: bool = True) -> None:
    """Connect ``resource`` to the first user whose select is high (at most one is).

    Members a user drives go to the resource through a priority mux (0 when nobody is
    selected); members it receives are broadcast, the handshake bits (``valid``, ``ready``)
    only to the selected user unless ``gate=False`` (users that key on their own select
    already; a state decode in front of a handshake can be a critical path). ``resource``
    needs only the users' member paths: a submodule's port or one of the accelerator's own."""
    for path, member, _ in users[0][1].signature.flatten(users[0][1]):
        res = _at(resource, path)
        if member.flow == Out:
            for i, (sel, user) in enumerate(users):
                with m.If(sel) if i == 0 else m.Elif(sel):
                    m.d.comb += res.eq(_at(user, path))
        else:
            handshake = gate and path[-1] in ("valid", "ready")
            for sel, user in users:
                m.d.comb += _at(user, path).eq(res & sel if handshake else res)


# ---- the sequencer's handshakes with the units (the sequencer's side) ----------------------
#: an error code register (:class:`~.isa.ErrorCode`)
ERR_SHAPE = range(max(isa.ErrorCode) + 1)


def fetch_control() -> wiring.Signature:
    """``load``: the doorbell rang (the program counter takes its address); ``start`` a fetch
    (when ``error`` is 0), ``done`` in the cycle its last beat arrives; ``advance`` to the next
    command."""
    return wiring.Signature(
        {
            "load": Out(1),
            "start": Out(1),
            "advance": Out(1),
            "error": In(ERR_SHAPE),
            "done": In(1),
        }
    )


def check_control() -> wiring.Signature:
    """``start`` (DECODE) the checks of the fetched command; ``ready`` when its products are
    in; ``error`` two cycles after the first ``ready`` cycle."""
    return wiring.Signature({"start": Out(1), "ready": In(1), "error": In(ERR_SHAPE)})


def dma_control() -> wiring.Signature:
    """``start`` a CACHE/LOAD_ACT/STORE_ACT, then the one of ``cache``/``load``/``store`` that
    runs, until ``done`` (its last cycle)."""
    return wiring.Signature(
        {"start": Out(1), "cache": Out(1), "load": Out(1), "store": Out(1), "done": In(1)}
    )


def run_control(*, done: bool = False) -> wiring.Signature:
    """``start`` (the cycle before) and ``run`` (while it runs) a GEMM; with ``done``: the
    unit's part of it is over."""
    members = {"start": Out(1), "run": Out(1)}
    if done:
        members["done"] = In(1)
    return wiring.Signature(members)
