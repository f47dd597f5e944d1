"""Serve digits queries on a SUSHI board through its UART host link (docs/uart.md).

Simulator independent: everything goes through a :class:`sushi_hw.fpga.host.BoardClient`, so the
same code serves a query on a real board (``sushi board query``, a pyserial port) and in the
cocotb board test (``tb/board_tb.py``, a simulated UART).

* :func:`build_flash_image`: the digits SuperNet's weights as the accelerator reads them, one
  zero-padded tile grid per tensor (:class:`sushi_sched.compiler.WeightImage`) from the flash
  window's base on. Its :attr:`FlashImage.data` goes into the board's SPI flash at
  :data:`FLASH_OFFSET` (1 MiB, past the bitstream); :func:`program_command` says how.
* :class:`RamMap`: where the query program, the CACHE program, the input and the logits live in
  the board's on-chip RAM, derived from the RAM size (INFO) and the configuration.
* :class:`DigitsServer`: checks the board (INFO against the preset, the flash against the
  image), fills the Persistent Buffer with a CACHE program (:meth:`DigitsServer.fill_pb`) and
  serves one query (:meth:`DigitsServer.query`): write program and input, RUN, poll STATUS, read
  logits and counters, compare with the numpy int8 reference and the compiler's byte counts.

Problems with the request (unknown SubNet, a program or cache plan that does not fit, a board or
flash that does not match) raise :class:`BoardServeError` (a ``ValueError``); a program the
accelerator stops with an error raises :class:`BoardRunError`; link failures are
:class:`sushi_hw.fpga.host.LinkError` / ``RemoteError``.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig
from sushi_hw.fpga.board import LinkParams
from sushi_hw.fpga.boards import BOARDS, Board
from sushi_hw.fpga.host import BoardClient, BoardInfo, BoardStatus, flash_window
from sushi_hw.fpga.memsys import check_ram_bytes
from sushi_hw.program import act_bytes, in_words, int32_from_bytes, out_words

from .compiler import (
    CompileError,
    LayerCall,
    PBLayout,
    WeightImage,
    cache_program,
    layer_calls,
    network_program,
    offchip_weight_bytes,
)
from .digits.store import load_digits_supernet
from .digits.supernet import DigitsSuperNet, SubNetInfo
from .subgraph import SubGraph, intersect_all

__all__ = [
    "FLASH_OFFSET",
    "BoardRunError",
    "BoardServeError",
    "CacheResult",
    "DigitsServer",
    "FlashImage",
    "QueryResult",
    "RamMap",
    "RunResult",
    "boards_for",
    "build_flash_image",
    "cache_layout",
    "program_command",
    "subgraph_of",
    "subnet_info",
]

#: flash byte at which the weight image starts (the board designs' ``LinkParams.flash_offset``:
#: 1 MiB, past the bitstream); the accelerator sees it at ``flash_base(cfg)``
FLASH_OFFSET: int = LinkParams.flash_offset

_log = logging.getLogger(__name__)


class BoardServeError(ValueError):
    """The request cannot be served as asked; the message says why and what to do."""


class BoardRunError(RuntimeError):
    """A program on the board stopped with an error (or did not finish cleanly)."""

    def __init__(self, msg: str, status: BoardStatus, counters: dict[str, int]):
        super().__init__(msg)
        self.status, self.counters = status, counters


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _align(x: int, a: int) -> int:
    return _ceil(x, a) * a


# ---- the flash weight image ----------------------------------------------------------------


@dataclass(frozen=True)
class FlashImage:
    """The weight image of one configuration: ``data`` goes to flash byte ``offset`` on, where
    the accelerator sees it at ``image.base`` (= ``flash_base(cfg)``)."""

    cfg: AccelConfig
    image: WeightImage
    data: bytes
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

    def layout(self) -> list[dict]:
        """One row per tensor: accelerator address, flash byte, bytes, shape and tile grid."""
        cfg, img = self.cfg, self.image
        rows = []
        for name, addr in img.addr.items():
            k, n = img.shape[name]
            rows.append(
                {
                    "tensor": name,
                    "shape": [k, n],
                    "tiles": [img.kt[name], _ceil(n, cfg.cols)],
                    "addr": addr,
                    "flash_offset": self.flash_byte(addr),
                    "bytes": len(img.blobs[name]),
                }
            )
        return rows


def build_flash_image(cfg: AccelConfig, net: DigitsSuperNet | None = None) -> FlashImage:
    """The digits SuperNet's weight image for ``cfg``, to program at :data:`FLASH_OFFSET`."""
    net = net or load_digits_supernet()
    base, window = flash_window(cfg)
    tensors = {n: np.ascontiguousarray(net.tensor(n)) for n in net.tensor_names()}
    try:
        img = WeightImage.build(cfg, tensors, base)
    except CompileError as e:
        raise BoardServeError(f"preset {cfg.name!r}: {e}") from None
    if img.end - base > window:
        raise BoardServeError(
            f"the weight image is {img.end - base} bytes; preset {cfg.name!r} sees only "
            f"{window} bytes of flash"
        )
    data = bytearray(img.end - base)
    for name, blob in img.blobs.items():
        at = img.addr[name] - base
        data[at : at + len(blob)] = blob
    return FlashImage(cfg, img, bytes(data))


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


