"""A query stream served end to end over any backend, and its report.

:class:`StreamJob` is the whole job of ``sushi demo``: it builds the policies on the cost model,
serves the trace with each of them through :class:`~sushi_sched.runtime.server.Server` and
measures the co-simulation speed. It runs in the caller's process on the golden model or a
board, and inside the simulator on the RTL (:func:`sushi_sched.runtime.rtl.run_on_rtl` pickles
it across). :func:`summarize`, :func:`model_error`, :func:`report_from_results` and
:func:`write_plots` turn its results into ``report.json`` and the plots.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sushi_hw.config import AccelConfig

from ..cost import CostModel
from ..policies import Context, make_policies
from ..simulate import Setup
from ..supernet.base import SuperNet
from ..traces import Query
from .backend import Backend
from .models import DEFAULT_MODEL, served_model
from .server import PolicyResult, Server, query_images


@dataclass
class StreamJob:
    """Serve ``trace`` (``(t_ms, acc_floor, slo_ms)`` rows) with each policy of ``policies``."""

    policies: list[str]
    trace: list[tuple[float, float, float]]
    supernet: str = DEFAULT_MODEL  #: the trained SuperNet served (runtime.models)
    objective: str = "latency"
    seed: int = 0
    update_every: int = 16
    window: int = 32
    drift_len: int = 8
    clock: str | None = None  #: "measured" or "cost_model" (default: what the backend has)

    def __call__(self, backend: Backend, progress=None) -> dict:  # noqa: ANN001
        cfg = backend.cfg
        model = served_model(self.supernet, cfg)
        setup = Setup.build(model.space, cfg)
        server = Server(backend, model)
        trace = [Query(*q) for q in self.trace]
        images = query_images(len(trace), self.seed, len(server.y_test))
        ctx = Context(
            setup.cost,
            setup.candidates,
            self.objective,
            setup.selector,
            trace,
            self.update_every,
            self.window,
            self.drift_len,
        )
        server.load_weights()
        counted = _CycleCount(backend)
        server.backend = counted
        results = []
        asleep0 = getattr(backend, "asleep_seconds", None)
        t0 = time.perf_counter()
        for policy in make_policies(list(self.policies), ctx):
            backend.reset()  # each policy starts from a reset accelerator and an empty PB
            results.append(
                server.serve(
                    policy, trace, images, setup.cost, setup.candidates, progress, self.clock
                )
            )
        cosim_s = time.perf_counter() - t0
        server.backend = backend
        clock = self.clock or server.cycles_source
        out = {
            "backend": backend.name,
            "cycles_source": clock,
            "policies": {r.name: summarize(r, cfg, setup.cost) for r in results},
            "records": {r.name: [vars(x) for x in r.records] for r in results},
            "pb_series": {r.name: r.pb_series for r in results},
            "updates_at": {r.name: r.updates_at for r in results},
            "cached": {r.name: r.cached for r in results},
            "serve_seconds": cosim_s,
            "candidates": [
                {
                    "id": s.key,
                    "accuracy": s.accuracy,
                    "model_cycles_empty_pb": setup.cost.query(s).cycles,
                }
                for s in setup.candidates
            ],
        }
        if clock == "measured":
            out.update(model_error(results))
        else:
            out.update(model_error_max=None, model_error_mean=None, model_points=0)
        if asleep0 is not None:  # the simulator: its rate with the host asleep, same programs
            asleep = backend.asleep_seconds - asleep0
            out.update(
                cosim_cycles=counted.cycles,
                cosim_seconds=cosim_s,
                cosim_cycles_per_s=counted.cycles / cosim_s,
                freerun_seconds=asleep,
                freerun_cycles_per_s=counted.cycles / asleep,
            )
        else:
            out.update(cosim_cycles_per_s=None, freerun_cycles_per_s=None)
        return out


@dataclass
class DemoJob:
    """Several :class:`StreamJob` runs (e.g. traces x objectives) on one backend session, each
    from a reset accelerator; returns their results in order."""

    jobs: list[StreamJob]

    def __call__(self, backend: Backend, progress=None) -> list[dict]:  # noqa: ANN001
        out = []
        for job in self.jobs:
            backend.reset()
            out.append(job(backend, progress))
        return out


def summary_report(reports: Sequence[dict], wall_s: float) -> dict:
    """The top-level report.json of a demo: every run's report and what holds over all."""
    errs = [r for r in reports if r["model_error_max"] is not None]
    cosim = [r for r in reports if r["cosim_cycles_per_s"] is not None]
    first = reports[0]
    out = {
        "supernet": first["supernet"],
        "accel": first["config"]["accel"],
        "backend": first["config"]["backend"],
        "runs": {f"{r['trace'].get('kind', 'file')}-{r['objective']}": r for r in reports},
        "mismatches": sum(r["mismatches"] for r in reports),
        "queries": sum(r["queries"] * len(r["policies"]) for r in reports),
        "model_error_max": max((r["model_error_max"] for r in errs), default=None),
        "model_points": sum(r["model_points"] for r in errs),
        "wall_seconds": wall_s,
        "cosim_cycles_per_s": None,
        "freerun_cycles_per_s": None,
        "cosim_ratio": None,
    }
    if cosim:  # the worst run's rate against its own free-run measurement
        worst = min(cosim, key=lambda r: r["cosim_cycles_per_s"] / r["freerun_cycles_per_s"])
        out.update(
            cosim_cycles_per_s=worst["cosim_cycles_per_s"],
            freerun_cycles_per_s=worst["freerun_cycles_per_s"],
            cosim_ratio=worst["cosim_cycles_per_s"] / worst["freerun_cycles_per_s"],
        )
    return out


