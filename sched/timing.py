"""The timing model of SushiAccel: every cycle formula of the cost model
(:mod:`sushi_sched.cost`), structured like the RTL and calibrated against its cycle counters."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sushi_hw.act_buffers import act_read_latency
from sushi_hw.array import array_latency
from sushi_hw.config import AccelConfig
from sushi_hw.conv_check import CHECK_CYCLES as CONV_CHECK_CYCLES
from sushi_hw.conv_check import check_cycles
from sushi_hw.gemm_core import GemmCore
from sushi_hw.isa import CMD_BYTES, Op
from sushi_hw.requant import Requantizer
from sushi_hw.vector_unit import vector_latency


@dataclass(frozen=True)
class TimingModel:
    """Cycle formulas of SushiAccel, structured like the RTL (hw/accel.py) and calibrated
    against its cycle counters (constants measured on the ``default`` preset; ``make demo``
    reports the model's error against the RTL, docs/architecture.md "Timing model").

    * every command costs a fetch (``mem_latency`` + ``CMD_BYTES`` at the memory bandwidth)
      plus decode and checks: ``cmd_overhead``;
    * LOAD_ACT / STORE_ACT / CACHE: ``mem_latency`` + bytes at the bandwidth + their overhead;
    * a GEMM: tiles issue back to back; a tile's period is ``max(m_rows, rows + pb_tile_overhead,
      off-chip fetch)``; the last tile only takes its rows; the off-chip stream starts
      ``mem_latency + first_fetch`` after the GEMM unless PB tiles in front hide it; int32 output
      rows cost ``int32_row_cycles`` more at the end; ``gemm_overhead`` covers issue, the A feed,
      the array and requantiser drain and completion: the latencies of the feed, the array and
      the requantiser (taken from the RTL generator) plus ``gemm_fixed``.
    """

    cfg: AccelConfig
    cmd_overhead: int = 6
    gemm_fixed: int = 16
    gemm_overhead: int | None = None  # None: derived from the feed, array and requantiser latencies
    pb_tile_overhead: int = 1
    first_fetch: int = 8
    int32_row_cycles: int = 3
    load_overhead: int = 5
    store_overhead: int = 2
    cache_overhead: int = 4
    query_overhead: int = 1  # the doorbell
    vector_fixed: int = 2  # ADD/POOL: the start and the done handshakes

    def __post_init__(self) -> None:
        if self.gemm_overhead is None:
            drain = (
                GemmCore.feed_latency_for(act_read_latency())
                + array_latency(self.cfg.rows, self.cfg.cols)
                + Requantizer.latency
            )
            object.__setattr__(self, "gemm_overhead", drain + self.gemm_fixed)

    @property
    def conv_check(self) -> int:
        """A CONV's checks take their products' cycles where a GEMM's take one."""
        return CONV_CHECK_CYCLES - 1

    @property
    def bandwidth(self) -> int:
        return min(self.cfg.mem_bytes_per_cycle, self.cfg.mem_width)

    @property
    def mem_fetch_cycles(self) -> int:
        """A tile from off-chip at the memory bandwidth (the dynamic buffer prefetches)."""
        return math.ceil(self.cfg.tile_bytes / self.bandwidth)

    @property
    def cmd_cycles(self) -> int:
        return self.cfg.mem_latency + math.ceil(CMD_BYTES / self.bandwidth) + self.cmd_overhead

    def tile_period(self, m_rows: int, from_pb: bool) -> int:
        base = max(m_rows, self.cfg.rows + self.pb_tile_overhead)
        return base if from_pb else max(base, self.mem_fetch_cycles)

    def m_tiles(self, m: int) -> list[int]:
        d = self.cfg.acc_depth
        return [min(d, m - i) for i in range(0, m, d)]

    def gemm_cycles(
        self, m: int, kt: int, nt: int, pb_kt: int = 0, pb_nt: int = 0, int32: bool = False
    ) -> int:
        """One GEMM command's execution (excluding its fetch): ``kt x nt`` tiles per M-tile,
        the leading ``pb_kt x pb_nt`` of them from the PB (:meth:`walk_cycles`)."""
        in_pb = np.zeros((nt, kt), dtype=bool)
        in_pb[:pb_nt, :pb_kt] = True
        return self.walk_cycles(m, in_pb, int32)

    def conv_cycles(
        self,
        pixels: int,
        ct: int,
        taps: int,
        nt: int,
        pb: tuple[int, int, int] = (0, 0, 0),
        int32: bool = False,
    ) -> int:
        """One CONV command's execution (excluding its fetch): an implicit GEMM of ``pixels``
        rows over ``ct * taps`` K-tiles and ``nt`` N-tiles, tiles (nt, ct, t) inside the cached
        block ``pb = (pb_nt, pb_ct, pb_t)`` from the PB; its checks take ``conv_check`` more
        cycles than a GEMM's."""
        in_pb = np.zeros((nt, ct, taps), dtype=bool)
        in_pb[: pb[0], : pb[1], : pb[2]] = True
        return self.walk_cycles(pixels, in_pb.reshape(nt, ct * taps), int32) + self.conv_check

    def vector_cycles(self, reads: int, op: Op = Op.ADD) -> int:
        """ADD (``reads = 2 * words``) or POOL (``pixels * tiles``): its checks (longer than a
        GEMM's by the products it needs), one buffer read a cycle, then the vector unit's
        pipeline (sushi_hw.vector_unit)."""
        return check_cycles(op) - 1 + reads + vector_latency() + self.vector_fixed

    def walk_cycles(self, m: int, in_pb: np.ndarray, int32: bool = False) -> int:
        """The weight walk of a GEMM or CONV: ``in_pb[nt, kt]`` says which of an M-tile's tiles
        come from the PB.

        Tiles issue in order; tile j starts ``max(m_rows, rows + pb_tile_overhead)`` after tile
        j-1, and an off-chip tile no earlier than the stream delivers it: the stream starts
        ``mem_latency + first_fetch`` after the GEMM and then brings one tile per
        ``mem_fetch_cycles`` (prefetching into the dynamic buffer while PB tiles compute).
        int32 output rows take 4 buffer words: the last rows cost ``int32_row_cycles`` more, and
        the writer bounds the GEMM when it needs more cycles than the compute.
        """
        nt, kt = in_pb.shape
        pb = int(in_pb.sum())
        off = kt * nt - pb
        mts = self.m_tiles(m)
        base = [max(mr, self.cfg.rows + self.pb_tile_overhead) for mr in mts]
        start0 = self.cfg.mem_latency + self.first_fetch
        if off == 0 or pb == 0:  # closed forms of the recurrence below
            period = [b if off == 0 else max(b, self.mem_fetch_cycles) for b in base]
            c = sum(kt * nt * p for p in period) - period[-1] + mts[-1]
            c += start0 if off else 0
        else:
            c = self._mixed_walk(np.tile(in_pb.reshape(-1), len(mts)), np.repeat(base, kt * nt))
            c += mts[-1]
        if int32:
            writer = 4 * sum(mts) * nt - sum(kt * nt * b for b in base)
            c += max(self.int32_row_cycles * mts[-1], writer)
        return int(c) + self.gemm_overhead

    def _mixed_walk(self, is_pb: np.ndarray, period: np.ndarray) -> int:
        """Start of the last tile of a walk with PB and off-chip tiles mixed. The off-chip
        stream runs ahead at the memory bandwidth, but only as far as the dynamic buffer holds:
        the r-th off-chip tile can land once the (r - capacity)-th has gone into the array
        (while PB tiles compute, the stream prefetches at most a buffer's worth)."""
        fetch = self.mem_fetch_cycles
        cap = self.cfg.dyn_bytes // self.cfg.tile_bytes
        t, landed = 0, self.cfg.mem_latency + self.first_fetch - fetch
        taken: list[int] = []  # when each off-chip tile went into the array
        for i, pb in enumerate(is_pb):
            if i:
                t += int(period[i - 1])
            if not pb:
                r = len(taken)
                room = taken[r - cap] if r >= cap else landed
                landed = max(landed, room) + fetch
                t = max(t, landed)
                taken.append(t)
        return t

    def transfer_cycles(self, nbytes: int, overhead: int | None = None) -> int:
        """A LOAD_ACT/STORE_ACT/CACHE transfer's execution (excluding its fetch)."""
        if nbytes <= 0:
            return 0
        extra = self.load_overhead if overhead is None else overhead
        return self.cfg.mem_latency + math.ceil(nbytes / self.bandwidth) + extra
