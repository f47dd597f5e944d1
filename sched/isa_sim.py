"""ISA-level golden model of SushiAccel: a numpy interpreter of command programs.

It holds the same architectural state as the RTL (``sushi_hw.accel.SushiAccel``): off-chip memory,
two activation buffers of ``act_words`` words of ``rows`` bytes, the Persistent Buffer
(``pb_tiles`` weight tiles), the accumulator (``acc_depth`` rows of ``cols`` int32, which survives
from one GEMM to the next for ``hold``/``accumulate``) and the byte counters of
:class:`sushi_hw.isa.Counter`. It runs no clock: ``cycles`` stays 0.

:meth:`IsaSim.run` fetches 32-byte commands from memory, decodes them with ``isa.decode`` and
applies the RTL's checks in the RTL's order (FETCH: alignment, then the command inside memory;
CHECK per opcode, see :func:`check_command`) before a command moves any data, so a failing command
leaves memory, buffers, PB and accumulator untouched.

:func:`check_command` rejects exactly what the RTL's CHECK state rejects, with the same error
code. Among its checks: ``requant=1`` with ``mult == 0`` is BAD_SHAPE, and ``accumulate`` or
``hold`` on a GEMM of more than one M-tile or N-tile is BAD_ACCUMULATE, so the accumulator (which
survives from one GEMM to the next) only ever carries the sums of a single output tile. After
the checks, one that depends on state: ``accumulate`` when the last GEMM or CONV did not hold
its result (or none did since the reset) is STALE_ACCUMULATE (:attr:`IsaSim.acc_held`).

A GEMM whose output would overlap its own A in the same buffer is rejected too (ACT_RANGE: the
RTL re-reads A for every N-tile).

PB valid tags (``BuildOptions.pb_tags``, ``IsaSim(pb_tags=...)``; :mod:`sushi_hw.pb_tags`): each
PB tile remembers the off-chip address CACHE copied it from (:attr:`IsaSim.pb_src`, -1: none).
A GEMM/CONV that reads a PB tile whose source is not the off-chip tile it stands for
(:meth:`IsaSim.uncached_tiles`) runs to its end as without tags, then halts with PB_UNCACHED,
its accumulator not held: the one error reported after a command moved data.

CONV, ADD and POOL (configurations with ``conv``; ILLEGAL_OPCODE without) run as docs/isa.md
defines them: CONV as an implicit GEMM on whole tiles (padding lanes included), its weight tiles
from the PB or off-chip per (nt, ct, t), counted once per M-tile like the GEMM's; ADD and POOL
lane-wise on activation words, moving no off-chip bytes.

Errors from the memory side: :attr:`IsaSim.hang_addr` models the simulation memory's fault
injection (``sushi_hw.sim_memory.SimMemory``: it stops answering from the first request that
covers that byte on). The run halts with MEM_TIMEOUT at the first command whose fetch or
data covers it, before the command is counted when it is the fetch; when a command's data
hangs, the RTL has done part of the command, which the model does not: its result says only
that the program halted with MEM_TIMEOUT at that command. BUS_ERROR (an AXI error response)
has no model here: the golden memory never fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_hw.reference import requantize

from .runtime.backend import COUNTER_NAMES, RunResult, saturate_counters

E = isa.ErrorCode
MASK32 = (1 << 32) - 1
#: memories up to this size are one numpy array; larger ones are sparse pages
DENSE_LIMIT = 1 << 26
PAGE = 1 << 16


class Memory:
    """Off-chip memory of ``size`` bytes (zero-initialised): dense, or sparse 64 KiB pages."""

    def __init__(self, size: int):
        self.size = size
        self._dense = np.zeros(size, dtype=np.uint8) if size <= DENSE_LIMIT else None
        self._pages: dict[int, np.ndarray] = {}

    def _check(self, addr: int, n: int) -> None:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise ValueError(f"{n} bytes at {addr:#x} exceed memory ({self.size} bytes)")

    def read(self, addr: int, n: int) -> np.ndarray:
        """A copy of ``n`` bytes at ``addr`` (uint8)."""
        self._check(addr, n)
        if self._dense is not None:
            return self._dense[addr : addr + n].copy()
        out = np.zeros(n, dtype=np.uint8)
        at = addr
        while at < addr + n:
            page, off = divmod(at, PAGE)
            take = min(PAGE - off, addr + n - at)
            if page in self._pages:
                out[at - addr : at - addr + take] = self._pages[page][off : off + take]
            at += take
        return out

    def write(self, addr: int, data) -> None:
        buf = (
            np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else data
        )
        buf = buf.reshape(-1).view(np.uint8)
        n = buf.size
        self._check(addr, n)
        if self._dense is not None:
            self._dense[addr : addr + n] = buf
            return
        at = addr
        while at < addr + n:
            page, off = divmod(at, PAGE)
            take = min(PAGE - off, addr + n - at)
            p = self._pages.setdefault(page, np.zeros(PAGE, dtype=np.uint8))
            p[off : off + take] = buf[at - addr : at - addr + take]
            at += take

    def gather(self, starts: np.ndarray, n: int) -> np.ndarray:
        """``n`` bytes at each of ``starts``: uint8 [len(starts), n]."""
        starts = np.asarray(starts, dtype=np.int64)
        if starts.size and (starts.min() < 0 or starts.max() + n > self.size):
            raise ValueError("gather outside memory")
        if self._dense is not None:
            return self._dense[starts[:, None] + np.arange(n, dtype=np.int64)]
        return (
            np.stack([self.read(int(s), n) for s in starts])
            if starts.size
            else np.zeros((0, n), dtype=np.uint8)
        )


@dataclass(frozen=True)
class GemmGeometry:
    """What the RTL registers in DECODE / CHECK_PREP for a GEMM."""

    kt: int
    nt: int
    mt: int
    a_words: int
    o_words: int
    pb_tiles_used: int
    off_tiles: int
    w_span: int  # off-chip tiles from the first to one past the last tile the GEMM may use
    pb_span: int

    @classmethod
    def of(cls, cfg: AccelConfig, f: dict[str, int]) -> GemmGeometry:
        r = cfg.rows
        kt, nt, mt = ceil_div(f["k"], r), ceil_div(f["n"], r), ceil_div(f["m"], cfg.acc_depth)
        used = f["pb_kt"] * f["pb_nt"]
        return cls(
            kt=kt,
            nt=nt,
            mt=mt,
            a_words=f["m"] * kt,
            o_words=f["m"] * nt * (1 if f["requant"] else 4),
            pb_tiles_used=used,
            off_tiles=kt * nt - used,
            w_span=(nt - 1) * f["w_stride"] + kt,
            pb_span=(f["pb_nt"] - 1) * f["pb_stride"] + f["pb_kt"],
        )


def _misaligned(cfg: AccelConfig, v: int) -> bool:
    return v % cfg.mem_width != 0


@dataclass(frozen=True)
class ConvGeometry:
    """What a CONV implies (docs/isa.md, CONV): the implicit GEMM's tiles and word ranges."""

    ct: int  # input channel tiles
    nt: int  # output channel tiles
    taps: int  # k*k
    h_out: int
    w_out: int
    m: int  # output pixels = the implicit GEMM's M
    mt: int  # M-tiles of acc_depth pixels
    k_dim: int  # the implicit GEMM's K = ct*taps*rows
    a_words: int
    o_words: int
    pb_tiles_used: int
    off_tiles: int
    w_span: int  # off-chip tiles from the first to one past the last the CONV may use
    pb_span: int

    @classmethod
    def of(cls, cfg: AccelConfig, f: dict[str, int]) -> ConvGeometry:
        k, s, p = f["k"], max(f["stride"], 1), f["pad"]
        ct, nt, taps = ceil_div(f["c_in"], cfg.rows), ceil_div(f["c_out"], cfg.cols), k * k
        h_out, w_out = isa.conv_out_size(f["h"], k, s, p), isa.conv_out_size(f["w"], k, s, p)
        m = max(h_out, 0) * max(w_out, 0)
        used = f["pb_nt"] * f["pb_ct"] * f["pb_t"]
        return cls(
            ct=ct,
            nt=nt,
            taps=taps,
            h_out=h_out,
            w_out=w_out,
            m=m,
            mt=ceil_div(m, cfg.acc_depth),
            k_dim=ct * taps * cfg.rows,
            a_words=ct * f["h"] * f["w"],
            o_words=nt * m * (1 if f["requant"] else 4),
            pb_tiles_used=used,
            off_tiles=nt * ct * taps - used,
            w_span=(nt - 1) * f["w_nstride"] + (ct - 1) * f["w_cstride"] + taps,
            pb_span=(f["pb_nt"] - 1) * f["pb_nstride"]
            + (f["pb_ct"] - 1) * f["pb_cstride"]
            + f["pb_t"],
        )