class _CycleCount:
    """The backend, counting the cycles of every program it runs."""

    def __init__(self, backend: Backend):
        self._b, self.cycles = backend, 0
        self.cfg, self.name, self.cycle_accurate = backend.cfg, backend.name, backend.cycle_accurate

    def write(self, addr: int, data: bytes) -> None:
        self._b.write(addr, data)

    def read(self, addr: int, n: int) -> bytes:
        return self._b.read(addr, n)

    def run(self, prog_addr: int, what: str = ""):  # noqa: ANN201
        r = self._b.run(prog_addr, what)
        self.cycles += r.cycles
        return r

    def counters(self) -> dict[str, int]:
        return self._b.counters()

    def reset(self) -> None:
        self._b.reset()


def summarize(res: PolicyResult, cfg: AccelConfig, cost: CostModel) -> dict:
    """The per-policy entry of report.json."""
    recs = res.records
    lat = np.array([r.latency_ms for r in recs])
    off = sum(r.offchip_bytes for r in recs) + res.cache_bytes
    e = cost.energy
    return {
        "mean_latency_ms": float(lat.mean()),
        "p50_latency_ms": float(np.percentile(lat, 50)),
        "p99_latency_ms": float(np.percentile(lat, 99)),
        "slo_attainment": sum(r.slo_ok for r in recs) / len(recs),
        "mean_accuracy": 100.0 * sum(r.correct for r in recs) / len(recs),
        "offchip_bytes": int(off),
        "offchip_energy_mj": off * e.dram_pj_per_byte * 1e-9,
        "pb_hit_bytes": int(sum(r.pb_bytes for r in recs)),
        # extras
        "floor_attainment": sum(r.floor_ok for r in recs) / len(recs),
        "mean_cycles": float(np.mean([r.cycles for r in recs])),
        "weight_offchip_bytes": int(sum(r.weight_bytes for r in recs)),
        "cache_updates": res.cache_updates,
        "cache_load_bytes": res.cache_bytes,
        "cache_load_cycles": res.cache_cycles,
        "mismatches": sum(not r.match for r in recs),
        "unreachable_accuracy_floors": res.unreachable_floors,
        "served": {k: sum(r.subnet == k for r in recs) for k in sorted({r.subnet for r in recs})},
    }


def model_error(results: Sequence[PolicyResult]) -> dict:
    """Cost model vs RTL cycles over every (SubNet, cache state) served."""
    pairs = {}
    for res in results:
        for r in res.records:
            pairs[(r.subnet, r.pb_tiles, r.cycles)] = (r.model_cycles, r.cycles)
    errs = [abs(m - c) / c for m, c in pairs.values()]
    return {
        "model_error_max": float(max(errs)),
        "model_error_mean": float(np.mean(errs)),
        "model_points": len(errs),
    }


def report_from_results(
    raw: dict, cfg: AccelConfig, trace: Sequence[Query], source: dict, args, space: SuperNet
) -> dict:  # noqa: ANN001
    """report.json: the required keys plus the notes a reader needs."""
    best = max(s.accuracy for s in space.accuracy_table())
    unreachable = [i for i, q in enumerate(trace) if q.acc_floor > best]
    notes = []
    if unreachable:
        notes.append(
            f"{len(unreachable)} queries ask for an accuracy floor above the best "
            f"SubNet ({best:.2f}%); they are served by the most accurate SubNet and "
            f"count as floor misses (first: query {unreachable[0]})"
        )
    if raw.get("cycles_source", "measured") != "measured":
        notes.append(
            f"the {raw.get('backend', 'golden')} backend has no clock: latencies and cycles are "
            "the cost model's for the SubNet and PB contents served (not RTL cycles); results, "
            "predictions and byte counters are the golden model's, bit-exact"
        )
    mism = sum(p["mismatches"] for p in raw["policies"].values())
    return {
        "config": {
            "accel": cfg.to_dict(),
            "supernet": space.name,
            "trace": source,
            "queries": len(trace),
            "objective": args.objective,
            "backend": raw.get("backend"),
            "sim": args.sim if raw.get("backend", "rtl").startswith("rtl") else None,
            "policies": list(raw["policies"]),
            "update_every": args.update_every,
            "seed": args.seed,
        },
        "supernet": space.name,
        "trace": source,
        "objective": args.objective,
        "queries": len(trace),
        "mismatches": mism,
        "policies": raw["policies"],
        "model_error_max": raw["model_error_max"],
        "model_error_mean": raw["model_error_mean"],
        "model_points": raw["model_points"],
        "cycles_source": raw.get("cycles_source", "measured"),
        "cosim_cycles_per_s": raw["cosim_cycles_per_s"],
        "freerun_cycles_per_s": raw["freerun_cycles_per_s"],
        "unreachable_floor_queries": unreachable,
        "notes": notes,
    }