# ---- SubNets and SubGraphs -----------------------------------------------------------------


def subnet_info(net: DigitsSuperNet, key: str) -> SubNetInfo:
    """The SubNet ``key``; BoardServeError naming close or example keys if there is none."""
    try:
        return net.subnet(key)
    except ValueError:
        pass
    ids = [s.id for s in net.subnets()]
    close = difflib.get_close_matches(str(key), ids, n=4, cutoff=0.6)
    some = close or [ids[0], ids[len(ids) // 2], ids[-1]]
    what = "did you mean" if close else "e.g."
    raise BoardServeError(
        f"unknown SubNet {key!r}; keys are i<inputs>-d<depth>-<width>-..., {what} "
        f"{', '.join(some)} ({len(ids)} in all: sushi board subnets)"
    )


def _subnet_slices(net: DigitsSuperNet, key: str) -> SubGraph:
    return SubGraph({g.name: (g.k, g.n) for g in net.layers(subnet_info(net, key).id)})


def subgraph_of(net: DigitsSuperNet, keys: str | Iterable[str]) -> SubGraph:
    """The weight slices shared by SubNets ``keys`` (one key: that SubNet's slices; a
    comma-separated string or several keys: their intersection)."""
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    keys = list(keys)
    if not keys:
        raise BoardServeError("no SubNet given for the cached SubGraph")
    return intersect_all(_subnet_slices(net, k) for k in keys)


def cache_layout(cfg: AccelConfig, sub: SubGraph) -> PBLayout:
    """PB tile blocks holding SubGraph ``sub`` (``(k, n)`` slices), in tensor order."""
    plan = {t: (_ceil(d[0], cfg.rows), _ceil(d[1], cfg.cols)) for t, d in sorted(sub.items())}
    try:
        return PBLayout.allocate(cfg, plan)
    except CompileError as e:
        raise BoardServeError(
            f"SubGraph of {sub.nbytes} weight bytes does not fit the PB of preset "
            f"{cfg.name!r} ({cfg.pb_bytes} bytes): {e}"
        ) from None


# ---- the board's RAM ---------------------------------------------------------------------


@dataclass(frozen=True)
class RamMap:
    """Regions of the board's on-chip RAM ``[0, ram_bytes)`` a digits query uses, each sized
    for the largest SubNet of the space and aligned to a command (and a memory beat)."""

    ram_bytes: int
    prog: int
    prog_bytes: int
    cache_prog: int
    cache_prog_bytes: int
    input: int
    input_bytes: int
    output: int
    output_bytes: int
    scratch: int  #: the rest of the RAM (free for other programs)
    scratch_bytes: int

    @classmethod
    def plan(cls, cfg: AccelConfig, ram_bytes: int, net: DigitsSuperNet) -> RamMap:
        try:
            check_ram_bytes(cfg, ram_bytes)
        except ValueError as e:
            raise BoardServeError(str(e)) from None
        spec = net.spec
        per_beat = max(1, cfg.mem_width // cfg.rows)  # as the compiler rounds LOAD/STORE_ACT

        def beats(words: int) -> int:
            return _ceil(words, per_beat) * per_beat

        # LOAD_ACT, one GEMM per hidden layer and the head, STORE_ACT, DONE
        prog = (spec.max_depth + 1 + 3) * isa.CMD_BYTES
        # one CACHE per tile column of each cached block (at most one per PB tile), DONE
        columns = sum(_ceil(n, cfg.cols) for _, n in spec.tensor_shapes().values())
        cache = (min(columns, cfg.pb_tiles) + 1) * isa.CMD_BYTES
        inp = beats(in_words(cfg, 1, spec.n_in)) * cfg.rows
        out = beats(out_words(cfg, 1, spec.n_out, int32=True)) * cfg.rows
        align = max(isa.CMD_BYTES, cfg.mem_width)
        at, addrs = 0, []
        for size in (prog, cache, inp, out):
            addrs.append(at)
            at = _align(at + size, align)
        if at > ram_bytes:
            raise BoardServeError(
                f"a digits query needs {at} bytes of board RAM (query program {prog}, CACHE "
                f"program {cache}, input {inp}, logits {out}, aligned to {align}); the board "
                f"has {ram_bytes}"
            )
        p, c, i, o = addrs
        return cls(ram_bytes, p, prog, c, cache, i, inp, o, out, at, ram_bytes - at)


# ---- results -----------------------------------------------------------------------------


@dataclass
class RunResult:
    """One program run: final STATUS and the accelerator's counters (``isa.Counter`` names in
    lower case)."""

    what: str
    status: BoardStatus
    counters: dict[str, int]


@dataclass
class CacheResult:
    layout: PBLayout
    expected_bytes: int  #: weight bytes the CACHE program must read from the flash
    run: RunResult
    problems: list[str] = field(default_factory=list)

    @property
    def counters(self) -> dict[str, int]:
        return self.run.counters


@dataclass
class QueryResult:
    subnet: str
    image: int | None  #: held-out image index (None: the caller's input)
    label: int | None
    logits: np.ndarray  #: int32 [10], read back from the board
    reference: np.ndarray  #: int32 [10], numpy int8 reference
    pb_tiles: int
    expected_offchip_bytes: int  #: weight bytes the GEMMs must read from the flash
    expected_pb_bytes: int  #: weight bytes the PB must serve
    expected_commands: int
    run: RunResult
    wall_s: float
    problems: list[str] = field(default_factory=list)  #: counters that disagree

    @property
    def match(self) -> bool:
        """The board's logits equal the reference bit for bit."""
        return bool(np.array_equal(self.logits, self.reference))

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.logits))

    @property
    def reference_predicted(self) -> int:
        return int(np.argmax(self.reference))

    @property
    def counters(self) -> dict[str, int]:
        return self.run.counters

    @property
    def ok(self) -> bool:
        return self.match and not self.problems

    def as_dict(self) -> dict:
        return {
            "subnet": self.subnet,
            "image": self.image,
            "label": self.label,
            "pb_tiles": self.pb_tiles,
            "logits": self.logits.tolist(),
            "reference_logits": self.reference.tolist(),
            "match": self.match,
            "predicted": self.predicted,
            "reference_predicted": self.reference_predicted,
            "expected_offchip_bytes": self.expected_offchip_bytes,
            "expected_pb_bytes": self.expected_pb_bytes,
            "expected_commands": self.expected_commands,
            "problems": list(self.problems),
            "wall_s": self.wall_s,
            **self.counters,
        }


# ---- serving -----------------------------------------------------------------------------


class DigitsServer:
    """Serves digits SubNets on one board with ``client``.

    ``cfg`` is the preset the board's bitstream was built with; ``info`` the board's INFO (read
    if not given). The board must agree with ``cfg`` (array, memory width, PB). Each program
    run is waited for with ``max_polls`` STATUS polls and/or ``timeout_s`` seconds.
    """

    def __init__(
        self,
        client: BoardClient,
        cfg: AccelConfig,
        net: DigitsSuperNet | None = None,
        *,
        info: BoardInfo | None = None,
        flash: FlashImage | None = None,
        max_polls: int | None = None,
        timeout_s: float | None = 10.0,
        log: logging.Logger | None = None,
    ):
        self.client, self.cfg = client, cfg
        self.net = net or load_digits_supernet()
        self.info = info or client.info()
        self._check_info(self.info)
        self.flash = flash or build_flash_image(cfg, self.net)
        self.image = self.flash.image
        self.ram = RamMap.plan(cfg, self.info.ram_bytes, self.net)
        self.max_polls, self.timeout_s = max_polls, timeout_s
        self.log = log or _log
        self.x_test, self.y_test = self.net.test_set()

    def _check_info(self, info: BoardInfo) -> None:
        cfg = self.cfg
        have = (info.rows, info.cols, info.mem_width, info.pb_bytes)
        want = (cfg.rows, cfg.cols, cfg.mem_width, cfg.pb_bytes)
        if have != want:
            raise BoardServeError(
                f"the board is not a preset {cfg.name!r} design: it reports (rows, cols, "
                f"mem_width, pb_bytes) = {have}, the preset has {want}; pass --preset"
            )

    # ---- checks --------------------------------------------------------------------------
    def verify_flash(self, nbytes: int = 32) -> None:
        """Read the first ``nbytes`` of every tensor back through the flash window; a
        BoardServeError if the flash does not hold this image."""
        mw = self.cfg.mem_width
        for name, blob in self.image.blobs.items():
            n = max(mw, min(nbytes, len(blob)) // mw * mw)
            addr = self.image.addr[name]
            got = self.client.read(addr, n)
            if got != blob[:n]:
                state = "erased (all 0xff)" if got == b"\xff" * n else f"{got[:8].hex()}..."
                raise BoardServeError(
                    f"the board's flash does not hold the digits weight image of preset "
                    f"{self.cfg.name!r}: tensor {name} at {addr:#x} (flash byte "
                    f"{self.flash.flash_byte(addr):#x}) reads {state}, expected "
                    f"{blob[:8].hex()}...; write it with 'sushi board image --preset "
                    f"{self.cfg.name}' and the command it prints"
                )

    # ---- programs ------------------------------------------------------------------------
    def calls(self, key: str) -> list[LayerCall]:
        return layer_calls(self.net.layers(subnet_info(self.net, key).id))

    def query_program(self, key: str, layout: PBLayout) -> bytes:
        ram = self.ram
        try:
            cmds = network_program(
                self.cfg, self.image, layout, self.calls(key), 1, ram.input, ram.output
            )
        except CompileError as e:
            raise BoardServeError(f"SubNet {key}: {e}") from None
        prog = b"".join(cmds)
        if len(prog) > ram.prog_bytes:
            raise BoardServeError(
                f"the program of SubNet {key} is {len(prog)} bytes; the board RAM map has "
                f"{ram.prog_bytes} bytes for it"
            )
        return prog

    def cache_program(self, layout: PBLayout) -> bytes:
        try:
            prog = b"".join([*cache_program(self.cfg, self.image, layout), isa.done()])
        except CompileError as e:
            raise BoardServeError(str(e)) from None
        if len(prog) > self.ram.cache_prog_bytes:
            raise BoardServeError(
                f"the CACHE program is {len(prog)} bytes; the board RAM map has "
                f"{self.ram.cache_prog_bytes} bytes for it"
            )
        return prog

    def run(self, addr: int, what: str) -> RunResult:
        """RUN the program at ``addr``, wait until the accelerator is idle, read the counters."""
        c = self.client
        c.run(addr)
        st = c.wait(max_polls=self.max_polls, timeout_s=self.timeout_s)
        ctr = {k.name.lower(): c.counter(k) for k in isa.Counter}
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
        return RunResult(what, st, ctr)

    @staticmethod
    def _require_done(res: RunResult) -> None:
        st = res.status
        if not st.done or st.error or st.error_code or st.bus_error:
            try:
                code = isa.ErrorCode(st.error_code).name
            except ValueError:
                code = str(st.error_code)
            raise BoardRunError(
                f"{res.what}: the accelerator stopped with done={st.done} error={st.error} "
                f"code={code} bus_error={st.bus_error} ({st})",
                st,
                res.counters,
            )

    # ---- the PB ---------------------------------------------------------------------------
    def fill_pb(self, cache: PBLayout | SubGraph) -> CacheResult:
        """Write and run a CACHE program that fills the PB with ``cache`` (a PBLayout, or a
        SubGraph laid out by :func:`cache_layout`). Later queries pass the returned
        ``layout``."""
        layout = cache if isinstance(cache, PBLayout) else cache_layout(self.cfg, cache)
        prog = self.cache_program(layout)
        self.client.write(self.ram.cache_prog, prog)
        res = self.run(self.ram.cache_prog, f"CACHE {layout.blocks}")
        self._require_done(res)
        want = layout.tiles * self.cfg.tile_bytes
        out = CacheResult(layout, want, res)
        if res.counters["rd_weight_bytes"] != want:
            out.problems.append(
                f"CACHE read {res.counters['rd_weight_bytes']} weight bytes, expected {want}"
            )
        return out

    # ---- one query -----------------------------------------------------------------------
    def query(
        self,
        key: str,
        *,
        image: int | None = None,
        x: np.ndarray | None = None,
        layout: PBLayout | None = None,
    ) -> QueryResult:
        """Serve SubNet ``key`` on held-out image ``image`` (or int8 input row ``x``, as
        ``net.quantize_input`` makes it) with the PB holding ``layout`` (default: empty)."""
        cfg, ram = self.cfg, self.ram
        layout = layout or PBLayout()
        info = subnet_info(self.net, key)
        calls = self.calls(info.id)
        x, label = self._input(image, x, calls[0].k)
        where = f"SubNet {info.id}, " + (f"image {image}" if image is not None else "given input")
        where += f", PB {layout.blocks or 'empty'}"
        prog = self.query_program(info.id, layout)
        data = act_bytes(cfg, x[:, : calls[0].k])
        if len(data) > ram.input_bytes:
            raise BoardServeError(
                f"{where}: the input is {len(data)} bytes; the RAM map has {ram.input_bytes}"
            )
        data += bytes(_align(len(data), cfg.mem_width) - len(data))
        t0 = time.perf_counter()
        self.client.write(ram.prog, prog)
        self.client.write(ram.input, data)
        res = self.run(ram.prog, where)
        self._require_done(res)
        raw = self.client.read(ram.output, ram.output_bytes)
        n_out = calls[-1].n
        logits = int32_from_bytes(cfg, raw[: out_words(cfg, 1, n_out, True) * cfg.rows], 1, n_out)
        wall = time.perf_counter() - t0
        off = offchip_weight_bytes(cfg, layout, calls, 1)
        # whole tiles of every layer (an empty PB) minus what comes off-chip
        pb = offchip_weight_bytes(cfg, PBLayout(), calls, 1) - off
        out = QueryResult(
            subnet=info.id,
            image=image,
            label=label,
            logits=logits[0],
            reference=self.net.reference_logits(info.id, x)[0],
            pb_tiles=layout.tiles,
            expected_offchip_bytes=off,
            expected_pb_bytes=pb,
            expected_commands=len(calls) + 3,
            run=res,
            wall_s=wall,
        )
        ctr = res.counters
        for name, want in (
            ("rd_weight_bytes", off),
            ("pb_read_bytes", pb),
            ("commands", out.expected_commands),
        ):
            if ctr[name] != want:
                out.problems.append(f"counter {name} = {ctr[name]}, expected {want}")
        return out

    def _input(
        self, image: int | None, x: np.ndarray | None, k: int
    ) -> tuple[np.ndarray, int | None]:
        if (image is None) == (x is None):
            raise BoardServeError("give either a held-out image index or an input row")
        if image is not None:
            n = len(self.y_test)
            if not 0 <= int(image) < n:
                raise BoardServeError(f"image {image} out of range: the held-out split has {n}")
            i = int(image)
            return self.x_test[i : i + 1], int(self.y_test[i])
        a = np.asarray(x)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[0] != 1 or a.shape[1] < k:
            raise BoardServeError(f"input must be one row of at least {k} int8 values")
        if a.dtype != np.int8:
            if not np.array_equal(a, a.astype(np.int8)):
                raise BoardServeError("input values must be int8")
            a = a.astype(np.int8)
        return a, None
