"""Host side of the UART link (docs/uart.md): frame codec and a client over any byte pipe.

:class:`BoardClient` needs an object with ``write(bytes)`` and ``read(n) -> bytes`` (a
``serial.Serial``, or a simulation's UART model). It raises :class:`LinkError` on a bad or
missing response and :class:`RemoteError` when the board answers with an error status.

Addresses are those of the board's memory map (:mod:`sushi_hw.fpga.memsys`): on-chip RAM from 0,
the SPI flash (weights) from :func:`flash_base` of the accelerator configuration.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from .host_link import (
    INFO_MAGIC,
    MAX_READ,
    MAX_WRITE,
    SYNC_REQ,
    SYNC_RSP,
    Cmd,
    Status,
    crc8,
)
from .memsys import flash_base, flash_window

__all__ = [
    "BoardClient",
    "BoardInfo",
    "BoardStatus",
    "LinkError",
    "RemoteError",
    "encode_request",
    "flash_base",
    "flash_window",
    "parse_response",
]


class LinkError(RuntimeError):
    """No response, or a response that is not a valid frame."""


class RemoteError(RuntimeError):
    """The board rejected the request; ``status`` is a :class:`Status`."""

    def __init__(self, status: int, what: str):
        self.status = status
        try:
            name = Status(status).name
        except ValueError:
            name = f"0x{status:02x}"
        super().__init__(f"{what}: board answered {name}")


def encode_request(cmd: int, addr: int = 0, payload: bytes = b"", length: int | None = None):
    """One request frame. ``length`` defaults to ``len(payload)`` (give it for READ)."""
    n = len(payload) if length is None else length
    body = struct.pack("<BIH", cmd, addr & 0xFFFFFFFF, n & 0xFFFF) + payload
    return bytes([SYNC_REQ]) + body + bytes([crc8(body)])


def parse_response(frame: bytes) -> tuple[int, bytes]:
    """(status, payload) of one complete response frame; LinkError if it is malformed."""
    if len(frame) < 5 or frame[0] != SYNC_RSP:
        raise LinkError(f"bad response frame {frame[:8].hex()}")
    status, n = frame[1], int.from_bytes(frame[2:4], "little")
    if len(frame) != 5 + n:
        raise LinkError(f"response length {len(frame)} != {5 + n}")
    if crc8(frame[1:-1]) != frame[-1]:
        raise LinkError("response CRC mismatch")
    return status, frame[4:-1]


@dataclass(frozen=True)
class BoardInfo:
    version: int
    rows: int
    cols: int
    mem_width: int
    pb_bytes: int
    ram_bytes: int


@dataclass(frozen=True)
class BoardStatus:
    busy: bool
    done: bool
    error: bool
    bus_error: bool
    error_code: int
    bad_frames: int


class BoardClient:
    def __init__(self, port):
        self.port = port
        self.mem_width = 1

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.port.read(n - len(data))
            if not chunk:
                raise LinkError(f"timeout: got {len(data)} of {n} response bytes")
            data += chunk
        return data

    def transact(self, cmd: int, addr: int = 0, payload: bytes = b"", length=None) -> bytes:
        self.port.write(encode_request(cmd, addr, payload, length))
        head = self._read_exact(4)
        if head[0] != SYNC_RSP:
            raise LinkError(f"response starts with 0x{head[0]:02x}, not 0x{SYNC_RSP:02x}")
        n = int.from_bytes(head[2:4], "little")
        status, data = parse_response(head + self._read_exact(n + 1))
        if status != Status.OK:
            raise RemoteError(status, Cmd(cmd).name if cmd in Cmd._value2member_map_ else "?")
        return data

    def info(self) -> BoardInfo:
        d = self.transact(Cmd.INFO)
        if d[:4] != INFO_MAGIC:
            raise LinkError(f"not a SUSHI board (magic {d[:4]!r})")
        ver, rows, cols, mw = d[4:8]
        pb, ram = struct.unpack("<II", d[8:16])
        self.mem_width = mw
        return BoardInfo(ver, rows, cols, mw, pb, ram)

    def status(self) -> BoardStatus:
        d = self.transact(Cmd.STATUS)
        f = d[0]
        return BoardStatus(
            bool(f & 1),
            bool(f & 2),
            bool(f & 4),
            bool(f & 8),
            d[1],
            int.from_bytes(d[4:6], "little"),
        )

    def write(self, addr: int, data: bytes) -> None:
        """Write ``data`` at ``addr`` (both multiples of mem_width), in frames of MAX_WRITE."""
        mw = self.mem_width
        if addr % mw or len(data) % mw:
            raise ValueError(f"address and length must be multiples of {mw} bytes")
        for off in range(0, len(data), MAX_WRITE):
            self.transact(Cmd.WRITE, addr + off, data[off : off + MAX_WRITE])

    def read(self, addr: int, n: int) -> bytes:
        mw = self.mem_width
        if addr % mw or n % mw:
            raise ValueError(f"address and length must be multiples of {mw} bytes")
        out = b""
        step = MAX_READ - MAX_READ % mw
        for off in range(0, n, step):
            out += self.transact(Cmd.READ, addr + off, length=min(step, n - off))
        return out

    def run(self, prog_addr: int) -> None:
        self.transact(Cmd.RUN, prog_addr)

    def wait(self, max_polls: int | None = None, timeout_s: float | None = None) -> BoardStatus:
        """Poll STATUS until the accelerator is not busy; LinkError after ``max_polls`` polls
        or ``timeout_s`` seconds (wall clock), whichever comes first."""
        t0, polls = time.monotonic(), 0
        while True:
            st = self.status()
            polls += 1
            if not st.busy:
                return st
            if max_polls is not None and polls >= max_polls:
                raise LinkError(f"accelerator still busy after {polls} STATUS polls")
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise LinkError(f"accelerator still busy after {timeout_s} s")

    def counter(self, index: int) -> int:
        return int.from_bytes(self.transact(Cmd.COUNTER, index), "little")