def write_plots(raw: dict, trace: Sequence[Query], out_dir) -> list:  # noqa: ANN001
    """Latency, served accuracy (measured) and PB contents over the stream."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plots import _rolling

    out = Path(out_dir)
    w = max(1, len(trace) // 30)
    x = np.arange(len(trace))
    files = []
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    for name, recs in raw["records"].items():
        axes[0].plot(x, _rolling([r["latency_ms"] * 1e3 for r in recs], w), label=name, lw=1)
        axes[1].plot(x, _rolling([100.0 * r["correct"] for r in recs], w), label=name, lw=1)
        axes[2].step(x, np.asarray(raw["pb_series"][name]) / 1024, where="post", label=name, lw=1)
    axes[0].plot(x, _rolling([q.slo_ms * 1e3 for q in trace], w), "k--", lw=0.8, label="SLO")
    axes[1].plot(x, _rolling([q.acc_floor for q in trace], w), "k--", lw=0.8, label="floor")
    axes[0].set(
        ylabel=f"latency µs (rolling {w})",
        yscale="log",
        title=f"SUSHI on {raw.get('backend', 'the RTL')}: latency, measured accuracy and PB "
        "contents",
    )
    axes[1].set(ylabel=f"top-1 % (rolling {w})")
    axes[2].set(ylabel="PB KiB cached", xlabel="query")
    for ax in axes:
        ax.legend(fontsize=8, ncol=4)
    fig.tight_layout()
    path = out / "stream.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path)

    if raw.get("cycles_source", "measured") == "measured":  # else the model is the clock
        fig, ax = plt.subplots(figsize=(6, 5))
        for name, recs in raw["records"].items():
            model = np.array([r["model_cycles"] for r in recs])
            rtl = np.array([r["cycles"] for r in recs])
            ax.scatter(rtl, model, s=8, label=name)
        lim = [0, max(max(r["cycles"] for r in recs) for recs in raw["records"].values()) * 1.05]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(xlabel="RTL cycles", ylabel="cost-model cycles", title="Cost model vs RTL")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "model_vs_rtl.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def layer_plot(raw: dict, setup: Setup, out_dir, policy: str = "sushi"):  # noqa: ANN001, ANN201
    """``layers.png``: what each layer of the SubNets ``policy`` served most takes from the PB
    and from off-chip (weight bytes per query, cost model = the counters), with the SubGraph
    that served each most often. None when the policy is not in ``raw``."""
    from collections import Counter
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..subgraph import SubGraph

    recs, cached = raw["records"].get(policy), raw["cached"].get(policy, [])
    if not recs:
        return None
    by_key = {s.key: s for s in setup.candidates}

    def cache_at(i: int) -> SubGraph:
        now = SubGraph()
        for start, sg in cached:
            if start <= i:
                now = SubGraph({t: tuple(d) for t, d in sg.items()})
        return now

    served = Counter((r["subnet"], cache_at(r["index"])) for r in recs).most_common(3)
    fig, axes = plt.subplots(len(served), 1, figsize=(10, 2.6 * len(served)), squeeze=False)
    for ax, ((key, sg), n) in zip(axes[:, 0], served, strict=True):
        s = by_key[key]
        layers = setup.cost.query(s, sg).layers
        layers = [ly for ly in layers if ly.weight_offchip_bytes or ly.pb_hit_bytes]
        x = np.arange(len(layers))
        pb = np.array([ly.pb_hit_bytes for ly in layers]) / 1024
        off = np.array([ly.weight_offchip_bytes for ly in layers]) / 1024
        ax.bar(x, pb, label="from the PB", color="tab:green")
        ax.bar(x, off, bottom=pb, label="from off-chip", color="tab:red")
        ax.set_xticks(x, [ly.name for ly in layers], rotation=30, fontsize=7, ha="right")
        ax.set(ylabel="weight KiB", title=f"{policy}: SubNet {s.label} {key} "
               f"({s.accuracy:.1f}%), served {n}x with this PB contents")  # fmt: skip
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(out_dir) / "layers.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
