"""Serving policies: which SubNet each query gets and what the PB holds.

All policies share one per-query rule (:func:`pick`) and differ in the PB contents:

* ``sushi``: SubGraph Stationary. Every ``update_every`` queries, or on drift (the last
  ``drift_len`` queries were all served by one SubNet the PB was not chosen for), it selects the
  SubGraph that best serves the recent window (knapsack over the SubNets served there, plus the
  long-run mix of everything served so far at ``hedge`` times the window's weight, so that the
  choice does not over-fit one window) and switches only if the saving expected over the next
  period exceeds the load cost (the load as the compiler lays the PB out). With the
  accuracy objective it also tries the SubGraph of the SubNets the window's queries *would*
  pick if their SubNet were cached, replays the window under each option, and switches at once
  to one that meets more SLOs or serves more accuracy (the PB buying accuracy).
* ``no_pb``: nothing cached; every weight from off-chip.
* ``static_subnet``: one SubNet for the whole trace (the one meeting most queries' floor and SLO on
  its own, chosen offline); its best part that fits is cached once.
* ``static_subgraph``: the SubGraph that best serves the whole trace (chosen offline from the
  SubNets an empty-PB server would pick), cached once, never updated.
* ``last_subnet``: after each query, cache as much of the just-served SubNet as fits.
* ``clairvoyant``: an offline schedule that knows the whole trace, respects the real PB capacity
  and pays for every load like the others (time, off-chip bytes, energy): the trace is cut into
  windows of ``update_every`` queries and a dynamic program picks one SubGraph per window from
  a candidate set (for every window: the SubGraph of the SubNets it would serve with an empty
  PB, of those it would serve if each SubNet's own best part were cached, and of it merged with
  the next window; the whole trace's; the empty PB), minimising the window's service time plus
  the load time of each switch (objective ``latency``), or maximising SLOs met, then served
  accuracy (objective ``accuracy``; a window that switches is scored as if the load of the whole
  new SubGraph delayed it). It is the yardstick of the online policy, not a proof of
  optimality: the DP scores windows without the queueing carried across their boundaries.
* ``infinite_pb``: the *ceiling* of any PB, not a schedule: every query is served as if the PB
  held all of its SubNet's weights (no off-chip weight bytes), loaded for free. With
  ``objective=latency`` it queues like the others (FIFO latency is monotone in service times, so
  it is never slower than any policy); with ``objective=accuracy`` it also ignores queueing (each
  query sees an idle accelerator), so its feasible set contains every policy's and its accuracy
  and SLO attainment bound theirs.

Per-query rule: ``latency`` objective: the fastest candidate meeting the accuracy floor; if none
does, the most accurate (a floor miss). ``accuracy`` objective: the most accurate candidate whose
queue wait + service time meets the SLO; if none does, the least accurate (an SLO miss).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .cache_select import CacheSelector
from .cost import CostModel, QueryCost, reload_tiles
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
    hedge: float = 1.0  # sushi: weight of the long-run mix against the recent window's


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
    queueing = True  # False: each query sees an idle accelerator (only infinite_pb, accuracy)

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
        self.history: Counter[SubNet] = Counter()

    def choose(self, q: Query, wait_ms: float) -> Pick:
        self._wait = wait_ms
        return super().choose(q, wait_ms)

    def _value(self, cache: SubGraph, window: Mapping[SubNet, float]) -> float:
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
        self.history[served] += 1
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
        # the window's mix plus the long-run mix (all served so far) at the same total weight
        # times ``hedge``: a SubGraph for the recent queries that keeps serving the usual ones
        served_n = {s: float(n) for s, n in Counter(s for _, _, s in win).items()}
        if ctx.hedge > 0:
            tot = sum(self.history.values())
            for s, n in self.history.items():
                served_n[s] = served_n.get(s, 0.0) + ctx.hedge * len(win) * n / tot
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
                self.chosen_for = {s for _, _, s in win}
                return new
            new = options[0]
        else:
            new = options[0]
        if new == self.cache:
            self.chosen_for = {s for _, _, s in win}
            return None
        # switch only if the saving over the next period pays for the load (bytes-equivalent)
        gain = self._value(new, served_n) - self._value(self.cache, served_n)
        per_query = gain / sum(served_n.values())
        nb, cmds = reload_cost(self.cache, new, ctx)
        load = ctx.cost.cfg.mem_bytes_per_cycle * ctx.cost.load_cost(nb, max(1, cmds))[0]
        if i > 0 and per_query * ctx.update_every <= load:
            return None
        if ctx.objective == "accuracy" and self._replay(new, win) < self._replay(self.cache, win):
            return None  # never trade served accuracy or SLOs for bytes
        self.chosen_for = {s for _, _, s in win}
        return new


class InfinitePB(Policy):
    name = "infinite_pb"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.queueing = ctx.objective == "latency"
        self._full: dict[SubNet, QueryCost] = {}

    def latency(self, s: SubNet) -> float:
        return self.serve(s).ms

    def choose(self, q: Query, wait_ms: float) -> Pick:
        return pick(self.ctx, q, wait_ms if self.queueing else 0.0, self.latency)

    def serve(self, s: SubNet) -> QueryCost:
        if s not in self._full:
            self._full[s] = self.ctx.cost.query(s, SubGraph.of(s))
        return self._full[s]


def reload_cost(old: SubGraph, new: SubGraph, ctx: Context) -> tuple[int, int]:
    """(bytes, CACHE commands) of switching the PB from ``old`` to ``new``, as the compiler lays
    the PB out (:func:`sushi_sched.cost.reload_tiles`)."""
    sel = ctx.selector
    tiles, cmds = reload_tiles(old, new, sel.layouts, ctx.cost.cfg)
    return tiles * ctx.cost.cfg.tile_bytes, cmds


def reload_bytes(old: SubGraph, new: SubGraph, ctx: Context) -> int:
    """PB bytes written when switching ``old`` -> ``new`` (:func:`reload_cost`)."""
    return reload_cost(old, new, ctx)[0]


def load_ms(old: SubGraph, new: SubGraph, ctx: Context) -> float:
    nb, cmds = reload_cost(old, new, ctx)
    cm = ctx.cost
    return cm.cfg.cycles_to_ms(cm.load_cost(nb, max(1, cmds))[0])


class Clairvoyant(Policy):
    name = "clairvoyant"

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self.window = ctx.update_every
        self.plan = clairvoyant_plan(ctx, self.window)

    def start(self) -> SubGraph:
        return self.plan[0]

    def after(self, i: int, q: Query, served: SubNet) -> SubGraph | None:
        # windows [0], [1..W], [W+1..2W], ...: switches after query 0 and every W queries (as
        # sushi re-selects after query 0 and every update_every queries)
        j, r = divmod(i, self.window)
        if r == 0 and j + 1 < len(self.plan) and self.plan[j + 1] != self.cache:
            return self.plan[j + 1]
        return None


class _WindowScorer:
    """Scores of serving windows of the trace with a fixed PB content (see Clairvoyant)."""

    def __init__(self, ctx: Context, window: int):
        self.ctx = ctx
        self.cands = ctx.candidates
        self.acc = np.array([s.accuracy for s in self.cands])
        n = len(ctx.trace)
        self.windows = [[0]] + [list(range(i, min(n, i + window))) for i in range(1, n, window)]
        self._lat: dict[SubGraph, np.ndarray] = {}

    def lat(self, cache: SubGraph) -> np.ndarray:
        if cache not in self._lat:
            cm = self.ctx.cost
            self._lat[cache] = np.array([cm.query(s, cache).ms for s in self.cands])
        return self._lat[cache]

    def picks(self, j: int, lat: np.ndarray, load: float = 0.0) -> tuple[list[int], float]:
        """Candidate indices the window's queries get with per-candidate latencies ``lat``
        (the same rule as :func:`pick`), and the window's cost: service ms (latency
        objective) or minus (SLOs met * 1000 + accuracy) (accuracy objective). A ``load`` (ms)
        starts when the previous window's last query arrives (before the first query for
        window 0) and keeps the accelerator busy."""
        tr, idx = self.ctx.trace, self.windows[j]
        if self.ctx.objective == "latency":
            n = len(lat)
            best = np.empty(n, dtype=int)  # fastest (then most accurate) from i on
            b = n - 1
            for i in range(n - 1, -1, -1):
                if lat[i] < lat[b]:
                    b = i
                best[i] = b
            floors = np.array([tr[q].acc_floor for q in idx])
            at = np.searchsorted(self.acc, floors, side="left")
            out = [int(best[a]) if a < n else n - 1 for a in at]
            return out, float(lat[out].sum())
        free = tr[idx[0]].t_ms
        if load:
            free = max(free, (tr[idx[0] - 1].t_ms if j else free) + load)
        out, met, acc = [], 0, 0.0
        order = np.argsort(-self.acc, kind="stable")  # most accurate first
        for q in idx:
            start = max(free, tr[q].t_ms)
            wait = start - tr[q].t_ms
            ok = [int(k) for k in order if wait + lat[k] <= tr[q].slo_ms]
            k = ok[0] if ok else 0
            ok_k = bool(ok)
            if ok:  # among equally accurate, the fastest
                k = min((x for x in ok if self.acc[x] == self.acc[k]), key=lambda x: lat[x])
            out.append(k)
            free = start + lat[k]
            met += ok_k
            acc += self.acc[k]
        return out, -(met * 1000.0 + acc)


def clairvoyant_plan(ctx: Context, window: int) -> list[SubGraph]:
    """One SubGraph per window of ``window`` queries: the DP described in the module doc."""
    sc = _WindowScorer(ctx, window)
    sel, cands = ctx.selector, ctx.candidates
    empty_lat = sc.lat(EMPTY)
    own_lat = np.array([ctx.cost.query(s, sel.select([s])).ms for s in cands])
    served = [Counter(cands[k] for k in sc.picks(j, empty_lat)[0]) for j in range(len(sc.windows))]
    wanted = [Counter(cands[k] for k in sc.picks(j, own_lat)[0]) for j in range(len(sc.windows))]
    options: list[SubGraph] = [EMPTY, sel.select(dict(sum(served, Counter())))]
    for j in range(len(sc.windows)):
        options += [sel.select(dict(served[j])), sel.select(dict(wanted[j]))]
        if j + 1 < len(sc.windows):
            options.append(sel.select(dict(served[j] + served[j + 1])))
    options = list(dict.fromkeys(options))
    k = len(options)
    base = np.array([[sc.picks(j, sc.lat(c))[1] for c in options] for j in range(len(sc.windows))])
    load = np.array([[load_ms(a, b, ctx) for b in options] for a in options])
    if ctx.objective == "latency":
        trans = np.broadcast_to(base[:, None, :], (len(sc.windows), k, k)) + load[None]
    else:  # a switch delays the window by the load of the whole new SubGraph (conservative)
        full = [load_ms(EMPTY, c, ctx) for c in options]
        late = np.array(
            [
                [sc.picks(j, sc.lat(c), full[i])[1] for i, c in enumerate(options)]
                for j in range(len(sc.windows))
            ]
        )
        same = np.eye(k, dtype=bool)
        trans = np.where(same[None], base[:, None, :], late[:, None, :])
        trans = trans + 1e-6 * load[None]  # ties: the cheaper load
    # DP: before window 0 the PB is empty; trans[j, p, c] = window j served with c after p
    cost = trans[0, 0].copy()
    back = np.zeros((len(sc.windows), k), dtype=int)
    for j in range(1, len(sc.windows)):
        tot = cost[:, None] + trans[j]
        back[j] = np.argmin(tot, axis=0)
        cost = tot[back[j], np.arange(k)]
    c = int(np.argmin(cost))
    plan = [c]
    for j in range(len(sc.windows) - 1, 0, -1):
        c = int(back[j][c])
        plan.append(c)
    return [options[c] for c in reversed(plan)]


POLICIES: dict[str, type[Policy]] = {
    p.name: p
    for p in (Sushi, NoPB, StaticSubNet, StaticSubGraph, LastSubNet, Clairvoyant, InfinitePB)
}


def make_policies(names: Sequence[str], ctx: Context) -> list[Policy]:
    out = []
    for n in names:
        if n not in POLICIES:
            raise ValueError(f"unknown policy {n!r}; choose from {', '.join(POLICIES)}")
        out.append(POLICIES[n](ctx))
    return out
