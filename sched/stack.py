"""The SUSHI stack: SushiSched serving a query stream on the cycle-accurate SushiAccel RTL.

For each query the policy chooses a SubNet with the cost model; the host updates the PB when
the policy says so (a CACHE program), writes the query's image, runs the compiled program, reads
the logits and the counters, checks the logits bit-exactly against the numpy int8 reference and
records cycles, bytes and the prediction. Latency is queueing wait plus the RTL's measured cycles.

The executor is anything with the async methods of :class:`Executor` (the cocotb host in
``tb/stack_tb.py`` drives the RTL), so this module has no simulator dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig
from sushi_hw.program import act_bytes, int32_from_bytes, out_words

from .compiler import LayerCall, PBLayout, WeightImage, cache_program, layer_calls, network_program
from .cost import CostModel
from .digits.space import DigitsSpace
from .policies import Context, Policy, make_policies
from .simulate import Setup
from .subgraph import EMPTY, SubGraph
from .supernet.base import SubNet
from .traces import Query

# Off-chip memory map of the stack (bytes). Each compiled query program gets its own slot in the
# program area, written once: later queries only ring the doorbell at its address.
CACHE_PROG_ADDR = 0x0800
IN_ADDR = 0x1000
OUT_ADDR = 0x1800
WEIGHT_ADDR = 0x2000
PROG_AREA = 0x10000
PROG_SLOT = 0x400
PROG_ADDR = PROG_AREA  # the first slot (also used for one-off programs)


@dataclass
class RunStats:
    """What the accelerator's counters say about one program."""

    done: bool
    error: str
    cycles: int
    counters: dict[str, int]


class Executor(Protocol):
    async def write(self, addr: int, data: bytes) -> None: ...
    async def read(self, addr: int, length: int) -> bytes: ...
    async def run(self, prog_addr: int) -> RunStats: ...


@dataclass
class QueryRecord:
    policy: str
    index: int
    subnet: str
    cycles: int
    model_cycles: int
    latency_ms: float
    slo_ok: bool
    floor_ok: bool
    correct: bool
    match: bool
    offchip_bytes: int
    weight_bytes: int
    pb_bytes: int
    pb_tiles: int


@dataclass
class PolicyResult:
    name: str
    records: list[QueryRecord] = field(default_factory=list)
    cache_updates: int = 0
    cache_bytes: int = 0
    cache_cycles: int = 0
    unreachable_floors: int = 0
    pb_series: list[int] = field(default_factory=list)
    updates_at: list[int] = field(default_factory=list)


def query_images(n: int, seed: int, n_test: int) -> np.ndarray:
    """Which held-out image each query carries (seeded)."""
    return np.random.default_rng(seed).integers(0, n_test, n)


def pb_layout(cfg: AccelConfig, cache: SubGraph) -> PBLayout:
    """The PB tile blocks of a SubGraph (``kn`` tensors: dims = (k, n)), in tensor order."""
    plan = {
        t: (math.ceil(d[0] / cfg.rows), math.ceil(d[1] / cfg.cols))
        for t, d in sorted(cache.items())
    }
    return PBLayout.allocate(cfg, plan)


