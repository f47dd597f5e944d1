"""Stream simulator: replays a trace through each policy on one cost model and reports.

The accelerator is one FIFO server. A query's latency is its queueing wait plus its service time
(cost model with the PB contents at that moment). PB loads run between queries, occupy the
accelerator and are charged in time, off-chip bytes and energy. ``decision_us_mean`` is the
wall-clock time of the policy's own work per query (choice + cache selection, plus its one-off
start-up work spread over the trace); ``timing=False`` reports 0 so output is byte-reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sushi_hw.config import AccelConfig

from .cache_select import CacheSelector
from .cost import CostModel, EnergyConstants, pb_footprint, tensor_layouts
from .policies import OBJECTIVES, Context, Policy, make_policies, pareto, reload_cost
from .subgraph import EMPTY, SubGraph
from .supernet.base import SuperNet
from .timing import TimingModel
from .traces import Query, TraceScale

DEFAULT_POLICIES = (
    "sushi",
    "no_pb",
    "static_subnet",
    "static_subgraph",
    "last_subnet",
    "clairvoyant",
    "infinite_pb",
)


@dataclass
class Series:
    """Per-query record of one policy (for plots and tests)."""

    latency_ms: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    subnet: list[str] = field(default_factory=list)
    pb_bytes: list[int] = field(default_factory=list)
    pb_tensors: list[SubGraph] = field(default_factory=list)
    slo_ok: list[bool] = field(default_factory=list)
    floor_ok: list[bool] = field(default_factory=list)
    updates_at: list[int] = field(default_factory=list)


@dataclass
class Setup:
    supernet: SuperNet
    cfg: AccelConfig
    cost: CostModel
    candidates: list
    selector: CacheSelector
    layouts: dict[str, str]

    @classmethod
    def build(
        cls,
        supernet: SuperNet,
        cfg: AccelConfig,
        timing: TimingModel | None = None,
        energy: EnergyConstants | None = None,
    ) -> Setup:
        cost = CostModel(cfg, timing, energy)
        table = supernet.accuracy_table()
        if not table:
            raise ValueError(
                f"SuperNet {supernet.name!r} has no accuracy table: it can be costed "
                "(sushi supernet show) but not served by accuracy-aware policies"
            )
        cands = pareto(table, lambda s: cost.query(s).ms)
        layouts = tensor_layouts([supernet.largest(), *table])
        return cls(supernet, cfg, cost, cands, CacheSelector(cost, layouts, cfg.pb_bytes), layouts)

    def scale(self) -> TraceScale:
        return TraceScale.from_points(
            [(self.cost.query(s).ms, s.accuracy) for s in self.candidates]
        )


def run_policy(
    policy: Policy, setup: Setup, trace: Sequence[Query], timing: bool = True, progress=None
) -> tuple[dict, Series]:  # noqa: ANN001 - tqdm or None
    cm, cfg = setup.cost, setup.cfg
    ser = Series()
    off_bytes = pb_hit = load_bytes = updates = 0
    off_mj = energy_mj = 0.0
    decision_ns = 0
    server_free = 0.0

    def load(new: SubGraph, now: float) -> float:
        nonlocal off_bytes, off_mj, energy_mj, load_bytes, updates
        fp = pb_footprint(new, setup.layouts, cfg)
        if fp > cfg.pb_bytes:
            raise AssertionError(f"policy {policy.name} asked for {fp} B of PB > {cfg.pb_bytes}")
        nb, cmds = reload_cost(policy.cache, new, policy.ctx)
        cyc, mj = cm.load_cost(nb, max(1, cmds))
        off_bytes += nb
        load_bytes += nb
        off_mj += mj
        energy_mj += mj + nb * cm.pj_pb * 1e-9
        updates += 1
        policy.cache = new
        return now + cfg.cycles_to_ms(cyc)

    t0 = time.perf_counter_ns()
    first = policy.start()
    decision_ns += time.perf_counter_ns() - t0
    if first != EMPTY:
        server_free = load(first, 0.0)
    for i, q in enumerate(trace):
        start = max(q.t_ms, server_free) if policy.queueing else q.t_ms
        t0 = time.perf_counter_ns()
        choice = policy.choose(q, start - q.t_ms)
        decision_ns += time.perf_counter_ns() - t0
        s = choice.subnet
        c = policy.serve(s)
        finish = start + c.ms
        lat = finish - q.t_ms
        server_free = max(server_free, finish)
        off_bytes += c.offchip_bytes
        pb_hit += c.pb_hit_bytes
        off_mj += c.offchip_energy_mj
        energy_mj += c.energy_mj
        ser.latency_ms.append(lat)
        ser.accuracy.append(float(s.accuracy))
        ser.subnet.append(s.label)
        ser.slo_ok.append(lat <= q.slo_ms + 1e-9)
        ser.floor_ok.append(s.accuracy >= q.acc_floor)
        ser.pb_tensors.append(policy.cache)
        ser.pb_bytes.append(pb_footprint(policy.cache, setup.layouts, cfg))
        t0 = time.perf_counter_ns()
        new = policy.after(i, q, s)
        decision_ns += time.perf_counter_ns() - t0
        if new is not None and new != policy.cache:
            server_free = load(new, server_free)
            ser.updates_at.append(i)
        if progress is not None:
            progress.update(1)
    lat = np.asarray(ser.latency_ms)
    n = len(trace)
    served = {}
    for lab in ser.subnet:
        served[lab] = served.get(lab, 0) + 1
    report = {
        "mean_latency_ms": float(lat.mean()),
        "p50_latency_ms": float(np.percentile(lat, 50)),
        "p99_latency_ms": float(np.percentile(lat, 99)),
        "slo_attainment": sum(ser.slo_ok) / n,
        "mean_accuracy": float(np.mean(ser.accuracy)),
        "offchip_bytes": int(off_bytes),
        "offchip_energy_mj": float(off_mj),
        "pb_hit_bytes": int(pb_hit),
        "cache_updates": int(updates),
        "decision_us_mean": decision_ns / 1e3 / n if timing else 0.0,
        # extras
        "floor_attainment": sum(ser.floor_ok) / n,
        "energy_mj": float(energy_mj),
        "pb_load_bytes": int(load_bytes),
        "pb_mean_bytes": float(np.mean(ser.pb_bytes)),
        "pb_peak_bytes": int(max(ser.pb_bytes)),
        "served": dict(sorted(served.items())),
        "queueing": policy.queueing,
    }
    return report, ser


def simulate(
    supernet: SuperNet,
    cfg: AccelConfig,
    trace: Sequence[Query],
    objective: str,
    policies: Sequence[str] = DEFAULT_POLICIES,
    update_every: int = 64,
    window: int = 128,
    drift_len: int = 16,
    timing: bool = True,
    progress: bool = False,
    setup: Setup | None = None,
) -> tuple[dict, dict[str, Series]]:
    """Run every policy on ``trace``. Returns (report dict, per-policy series)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose {' or '.join(OBJECTIVES)}")
    if not trace:
        raise ValueError("empty trace")
    for name, v in (("update_every", update_every), ("window", window), ("drift_len", drift_len)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1 (got {v})")
    setup = setup or Setup.build(supernet, cfg)
    ctx = Context(
        setup.cost,
        setup.candidates,
        objective,
        setup.selector,
        trace,
        update_every,
        window,
        drift_len,
    )
    pols = make_policies(list(policies), ctx)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(trace) * len(pols), desc="simulate", unit="q", leave=False)
    reports, series = {}, {}
    for p in pols:
        reports[p.name], series[p.name] = run_policy(p, setup, trace, timing, bar)
    if bar is not None:
        bar.close()
    min_useful = setup.selector.min_useful_bytes(setup.candidates)
    notes = []
    if cfg.pb_bytes < min_useful or min_useful == 0:
        notes.append(
            f"PB ({cfg.pb_bytes} B) is smaller than any useful SubGraph slice "
            f"({min_useful} B): nothing is cached, PB policies behave like no_pb"
        )
    cm = setup.cost
    config = {
        "supernet": supernet.name,
        "accel": cfg.to_dict(),
        "objective": objective,
        "policies": list(policies),
        "queries": len(trace),
        "update_every": update_every,
        "window": window,
        "drift_len": drift_len,
        "timing_model": {k: v for k, v in vars(cm.timing).items() if k != "cfg"},
        "energy_constants": cm.energy.to_dict(),
        "candidates": [
            {
                "id": s.id,
                "key": s.key,
                "accuracy": s.accuracy,
                "latency_ms_empty_pb": cm.query(s).ms,
                "macs": s.macs,
                "weight_bytes": s.weight_bytes,
            }
            for s in setup.candidates
        ],
        "pb_min_useful_bytes": min_useful,
        "notes": notes,
    }
    out = {"config": config, "policies": reports}
    gap = clairvoyant_gap(reports)
    if gap is not None:
        out["sushi_vs_clairvoyant"] = gap
    return out, series


def clairvoyant_gap(reports: dict) -> dict | None:
    """The share of clairvoyant's saving over no_pb that sushi reaches, per metric (1.0: as
    much; None where clairvoyant saves nothing)."""
    if not {"sushi", "no_pb", "clairvoyant"} <= set(reports):
        return None
    base, s, c = reports["no_pb"], reports["sushi"], reports["clairvoyant"]
    out = {}
    for m, sign in (
        ("mean_latency_ms", -1),
        ("offchip_energy_mj", -1),
        ("mean_accuracy", 1),
        ("slo_attainment", 1),
    ):
        cs = sign * (c[m] - base[m])
        out[m] = (sign * (s[m] - base[m]) / cs) if cs > 1e-12 else None
    return out