def _overlap(buf_a: int, a: int, na: int, buf_b: int, b: int, nb: int) -> bool:
    return buf_a == buf_b and a < b + nb and b < a + na


def check_conv(cfg: AccelConfig, f: dict[str, int]) -> isa.ErrorCode:
    """CHECK of a CONV, in the documented order (docs/isa.md, CONV)."""
    k = f["k"]
    if k not in isa.KERNELS or f["stride"] not in isa.STRIDES or f["pad"] > k // 2:
        return E.BAD_CONV
    if min(f["h"], f["w"], f["c_in"], f["c_out"]) == 0:
        return E.BAD_SHAPE
    g = ConvGeometry.of(cfg, f)
    if (
        g.h_out < 1
        or g.w_out < 1
        or f["c_out"] > cfg.max_dim
        or g.m > cfg.max_dim
        or g.k_dim > cfg.max_dim
        or f["w_cstride"] < g.taps
        or f["w_nstride"] < (g.ct - 1) * f["w_cstride"] + g.taps
        or f["pb_nt"] > g.nt
        or f["pb_ct"] > g.ct
        or f["pb_t"] > g.taps
        or (
            g.pb_tiles_used != 0
            and (
                f["pb_cstride"] < f["pb_t"]
                or f["pb_nstride"] < (f["pb_ct"] - 1) * f["pb_cstride"] + f["pb_t"]
            )
        )
        or (f["requant"] and f["mult"] == 0)
    ):
        return E.BAD_SHAPE
    if (
        f["a_word"] + g.a_words > cfg.act_words
        or f["o_word"] + g.o_words > cfg.act_words
        or _overlap(f["a_buf"], f["a_word"], g.a_words, f["o_buf"], f["o_word"], g.o_words)
    ):
        return E.ACT_RANGE
    if g.pb_tiles_used != 0 and f["pb_tile"] + g.pb_span > cfg.pb_tiles:
        return E.PB_RANGE
    if g.off_tiles != 0 and _misaligned(cfg, f["w_addr"]):
        return E.BAD_ALIGN
    if g.off_tiles != 0 and f["w_addr"] + g.w_span * cfg.tile_bytes > cfg.mem_bytes:
        return E.MEM_RANGE
    return E.NONE


