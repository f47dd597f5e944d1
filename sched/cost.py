"""Analytical cost model of SushiAccel: cycles, off-chip bytes and energy of one query.

It mirrors docs/architecture.md ("Timing model") for one :class:`sushi_hw.config.AccelConfig`:

* each GEMM layer is cut into ``rows x cols`` weight tiles and M-tiles of ``acc_depth`` rows;
  weights are re-streamed for every M-tile (loop order mt, nt, kt, m);
* a layer's cached part is the tile-aligned leading ``K' x N'`` block of its weights that the PB
  holds (``Layer.gemm_cover``); those tiles come from the PB, the rest from off-chip memory;
* the ISA picks a weight source per K-tile, so a layer whose cached block is narrower than N is
  *split* into two GEMMs (cached columns, then the remaining columns, all off-chip);
* a depthwise layer runs one block-diagonal GEMM per N-tile (C channels x kh*kw taps);
* activations: the first layer's input is loaded and the last output stored off-chip; an
  intermediate feature map larger than ``act_bytes`` spills (written and read back).
  im2col is assumed to happen on chip (address generation), residual adds are not modelled.

Every timing formula lives in :class:`TimingModel` so it can be calibrated against RTL cycle
counts; every energy constant lives in :class:`EnergyConstants`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from sushi_hw.config import AccelConfig

from .subgraph import EMPTY, SubGraph
from .supernet.base import Dims, Layer, SubNet

# --------------------------------------------------------------------------------------------
# Energy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyConstants:
    """Energy per event in pJ. Default: M. Horowitz, "Computing's energy problem (and what we can
    do about it)", ISSCC 2014, 45 nm: DRAM ~640 pJ and 8 KB SRAM ~5 pJ per 32-bit access,
    8-bit multiply 0.2 pJ, 32-bit add 0.1 pJ."""

    dram_pj_per_32b: float = 640.0
    sram_pj_per_32b: float = 5.0
    mul8_pj: float = 0.2
    add32_pj: float = 0.1
    source: str = field(default="Horowitz, ISSCC 2014, 45 nm", compare=False)

    @property
    def dram_pj_per_byte(self) -> float:
        return self.dram_pj_per_32b / 4

    @property
    def sram_pj_per_byte(self) -> float:
        return self.sram_pj_per_32b / 4

    @property
    def mac_pj(self) -> float:
        return self.mul8_pj + self.add32_pj

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Timing: the one place with cycle formulas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimingModel:
    """Cycle formulas of SushiAccel. The three ``*_overhead`` constants are calibration knobs
    (fit them to RTL cycle counts); ``pipeline_latency`` is the array's fixed drain beyond
    ``rows + cols`` (registered product + requantiser)."""

    cfg: AccelConfig
    pipeline_latency: int = 3
    gemm_overhead: int = 8  # descriptor fetch/decode per GEMM command
    query_overhead: int = 64  # doorbell -> first command, done -> host
    #: extra cycles per off-chip stream on top of cfg.mem_latency (controller turnaround)
    stream_overhead: int = 0

    @property
    def pb_fetch_cycles(self) -> int:
        """A tile from the PB: ``cols`` bytes per cycle."""
        return math.ceil(self.cfg.tile_bytes / self.cfg.cols)

    @property
    def mem_fetch_cycles(self) -> int:
        """A tile from off-chip: ``mem_bytes_per_cycle`` (latency hidden by the prefetch)."""
        return math.ceil(self.cfg.tile_bytes / self.cfg.mem_bytes_per_cycle)

    def tile_period(self, m_rows: int, from_pb: bool) -> int:
        fetch = self.pb_fetch_cycles if from_pb else self.mem_fetch_cycles
        return max(m_rows, self.cfg.rows, fetch)

    def m_tiles(self, m: int) -> list[int]:
        d = self.cfg.acc_depth
        return [min(d, m - i) for i in range(0, m, d)]

    def gemm_cycles(self, m: int, tiles: int, pb_tiles: int) -> int:
        """One GEMM: ``tiles`` weight tiles per M-tile, the first ``pb_tiles`` from the PB."""
        off = tiles - pb_tiles
        c = sum(
            pb_tiles * self.tile_period(mr, True) + off * self.tile_period(mr, False)
            for mr in self.m_tiles(m)
        )
        c += self.cfg.rows + self.cfg.cols + self.pipeline_latency + self.gemm_overhead
        if off:
            c += self.cfg.mem_latency + self.stream_overhead  # paid once per weight stream
        return c

    def transfer_cycles(self, nbytes: int) -> int:
        """A bulk off-chip transfer (activations in/out/spill, PB load)."""
        if nbytes <= 0:
            return 0
        return (
            self.cfg.mem_latency
            + self.stream_overhead
            + math.ceil(nbytes / self.cfg.mem_bytes_per_cycle)
        )


# --------------------------------------------------------------------------------------------
# Tiling of one layer
# --------------------------------------------------------------------------------------------


def _dw_ntile_ktiles(ch: int, taps: int, cfg: AccelConfig) -> list[int]:
    """K-tiles of each block-diagonal N-tile of a depthwise layer."""
    c = cfg.cols
    return [math.ceil(min(c, ch - i) * taps / cfg.rows) for i in range(0, ch, c)]


def slice_tiles(layout: str, dims: Dims, cfg: AccelConfig) -> int:
    """Weight tiles (PB slots) a tensor slice occupies in the layout the array consumes."""
    if layout == "dw":
        return sum(_dw_ntile_ktiles(dims[0], math.prod(dims[2:]), cfg))
    if layout == "kn":
        k, n = dims
    else:
        k, n = dims[1] * math.prod(dims[2:]), dims[0]
    return math.ceil(k / cfg.rows) * math.ceil(n / cfg.cols)


@dataclass(frozen=True)
class GemmPart:
    m: int
    k_pad: int  # K rounded up to rows (A bytes read per output row and N-tile)
    n_tiles: int
    tiles: int
    pb_tiles: int


def layer_parts(layer: Layer, cached: Dims | None, cfg: AccelConfig) -> list[GemmPart]:
    """The GEMM commands the compiler issues for ``layer`` given the PB's slice of its tensor."""
    r, c = cfg.rows, cfg.cols
    k_cov, n_cov = layer.gemm_cover(cached)
    if layer.layout == "dw":
        kts = _dw_ntile_ktiles(layer.n, layer.k, cfg)
        nt_pb = len(kts) if n_cov >= layer.n else n_cov // c
        return [
            GemmPart(layer.m, kt * r, 1, kt, kt if i < nt_pb else 0) for i, kt in enumerate(kts)
        ]
    kt_all, nt_all = math.ceil(layer.k / r), math.ceil(layer.n / c)
    kt_pb = kt_all if k_cov >= layer.k else k_cov // r
    nt_pb = nt_all if n_cov >= layer.n else n_cov // c
    if kt_pb == 0 or nt_pb == 0:
        return [GemmPart(layer.m, kt_all * r, nt_all, kt_all * nt_all, 0)]
    parts = [GemmPart(layer.m, kt_all * r, nt_pb, kt_all * nt_pb, kt_pb * nt_pb)]
    if nt_pb < nt_all:  # split: the uncached columns as a second, all-off-chip GEMM
        rest = nt_all - nt_pb
        parts.append(GemmPart(layer.m, kt_all * r, rest, kt_all * rest, 0))
    return parts


