"""Serving policies: which SubNet each query gets and what the PB holds.

All policies share one per-query rule (:func:`pick`) and differ in the PB contents:

* ``sushi``: SubGraph Stationary. Every ``update_every`` queries, or on drift (the last
  ``drift_len`` queries were all served by one SubNet the PB was not chosen for), it selects the
  SubGraph that best serves the recent window (knapsack over the SubNets served there) and
  switches only if the saving expected over the next period exceeds the load cost. With the
  accuracy objective it also tries the SubGraph of the SubNets the window's queries *would*
  pick if their SubNet were cached, replays the window under each option, and switches at once
  to one that meets more SLOs or serves more accuracy (the PB buying accuracy).
* ``no_pb``: nothing cached; every weight from off-chip.
* ``static_subnet``: one SubNet for the whole trace (the one meeting most queries' floor and SLO on
  its own, chosen offline); its best part that fits is cached once.
* ``static_subgraph``: the SubGraph that best serves the whole trace (chosen offline from the
  SubNets an empty-PB server would pick), cached once, never updated.
* ``last_subnet``: after each query, cache as much of the just-served SubNet as fits.
* ``oracle``: a documented *bound*, not a schedule: each query is served as if the PB held all of
  its SubNet's weights, loaded for free (cycles: a lower bound for any PB content), while its
  off-chip weight bytes are the fractional-knapsack minimum for the real PB capacity (tiles
  ranked by how often the M-tiles re-stream them). With ``objective=latency`` it queues like the
  others (FIFO latency is monotone in service times, so it is never slower than any online
  policy); with ``objective=accuracy`` it also ignores queueing (each query sees an idle
  accelerator), so its feasible set contains every online policy's and its accuracy and SLO
  attainment bound theirs.

Per-query rule: ``latency`` objective: the fastest candidate meeting the accuracy floor; if none
does, the most accurate (a floor miss). ``accuracy`` objective: the most accurate candidate whose
queue wait + service time meets the SLO; if none does, the least accurate (an SLO miss).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .cache_select import CacheSelector
from .cost import CostModel, QueryCost, layer_parts
from .subgraph import EMPTY, SubGraph
from .supernet.base import SubNet
from .traces import Query

OBJECTIVES = ("latency", "accuracy")


@dataclass
class Context:
    cost: CostModel
    candidates: list[SubNet]  # Pareto set, accuracy ascending (latency ascending too)
    objective: str
    selector: CacheSelector
    trace: Sequence[Query]
    update_every: int = 64
    window: int = 128
    drift_len: int = 16


def pareto(subnets: Sequence[SubNet], latency: Callable[[SubNet], float]) -> list[SubNet]:
    """SubNets not dominated in (latency lower, accuracy higher), sorted by accuracy."""
    pts = [(latency(s), s.accuracy, s) for s in subnets if s.accuracy is not None]
    keep = [
        s
        for lat, acc, s in pts
        if not any((l2 <= lat and a2 >= acc) and (l2 < lat or a2 > acc) for l2, a2, _ in pts)
    ]
    return sorted(keep, key=lambda s: (s.accuracy, latency(s)))


@dataclass(frozen=True)
class Pick:
    subnet: SubNet
    met: bool  # the objective's constraint was predicted met (floor or SLO)


def pick(ctx: Context, q: Query, wait_ms: float, latency: Callable[[SubNet], float]) -> Pick:
    cands = ctx.candidates
    if ctx.objective == "latency":
        ok = [s for s in cands if s.accuracy >= q.acc_floor]
        if not ok:
            return Pick(cands[-1], False)
        return Pick(min(ok, key=lambda s: (latency(s), -s.accuracy)), True)
    ok = [s for s in cands if wait_ms + latency(s) <= q.slo_ms]
    if not ok:
        return Pick(cands[0], False)
    return Pick(max(ok, key=lambda s: (s.accuracy, -latency(s))), True)


class Policy:
    """Base: serves with whatever ``cache`` holds; subclasses decide the cache."""

    name = "base"
    queueing = True  # False: each query sees an idle accelerator (only the accuracy oracle)

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.cache: SubGraph = EMPTY

    def start(self) -> SubGraph:
        """The PB contents to load before the first query (charged)."""
        return EMPTY

    def latency(self, s: SubNet) -> float:
        return self.ctx.cost.query(s, self.cache).ms

    def choose(self, q: Query, wait_ms: float) -> Pick:
        return pick(self.ctx, q, wait_ms, self.latency)

    def serve(self, s: SubNet) -> QueryCost:
        return self.ctx.cost.query(s, self.cache)

    def after(self, i: int, q: Query, served: SubNet) -> SubGraph | None:
        """Called when query ``i`` was served; may return new PB contents (charged)."""
        return None


class NoPB(Policy):
    name = "no_pb"


class StaticSubNet(Policy):
    name = "static_subnet"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        cm = ctx.cost

        def score(s: SubNet) -> tuple[int, float]:
            lat = cm.query(s).ms
            n = sum(1 for q in ctx.trace if s.accuracy >= q.acc_floor and lat <= q.slo_ms)
            return n, (-lat if ctx.objective == "latency" else s.accuracy)

        self.fixed = max(ctx.candidates, key=score)

    def start(self) -> SubGraph:
        return self.ctx.selector.select([self.fixed])

    def choose(self, q: Query, wait_ms: float) -> Pick:
        s = self.fixed
        if self.ctx.objective == "latency":
            return Pick(s, s.accuracy >= q.acc_floor)
        return Pick(s, wait_ms + self.latency(s) <= q.slo_ms)


class StaticSubGraph(Policy):
    name = "static_subgraph"

    def start(self) -> SubGraph:
        picks = Counter(
            pick(self.ctx, q, 0.0, lambda s: self.ctx.cost.query(s).ms).subnet
            for q in self.ctx.trace
        )
        return self.ctx.selector.select(dict(picks))


class LastSubNet(Policy):
    name = "last_subnet"

    def after(self, i: int, q: Query, served: SubNet) -> SubGraph | None:
        return self.ctx.selector.select([served])


class Sushi(Policy):
    name = "sushi"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.recent: deque[tuple[Query, float, SubNet]] = deque(maxlen=ctx.window)
        self.chosen_for: set[SubNet] = set()
        self.since = 0
        self._wait = 0.0

    def choose(self, q: Query, wait_ms: float) -> Pick:
        self._wait = wait_ms
        return super().choose(q, wait_ms)

    def _value(self, cache: SubGraph, window: Counter[SubNet]) -> float:
        """Bytes-equivalent saving of ``cache`` over the served SubNets of a window."""
        sel = self.ctx.selector
        return sum(
            n * sum(sel.gain(ly, cache[ly.tensor]) for ly in s.layers if ly.tensor in cache)
            for s, n in window.items()
        )

    def _replay(
        self, cache: SubGraph, window: list[tuple[Query, float, SubNet]]
    ) -> tuple[int, float]:
        """(constraints met, summed accuracy) had the window been served with ``cache``."""
        cm = self.ctx.cost
        picks = [pick(self.ctx, q, w, lambda s: cm.query(s, cache).ms) for q, w, _ in window]
        return sum(p.met for p in picks), sum(p.subnet.accuracy for p in picks)

    def _wanted(self, q: Query, wait: float) -> SubNet:
        """Accuracy objective: the most accurate SubNet this query could meet its SLO with if
        the PB held the best part of that SubNet (so the cache can *buy* accuracy)."""
        ctx, sel = self.ctx, self.ctx.selector
        ok = [s for s in ctx.candidates if wait + ctx.cost.query(s, sel.select([s])).ms <= q.slo_ms]
        return max(ok, key=lambda s: s.accuracy) if ok else ctx.candidates[0]

    def after(self, i: int, q: Query, served: SubNet) -> SubGraph | None:
        ctx = self.ctx
        self.recent.append((q, self._wait, served))
        self.since += 1
        tail = list(self.recent)[-ctx.drift_len :]
        kinds = {s for _, _, s in tail}
        drift = (
            len(tail) == ctx.drift_len
            and len(kinds) == 1
            and not kinds <= self.chosen_for
            and self.since >= ctx.drift_len
        )
        if not (i == 0 or drift or self.since >= ctx.update_every):
            return None
        self.since = 0
        win = tail if drift else list(self.recent)
        served_n = Counter(s for _, _, s in win)
        options = [ctx.selector.select(dict(served_n))]
        if ctx.objective == "accuracy":
            options.append(
                ctx.selector.select(dict(Counter(self._wanted(q, w) for q, w, _ in win)))
            )
            cur_score = self._replay(self.cache, win)
            scored = sorted(
                (
                    (self._replay(c, win), self._value(c, served_n), k, c)
                    for k, c in enumerate(options)
                ),
                key=lambda x: (x[0], x[1], -x[2]),
            )
            best_score, _, _, new = scored[-1]
            if best_score > cur_score:  # serves the window better: switch regardless of bytes
                self.chosen_for = set(served_n)
                return new
            new = options[0]
        else:
            new = options[0]
        if new == self.cache:
            self.chosen_for = set(served_n)
            return None
        # switch only if the saving over the next period pays for the load (bytes-equivalent)
        per_query = (self._value(new, served_n) - self._value(self.cache, served_n)) / len(win)
        load = ctx.cost.cfg.mem_bytes_per_cycle * ctx.cost.timing.transfer_cycles(
            reload_bytes(self.cache, new, ctx)
        )
        if i > 0 and per_query * ctx.update_every <= load:
            return None
        if ctx.objective == "accuracy" and self._replay(new, win) < self._replay(self.cache, win):
            return None  # never trade served accuracy or SLOs for bytes
        self.chosen_for = set(served_n)
        return new


class Oracle(Policy):
    name = "oracle"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.queueing = ctx.objective == "latency"
        self._bound: dict[SubNet, QueryCost] = {}

    def bound(self, s: SubNet) -> QueryCost:
        if s not in self._bound:
            self._bound[s] = oracle_bound(self.ctx, s)
        return self._bound[s]

    def latency(self, s: SubNet) -> float:
        return self.bound(s).ms

    def choose(self, q: Query, wait_ms: float) -> Pick:
        return pick(self.ctx, q, wait_ms if self.queueing else 0.0, self.latency)

    def serve(self, s: SubNet) -> QueryCost:
        return self.bound(s)


def oracle_bound(ctx: Context, s: SubNet) -> QueryCost:
    """Cycles with every weight from the PB; off-chip weight bytes minus the most any
    capacity-respecting PB could save (top tiles by M-tile re-stream count)."""
    cm = ctx.cost
    full = cm.query(s, SubGraph.of(s))
    base = cm.query(s)
    tb = cm.cfg.tile_bytes
    worth: list[tuple[int, int]] = []  # (re-streams per tile, tiles)
    for ly in s.layers:
        tiles = sum(p.tiles for p in layer_parts(ly, None, cm.cfg))
        worth.append((len(cm.timing.m_tiles(ly.m)), tiles))
    worth.sort(reverse=True)
    left, saved = ctx.selector.capacity_tiles, 0
    for mt, tiles in worth:
        take = min(left, tiles)
        saved += take * mt * tb
        left -= take
    w_off = base.weight_offchip_bytes - saved
    e = cm.energy
    off_mj = (w_off + base.act_offchip_bytes) * e.dram_pj_per_byte * 1e-9
    total = base.energy_mj - saved * (e.dram_pj_per_byte - e.sram_pj_per_byte) * 1e-9
    return replace(
        full,
        weight_offchip_bytes=w_off,
        act_offchip_bytes=base.act_offchip_bytes,
        pb_hit_bytes=saved,
        offchip_energy_mj=off_mj,
        energy_mj=total,
    )


def reload_bytes(old: SubGraph, new: SubGraph, ctx: Context) -> int:
    """PB bytes to write when switching ``old`` -> ``new``: tensors whose slice changed."""
    sel = ctx.selector
    return ctx.cost.cfg.tile_bytes * sum(sel.tiles(t, d) for t, d in new.items() if old.get(t) != d)


POLICIES: dict[str, type[Policy]] = {
    p.name: p for p in (Sushi, NoPB, StaticSubNet, StaticSubGraph, LastSubNet, Oracle)
}


def make_policies(names: Sequence[str], ctx: Context) -> list[Policy]:
    out = []
    for n in names:
        if n not in POLICIES:
            raise ValueError(f"unknown policy {n!r}; choose from {', '.join(POLICIES)}")
        out.append(POLICIES[n](ctx))
    return out
