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