# --------------------------------------------------------------------------------------------
# Costs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCost:
    name: str
    cycles: int
    gemms: int
    macs: int
    weight_offchip_bytes: int
    pb_hit_bytes: int
    act_offchip_bytes: int
    sram_bytes: int  # on-chip buffer traffic (PB, dynamic buffer, activations)


@dataclass(frozen=True)
class QueryCost:
    layers: tuple[LayerCost, ...]
    cycles: int
    ms: float
    weight_offchip_bytes: int
    act_offchip_bytes: int
    pb_hit_bytes: int
    macs: int
    offchip_energy_mj: float
    energy_mj: float

    @property
    def offchip_bytes(self) -> int:
        return self.weight_offchip_bytes + self.act_offchip_bytes


class CostModel:
    """Cost of serving SubNets on one accelerator configuration, memoised per (SubNet, PB)."""

    def __init__(
        self,
        cfg: AccelConfig,
        timing: TimingModel | None = None,
        energy: EnergyConstants | None = None,
    ):
        self.cfg = cfg
        self.timing = timing or TimingModel(cfg)
        if self.timing.cfg != cfg:
            raise ValueError("TimingModel was built for a different AccelConfig")
        self.energy = energy or EnergyConstants()
        self._layer_memo: dict[tuple[Layer, Dims | None], LayerCost] = {}
        self._query_memo: dict[tuple[SubNet, SubGraph], QueryCost] = {}

    # -- per layer --------------------------------------------------------------------------
    def layer(self, layer: Layer, cached: Dims | None = None) -> LayerCost:
        key = (layer, cached)
        hit = self._layer_memo.get(key)
        if hit is not None:
            return hit
        cfg, tm = self.cfg, self.timing
        tb = cfg.tile_bytes
        cycles = w_off = pb = sram = 0
        parts = layer_parts(layer, cached, cfg)
        for p in parts:
            mt = len(tm.m_tiles(p.m))
            cycles += tm.gemm_cycles(p.m, p.tiles, p.pb_tiles)
            w_off += mt * (p.tiles - p.pb_tiles) * tb
            pb += mt * p.pb_tiles * tb
            # dynamic buffer write+read of streamed tiles, A reads, int32 output writes
            sram += 2 * mt * (p.tiles - p.pb_tiles) * tb + p.n_tiles * p.m * p.k_pad
            sram += p.m * p.n_tiles * cfg.cols
        out = LayerCost(layer.name, cycles, len(parts), layer.macs, w_off, pb, 0, sram + pb)
        self._layer_memo[key] = out
        return out

    # -- per query --------------------------------------------------------------------------
    def activation_transfers(self, subnet: SubNet) -> list[list[int]]:
        """Off-chip activation transfers (bytes) charged to each layer: the first layer's input
        load, spills of intermediate maps larger than ``act_bytes`` (write + read back), and
        the last layer's output store."""
        layers = subnet.layers
        xfers: list[list[int]] = [[] for _ in layers]
        xfers[0].append(layers[0].in_bytes)
        for i, ly in enumerate(layers[:-1]):
            if ly.out_bytes > self.cfg.act_bytes:
                xfers[i] += [ly.out_bytes, ly.out_bytes]
        xfers[-1].append(layers[-1].out_bytes)
        return xfers

    def query(self, subnet: SubNet, cache: SubGraph = EMPTY) -> QueryCost:
        key = (subnet, cache)
        hit = self._query_memo.get(key)
        if hit is not None:
            return hit
        costs = []
        for ly, xf in zip(subnet.layers, self.activation_transfers(subnet), strict=True):
            lc = self.layer(ly, cache.get(ly.tensor))
            if xf:  # activation transfers are not overlapped with compute (conservative)
                act = sum(xf)
                extra = sum(self.timing.transfer_cycles(b) for b in xf)
                lc = LayerCost(
                    lc.name,
                    lc.cycles + extra,
                    lc.gemms,
                    lc.macs,
                    lc.weight_offchip_bytes,
                    lc.pb_hit_bytes,
                    act,
                    lc.sram_bytes + act,
                )
            costs.append(lc)
        out = self._total(costs)
        self._query_memo[key] = out
        return out

    def _total(self, costs: Iterable[LayerCost]) -> QueryCost:
        costs = tuple(costs)
        e = self.energy
        cycles = self.timing.query_overhead + sum(c.cycles for c in costs)
        w_off = sum(c.weight_offchip_bytes for c in costs)
        a_off = sum(c.act_offchip_bytes for c in costs)
        macs = sum(c.macs for c in costs)
        off_pj = (w_off + a_off) * e.dram_pj_per_byte
        total_pj = off_pj + sum(c.sram_bytes for c in costs) * e.sram_pj_per_byte + macs * e.mac_pj
        return QueryCost(
            costs,
            cycles,
            self.cfg.cycles_to_ms(cycles),
            w_off,
            a_off,
            sum(c.pb_hit_bytes for c in costs),
            macs,
            off_pj * 1e-9,
            total_pj * 1e-9,
        )

    # -- cache loads ----------------------------------------------------------------------------
    def load_cost(self, nbytes: int) -> tuple[int, float]:
        """(cycles, off-chip energy mJ) of writing ``nbytes`` into the PB from off-chip."""
        return self.timing.transfer_cycles(nbytes), nbytes * self.energy.dram_pj_per_byte * 1e-9


def tensor_layouts(subnets: Iterable[SubNet]) -> dict[str, str]:
    return {ly.tensor: ly.layout for s in subnets for ly in s.layers}


def pb_footprint(cache: SubGraph, layouts: dict[str, str], cfg: AccelConfig) -> int:
    """PB bytes a SubGraph occupies: whole weight tiles per tensor slice."""
    return cfg.tile_bytes * sum(slice_tiles(layouts[t], d, cfg) for t, d in cache.items())
