"""The board backend: a SUSHI board over its UART host link (docs/uart.md), through
:class:`sushi_hw.fpga.host.BoardClient` (a pyserial port, or the cocotb board test's simulated
UART). Also the board's weight image: the served SuperNet's tensors live in the SPI flash, which the
accelerator reads from ``flash_base(cfg)`` on; :func:`build_flash_image` makes it and
:func:`program_command` says how to program it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_hw.fpga.board import LinkParams
from sushi_hw.fpga.boards import BOARDS, Board
from sushi_hw.fpga.host import BoardClient, BoardInfo, flash_window
from sushi_hw.fpga.memsys import check_ram_bytes

from ..compiler import CompileError, WeightImage
from ..conv_image import ConvImage
from ..digits.supernet import DigitsSuperNet
from .backend import COUNTER_NAMES, RunResult, pad_to
from .models import MLPModel, ServedModel
from .server import ServeError, Server

#: flash byte at which the weight image starts (the board designs' ``LinkParams.flash_offset``:
#: 1 MiB, past the bitstream); the accelerator sees it at ``flash_base(cfg)``
FLASH_OFFSET: int = LinkParams.flash_offset

_log = logging.getLogger(__name__)


class BoardServeError(ServeError):
    """The request cannot be served as asked; the message says why and what to do."""


class BoardBackend:
    """:class:`sushi_sched.runtime.backend.Backend` on a board. ``cfg`` is the preset its
    bitstream was built with; the board's INFO (read if not given) must agree with it. Each run
    is waited for with ``max_polls`` STATUS polls and/or ``timeout_s`` seconds."""

    name = "board"
    cycle_accurate = True

    def __init__(
        self,
        client: BoardClient,
        cfg: AccelConfig,
        *,
        info: BoardInfo | None = None,
        max_polls: int | None = None,
        timeout_s: float | None = 10.0,
        log: logging.Logger | None = None,
    ):
        self.client, self.cfg = client, cfg
        self.info = info or client.info()
        have = (self.info.rows, self.info.cols, self.info.mem_width, self.info.pb_bytes)
        want = (cfg.rows, cfg.cols, cfg.mem_width, cfg.pb_bytes)
        if have != want:
            raise BoardServeError(
                f"the board is not a preset {cfg.name!r} design: it reports (rows, cols, "
                f"mem_width, pb_bytes) = {have}, the preset has {want}; pass --preset"
            )
        try:
            check_ram_bytes(cfg, self.info.ram_bytes)
        except ValueError as e:
            raise BoardServeError(str(e)) from None
        self.client.mem_width = self.info.mem_width
        self.max_polls, self.timeout_s = max_polls, timeout_s
        self.log = log or _log
        self._last = dict.fromkeys(COUNTER_NAMES, 0)

    @property
    def ram_bytes(self) -> int:
        return self.info.ram_bytes

    def write(self, addr: int, data: bytes) -> None:
        self.client.write(addr, pad_to(data, self.cfg.mem_width))

    def read(self, addr: int, n: int) -> bytes:
        mw = self.cfg.mem_width
        return self.client.read(addr, ceil_div(n, mw) * mw)[:n]

    def run(self, prog_addr: int, what: str = "") -> RunResult:
        """RUN, poll STATUS until the accelerator is idle, read the counters."""
        c = self.client
        c.run(prog_addr)
        st = c.wait(max_polls=self.max_polls, timeout_s=self.timeout_s)
        ctr = {k.name.lower(): c.counter(k) for k in isa.Counter}
        self._last = ctr
        self.log.info(
            "%s: done=%s error=%s code=%d, %d cycles, %d weight bytes from flash, %d from PB",
            what,
            st.done,
            st.error,
            st.error_code,
            ctr["cycles"],
            ctr["rd_weight_bytes"],
            ctr["pb_read_bytes"],
        )
        return RunResult(st.done and not st.error, st.error_code, ctr, what, status=st)

    def counters(self) -> dict[str, int]:
        return dict(self._last)

    def reset(self) -> None:
        """The UART link has no reset; the accelerator starts each program from idle."""


# ---- the flash weight image ----------------------------------------------------------------


@dataclass(frozen=True)
class FlashImage:
    """The weight image of one SuperNet (``model``) on one configuration: ``data`` goes to
    flash byte ``offset`` on, where the accelerator sees it at ``image.base``
    (= ``flash_base(cfg)``)."""

    cfg: AccelConfig
    image: WeightImage | ConvImage
    data: bytes
    model: str = "digits-mlp"
    offset: int = FLASH_OFFSET

    @property
    def base(self) -> int:
        return self.image.base

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def flash_byte(self, addr: int) -> int:
        """Flash byte that holds accelerator address ``addr`` of the image."""
        return self.offset + (addr - self.base)

    def tensors(self) -> list[tuple[str, int, bytes]]:
        """(name, accelerator address, bytes) of every tensor."""
        return [(n, a, b) for n, (a, b) in zip(self.image.blobs, self.image.writes(), strict=True)]

    def layout(self) -> list[dict]:
        """One row per tensor: accelerator address, flash byte, bytes, shape and tile grid
        (K x N tiles of a GEMM weight; N x C x taps of a convolution's)."""
        rows = []
        for name, addr, blob in self.tensors():
            shape, tiles = _shape_and_tiles(self.cfg, self.image, name)
            rows.append(
                {
                    "tensor": name,
                    "shape": shape,
                    "tiles": tiles,
                    "addr": addr,
                    "flash_offset": self.flash_byte(addr),
                    "bytes": len(blob),
                }
            )
        return rows


def _shape_and_tiles(cfg: AccelConfig, img, name: str) -> tuple[list[int], list[int]]:  # noqa: ANN001
    if isinstance(img, ConvImage):
        t = img.tensors[name]
        return list(t.shape), [t.nt, t.ct, t.taps]
    k, n = img.shape[name]
    return [k, n], [img.kt[name], ceil_div(n, cfg.cols)]


def build_flash_image(model: ServedModel) -> FlashImage:
    """The weight image of ``model`` (a served SuperNet on its configuration), to program at
    :data:`FLASH_OFFSET`."""
    cfg = model.cfg
    base, window = flash_window(cfg)
    try:
        img = model.weight_image(base)
    except CompileError as e:
        raise BoardServeError(f"preset {cfg.name!r}: {e}") from None
    if img.end - base > window:
        raise BoardServeError(
            f"the {model.name} weight image is {img.end - base} bytes; preset {cfg.name!r} "
            f"sees only {window} bytes of flash"
        )
    data = bytearray(img.end - base)
    for addr, blob in img.writes():
        data[addr - base : addr - base + len(blob)] = blob
    return FlashImage(cfg, img, bytes(data), model.name)


def verify_flash(backend: BoardBackend, flash: FlashImage, nbytes: int = 32) -> None:
    """Read the first ``nbytes`` of every tensor back through the flash window; a
    BoardServeError if the flash does not hold this image."""
    cfg = backend.cfg
    mw = cfg.mem_width
    for name, addr, blob in flash.tensors():
        n = max(mw, min(nbytes, len(blob)) // mw * mw)
        got = backend.read(addr, n)
        if got != blob[:n]:
            state = "erased (all 0xff)" if got == b"\xff" * n else f"{got[:8].hex()}..."
            raise BoardServeError(
                f"the board's flash does not hold the {flash.model} weight image of preset "
                f"{cfg.name!r}: tensor {name} at {addr:#x} (flash byte "
                f"{flash.flash_byte(addr):#x}) reads {state}, expected "
                f"{blob[:8].hex()}...; write it with 'sushi board image --preset "
                f"{cfg.name} --supernet {flash.model}' and the command it prints"
            )


def boards_for(cfg: AccelConfig) -> list[Board]:
    """The boards whose bitstream carries preset ``cfg.name``."""
    return [b for b in BOARDS.values() if b.preset == cfg.name]


def program_command(board: Board | str, path: str | Path, offset: int = FLASH_OFFSET) -> str:
    """The shell command that writes ``path`` into ``board``'s SPI flash at ``offset``."""
    b = BOARDS[board] if isinstance(board, str) else board
    if b.family == "ice40":  # iceprog: FTDI SPI straight to the flash; k/M suffixes
        off = f"{offset >> 20}M" if offset % (1 << 20) == 0 else f"{offset:#x}"
        return f"iceprog -o {off} {path}"
    # openFPGALoader: -f writes the flash (default: SRAM), -o the byte offset of the raw file
    return f"openFPGALoader -b {b.name} -f -o {offset:#x} {path}"


def connect(
    client: BoardClient,
    cfg: AccelConfig,
    model: ServedModel | DigitsSuperNet | None = None,
    *,
    info: BoardInfo | None = None,
    flash: FlashImage | None = None,
    max_polls: int | None = None,
    timeout_s: float | None = 10.0,
    log: logging.Logger | None = None,
) -> Server:
    """The one server (:class:`sushi_sched.runtime.server.Server`) of ``model`` (default the
    digits MLP) on a board: checks its INFO against ``cfg``, plans the memory map in its RAM
    (one program slot) with the weights in its flash (``flash``, default ``model``'s image).
    Call :func:`verify_flash` with ``server.backend`` and ``server.flash`` to check the flash
    holds the image."""
    if not isinstance(model, ServedModel):
        model = MLPModel(cfg, model)
    backend = BoardBackend(
        client, cfg, info=info, max_polls=max_polls, timeout_s=timeout_s, log=log
    )
    flash = flash or build_flash_image(model)
    server = Server(backend, model, weights=flash.image, ram_bytes=backend.ram_bytes, prog_slots=1)
    server.flash = flash
    return server
