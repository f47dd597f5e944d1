"""Choosing the SubGraph to keep in the PB: a multiple-choice knapsack over tensor slices.

For each tensor the options are the slices the window's SubNets use, their common part, and
narrower versions so that big tensors can be cached partly: a quarter, half or three quarters of
the output columns, or of the input channels. The latter matter: a GEMM walks each N-tile's
K-tiles in turn, so a block of leading input channels puts PB tiles between off-chip ones, and
the off-chip stream prefetches during them; a block of leading output columns puts them all in
front, where the stream can run ahead only as far as the dynamic buffer holds.
The value of an option is what it saves over the window, in the cost model's own terms: cycles
saved times ``mem_bytes_per_cycle`` (a cycle is worth the bytes the port moves in it) plus
``byte_weight`` (0.05) times the off-chip weight bytes saved. Time comes first: a byte saved in a
compute-bound layer (early layers re-stream their weights per M-tile, so they save many bytes
and no time) only breaks ties. With both at weight 1 (this module's earlier rule), sushi's
window-by-window choices filled the PB with such layers: 0.3-0.8 points of latency lost against
the same selection at 0.05 on the dev seeds 0-2 of the phases and walk traces on ``zcu104``, for
1-2 points more off-chip energy saved; weight 0 lost another 1-3 points of energy for no
latency. Its weight is the whole tiles it occupies. A greedy on incremental
value per tile (upgrading one tensor at a time) fills ``pb_bytes``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from .cost import CostModel, slice_tiles
from .subgraph import EMPTY, SubGraph
from .supernet.base import Dims, Layer, SubNet

_TRIMS = (0.25, 0.5, 0.75)  # narrower options: this fraction of the output columns
#: weight of an off-chip byte saved against the bytes-equivalent of a cycle saved (module doc)
BYTE_WEIGHT = 0.05


class CacheSelector:
    def __init__(
        self,
        cost: CostModel,
        layouts: Mapping[str, str],
        capacity_bytes: int,
        byte_weight: float = BYTE_WEIGHT,
    ):
        self.cost = cost
        self.byte_weight = byte_weight
        self.layouts = dict(layouts)
        self.cfg = cost.cfg
        self.capacity_tiles = capacity_bytes // self.cfg.tile_bytes
        self._memo: dict[tuple, SubGraph] = {}

    def tiles(self, tensor: str, dims: Dims) -> int:
        return slice_tiles(self.layouts[tensor], dims, self.cfg)

    def gain(self, layer: Layer, cached: Dims) -> float:
        base, lc = self.cost.layer(layer, None), self.cost.layer(layer, cached)
        saved_bytes = base.weight_offchip_bytes - lc.weight_offchip_bytes
        saved_cycles = base.cycles - lc.cycles
        return saved_cycles * self.cfg.mem_bytes_per_cycle + self.byte_weight * saved_bytes

    def _options(self, tensor: str, used: list[Dims]) -> list[Dims]:
        opts = set(used)
        opts.add(tuple(map(min, *used)) if len(used) > 1 else used[0])
        lay = self.layouts[tensor]
        col = 1 if lay == "kn" else 0  # which dim is N (output columns)
        base = list(opts)
        for d in base:
            for f in _TRIMS:
                n = int(d[col] * f) // self.cfg.cols * self.cfg.cols
                if 0 < n < d[col]:
                    opts.add(d[:col] + (n,) + d[col + 1 :])
        if lay != "dw":  # leading input channels: PB tiles then interleave with off-chip ones
            row = 0 if lay == "kn" else 1  # which dim is K's outer (input channels)
            per = math.prod(base[0][2:]) if lay == "oihw" else 1  # K rows per input channel
            step = self.cfg.rows // math.gcd(self.cfg.rows, per)  # whole K-tiles
            for d in base:
                for f in _TRIMS:
                    k = int(d[row] * f) // step * step
                    if 0 < k < d[row]:
                        opts.add(d[:row] + (k,) + d[row + 1 :])
        return sorted(opts)

    def select(self, window: Mapping[SubNet, float] | list[SubNet]) -> SubGraph:
        """The SubGraph (fitting the PB) that saves most over ``window`` (SubNet -> weight)."""
        counts = Counter(window) if isinstance(window, list) else dict(window)
        if self.capacity_tiles <= 0 or not counts:
            return EMPTY
        key = tuple(sorted((sn.key, w) for sn, w in counts.items()))
        if key not in self._memo:
            self._memo[key] = self._select(counts)
        return self._memo[key]

    def _select(self, counts: Mapping[SubNet, float]) -> SubGraph:
        uses: dict[str, list[tuple[Layer, float]]] = {}
        for sn, w in counts.items():
            for ly in sn.layers:
                uses.setdefault(ly.tensor, []).append((ly, w))
        # per tensor: options (dims, tiles, value); keep only the useful ones
        table: dict[str, list[tuple[Dims, int, float]]] = {}
        for t, lw in uses.items():
            opts = []
            for d in self._options(t, sorted({ly.dims for ly, _ in lw})):
                v = sum(w * self.gain(ly, d) for ly, w in lw)
                n = self.tiles(t, d)
                if v > 0 and n <= self.capacity_tiles:
                    opts.append((d, n, v))
            if opts:
                table[t] = opts
        chosen: dict[str, tuple[Dims, int, float]] = {}
        free = self.capacity_tiles
        while True:
            best: tuple[float, float, str, tuple[Dims, int, float]] | None = None
            for t, opts in table.items():
                cur_n, cur_v = chosen[t][1:] if t in chosen else (0, 0.0)
                for o in opts:
                    dn, dv = o[1] - cur_n, o[2] - cur_v
                    if dv <= 0 or dn > free:
                        continue
                    dens = dv / dn if dn > 0 else float("inf")
                    cand = (dens, dv, t, o)
                    if (
                        best is None
                        or cand[:2] > best[:2]
                        or (cand[:2] == best[:2] and (t, o) < (best[2], best[3]))
                    ):
                        best = cand
            if best is None:
                break
            _, _, t, o = best
            free -= o[1] - (chosen[t][1] if t in chosen else 0)
            chosen[t] = o
        return SubGraph({t: o[0] for t, o in chosen.items()})

    def min_useful_bytes(self, subnets: list[SubNet]) -> int:
        """PB bytes of the smallest slice that would save anything for any of ``subnets``."""
        best = None
        for sn in subnets:
            for ly in sn.layers:
                for d in self._options(ly.tensor, [ly.dims]):
                    if self.gain(ly, d) > 0:
                        n = self.tiles(ly.tensor, d)
                        best = n if best is None else min(best, n)
        return 0 if best is None else best * self.cfg.tile_bytes