class Stack:
    """Compiles and serves digits SubNets on one accelerator configuration."""

    def __init__(
        self,
        cfg: AccelConfig,
        space: DigitsSpace | None = None,
        objective: str = "latency",
        update_every: int = 16,
        window: int = 32,
        drift_len: int = 8,
    ):
        self.cfg = cfg
        self.space = space or DigitsSpace()
        self.net = self.space.net
        self.setup = Setup.build(self.space, cfg)
        self.cost: CostModel = self.setup.cost
        self.objective = objective
        self.update_every, self.window, self.drift_len = update_every, window, drift_len
        tensors = {
            name: np.ascontiguousarray(self.net.tensor(name)) for name in self.net.tensor_names()
        }
        self.image = WeightImage.build(cfg, tensors, WEIGHT_ADDR)
        self._programs: dict[tuple[str, tuple], bytes] = {}
        self._slots: dict[tuple[str, tuple], int] = {}  # program -> address, written
        self.x_test, self.y_test = self.net.test_set()

    # ---- compilation ------------------------------------------------------------------------
    def calls(self, subnet: SubNet) -> list[LayerCall]:
        return layer_calls(self.net.layers(subnet.key))

    def program(self, subnet: SubNet, layout: PBLayout) -> bytes:
        key = (subnet.key, tuple(sorted(layout.blocks.items())))
        if key not in self._programs:
            cmds = network_program(
                self.cfg, self.image, layout, self.calls(subnet), 1, IN_ADDR, OUT_ADDR
            )
            self._programs[key] = b"".join(cmds)
        return self._programs[key]

    async def program_at(self, ex: Executor, subnet: SubNet, layout: PBLayout) -> int:
        """Address of the query program in off-chip memory, written on first use."""
        key = (subnet.key, tuple(sorted(layout.blocks.items())))
        if key not in self._slots:
            addr = PROG_AREA + PROG_SLOT * (len(self._slots) + 1)
            body = self.program(subnet, layout)
            if len(body) > PROG_SLOT or addr + PROG_SLOT > self.cfg.mem_bytes:
                raise RuntimeError("program area of the off-chip memory is full")
            await ex.write(addr, body)
            self._slots[key] = addr
        return self._slots[key]

    def policies(self, names: Sequence[str], trace: Sequence[Query]) -> list[Policy]:
        ctx = Context(
            self.cost,
            self.setup.candidates,
            self.objective,
            self.setup.selector,
            trace,
            self.update_every,
            self.window,
            self.drift_len,
        )
        return make_policies(list(names), ctx)

    def query_images(self, n: int, seed: int) -> np.ndarray:
        return query_images(n, seed, len(self.y_test))

    # ---- serving ----------------------------------------------------------------------------
    async def load_weights(self, ex: Executor) -> None:
        for name, blob in self.image.blobs.items():
            await ex.write(self.image.addr[name], blob)

    async def _update_pb(self, ex: Executor, old: PBLayout, new: PBLayout) -> RunStats | None:
        """CACHE the blocks of ``new`` that are not already in place."""
        changed = PBLayout({t: b for t, b in new.blocks.items() if old.blocks.get(t) != b})
        if not changed.blocks:
            return None
        cmds = [*cache_program(self.cfg, self.image, changed), isa.done()]
        await ex.write(CACHE_PROG_ADDR, b"".join(cmds))
        return await ex.run(CACHE_PROG_ADDR)

    async def serve(
        self,
        ex: Executor,
        policy: Policy,
        trace: Sequence[Query],
        images: np.ndarray,
        progress=None,
    ) -> PolicyResult:  # noqa: ANN001
        cfg = self.cfg
        res = PolicyResult(policy.name)
        layout = PBLayout()
        server_free = 0.0
        best_acc = max(s.accuracy for s in self.setup.candidates)

        async def set_cache(new: SubGraph, now: float) -> float:
            nonlocal layout
            new_layout = pb_layout(cfg, new)
            stats = await self._update_pb(ex, layout, new_layout)
            policy.cache, layout = new, new_layout
            if stats is None:
                return now
            if not stats.done:
                raise RuntimeError(f"{policy.name}: PB update failed: {stats.error}")
            res.cache_updates += 1
            res.cache_bytes += stats.counters["rd_weight_bytes"]
            res.cache_cycles += stats.cycles
            return now + cfg.cycles_to_ms(stats.cycles)

        first = policy.start()
        if first != EMPTY:
            server_free = await set_cache(first, 0.0)
        for i, q in enumerate(trace):
            start = max(q.t_ms, server_free) if policy.queueing else q.t_ms
            choice = policy.choose(q, start - q.t_ms)
            s = choice.subnet
            if q.acc_floor > best_acc:
                res.unreachable_floors += 1
            img = int(images[i])
            x = self.x_test[img : img + 1, : self.calls(s)[0].k]
            await ex.write(IN_ADDR, act_bytes(cfg, x))
            stats = await ex.run(await self.program_at(ex, s, layout))
            if not stats.done:
                raise RuntimeError(f"{policy.name}: query {i} ({s.key}) halted: {stats.error}")
            raw = await ex.read(OUT_ADDR, out_words(cfg, 1, 10, int32=True) * cfg.rows)
            logits = int32_from_bytes(cfg, raw, 1, 10)[0]
            ref = self.net.reference_logits(s.key, self.x_test[img : img + 1])[0]
            match = bool(np.array_equal(logits, ref))
            correct = int(np.argmax(logits)) == int(self.y_test[img])
            ms = cfg.cycles_to_ms(stats.cycles)
            finish = start + ms
            lat = finish - q.t_ms
            server_free = max(server_free, finish)
            c = stats.counters
            res.records.append(
                QueryRecord(
                    policy.name,
                    i,
                    s.key,
                    stats.cycles,
                    self.cost.query(s, policy.cache).cycles,
                    lat,
                    lat <= q.slo_ms + 1e-9,
                    s.accuracy >= q.acc_floor,
                    correct,
                    match,
                    c["rd_weight_bytes"] + c["rd_act_bytes"] + c["rd_cmd_bytes"] + c["wr_bytes"],
                    c["rd_weight_bytes"],
                    c["pb_read_bytes"],
                    layout.tiles,
                )
            )
            res.pb_series.append(layout.tiles * cfg.tile_bytes)
            new = policy.after(i, q, s)
            if new is not None and new != policy.cache:
                server_free = await set_cache(new, server_free)
                res.updates_at.append(i)
            if progress is not None:
                progress.update(1)
        return res


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
    raw: dict, cfg: AccelConfig, trace: Sequence[Query], source: dict, args, space: DigitsSpace
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
    mism = sum(p["mismatches"] for p in raw["policies"].values())
    return {
        "config": {
            "accel": cfg.to_dict(),
            "supernet": space.name,
            "trace": source,
            "queries": len(trace),
            "objective": args.objective,
            "sim": args.sim,
            "policies": list(raw["policies"]),
            "update_every": args.update_every,
            "seed": args.seed,
        },
        "queries": len(trace),
        "mismatches": mism,
        "policies": raw["policies"],
        "model_error_max": raw["model_error_max"],
        "model_error_mean": raw["model_error_mean"],
        "model_points": raw["model_points"],
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

    from .plots import _rolling

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
        title="SUSHI on the RTL: latency, measured accuracy and PB contents",
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