def check_add(cfg: AccelConfig, f: dict[str, int]) -> isa.ErrorCode:
    """CHECK of an ADD: zero words; a range beyond its buffer; the output over part of A or B
    (in place means the same first word)."""
    n = f["words"]
    if n == 0:
        return E.BAD_SHAPE
    if max(f["a_word"], f["b_word"], f["o_word"]) + n > cfg.act_words:
        return E.ACT_RANGE
    for x in ("a", "b"):
        same = f[f"{x}_buf"] == f["o_buf"] and f[f"{x}_word"] == f["o_word"]
        if not same and _overlap(f[f"{x}_buf"], f[f"{x}_word"], n, f["o_buf"], f["o_word"], n):
            return E.ACT_RANGE
    return E.NONE


def check_pool(cfg: AccelConfig, f: dict[str, int]) -> isa.ErrorCode:
    """CHECK of a POOL: zero pixels, tiles or mult; a range beyond its buffer; in and out
    overlapping."""
    if min(f["pixels"], f["tiles"], f["mult"]) == 0:
        return E.BAD_SHAPE
    a_words = f["pixels"] * f["tiles"]
    if (
        f["a_word"] + a_words > cfg.act_words
        or f["o_word"] + f["tiles"] > cfg.act_words
        or _overlap(f["a_buf"], f["a_word"], a_words, f["o_buf"], f["o_word"], f["tiles"])
    ):
        return E.ACT_RANGE
    return E.NONE


