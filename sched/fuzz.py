"""Differential fuzzing: seeded random programs on the RTL and on the golden model, compared.

A *batch* is one seed: one memory image and a sequence of random programs run one after the
other on both (the PB, the activation buffers and the accumulator carry over, as in service).
Each program is 1 to 8 commands of every opcode the configuration has (at most
:data:`MAX_COMMANDS` with the CACHEs below), mostly valid (random shapes, buffer placements and
weight sources: PB, off-chip or split; hold/accumulate chains; CACHE between GEMMs), some with
one field mutated at random or an illegal opcode, sometimes without DONE or placed so that it
runs off the end of memory. A GEMM/CONV with a cached block mostly comes after the CACHEs of
that block (legal), sometimes after them and a CACHE over part of it, sometimes alone (the PB's
tags decide: PB_UNCACHED, ``BuildOptions.pb_tags``). Each program gets a random memory timing
(latency, bandwidth, random stalls) of a class: ``fast``, ``slow``, ``stall``, or ``hang`` (the
memory stops answering at the fetch of one of its commands: MEM_TIMEOUT).

Compared per program: done, the error code, every counter but ``cycles`` (the golden model
has no clock) and memory: every byte a STORE_ACT of the program may have written (the only
command that writes memory) and the output region; the whole window the batch uses at its end
(nothing outside it can change). Functional coverage bins (opcode x error code x weight source
x timing class; kernel x stride x padding of CONV) are counted and written to JSON.

``make fuzz`` (``python -m sushi_sched.fuzz``) runs batches for a time budget and prints each
seed; a mismatch is saved as a replay file (preset, seed, program index) with the command that
replays it. ``tb/test_fuzz.py`` runs a small fixed-seed slice on both simulators.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div

from .isa_sim import ConvGeometry, GemmGeometry, IsaSim

E = isa.ErrorCode
TIMING = ("fast", "slow", "stall", "hang")
#: commands of a program before its DONE (a GEMM/CONV may bring the CACHEs of its block): the
#: last program slot plus these fits in PROG_SIZE
MAX_COMMANDS = 9
#: the batch's memory window: programs, data (weights and activations to load), outputs
PROG_BASE, PROG_SIZE = 0x0, 0x400
DATA_BASE, DATA_SIZE = 0x400, 0x1C00
OUT_BASE, OUT_SIZE = 0x2000, 0x1000
WINDOW = OUT_BASE + OUT_SIZE
#: bins every opcode can reach (its checks' codes; docs/isa.md), for the coverage figure
GOALS: dict[str, set[str]] = {
    "CACHE": {"NONE", "BAD_SHAPE", "PB_RANGE", "BAD_ALIGN", "MEM_RANGE"},
    "LOAD_ACT": {"NONE", "BAD_SHAPE", "ACT_RANGE", "BAD_ALIGN", "MEM_RANGE"},
    "STORE_ACT": {"NONE", "BAD_SHAPE", "ACT_RANGE", "BAD_ALIGN", "MEM_RANGE"},
    "GEMM": {"NONE", "BAD_SHAPE", "BAD_ACCUMULATE", "ACT_RANGE", "PB_RANGE", "BAD_ALIGN",
             "MEM_RANGE", "STALE_ACCUMULATE", "PB_UNCACHED"},
    "CONV": {"NONE", "BAD_CONV", "BAD_SHAPE", "ACT_RANGE", "PB_RANGE", "BAD_ALIGN", "MEM_RANGE",
             "PB_UNCACHED"},
    "ADD": {"NONE", "BAD_SHAPE", "ACT_RANGE"},
    "POOL": {"NONE", "BAD_SHAPE", "ACT_RANGE"},
    "DONE": {"NONE"},
    "ILLEGAL": {"ILLEGAL_OPCODE"},
    "FETCH": {"MEM_RANGE", "MEM_TIMEOUT"},
}  # fmt: skip


@dataclass
class Case:
    """One program of a batch and how the memory behaves while it runs."""

    index: int
    prog_addr: int
    cmds: list[bytes]
    timing: str
    latency: int
    bytes_per_cycle: int
    stall: int
    mem_seed: int
    hang_addr: int | None = None
    #: (start, length) ranges the program's STORE_ACTs may write
    stores: list[tuple[int, int]] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"program {self.index} at {self.prog_addr:#x}, memory {self.timing}: latency "
            f"{self.latency}, {self.bytes_per_cycle} B/cycle, stall {self.stall}/256, seed "
            f"{self.mem_seed}" + (f", hangs at {self.hang_addr:#x}" if self.hang_addr else "")
        ]
        for i, raw in enumerate(self.cmds):
            try:
                op, f = isa.decode(raw)
                text = f"{op.name} " + " ".join(f"{k}={v}" for k, v in f.items() if k != "opcode")
            except ValueError as e:
                text = str(e)
            lines.append(f"  {i}: {text}")
        return "\n".join(lines)


class Generator:
    """Random programs for ``cfg`` from one seed (deterministic)."""

    def __init__(self, cfg: AccelConfig, seed: int, *, hang: bool = True):
        self.cfg, self.seed, self.hang = cfg, seed, hang
        self.rng = np.random.default_rng(seed)

    # ---- helpers ---------------------------------------------------------------------------
    def _int(self, lo: int, hi: int) -> int:
        """Uniform in [lo, hi] (hi >= lo)."""
        return int(self.rng.integers(lo, hi + 1))

    def _aligned(self, base: int, size: int, nbytes: int) -> int:
        """An address in [base, base + size - nbytes], aligned to the memory width."""
        w = self.cfg.mem_width
        top = max(0, (size - nbytes) // w)
        return base + w * self._int(0, top)

    def _place(self, words: int) -> tuple[int, int]:
        """(buffer, first word) for ``words`` words inside a buffer."""
        aw = self.cfg.act_words
        return self._int(0, 1), self._int(0, max(0, aw - words))

    def _place_apart(self, a: tuple[int, int, int], words: int) -> tuple[int, int]:
        """A placement of ``words`` words that does not overlap range ``a`` = (buf, word, n)."""
        buf, word = self._place(words)
        if buf == a[0] and word < a[1] + a[2] and a[1] < word + words:
            buf = 1 - a[0]
        return buf, word

    def _requant(self) -> tuple[int, int] | None:
        if self.rng.random() < 0.3:
            return None
        return self._int(1, (1 << 16) - 1), self._int(0, 24)

    # ---- commands --------------------------------------------------------------------------
    def cache(self) -> bytes:
        cfg = self.cfg
        tiles = self._int(1, max(1, min(8, cfg.pb_tiles)))
        at = self._aligned(DATA_BASE, DATA_SIZE, tiles * cfg.tile_bytes)
        return isa.cache(at, self._int(0, max(0, cfg.pb_tiles - tiles)), tiles)

    def _act_words(self, most: int) -> int:
        per = max(1, self.cfg.mem_width // self.cfg.rows)  # whole memory beats
        return per * self._int(1, max(1, most // per))

    def load(self) -> bytes:
        n = self._act_words(min(64, self.cfg.act_words))
        buf, word = self._place(n)
        at = self._aligned(DATA_BASE, DATA_SIZE, n * self.cfg.rows)
        return isa.load_act(at, buf, word, n)

    def store(self) -> bytes:
        n = self._act_words(min(64, self.cfg.act_words))
        buf, word = self._place(n)
        at = self._aligned(OUT_BASE, OUT_SIZE, n * self.cfg.rows)
        return isa.store_act(at, buf, word, n)

    def _pb_block(self, dims: list[int]) -> list[int]:
        """The cached block's extent per axis: none, all, or part (PB, off-chip, split)."""
        kind = self.rng.choice(["offchip", "pb", "split"])
        if kind == "offchip":
            return [0] * len(dims)
        if kind == "pb":
            return list(dims)
        return [self._int(1, d) for d in dims]

    def _caches(self, rows: list[tuple[int, int, int, int]]) -> list[bytes]:
        """CACHEs for a GEMM/CONV's cached block, given as its rows (w_addr, off-chip tile,
        PB tile, tiles) of tiles contiguous in both: mostly all of them (legal), sometimes
        with a CACHE of other data over part of the block, sometimes none (what the PB holds
        from earlier programs decides)."""
        cfg = self.cfg
        rows = [row for row in rows if row[3]]
        kind = self.rng.random()
        if not rows or kind < 0.2:
            return []
        cmds = [isa.cache(w + off * cfg.tile_bytes, pb, n) for w, off, pb, n in rows]
        if kind < 0.35:  # another tensor over one or two tiles of a row
            _, _, pb, n = rows[self._int(0, len(rows) - 1)]
            at = pb + self._int(0, n - 1)
            tiles = min(self._int(1, 2), cfg.pb_tiles - at)
            cmds.append(isa.cache(self._aligned(DATA_BASE, DATA_SIZE, tiles * cfg.tile_bytes),
                                  at, tiles))  # fmt: skip
        return cmds

    def gemm(self, acc_state: dict) -> list[bytes]:
        """A GEMM, after the CACHEs of its cached block (:meth:`_caches`)."""
        cfg = self.cfg
        r = cfg.rows
        one_tile = self.rng.random() < 0.35  # hold/accumulate need one M-tile and one N-tile
        m = self._int(1, min(cfg.acc_depth, 3 * r + 2)) if one_tile else self._int(1, 3 * r + 2)
        if self.rng.random() < 0.05:
            m = cfg.acc_depth + self._int(1, r)  # two M-tiles
        k = self._int(1, 3 * r)
        n = self._int(1, cfg.cols) if one_tile else self._int(1, 3 * cfg.cols)
        kt, nt = ceil_div(k, r), ceil_div(n, cfg.cols)
        rq = self._requant()
        hold = accumulate = False
        if one_tile and m <= cfg.acc_depth:
            hold = self.rng.random() < 0.4
            accumulate = self.rng.random() < (0.7 if acc_state.get("held") else 0.15)
        acc_state["held"] = hold
        a_words = m * kt
        o_words = 0 if hold else m * nt * (1 if rq else 4)
        a_buf, a_word = self._place(a_words)
        o_buf, o_word = self._place_apart((a_buf, a_word, a_words), max(1, o_words))
        pb_kt, pb_nt = self._pb_block([kt, nt])
        pb_stride = pb_kt + self._int(0, 2) if pb_kt else 0
        used = (pb_nt - 1) * pb_stride + pb_kt if pb_kt and pb_nt else 0
        pb_tile = self._int(0, max(0, cfg.pb_tiles - used))
        w_stride = kt + self._int(0, 2)
        span = (nt - 1) * w_stride + kt
        w_addr = self._aligned(DATA_BASE, DATA_SIZE, span * cfg.tile_bytes)
        rows = [(w_addr, nt * w_stride, pb_tile + nt * pb_stride, pb_kt) for nt in range(pb_nt)]
        return [*self._caches(rows), isa.gemm(
            m=m, k=k, n=n, a_buf=a_buf, a_word=a_word, o_buf=o_buf, o_word=o_word,
            w_addr=w_addr, w_stride=w_stride, pb_tile=pb_tile, pb_stride=pb_stride,
            pb_kt=pb_kt, pb_nt=pb_nt, requant=rq, relu=bool(self.rng.random() < 0.5),
            accumulate=accumulate, hold=hold,
        )]  # fmt: skip

    def conv(self) -> list[bytes]:
        """A CONV, after the CACHEs of its cached block (:meth:`_caches`)."""
        cfg = self.cfg
        r = cfg.rows
        k = int(self.rng.choice(isa.KERNELS))
        stride = int(self.rng.choice(isa.STRIDES))
        pad = self._int(0, k // 2)
        wide = k <= 3
        c_in, c_out = self._int(1, 2 * r if wide else r), self._int(1, 2 * r if wide else r)
        h, w = self._int(max(1, k - 2 * pad), k + 4), self._int(max(1, k - 2 * pad), k + 4)
        ct, nt, taps = ceil_div(c_in, r), ceil_div(c_out, cfg.cols), k * k
        h_out, w_out = isa.conv_out_size(h, k, stride, pad), isa.conv_out_size(w, k, stride, pad)
        rq = self._requant()
        a_words = ct * h * w
        o_words = nt * max(1, h_out * w_out) * (1 if rq else 4)
        a_buf, a_word = self._place(a_words)
        o_buf, o_word = self._place_apart((a_buf, a_word, a_words), o_words)
        pb_nt, pb_ct, pb_t = self._pb_block([nt, ct, taps])
        pb_cstride = pb_t + self._int(0, 1) if pb_t else 0
        pb_nstride = (pb_ct - 1) * pb_cstride + pb_t + self._int(0, 1) if pb_ct else 0
        used = (pb_nt - 1) * pb_nstride + (pb_ct - 1) * pb_cstride + pb_t if pb_nt else 0
        w_cstride = taps + self._int(0, 1)
        w_nstride = (ct - 1) * w_cstride + taps + self._int(0, 1)
        span = (nt - 1) * w_nstride + (ct - 1) * w_cstride + taps
        w_addr = self._aligned(DATA_BASE, DATA_SIZE, span * cfg.tile_bytes)
        pb_tile = self._int(0, max(0, cfg.pb_tiles - used))
        rows = [
            (w_addr, n_ * w_nstride + c_ * w_cstride, pb_tile + n_ * pb_nstride + c_ * pb_cstride,
             pb_t)
            for n_ in range(pb_nt)
            for c_ in range(pb_ct)
        ]  # fmt: skip
        return [*self._caches(rows), isa.conv(
            h=h, w=w, c_in=c_in, c_out=c_out, k=k, stride=stride, pad=pad, a_buf=a_buf,
            a_word=a_word, o_buf=o_buf, o_word=o_word, w_addr=w_addr, w_cstride=w_cstride,
            w_nstride=w_nstride, pb_tile=pb_tile, pb_cstride=pb_cstride, pb_nstride=pb_nstride,
            pb_nt=pb_nt, pb_ct=pb_ct, pb_t=pb_t, requant=rq, relu=bool(self.rng.random() < 0.5),
        )]  # fmt: skip

    def add(self) -> bytes:
        n = self._int(1, 32)
        a_buf, a_word = self._place(n)
        b_buf, b_word = self._place(n)
        if self.rng.random() < 0.4:  # in place over A
            o_buf, o_word = a_buf, a_word
        else:
            o_buf, o_word = self._place_apart((a_buf, a_word, n), n)
            if o_buf == b_buf and o_word < b_word + n and b_word < o_word + n:
                o_buf, o_word = b_buf, b_word
        return isa.add(
            a_buf=a_buf, a_word=a_word, b_buf=b_buf, b_word=b_word, o_buf=o_buf, o_word=o_word,
            words=n, mult_a=self._int(0, 1 << 12), mult_b=self._int(0, 1 << 12),
            shift=self._int(0, 16), relu=bool(self.rng.random() < 0.5),
        )  # fmt: skip

    def pool(self) -> bytes:
        px, tiles = self._int(1, 16), self._int(1, 4)
        a_buf, a_word = self._place(px * tiles)
        o_buf, o_word = self._place_apart((a_buf, a_word, px * tiles), tiles)
        return isa.pool(
            a_buf=a_buf, a_word=a_word, o_buf=o_buf, o_word=o_word, pixels=px, tiles=tiles,
            mult=self._int(1, (1 << 16) - 1), shift=self._int(0, 24),
        )  # fmt: skip

    def mutate(self, raw: bytes) -> bytes:
        """One field set to a random value (often a boundary), or an illegal opcode."""
        if self.rng.random() < 0.15:
            return isa.raw(int(self.rng.choice([0, 8, 9, 10, 11, 12, 13, 14])))
        op, f = isa.decode(raw)
        names = [n for n in f if n != "opcode"]
        if not names:
            return raw
        name = str(self.rng.choice(names))
        width = isa.LAYOUTS[op][name].width
        top = (1 << width) - 1
        choices = [0, top, f[name] + 1, max(0, f[name] - 1), self._int(0, top)]
        f[name] = int(self.rng.choice(choices)) & top
        value = isa.LAYOUTS[op].const(f).as_value().value
        return value.to_bytes(isa.CMD_BYTES, "little")

    # ---- programs --------------------------------------------------------------------------
    def case(self, index: int, acc_state: dict) -> Case:
        cfg = self.cfg
        kinds = ["cache", "load", "store", "gemm", "gemm", "load"]
        if cfg.conv:
            kinds += ["conv", "conv", "add", "pool"]
        cmds: list[bytes] = []
        for _ in range(self._int(1, 8)):
            kind = str(self.rng.choice(kinds))
            raws = self.gemm(acc_state) if kind == "gemm" else getattr(self, kind)()
            raws = raws if isinstance(raws, list) else [raws]
            if self.rng.random() < 0.1:  # the command, not the CACHEs a GEMM/CONV brings
                raws[-1] = self.mutate(raws[-1])
            if len(cmds) + len(raws) > MAX_COMMANDS:
                break
            cmds += raws
        tail = self.rng.random()
        off_end = tail < 0.04
        if tail >= 0.08:
            cmds.append(isa.done())
        if off_end:  # the program's last command is the last 32 bytes of memory
            prog_addr = cfg.mem_bytes - isa.CMD_BYTES * len(cmds)
        else:
            prog_addr = PROG_BASE + isa.CMD_BYTES * self._int(0, PROG_SIZE // isa.CMD_BYTES - 10)
        timing = str(self.rng.choice(TIMING, p=[0.35, 0.25, 0.3, 0.1] if self.hang else None))
        if not self.hang and timing == "hang":
            timing = "stall"
        latency = self._int(1, 8) if timing == "fast" else self._int(24, 64)
        bpc = self._int(1, cfg.mem_width)
        stall = int(self.rng.choice([32, 128])) if timing == "stall" else 0
        case = Case(index, prog_addr, cmds, timing, latency, bpc, stall, self._int(1, 65535))
        if timing == "hang":
            at = self._int(0, len(cmds) - 1)
            case.hang_addr = prog_addr + isa.CMD_BYTES * at + self._int(0, isa.CMD_BYTES - 1)
        for raw in cmds:
            try:
                op, f = isa.decode(raw)
            except ValueError:
                continue
            if op == isa.Op.STORE_ACT:
                n = f["words"] * cfg.rows
                a, b = max(0, f["mem_addr"]), min(cfg.mem_bytes, f["mem_addr"] + n)
                if a < b:
                    case.stores.append((a, b - a))
        return case

    def memory(self) -> bytes:
        """The batch's initial window: random data and outputs, zeros for the programs."""
        body = self.rng.integers(0, 256, WINDOW - DATA_BASE, dtype=np.uint8).tobytes()
        return bytes(DATA_BASE) + body


# ---- the golden side, comparison and coverage --------------------------------------------------


def weight_source(op: isa.Op, f: dict[str, int], cfg: AccelConfig) -> str:
    if op == isa.Op.GEMM:
        g = GemmGeometry.of(cfg, f)
        used, total = g.pb_tiles_used, g.kt * g.nt
    elif op == isa.Op.CONV:
        g = ConvGeometry.of(cfg, f)
        used, total = g.pb_tiles_used, g.nt * g.ct * g.taps
    else:
        return "-"
    return "offchip" if used == 0 else ("pb" if used >= total else "split")


def outcome_bins(cfg: AccelConfig, case: Case, res) -> list[str]:
    """Coverage bins of one golden run: every command that ran (NONE) or failed."""
    bins = []
    last = (res.pc - case.prog_addr) // isa.CMD_BYTES if res.pc is not None else len(case.cmds)
    fetch_fail = not res.done and (
        res.error in (E.MEM_RANGE, E.BAD_ALIGN, E.MEM_TIMEOUT) and last >= len(case.cmds)
        or (res.error == E.MEM_TIMEOUT and case.hang_addr is not None
            and res.pc is not None and res.pc <= case.hang_addr < res.pc + isa.CMD_BYTES)
    )  # fmt: skip
    for i, raw in enumerate(case.cmds[: last + 1]):
        try:
            op, f = isa.decode(raw)
        except ValueError:
            op, f = None, {}
        if i == last and fetch_fail:
            bins.append(f"FETCH|{res.error.name}|-|{case.timing}")
            break
        err = res.error.name if (i == last and not res.done) else "NONE"
        name = "ILLEGAL" if op is None else op.name
        if op is not None and op.name not in GOALS:
            name = "ILLEGAL"
        if name == "ILLEGAL" or (op in (isa.Op.CONV, isa.Op.ADD, isa.Op.POOL) and not cfg.conv):
            name = "ILLEGAL"
            err = res.error.name if i == last else err
        src = weight_source(op, f, cfg) if op is not None else "-"
        bins.append(f"{name}|{err}|{src}|{case.timing}")
        if op == isa.Op.CONV and cfg.conv:
            bins.append(f"CONV_KSP|k{f['k']}|s{f['stride']}|p{f['pad']}")
    if res.pc is not None and last >= len(case.cmds) and not res.done:
        bins.append(f"FETCH|{res.error.name}|-|{case.timing}")
    return bins


def golden_run(sim: IsaSim, case: Case):
    """Run ``case`` on the golden model (a hang whose first touch is not the chosen fetch is
    dropped, so every compared state is exact); returns the RunResult."""
    if case.hang_addr is not None:
        trial = copy.deepcopy(sim)
        trial.write_program(case.prog_addr, case.cmds)
        trial.hang_addr = case.hang_addr
        r = trial.run(case.prog_addr)
        if r.error != E.MEM_TIMEOUT or not (r.pc <= case.hang_addr < r.pc + isa.CMD_BYTES):
            case.hang_addr, case.timing = None, "slow"
    sim.write_program(case.prog_addr, case.cmds)
    sim.hang_addr = case.hang_addr
    res = sim.run(case.prog_addr)
    sim.hang_addr = None
    if case.hang_addr is not None:
        sim.reset()  # the RTL side resets after a hang (the memory holds a stuck request)
    return res


def compare(case: Case, rtl: dict, gold, gold_mem: dict[int, bytes]) -> list[str]:
    """Differences between the RTL's result (``rtl``: done, error, counters, mem) and the
    golden model's."""
    diffs = []
    if (rtl["done"], rtl["error"]) != (gold.done, int(gold.error)):
        diffs.append(
            f"done/error: RTL {rtl['done']}/{E(rtl['error']).name}, golden "
            f"{gold.done}/{gold.error.name}"
        )
    for k, v in gold.counters.items():
        if k != "cycles" and rtl["counters"].get(k) != v:
            diffs.append(f"counter {k}: RTL {rtl['counters'].get(k)}, golden {v}")
    for addr, want in gold_mem.items():
        got = rtl["mem"][addr]
        if got != want:
            i = next(j for j in range(len(want)) if got[j] != want[j])
            diffs.append(f"memory at {addr + i:#x}: RTL {got[i]:#04x}, golden {want[i]:#04x}")
    return diffs


def regions(case: Case) -> list[tuple[int, int]]:
    """What is compared after ``case``: the output region and every STORE range outside it."""
    out = [(OUT_BASE, OUT_SIZE)]
    out += [(a, n) for a, n in case.stores if not (OUT_BASE <= a and a + n <= WINDOW)]
    return out


def coverage_report(tally: Tally, cfg: AccelConfig) -> dict:
    """Bins hit, and the share of the goal bins (opcode x error code; CONV kernel x stride x
    padding) that were hit."""
    hit_pairs = {tuple(b.split("|")[:2]) for b in tally if not b.startswith("CONV_KSP")}
    ops = [o for o in GOALS if cfg.conv or o not in ("CONV", "ADD", "POOL")]
    goal = {(o, e) for o in ops for e in GOALS[o]}
    if not cfg.conv:
        goal.add(("ILLEGAL", "ILLEGAL_OPCODE"))
    ksp_goal = set()
    if cfg.conv:
        for k in isa.KERNELS:
            ksp_goal |= {f"CONV_KSP|k{k}|s{s}|p{p}" for s in isa.STRIDES for p in range(k // 2 + 1)}
    ksp_hit = {b for b in tally if b.startswith("CONV_KSP")}
    dims = {}
    for i, name in enumerate(("opcode", "error", "weight_source", "timing")):
        dims[name] = sorted({b.split("|")[i] for b in tally if not b.startswith("CONV_KSP")})
    return {
        "preset": cfg.name,
        "bins": dict(sorted(tally.items())),
        "opcode_x_error": {
            "hit": len(goal & hit_pairs),
            "goal": len(goal),
            "missed": sorted("|".join(p) for p in goal - hit_pairs),
        },
        "conv_kernel_stride_pad": {"hit": len(ksp_goal & ksp_hit), "goal": len(ksp_goal)},
        "values_seen": dims,
    }


# ---- the driver (parent process) -------------------------------------------------------------


def run_batch(
    sim: str, preset: str, seed: int, programs: int, out: Path, *, stop_at: int | None = None
) -> dict:
    """One batch on the RTL (``tb/fuzz_tb.py`` inside the simulator); its summary."""
    from sushi_hw.config import PRESETS

    from .runtime import simbuild

    tb_dir = Path(__file__).resolve().parents[1] / "tb"
    out = out.resolve()  # the simulator runs in its own directory
    out.mkdir(parents=True, exist_ok=True)
    summary = out / f"batch-{preset}-{sim}-{seed}.json"
    summary.unlink(missing_ok=True)
    env = {
        "SUSHI_FUZZ": json.dumps(
            {"seed": seed, "programs": programs, "summary": str(summary), "stop_at": stop_at}
        )
    }
    tests, failed, xml = simbuild.run(
        sim, "sushi_sim", PRESETS[preset], "fuzz_tb", env=env, module_dir=tb_dir,
        test_dir=out / f"sim-{preset}-{sim}",
    )  # fmt: skip
    if not summary.exists():
        raise RuntimeError(f"fuzz batch seed={seed} wrote no summary ({xml})")
    res = json.loads(summary.read_text())
    res["cocotb_failed"] = failed
    return res


def save_replay(out: Path, res: dict, sim: str) -> Path:
    path = out / f"replay-{res['preset']}-{res['seed']}-{res['mismatch']['index']}.json"
    path.write_text(json.dumps({**res["mismatch"], "preset": res["preset"], "seed": res["seed"],
                                "sim": sim}, indent=1))  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sushi_sched.fuzz", description=__doc__.split("\n")[0]
    )
    p.add_argument("--presets", default="tiny,default", help="comma-separated (sushi_sim presets)")
    p.add_argument("--sims", default="verilator", help="verilator, icarus or both (comma)")
    p.add_argument("--seconds", type=float, default=180.0, help="time budget (default 180)")
    p.add_argument("--programs", type=int, default=40, help="programs per batch (seed)")
    p.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    p.add_argument("--out", default="build/fuzz")
    p.add_argument(
        "--replay", default=None, help="a replay file: rerun that batch up to the mismatch"
    )
    a = p.parse_args(argv)
    from sushi_hw.config import PRESETS

    out = Path(a.out)
    if a.replay:
        try:
            rep = json.loads(Path(a.replay).read_text())
            preset, seed, index, sim = rep["preset"], rep["seed"], rep["index"], rep["sim"]
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {a.replay}: not a fuzz replay file ({e})", file=sys.stderr)
            return 2
        res = run_batch(sim, preset, seed, index + 1, out, stop_at=index)
        print(json.dumps(res.get("mismatch") or {"mismatch": None}, indent=1))
        return 1 if res.get("mismatch") else 0
    presets = [x for x in a.presets.split(",") if x]
    sims = [x for x in a.sims.split(",") if x]
    for x in presets:
        if x not in PRESETS or x in ("zcu104", "zcu104-dpu"):
            print(f"error: --presets: {x!r} is not a simulated preset (tiny, default, large)",
                  file=sys.stderr)  # fmt: skip
            return 2
    for x in sims:
        if x not in ("verilator", "icarus"):
            print(f"error: --sims: {x!r}; choose verilator or icarus", file=sys.stderr)
            return 2
    if a.programs < 1 or a.seconds <= 0:
        print("error: --programs and --seconds must be positive", file=sys.stderr)
        return 2
    seed = a.seed if a.seed is not None else int(time.time()) % 100_000
    t_end = time.monotonic() + a.seconds
    total, bad, rates = 0, 0, {}
    tallies: dict[str, Tally] = {p_: Tally() for p_ in presets}
    while time.monotonic() < t_end:
        for preset in presets:
            for sim in sims:
                print(f"fuzz: preset {preset} on {sim}, seed {seed}, {a.programs} programs",
                      flush=True)  # fmt: skip
                res = run_batch(sim, preset, seed, a.programs, out)
                total += res["programs_run"]
                rates.setdefault(f"{preset}/{sim}", []).append(res["seconds_per_program"])
                tallies[preset].update(res["coverage"]["bins"])
                if res.get("mismatch"):
                    bad += 1
                    path = save_replay(out, res, sim)
                    print(f"fuzz: MISMATCH seed {seed} program {res['mismatch']['index']}:")
                    print(res["mismatch"]["program"])
                    print("\n".join(res["mismatch"]["diffs"]))
                    print(f"replay: python -m sushi_sched.fuzz --replay {path}")
                if time.monotonic() >= t_end:
                    break
            if time.monotonic() >= t_end:
                break
        seed += 1
    cov = {p_: coverage_report(tallies[p_], PRESETS[p_]) for p_ in presets}
    report = {"programs": total, "mismatches": bad, "seconds_per_program": {
        k: sum(v) / len(v) for k, v in rates.items()}, "coverage": cov}  # fmt: skip
    (out / "fuzz.json").write_text(json.dumps(report, indent=1))
    for p_, c in cov.items():
        oe, ksp = c["opcode_x_error"], c["conv_kernel_stride_pad"]
        print(
            f"coverage {p_}: opcode x error {oe['hit']}/{oe['goal']}, "
            f"conv k x s x p {ksp['hit']}/{ksp['goal']}"
        )
    print(f"fuzz: {total} programs, {bad} mismatching batches; {out / 'fuzz.json'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
