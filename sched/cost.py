"""Analytical cost model of SushiAccel: cycles, off-chip bytes and energy of one query.

It mirrors docs/architecture.md ("Timing model") for one :class:`sushi_hw.config.AccelConfig`:

* each GEMM layer is cut into ``rows x cols`` weight tiles and M-tiles of ``acc_depth`` rows;
  weights are re-streamed for every M-tile (loop order mt, nt, kt, m);
* a layer's cached part is the tile-aligned leading ``K' x N'`` block of its weights that the PB
  holds (``Layer.gemm_cover``); those tiles come from the PB, the rest from off-chip memory;
* the ISA picks the weight source per tile, so a partly cached layer is still one GEMM: the
  cached leading tiles come from the PB, the rest stream from off-chip, the accumulator adds;
* a depthwise layer runs one block-diagonal GEMM per N-tile (C channels x kh*kw taps);
* activations: the first layer's input is loaded and the last output stored off-chip (whole
  zero-padded words, as the compiler emits them); an intermediate feature map larger than
  ``act_bytes`` spills (written and read back).
  im2col is assumed to happen on chip (address generation), residual adds are not modelled.

Every timing formula lives in :class:`sushi_sched.timing.TimingModel` so it can be calibrated
against RTL cycle counts; every energy constant lives in :class:`EnergyConstants`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from sushi_hw.config import AccelConfig
from sushi_hw.isa import Op

from .subgraph import EMPTY, SubGraph
from .supernet.base import Dims, Layer, SubNet
from .timing import TimingModel

# --------------------------------------------------------------------------------------------
# Energy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyConstants:
    """Energy per event in pJ. Default: M. Horowitz, "Computing's energy problem (and what we can
    do about it)", ISSCC 2014, 45 nm: DRAM ~640 pJ and 8 KB SRAM ~5 pJ per 32-bit access,
    8-bit multiply 0.2 pJ, 32-bit add 0.1 pJ.

    SRAM energy per access grows with the array's size. The same talk's memory table gives a
    64-bit access of an 8 KB / 32 KB / 1 MB SRAM as 10 / 20 / 100 pJ: per 32 bits 5 / 10 / 50 pJ
    (``sram_points``, at 8 / 32 / 1024 KiB). :meth:`sram_pj_per_32b_at` interpolates them in
    log-log (a power law per segment: exponent 0.5 from 8 to 32 KB, the CACTI-style square
    root, then 0.46 up to 1 MB) and extrapolates the last segment beyond 1 MB (a 2 MiB PB:
    about 69 pJ per 32 bits). ``sram_pj_per_32b`` (the 8 KB figure) is the table's first point.
    """

    dram_pj_per_32b: float = 640.0
    sram_pj_per_32b: float = 5.0
    mul8_pj: float = 0.2
    add32_pj: float = 0.1
    #: (SRAM bytes, pJ per 32-bit access) beyond the 8 KB point (Horowitz, ISSCC 2014)
    sram_points: tuple[tuple[int, float], ...] = ((32 << 10, 10.0), (1 << 20, 50.0))
    sram_ref_bytes: int = 8 << 10
    source: str = field(default="Horowitz, ISSCC 2014, 45 nm", compare=False)

    @property
    def dram_pj_per_byte(self) -> float:
        return self.dram_pj_per_32b / 4

    @property
    def sram_pj_per_byte(self) -> float:
        return self.sram_pj_per_32b / 4

    def sram_pj_per_32b_at(self, nbytes: int) -> float:
        """pJ per 32-bit access of an SRAM of ``nbytes`` (log-log through ``sram_points``; below
        the first point the square root)."""
        pts = [(self.sram_ref_bytes, self.sram_pj_per_32b), *self.sram_points]
        size = max(1, nbytes)
        if size <= pts[0][0]:
            return pts[0][1] * math.sqrt(size / pts[0][0])
        for (s0, e0), (s1, e1) in zip(pts[:-1], pts[1:], strict=True):
            if size <= s1 or (s1, e1) == pts[-1]:
                k = math.log(e1 / e0) / math.log(s1 / s0)
                return e0 * (size / s0) ** k
        return pts[-1][1]  # pragma: no cover - a single point

    def sram_pj_per_byte_at(self, nbytes: int) -> float:
        return self.sram_pj_per_32b_at(nbytes) / 4

    @property
    def mac_pj(self) -> float:
        return self.mul8_pj + self.add32_pj

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Tiling of one layer
# --------------------------------------------------------------------------------------------


def _dw_ntile_ktiles(ch: int, taps: int, cfg: AccelConfig) -> list[int]:
    """K-tiles of each block-diagonal N-tile of a depthwise layer."""
    c = cfg.cols
    return [math.ceil(min(c, ch - i) * taps / cfg.rows) for i in range(0, ch, c)]


def slice_tiles(layout: str, dims: Dims, cfg: AccelConfig) -> int:
    """Weight tiles (PB slots) a tensor slice occupies in the layout the array consumes: a
    GEMM's ``[nt][kt]``, a convolution's ``[nt][ct][tap]`` (docs/isa.md: a tile is one tap of
    ``rows`` input channels)."""
    if layout == "dw":
        return sum(_dw_ntile_ktiles(dims[0], math.prod(dims[2:]), cfg))
    if layout == "kn":
        k, n = dims
        return math.ceil(k / cfg.rows) * math.ceil(n / cfg.cols)
    taps = math.prod(dims[2:])
    return math.ceil(dims[0] / cfg.cols) * math.ceil(dims[1] / cfg.rows) * taps


@dataclass(frozen=True)
class GemmPart:
    """One GEMM or CONV command: ``n_tiles`` N-tiles of ``kt`` K-tiles, a K-tile being one tap
    (of ``taps``) of one channel tile; the cached block (``pb_nt`` N-tiles, ``pb_kt`` channel
    tiles, ``pb_t`` taps) from the PB. A GEMM has one tap."""

    m: int
    k_pad: int  # K rounded up to rows (A bytes read per output row and N-tile)
    n_tiles: int
    tiles: int
    pb_tiles: int
    kt: int = 0
    pb_kt: int = 0
    pb_nt: int = 0
    taps: int = 1
    pb_t: int = 1


def layer_parts(layer: Layer, cached: Dims | None, cfg: AccelConfig) -> list[GemmPart]:
    """The commands the compiler issues for ``layer`` given the PB's slice of its tensor.

    A convolution (``oihw``) is one CONV: its K-tiles are (channel tile, tap) pairs with the taps
    in ring order, so a cached slice with a smaller kernel still covers the leading taps.
    Depthwise layers (``dw``, MobileNetV3) have no command on chip this round: they keep a
    block-diagonal GEMM estimate that no RTL command implements."""
    r, c = cfg.rows, cfg.cols
    if layer.layout == "dw":
        kts = _dw_ntile_ktiles(layer.n, layer.k, cfg)
        _, n_cov = layer.gemm_cover(cached)
        nt_pb = len(kts) if n_cov >= layer.n else n_cov // c
        return [
            GemmPart(
                layer.m,
                kt * r,
                1,
                kt,
                kt if i < nt_pb else 0,
                kt,
                kt if i < nt_pb else 0,
                1 if i < nt_pb else 0,
            )
            for i, kt in enumerate(kts)
        ]
    if layer.layout == "oihw":
        c_out, c_in = layer.dims[:2]
        taps = math.prod(layer.dims[2:])
        ct, nt = math.ceil(c_in / r), math.ceil(c_out / c)
        pb_nt = pb_ct = pb_t = 0
        if cached and len(cached) == len(layer.dims):
            co, ci = min(c_out, cached[0]), min(c_in, cached[1])
            pb_nt = nt if co >= c_out else co // c
            pb_ct = ct if ci >= c_in else ci // r
            pb_t = min(taps, math.prod(cached[2:]))  # the centre crop: the leading taps
        if 0 in (pb_nt, pb_ct, pb_t):
            pb_nt = pb_ct = pb_t = 0
        return [
            GemmPart(
                layer.m,
                ct * taps * r,
                nt,
                nt * ct * taps,
                pb_nt * pb_ct * pb_t,
                ct * taps,
                pb_ct,
                pb_nt,
                taps,
                pb_t,
            )  # fmt: skip
        ]
    k_cov, n_cov = layer.gemm_cover(cached)
    kt_all, nt_all = math.ceil(layer.k / r), math.ceil(layer.n / c)
    kt_pb = kt_all if k_cov >= layer.k else k_cov // r
    nt_pb = nt_all if n_cov >= layer.n else n_cov // c
    if kt_pb == 0 or nt_pb == 0:
        kt_pb = nt_pb = 0
    # one GEMM: the ISA picks PB or off-chip per tile, the accumulator adds both
    return [
        GemmPart(layer.m, kt_all * r, nt_all, kt_all * nt_all, kt_pb * nt_pb, kt_all, kt_pb, nt_pb)
    ]


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
    sram_pj: float = 0.0  # its energy, each buffer at its own size's pJ per access


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
        e = self.energy
        #: pJ per byte of each on-chip buffer, at its size (EnergyConstants.sram_pj_per_byte_at)
        self.pj_pb = e.sram_pj_per_byte_at(cfg.pb_bytes)
        self.pj_dyn = e.sram_pj_per_byte_at(cfg.dyn_bytes)
        self.pj_act = e.sram_pj_per_byte_at(cfg.act_bytes)
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
        cycles = w_off = pb = sram = dyn = 0
        parts = layer_parts(layer, cached, cfg)
        int32 = layer.out_bytes > layer.m * layer.n  # int32 output (the last layer of digits)
        for p in parts:
            mt = len(tm.m_tiles(p.m))
            if layer.layout == "oihw":  # a CONV
                ct, block = p.kt // p.taps, (p.pb_nt, p.pb_kt, p.pb_t)
                cycles += tm.cmd_cycles + tm.conv_cycles(p.m, ct, p.taps, p.n_tiles, block, int32)
            else:
                cycles += tm.cmd_cycles + tm.gemm_cycles(
                    p.m, p.kt, p.n_tiles, p.pb_kt, p.pb_nt, int32
                )
            w_off += mt * (p.tiles - p.pb_tiles) * tb
            pb += mt * p.pb_tiles * tb
            # dynamic buffer write+read of streamed tiles, A reads, int32 output writes
            dyn += 2 * mt * (p.tiles - p.pb_tiles) * tb
            sram += p.n_tiles * p.m * p.k_pad + p.m * p.n_tiles * cfg.cols
        pj = dyn * self.pj_dyn + sram * self.pj_act + pb * self.pj_pb
        out = LayerCost(
            layer.name, cycles, len(parts), layer.macs, w_off, pb, 0, sram + dyn + pb, pj
        )
        self._layer_memo[key] = out
        return out

    # -- per query --------------------------------------------------------------------------
    def activation_transfers(self, subnet: SubNet) -> list[list[int]]:
        """Off-chip activation transfers (bytes) charged to each layer: the first layer's input
        load, spills of intermediate maps larger than ``act_bytes`` (write + read back), and
        the last layer's output store."""
        cfg = self.cfg
        layers = subnet.layers
        xfers: list[list[int]] = [[] for _ in layers]
        first, last = layers[0], layers[-1]
        if first.layout == "kn":  # GEMM-native input: LOAD_ACT of the zero-padded A words
            xfers[0].append(first.m * math.ceil(first.k / cfg.rows) * cfg.rows)
        elif first.layout == "oihw":  # a feature map: one word of `rows` channels per pixel
            c_in = first.dims[1]
            words = first.in_bytes // c_in * math.ceil(c_in / cfg.rows)
            per_beat = max(1, cfg.mem_width // cfg.rows)  # LOAD_ACT moves whole beats
            xfers[0].append(math.ceil(words / per_beat) * per_beat * cfg.rows)
        else:
            xfers[0].append(first.in_bytes)
        for i, ly in enumerate(layers[:-1]):
            if ly.out_bytes > cfg.act_bytes:
                xfers[i] += [ly.out_bytes, ly.out_bytes]
        if last.layout == "kn":  # STORE_ACT of whole output words (4 per row for int32)
            per = 4 if last.out_bytes > last.m * last.n else 1
            nbytes = last.m * math.ceil(last.n / cfg.cols) * cfg.cols * per
            xfers[-1].append(math.ceil(nbytes / cfg.mem_width) * cfg.mem_width)
        else:
            xfers[-1].append(last.out_bytes)
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
                tm = self.timing
                extra = sum(tm.cmd_cycles + tm.transfer_cycles(b) for b in xf)
                lc = LayerCost(
                    lc.name,
                    lc.cycles + extra,
                    lc.gemms,
                    lc.macs,
                    lc.weight_offchip_bytes,
                    lc.pb_hit_bytes,
                    act,
                    lc.sram_bytes + act,
                    lc.sram_pj + act * self.pj_act,
                )
            costs.append(lc)
        costs += self.vector_costs(subnet)
        out = self._total(costs)
        self._query_memo[key] = out
        return out

    def vector_costs(self, subnet: SubNet) -> list[LayerCost]:
        """The SubNet's residual ADDs and POOL on the vector unit (``SubNet.extra``'s
        ``vector_ops``): ADD reads both operands' words and writes one, POOL reads every word."""
        tm, out = self.timing, []
        for kind, name, pixels, channels in subnet.extra.get("vector_ops", ()):
            words = pixels * math.ceil(channels / self.cfg.rows)
            reads, writes = (2 * words, words) if kind == "add" else (words, words // pixels)
            sram = (reads + writes) * self.cfg.rows
            cycles = tm.cmd_cycles + tm.vector_cycles(reads, Op.ADD if kind == "add" else Op.POOL)
            out.append(LayerCost(name, cycles, 0, 0, 0, 0, 0, sram, sram * self.pj_act))
        return out

    def _total(self, costs: Iterable[LayerCost]) -> QueryCost:
        costs = tuple(costs)
        e = self.energy
        # the doorbell and the closing DONE command
        cycles = self.timing.query_overhead + self.timing.cmd_cycles + sum(c.cycles for c in costs)
        w_off = sum(c.weight_offchip_bytes for c in costs)
        a_off = sum(c.act_offchip_bytes for c in costs)
        macs = sum(c.macs for c in costs)
        off_pj = (w_off + a_off) * e.dram_pj_per_byte
        total_pj = off_pj + sum(c.sram_pj for c in costs) + macs * e.mac_pj
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
    def load_cost(self, nbytes: int, commands: int = 1) -> tuple[int, float]:
        """(cycles, off-chip energy mJ) of writing ``nbytes`` into the PB from off-chip with
        ``commands`` CACHE commands (one program: doorbell, CACHEs, DONE)."""
        if nbytes <= 0:
            return 0, 0.0
        tm = self.timing
        cycles = (
            tm.query_overhead
            + (commands + 1) * tm.cmd_cycles
            + commands * (self.cfg.mem_latency + tm.cache_overhead)
            + math.ceil(nbytes / tm.bandwidth)
        )
        return cycles, nbytes * self.energy.dram_pj_per_byte * 1e-9


def tensor_layouts(subnets: Iterable[SubNet]) -> dict[str, str]:
    return {ly.tensor: ly.layout for s in subnets for ly in s.layers}


def pb_footprint(cache: SubGraph, layouts: dict[str, str], cfg: AccelConfig) -> int:
    """PB bytes a SubGraph occupies: whole weight tiles per tensor slice."""
    return cfg.tile_bytes * sum(slice_tiles(layouts[t], d, cfg) for t, d in cache.items())


def slice_block(layout: str, dims: Dims, cfg: AccelConfig) -> tuple[int, int]:
    """(tiles, tile columns) of the PB block holding a tensor slice: ``kc x nc`` tiles written
    by ``nc`` CACHE commands (one per tile column, as ``compiler.cache_program`` emits them); a
    depthwise slice is its block-diagonal tiles, one command per N-tile."""
    if layout == "dw":
        kts = _dw_ntile_ktiles(dims[0], math.prod(dims[2:]), cfg)
        return sum(kts), len(kts)
    k, n = dims if layout == "kn" else (dims[1] * math.prod(dims[2:]), dims[0])
    kc, nc = math.ceil(k / cfg.rows), math.ceil(n / cfg.cols)
    return kc * nc, nc


def pb_blocks(
    cache: SubGraph, layouts: dict[str, str], cfg: AccelConfig
) -> dict[str, tuple[int, int, int]]:
    """``{tensor: (first PB tile, tiles, tile columns)}``: the blocks packed one after another
    in tensor-name order, as ``compiler.pb_layout`` lays a SubGraph out."""
    out, at = {}, 0
    for t in sorted(cache):
        tiles, cols = slice_block(layouts[t], cache[t], cfg)
        out[t] = (at, tiles, cols)
        at += tiles
    return out


def reload_tiles(
    old: SubGraph, new: SubGraph, layouts: dict[str, str], cfg: AccelConfig
) -> tuple[int, int]:
    """(tiles, CACHE commands) to switch the PB from ``old`` to ``new``: every block of the new
    layout that is not already in place (same first tile and shape), as the serving stack's
    ``fill_pb`` writes it. Blocks are packed in order, so one tensor whose slice grows or
    shrinks moves every later block, and those are written again."""
    a, b = pb_blocks(old, layouts, cfg), pb_blocks(new, layouts, cfg)
    todo = [blk for t, blk in b.items() if a.get(t) != blk]
    return sum(x[1] for x in todo), sum(x[2] for x in todo)