def check_command(cfg: AccelConfig, op: isa.Op, f: dict[str, int]) -> isa.ErrorCode:
    """The RTL's CHECK state for a decoded command: the first failing check, or NONE."""
    if op == isa.Op.CACHE:
        nbytes = f["tiles"] * cfg.tile_bytes
        if f["tiles"] == 0:
            return E.BAD_SHAPE
        if f["pb_tile"] + f["tiles"] > cfg.pb_tiles:
            return E.PB_RANGE
        if _misaligned(cfg, f["mem_addr"]):
            return E.BAD_ALIGN
        if f["mem_addr"] + nbytes > cfg.mem_bytes:
            return E.MEM_RANGE
        return E.NONE
    if op in (isa.Op.LOAD_ACT, isa.Op.STORE_ACT):
        nbytes = f["words"] * cfg.rows
        if f["words"] == 0:
            return E.BAD_SHAPE
        if f["word"] + f["words"] > cfg.act_words:
            return E.ACT_RANGE
        if _misaligned(cfg, f["mem_addr"]) or _misaligned(cfg, nbytes):
            return E.BAD_ALIGN
        if f["mem_addr"] + nbytes > cfg.mem_bytes:
            return E.MEM_RANGE
        return E.NONE
    if op == isa.Op.GEMM:
        if min(f["m"], f["k"], f["n"]) == 0 or max(f["m"], f["k"], f["n"]) > cfg.max_dim:
            return E.BAD_SHAPE
        g = GemmGeometry.of(cfg, f)
        if (
            f["pb_kt"] > g.kt
            or f["pb_nt"] > g.nt
            or f["w_stride"] < g.kt
            or (g.pb_tiles_used != 0 and f["pb_stride"] < f["pb_kt"])
            or (f["requant"] and f["mult"] == 0)
        ):
            return E.BAD_SHAPE
        if (f["accumulate"] or f["hold"]) and (g.mt != 1 or g.nt != 1):
            return E.BAD_ACCUMULATE
        if f["a_word"] + g.a_words > cfg.act_words or (
            not f["hold"] and f["o_word"] + g.o_words > cfg.act_words
        ):
            return E.ACT_RANGE
        overlap = (f["a_word"] < f["o_word"] + g.o_words) and (
            f["o_word"] < f["a_word"] + g.a_words
        )
        if not f["hold"] and f["a_buf"] == f["o_buf"] and overlap:
            return E.ACT_RANGE  # the output would overwrite A, which is re-read per N-tile
        if g.pb_tiles_used != 0 and f["pb_tile"] + g.pb_span > cfg.pb_tiles:
            return E.PB_RANGE
        if g.off_tiles != 0 and _misaligned(cfg, f["w_addr"]):
            return E.BAD_ALIGN
        if g.off_tiles != 0 and f["w_addr"] + g.w_span * cfg.tile_bytes > cfg.mem_bytes:
            return E.MEM_RANGE
        return E.NONE
    if op in (isa.Op.CONV, isa.Op.ADD, isa.Op.POOL):
        if not cfg.conv:
            return E.ILLEGAL_OPCODE
        return {isa.Op.CONV: check_conv, isa.Op.ADD: check_add, isa.Op.POOL: check_pool}[op](cfg, f)
    if op == isa.Op.DONE:
        return E.NONE
    return E.ILLEGAL_OPCODE


def _wrap32(x: np.ndarray) -> np.ndarray:
    return ((x + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int64)


class IsaSim:
    """SushiAccel at the ISA level. PB, buffers and accumulator persist across :meth:`run`."""

    def __init__(self, cfg: AccelConfig, *, pb_tags: bool = True):
        """``pb_tags``: the build's ``BuildOptions.pb_tags`` (False: PB reads are unchecked)."""
        self.cfg, self.pb_tags = cfg, pb_tags
        self.mem = Memory(cfg.mem_bytes)
        self.act = np.zeros((2, cfg.act_words, cfg.rows), dtype=np.int8)
        self.pb = np.zeros((cfg.pb_tiles, cfg.rows, cfg.cols), dtype=np.int8)
        self.acc = np.zeros((cfg.acc_depth, cfg.cols), dtype=np.int32)
        #: per PB tile, the off-chip byte address CACHE copied it from; -1: never cached
        self.pb_src = np.full(cfg.pb_tiles, -1, dtype=np.int64)
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._decoded: dict[bytes, tuple[isa.Op | None, dict[str, int]]] = {}
        #: fault injection: the memory stops answering at the first access covering this byte
        self.hang_addr: int | None = None
        #: the accumulator holds a result to accumulate onto (the last GEMM/CONV held it);
        #: survives programs, not a reset (:meth:`reset`) or a memory timeout
        self.acc_held = False

    def reset(self) -> None:
        """The RTL's reset: control state only (memory, buffers, PB, its tags and accumulator
        keep their contents; the accumulator no longer counts as held)."""
        self.acc_held = False

    # ---- host access -------------------------------------------------------------------------
    def write(self, addr: int, data) -> None:
        self.mem.write(addr, data)

    def read(self, addr: int, n: int) -> bytes:
        return self.mem.read(addr, n).tobytes()

    def write_program(self, addr: int, cmds: list[bytes]) -> None:
        self.write(addr, b"".join(cmds))

    # ---- execution -----------------------------------------------------------------------------
    def _decode(self, raw: bytes) -> tuple[isa.Op | None, dict[str, int]]:
        hit = self._decoded.get(raw)
        if hit is None:
            try:
                hit = isa.decode(raw)
            except ValueError:
                hit = (None, {})
            if len(self._decoded) < 1 << 14:
                self._decoded[raw] = hit
        return hit

    def run(self, prog_addr: int, max_commands: int | None = None) -> RunResult:
        """Ring the doorbell: run the program at ``prog_addr`` until DONE or an error. Counters
        saturate at ``2**counter_bits - 1`` as the RTL's read (``RunResult.overflowed``)."""
        res = self._run(prog_addr, max_commands)
        res.counters, res.overflowed = saturate_counters(self.cfg, res.counters)
        self.counters = dict(res.counters)
        return res

    def _run(self, prog_addr: int, max_commands: int | None) -> RunResult:
        cfg = self.cfg
        ctr = self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        pc = prog_addr & MASK32
        fetch_bytes = max(isa.CMD_BYTES, cfg.mem_width)
        executed = 0
        while True:
            if pc % isa.CMD_BYTES:
                return RunResult(False, int(E.BAD_ALIGN), dict(ctr), pc=pc)
            if pc + isa.CMD_BYTES > cfg.mem_bytes:
                return RunResult(False, int(E.MEM_RANGE), dict(ctr), pc=pc)
            if self._hangs([(pc - pc % fetch_bytes, fetch_bytes)]):
                return self._timeout(ctr, pc)
            raw = self.mem.read(pc, isa.CMD_BYTES).tobytes()
            ctr["rd_cmd_bytes"] += fetch_bytes
            ctr["commands"] += 1
            op, f = self._decode(raw)
            err = E.ILLEGAL_OPCODE if op is None else check_command(cfg, op, f)
            if err != E.NONE:
                return RunResult(False, int(err), dict(ctr), pc=pc)
            if op == isa.Op.DONE:
                return RunResult(True, int(E.NONE), dict(ctr), pc=pc)
            if op == isa.Op.GEMM and f["accumulate"] and not self.acc_held:
                return RunResult(False, int(E.STALE_ACCUMULATE), dict(ctr), pc=pc)
            if self.hang_addr is not None and self._hangs(self.accesses(op, f)):
                return self._timeout(ctr, pc)
            if op == isa.Op.CACHE:
                self._cache(f)
            elif op == isa.Op.LOAD_ACT:
                self._load(f)
            elif op == isa.Op.STORE_ACT:
                self._store(f)
            elif op == isa.Op.GEMM:
                self._gemm(f)
                self.acc_held = bool(f["hold"])
            elif op == isa.Op.CONV:
                self._conv(f)
                self.acc_held = False
            elif op == isa.Op.ADD:
                self._add(f)
            else:
                self._pool(f)
            if self.pb_tags and self.uncached_tiles(op, f):
                self.acc_held = False
                return RunResult(False, int(E.PB_UNCACHED), dict(ctr), pc=pc)
            executed += 1
            if max_commands is not None and executed >= max_commands:
                raise RuntimeError(f"no DONE after {executed} commands (pc={pc:#x})")
            pc = (pc + isa.CMD_BYTES) & MASK32

    def _timeout(self, ctr: dict[str, int], pc: int) -> RunResult:
        """MEM_TIMEOUT: the RTL abandons the command, and with it the accumulator's result."""
        self.acc_held = False
        return RunResult(False, int(E.MEM_TIMEOUT), dict(ctr), pc=pc)

    def _hangs(self, ranges: list[tuple[int, int]]) -> bool:
        h = self.hang_addr
        return h is not None and any(a <= h < a + n for a, n in ranges)

    def accesses(self, op: isa.Op, f: dict[str, int]) -> list[tuple[int, int]]:
        """The off-chip byte ranges (start, length) a checked command reads or writes."""
        cfg = self.cfg
        tb = cfg.tile_bytes
        if op == isa.Op.CACHE:
            return [(f["mem_addr"], f["tiles"] * tb)]
        if op in (isa.Op.LOAD_ACT, isa.Op.STORE_ACT):
            return [(f["mem_addr"], f["words"] * cfg.rows)]
        if op == isa.Op.GEMM:
            g = GemmGeometry.of(cfg, f)
            return [
                (f["w_addr"] + (nt * f["w_stride"] + kt) * tb, tb)
                for nt in range(g.nt)
                for kt in range(g.kt)
                if not (nt < f["pb_nt"] and kt < f["pb_kt"])
            ]
        if op == isa.Op.CONV:
            g = ConvGeometry.of(cfg, f)
            return [
                (f["w_addr"] + (nt * f["w_nstride"] + ct * f["w_cstride"] + t) * tb, tb)
                for nt in range(g.nt)
                for ct in range(g.ct)
                for t in range(g.taps)
                if not (nt < f["pb_nt"] and ct < f["pb_ct"] and t < f["pb_t"])
            ]
        return []

    def pb_reads(self, op: isa.Op, f: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """(PB tiles, off-chip byte addresses they stand for) of a checked GEMM's or CONV's
        cached block, in walk order; addresses modulo ``mem_bytes`` as the RTL's walkers'."""
        if op == isa.Op.GEMM:
            nt, kt = np.meshgrid(np.arange(f["pb_nt"]), np.arange(f["pb_kt"]), indexing="ij")
            pb = f["pb_tile"] + nt * f["pb_stride"] + kt
            off = nt * f["w_stride"] + kt
        elif op == isa.Op.CONV:
            nt, ct, t = np.meshgrid(
                np.arange(f["pb_nt"]), np.arange(f["pb_ct"]), np.arange(f["pb_t"]), indexing="ij"
            )
            pb = f["pb_tile"] + nt * f["pb_nstride"] + ct * f["pb_cstride"] + t
            off = nt * f["w_nstride"] + ct * f["w_cstride"] + t
        else:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        addr = (f["w_addr"] + off.astype(np.int64) * self.cfg.tile_bytes) % self.cfg.mem_bytes
        return pb.reshape(-1).astype(np.int64), addr.reshape(-1)

    def uncached_tiles(self, op: isa.Op, f: dict[str, int]) -> list[int]:
        """The PB tiles a checked GEMM/CONV reads that hold no copy of the off-chip tile they
        stand for: never cached, or cached from another address (an unaligned ``w_addr``
        matches none). Empty for other opcodes."""
        pb, addr = self.pb_reads(op, f)
        return [int(p) for p in pb[self.pb_src[pb] != addr]]

    def _cache(self, f: dict[str, int]) -> None:
        cfg = self.cfg
        nbytes = f["tiles"] * cfg.tile_bytes
        data = self.mem.read(f["mem_addr"], nbytes).view(np.int8)
        self.pb[f["pb_tile"] : f["pb_tile"] + f["tiles"]] = data.reshape(-1, cfg.rows, cfg.cols)
        src = f["mem_addr"] + np.arange(f["tiles"], dtype=np.int64) * cfg.tile_bytes
        self.pb_src[f["pb_tile"] : f["pb_tile"] + f["tiles"]] = src
        self.counters["rd_weight_bytes"] += nbytes

    def _load(self, f: dict[str, int]) -> None:
        r = self.cfg.rows
        data = self.mem.read(f["mem_addr"], f["words"] * r).view(np.int8)
        self.act[f["buf"], f["word"] : f["word"] + f["words"]] = data.reshape(-1, r)
        self.counters["rd_act_bytes"] += f["words"] * r

    def _store(self, f: dict[str, int]) -> None:
        r = self.cfg.rows
        self.mem.write(f["mem_addr"], self.act[f["buf"], f["word"] : f["word"] + f["words"]])
        self.counters["wr_bytes"] += f["words"] * r

    def _weights(self, f: dict[str, int], g: GemmGeometry) -> np.ndarray:
        """int8 W [KT*rows, NT*cols]: tile (nt, kt) from the PB or from off-chip."""
        cfg = self.cfg
        r, c, tb = cfg.rows, cfg.cols, cfg.tile_bytes
        nt_i, kt_i = np.meshgrid(np.arange(g.nt), np.arange(g.kt), indexing="ij")
        in_pb = (nt_i < f["pb_nt"]) & (kt_i < f["pb_kt"])
        tiles = np.empty((g.nt, g.kt, r, c), dtype=np.int8)
        if in_pb.any():
            tiles[in_pb] = self.pb[f["pb_tile"] + nt_i[in_pb] * f["pb_stride"] + kt_i[in_pb]]
        off = ~in_pb
        if off.any():
            idx = nt_i[off].astype(np.int64) * f["w_stride"] + kt_i[off]
            raw = self.mem.gather(f["w_addr"] + idx * tb, tb)
            tiles[off] = raw.view(np.int8).reshape(-1, r, c)
        return tiles.transpose(1, 2, 0, 3).reshape(g.kt * r, g.nt * c)

    def _gemm(self, f: dict[str, int]) -> None:
        cfg = self.cfg
        r, c, d = cfg.rows, cfg.cols, cfg.acc_depth
        g = GemmGeometry.of(cfg, f)
        m, kt, nt = f["m"], g.kt, g.nt
        w = self._weights(f, g).astype(np.int64)
        w_part = w[: (kt - 1) * r]  # K-tiles 0..KT-2: what the accumulator holds before the last
        a_mem, o_mem = self.act[f["a_buf"]], self.act[f["o_buf"]]
        keep, hold, requant = bool(f["accumulate"]), bool(f["hold"]), bool(f["requant"])
        o_at = f["o_word"]
        for mt in range(g.mt):
            rows = min(d, m - mt * d)
            a0 = f["a_word"] + mt * d * kt
            a = a_mem[a0 : a0 + kt * rows].reshape(kt, rows, r).transpose(1, 0, 2)
            a = a.reshape(rows, kt * r).astype(np.int64)
            full = (a @ w).reshape(rows, nt, c)
            part = (a[:, : (kt - 1) * r] @ w_part).reshape(rows, nt, c) if kt > 1 else None
            if keep:  # one M-tile (checked); N-tiles chain through the accumulator
                sums = np.empty((rows, nt, c), dtype=np.int64)
                for j in range(nt):
                    base = self.acc[:rows].astype(np.int64)
                    sums[:, j] = _wrap32(base + full[:, j])
                    if hold:
                        self.acc[:rows] = sums[:, j]
                    elif part is not None:
                        self.acc[:rows] = _wrap32(base + part[:, j])
            else:
                sums = _wrap32(full)
                if hold:
                    self.acc[:rows] = sums[:, -1]
                elif part is not None:
                    self.acc[:rows] = _wrap32(part[:, -1])
            self.counters["mac_active"] += rows * kt * nt
            self.counters["rd_weight_bytes"] += g.off_tiles * cfg.tile_bytes
            self.counters["pb_read_bytes"] += g.pb_tiles_used * cfg.tile_bytes
            if hold:
                continue
            s32 = sums.astype(np.int32).transpose(1, 0, 2)  # [nt][m] order
            if requant:
                if f["mult"] == 0:
                    out = np.zeros(s32.shape, dtype=np.int8)
                else:
                    out = requantize(s32, f["mult"], f["shift"], bool(f["relu"]))
                words = out.reshape(nt * rows, r)
            else:
                if f["relu"]:
                    s32 = np.maximum(s32, 0)
                words = s32.astype("<i4").view(np.int8).reshape(nt * rows * 4, r)
            o_mem[o_at : o_at + len(words)] = words
            o_at += len(words)

    # ---- CONV, ADD, POOL (docs/isa.md) ----------------------------------------------------------
    def _conv_weights(self, f: dict[str, int], g: ConvGeometry) -> np.ndarray:
        """int8 W [taps, CT*rows, NT*cols]: tile (nt, ct, t) from the PB or from off-chip."""
        cfg = self.cfg
        r, c, tb = cfg.rows, cfg.cols, cfg.tile_bytes
        nt_i, ct_i, t_i = np.meshgrid(
            np.arange(g.nt), np.arange(g.ct), np.arange(g.taps), indexing="ij"
        )
        in_pb = (nt_i < f["pb_nt"]) & (ct_i < f["pb_ct"]) & (t_i < f["pb_t"])
        tiles = np.empty((g.nt, g.ct, g.taps, r, c), dtype=np.int8)
        if in_pb.any():
            idx = (
                f["pb_tile"]
                + nt_i[in_pb] * f["pb_nstride"]
                + ct_i[in_pb] * f["pb_cstride"]
                + t_i[in_pb]
            )
            tiles[in_pb] = self.pb[idx]
        off = ~in_pb
        if off.any():
            idx = (
                nt_i[off].astype(np.int64) * f["w_nstride"]
                + ct_i[off].astype(np.int64) * f["w_cstride"]
                + t_i[off]
            )
            raw = self.mem.gather(f["w_addr"] + idx * tb, tb)
            tiles[off] = raw.view(np.int8).reshape(-1, r, c)
        # [nt][ct][t][r][c] -> [t][ct*rows + r][nt*cols + c]
        return tiles.transpose(2, 1, 3, 0, 4).reshape(g.taps, g.ct * r, g.nt * c)

    def _conv(self, f: dict[str, int]) -> None:
        """The implicit GEMM on whole tiles: every lane of every input channel tile times every
        column of every output channel tile (padding lanes included, as the array computes them);
        pixels outside the map are zero."""
        cfg = self.cfg
        r, c = cfg.rows, cfg.cols
        g = ConvGeometry.of(cfg, f)
        k, s, p, h, w = f["k"], f["stride"], f["pad"], f["h"], f["w"]
        wt = self._conv_weights(f, g).astype(np.int64)
        x = self.act[f["a_buf"], f["a_word"] : f["a_word"] + g.a_words].reshape(g.ct, h, w, r)
        x = x.transpose(1, 2, 0, 3).reshape(h, w, g.ct * r)  # channel ct*rows + lane
        # zero border wide enough for any tap: iy = oy*s + dy + k//2 - pad, 0 <= dy + k//2 < k
        xp = np.zeros((h + 2 * k, w + 2 * k, g.ct * r), dtype=np.int64)
        xp[k : k + h, k : k + w] = x
        acc = np.zeros((g.h_out, g.w_out, g.nt * c), dtype=np.int64)
        for t, (dy, dx) in enumerate(isa.ring_taps(k)):
            y0, x0 = k + dy + k // 2 - p, k + dx + k // 2 - p
            patch = xp[y0 : y0 + s * (g.h_out - 1) + 1 : s, x0 : x0 + s * (g.w_out - 1) + 1 : s]
            acc += patch @ wt[t]
        s32 = _wrap32(acc).astype(np.int32).reshape(g.m, g.nt, c).transpose(1, 0, 2)  # [nt][m]
        ctr = self.counters
        ctr["mac_active"] += g.m * g.ct * g.taps * g.nt
        ctr["rd_weight_bytes"] += g.mt * g.off_tiles * cfg.tile_bytes
        ctr["pb_read_bytes"] += g.mt * g.pb_tiles_used * cfg.tile_bytes
        if f["requant"]:
            words = requantize(s32, f["mult"], f["shift"], bool(f["relu"])).reshape(-1, r)
        else:
            if f["relu"]:
                s32 = np.maximum(s32, 0)
            words = s32.astype("<i4").view(np.int8).reshape(-1, r)
        self.act[f["o_buf"], f["o_word"] : f["o_word"] + len(words)] = words

    def _add(self, f: dict[str, int]) -> None:
        n = f["words"]
        a = self.act[f["a_buf"], f["a_word"] : f["a_word"] + n].astype(np.int64)
        b = self.act[f["b_buf"], f["b_word"] : f["b_word"] + n].astype(np.int64)
        y = a * f["mult_a"] + b * f["mult_b"]
        if f["shift"]:
            y = (y + (1 << (f["shift"] - 1))) >> f["shift"]
        if f["relu"]:
            y = np.maximum(y, 0)
        self.act[f["o_buf"], f["o_word"] : f["o_word"] + n] = np.clip(y, -128, 127)

    def _pool(self, f: dict[str, int]) -> None:
        px, nt = f["pixels"], f["tiles"]
        a = self.act[f["a_buf"], f["a_word"] : f["a_word"] + px * nt].astype(np.int64)
        y = a.reshape(nt, px, self.cfg.rows).sum(axis=1) * f["mult"]
        if f["shift"]:
            y = (y + (1 << (f["shift"] - 1))) >> f["shift"]
        self.act[f["o_buf"], f["o_word"] : f["o_word"] + nt] = np.clip(y, -128, 127)


def run_program(
    cfg: AccelConfig, cmds: list[bytes], prog_addr: int = 0, sim: IsaSim | None = None
) -> tuple[IsaSim, RunResult]:
    """Write ``cmds`` at ``prog_addr`` of a (new) model and run them."""
    sim = sim or IsaSim(cfg)
    sim.write_program(prog_addr, cmds)
    return sim, sim.run(prog_addr)
