"""Design-space sweeps (``sushi sweep SPEC.toml``): the product of accelerator fields, SuperNets,
traces, seeds and objectives, each point one ``simulate`` run of the listed policies on the cost
model; one CSV table and plots of the gain over ``no_pb``.

A spec (TOML)::

    [sweep]
    preset = "zcu104"                 # the base AccelConfig
    supernets = ["ofa-resnet50"]
    traces = ["phases", "walk"]       # generated kinds (sushi_sched.traces.KINDS)
    objectives = ["latency", "accuracy"]
    policies = ["sushi", "static_subgraph", "clairvoyant", "infinite_pb"]  # no_pb is added
    queries = 2000                    # per trace (default 2000)
    seeds = [0]                       # trace seeds (default [0])
    update_every = 64                 # sushi / clairvoyant parameters (optional)

    [sweep.set]                       # AccelConfig fields: every combination is a point
    mem_bytes_per_cycle = [1, 2, 4, 8, 16, 32, 64]
    pb_bytes = ["512KiB", "1MiB", "2MiB", "4MiB"]

Sizes may be integers or strings with a KiB/MiB suffix. When ``mem_bytes_per_cycle`` is swept
and ``mem_width`` is not, the port width follows it (the smallest power of two that carries
it, never below the preset's): the cost model's bandwidth is ``min(mem_bytes_per_cycle,
mem_width)``, so the swept bandwidth is the one modelled.

Execution: a local process pool (``jobs`` workers, default one per core) or, given the address
of a running Dask ``distributed`` scheduler, that cluster; the sweep code only submits points
and collects results. Each finished point is written to ``OUT/points/<key>.json`` at once, so a
stopped sweep resumes where it was (``--fresh`` starts over). The table is
``OUT/results.csv`` (one row per point and policy), the plots ``OUT/gain_vs_<field>.png``.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sushi_hw.config import PRESETS, AccelConfig, ConfigError, make_config

from .policies import OBJECTIVES, POLICIES
from .traces import KINDS

#: the only keys of ``[sweep]``
SPEC_KEYS = {
    "preset",
    "supernets",
    "traces",
    "objectives",
    "policies",
    "queries",
    "seeds",
    "update_every",
    "window",
    "drift_len",
    "set",
}
#: per-policy report fields copied into the table
METRICS = (
    "mean_latency_ms",
    "p99_latency_ms",
    "slo_attainment",
    "floor_attainment",
    "mean_accuracy",
    "offchip_bytes",
    "offchip_energy_mj",
    "energy_mj",
    "pb_hit_bytes",
    "pb_load_bytes",
    "cache_updates",
)
GAINS = ("latency_gain", "offchip_energy_gain", "accuracy_gain_pp", "slo_gain_pp")


class SweepError(ValueError):
    """A spec that cannot be run; the message says which key and why (one line)."""


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?\s*$")


def _size(v: Any, where: str) -> int | float:
    if isinstance(v, bool):
        raise SweepError(f"{where}: {v!r} is not a number")
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        m = _SIZE.match(v)
        if m:
            mult = {"B": 1, None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]
            x = float(m.group(1)) * mult
            if x != int(x):
                raise SweepError(f"{where}: {v!r} is not a whole number of bytes")
            return int(x)
    raise SweepError(f"{where}: {v!r} is not a number (sizes may be written 512KiB, 2MiB)")


def _list(spec: Mapping, key: str, default: list | None = None) -> list:
    v = spec.get(key, default)
    if v is None:
        raise SweepError(f"[sweep] needs '{key}'")
    if not isinstance(v, list):
        v = [v]
    if not v:
        raise SweepError(f"[sweep] {key} is empty")
    if len(set(map(str, v))) != len(v):
        raise SweepError(f"[sweep] {key} lists a value twice")
    return v


@dataclass(frozen=True)
class Spec:
    preset: str
    supernets: list[str]
    traces: list[str]
    objectives: list[str]
    policies: list[str]
    queries: int
    seeds: list[int]
    fields: dict[str, list]  # swept AccelConfig fields, in spec order
    params: dict[str, int] = field(default_factory=dict)  # update_every, window, drift_len
    source: str = ""

    def points(self) -> list[dict]:
        """Every point of the product, each a JSON-able dict with a stable ``key``."""
        names = list(self.fields)
        out = []
        for combo in itertools.product(*(self.fields[n] for n in names)):
            overrides = dict(zip(names, combo, strict=True))
            overrides = follow_width(PRESETS[self.preset], overrides)
            for sn, tr, seed, obj in itertools.product(
                self.supernets, self.traces, self.seeds, self.objectives
            ):
                p = {
                    "preset": self.preset,
                    "set": overrides,
                    "supernet": sn,
                    "trace": tr,
                    "seed": seed,
                    "objective": obj,
                    "queries": self.queries,
                    "policies": self.policies,
                    "params": self.params,
                }
                p["key"] = point_key(p)
                out.append(p)
        return out


def follow_width(base: AccelConfig, overrides: dict) -> dict:
    """``mem_width`` raised to carry a swept ``mem_bytes_per_cycle`` (unless it is swept too)."""
    out = dict(overrides)
    bpc = out.get("mem_bytes_per_cycle")
    if bpc is not None and "mem_width" not in out:
        w = max(base.mem_width, 1 << max(0, math.ceil(bpc) - 1).bit_length())
        if w != base.mem_width:
            out["mem_width"] = w
    return out


def point_key(p: Mapping) -> str:
    body = {k: v for k, v in p.items() if k != "key"}
    return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep spec {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{path}: not valid TOML: {e}") from None
    return parse_spec(raw, str(path))


def parse_spec(raw: Mapping, source: str = "spec") -> Spec:
    from .supernet import get_supernet

    def fail(msg: str) -> None:
        raise SweepError(f"{source}: {msg}")

    if set(raw) != {"sweep"}:
        fail("a spec has exactly one table, [sweep]" + _extra(set(raw) - {"sweep"}))
    sp = raw["sweep"]
    bad = set(sp) - SPEC_KEYS
    if bad:
        known = ", ".join(sorted(SPEC_KEYS))
        fail(f"unknown key(s) {', '.join(sorted(bad))} in [sweep]; known: {known}")
    try:
        preset = sp.get("preset", "zcu104")
        if preset not in PRESETS:
            fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        supernets = [str(x) for x in _list(sp, "supernets", ["ofa-resnet50"])]
        for s in supernets:
            try:
                net = get_supernet(s)
            except ValueError as e:
                fail(str(e))
            if not net.accuracy_table():
                fail(f"SuperNet {s!r} has no accuracy table: it cannot be served by the policies")
        traces = [str(x) for x in _list(sp, "traces", ["phases"])]
        for t in traces:
            if t not in KINDS:
                fail(f"unknown trace {t!r}; choose from {', '.join(KINDS)}")
        objectives = [str(x) for x in _list(sp, "objectives", ["latency"])]
        for o in objectives:
            if o not in OBJECTIVES:
                fail(f"unknown objective {o!r}; choose from {', '.join(OBJECTIVES)}")
        policies = [str(x) for x in _list(sp, "policies", ["sushi"])]
        for p in policies:
            if p not in POLICIES:
                fail(f"unknown policy {p!r}; choose from {', '.join(POLICIES)}")
        if "no_pb" not in policies:
            policies = ["no_pb", *policies]  # the reference of every gain
        queries = sp.get("queries", 2000)
        if not isinstance(queries, int) or isinstance(queries, bool) or queries < 1:
            fail(f"queries must be a positive integer (got {queries!r})")
        seeds = _list(sp, "seeds", [0])
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            fail(f"seeds must be integers (got {seeds!r})")
        params = {}
        for k in ("update_every", "window", "drift_len"):
            if k in sp:
                v = sp[k]
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    fail(f"{k} must be a positive integer (got {v!r})")
                params[k] = v
        sets = sp.get("set", {})
        if not isinstance(sets, dict):
            fail("[sweep.set] must be a table of FIELD = [values]")
        names = {f for f in AccelConfig.__dataclass_fields__ if f not in ("name", "note")}
        fields: dict[str, list] = {}
        for k in sets:
            if k not in names:
                known = ", ".join(sorted(names))
                fail(f"[sweep.set] {k!r} is not an AccelConfig field; fields: {known}")
            vals = _list(sets, k)
            kind = AccelConfig.__dataclass_fields__[k].type
            conv = []
            for x in vals:
                x = _size(x, f"[sweep.set] {k}")
                if kind == "int":
                    if x != int(x):
                        fail(f"[sweep.set] {k}: {x!r} is not an integer")
                    x = int(x)
                conv.append(x)
            fields[k] = conv
    except SweepError as e:
        if str(e).startswith(source):
            raise
        raise SweepError(f"{source}: {e}") from None
    spec = Spec(
        preset, supernets, traces, objectives, policies, queries, seeds, fields, params, source
    )
    # every configuration must be valid before anything runs
    for p in spec.points():
        try:
            make_config(preset, **p["set"])
        except ConfigError as e:
            raise SweepError(f"{source}: point {p['set']}: {e}") from None
    return spec


def _extra(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    return f" (found {', '.join(keys)})" if keys else ""


# ---- one point (runs in a worker) -----------------------------------------------------------

_SETUPS: dict[tuple, Any] = {}


def run_point(point: Mapping) -> dict:
    """Simulate one point; the record written to ``points/<key>.json``."""
    from .simulate import Setup, simulate
    from .supernet import get_supernet
    from .traces import generate

    t0 = time.perf_counter()
    cfg = make_config(point["preset"], **point["set"])
    net = get_supernet(point["supernet"])
    skey = (point["supernet"], cfg)
    setup = _SETUPS.get(skey)
    if setup is None:
        if len(_SETUPS) > 8:
            _SETUPS.clear()
        setup = _SETUPS[skey] = Setup.build(net, cfg)
    trace = generate(point["trace"], point["queries"], point["seed"], setup.scale())
    rep, _ = simulate(
        net,
        cfg,
        trace,
        point["objective"],
        point["policies"],
        timing=False,
        setup=setup,
        **point["params"],
    )
    pols = {name: {m: r[m] for m in METRICS} for name, r in rep["policies"].items()}
    return {"point": dict(point), "policies": pols, "seconds": time.perf_counter() - t0}


def rows_of(rec: Mapping) -> list[dict]:
    """Table rows (one per policy) of a finished point, with gains over ``no_pb``."""
    p = rec["point"]
    cfg = make_config(p["preset"], **p["set"])
    base = rec["policies"]["no_pb"]
    out = []
    for name, r in rec["policies"].items():
        row = {
            "key": p["key"],
            "preset": p["preset"],
            "supernet": p["supernet"],
            "trace": p["trace"],
            "seed": p["seed"],
            "objective": p["objective"],
            "queries": p["queries"],
            **{
                f: getattr(cfg, f)
                for f in (
                    "rows",
                    "pb_bytes",
                    "mem_bytes_per_cycle",
                    "mem_width",
                    "mem_latency",
                    "clock_mhz",
                )
            },
            "bandwidth_gbs": round(cfg.mem_bytes_per_cycle * cfg.clock_mhz / 1e3, 4),
            **{f"set_{k}": v for k, v in p["set"].items()},
            "policy": name,
            **r,
            "latency_gain": 1 - r["mean_latency_ms"] / base["mean_latency_ms"],
            "offchip_energy_gain": 1 - r["offchip_energy_mj"] / base["offchip_energy_mj"],
            "accuracy_gain_pp": r["mean_accuracy"] - base["mean_accuracy"],
            "slo_gain_pp": 100 * (r["slo_attainment"] - base["slo_attainment"]),
        }
        out.append(row)
    return out


# ---- running ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    done: int  # points run now
    kept: int  # points found finished from an earlier run
    failed: list[tuple[dict, str]]
    csv: Path
    plots: list[Path]
    seconds: float


def _executor(scheduler: str | None, jobs: int | None) -> tuple[Any, Callable[[], None]]:
    if scheduler:
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - a dependency of the project
            raise SweepError("--scheduler needs dask[distributed] installed") from None
        try:
            client = Client(scheduler, timeout="5s")
        except (OSError, TimeoutError) as e:
            raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        return client, client.close
    ex = ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
    return ex, lambda: ex.shutdown(cancel_futures=True)


def run_sweep(
    spec: Spec,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    jobs: int | None = None,
    fresh: bool = False,
    progress: bool = True,
) -> Outcome:
    t0 = time.perf_counter()
    out = Path(out_dir)
    pts_dir = out / "points"
    pts_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for f in pts_dir.glob("*.json"):
            f.unlink()
    points = spec.points()
    todo = [p for p in points if not (pts_dir / f"{p['key']}.json").is_file()]
    kept = len(points) - len(todo)
    failed: list[tuple[dict, str]] = []
    if todo:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(points), initial=kept, desc="sweep", unit="point")
        ex, close = _executor(scheduler, jobs)
        try:
            if scheduler:
                from distributed import as_completed as dask_completed

                futs = {ex.submit(run_point, p, pure=False): p for p in todo}
                done_iter = dask_completed(list(futs))
            else:
                futs = {ex.submit(run_point, p): p for p in todo}
                done_iter = as_completed(futs)
            for f in done_iter:
                p = futs[f]
                try:
                    rec = f.result()
                except Exception as e:  # noqa: BLE001 - reported per point, the rest go on
                    failed.append((p, f"{type(e).__name__}: {e}"))
                else:
                    tmp = pts_dir / f".{p['key']}.tmp"
                    tmp.write_text(json.dumps(rec))
                    tmp.replace(pts_dir / f"{p['key']}.json")
                if bar is not None:
                    bar.update(1)
        finally:
            close()
            if bar is not None:
                bar.close()
    rows = []
    for p in points:
        f = pts_dir / f"{p['key']}.json"
        if f.is_file():
            rows += rows_of(json.loads(f.read_text()))
    csv_path = write_csv(out / "results.csv", rows)
    plots = plot_gains(rows, spec, out) if rows else []
    return Outcome(len(todo) - len(failed), kept, failed, csv_path, plots, time.perf_counter() - t0)


def write_csv(path: Path, rows: list[dict]) -> Path:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def read_csv(path: str | Path) -> list[dict]:
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


# ---- plots -----------------------------------------------------------------------------------

_AXIS = {
    "mem_bytes_per_cycle": ("off-chip bandwidth (B/cycle)", 1),
    "pb_bytes": ("PB size (MiB)", 1 / (1 << 20)),
}
_METRIC = {
    "latency": ("latency_gain", "mean latency saved vs no_pb (%)", 100),
    "accuracy": ("accuracy_gain_pp", "served accuracy gained vs no_pb (pp)", 1),
}


def plot_gains(rows: list[dict], spec: Spec, out: Path) -> list[Path]:
    """``gain_vs_<field>.png`` for every swept numeric field: gain over no_pb per policy (one
    panel per objective, plus off-chip energy saved), at the base preset's value of the other
    swept fields when the sweep has it, else their first value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    base = PRESETS[spec.preset]
    for fx in spec.fields:
        others = {}
        for fo, vals in spec.fields.items():
            if fo != fx:
                b = getattr(base, fo)
                others[fo] = b if b in vals else vals[0]
        sel = [r for r in rows if all(r.get(f"set_{k}") == v for k, v in others.items())]
        sel = [r for r in sel if r["policy"] != "no_pb"]
        if not sel:
            continue
        label, scale = _AXIS.get(fx, (fx, 1))
        objs = [o for o in spec.objectives if any(r["objective"] == o for r in sel)]
        fig, axes = plt.subplots(
            2, len(objs), figsize=(5.5 * len(objs), 7), squeeze=False, sharex=True
        )
        styles = ["-", "--", ":", "-."]
        for c, obj in enumerate(objs):
            metric, ylabel, mult = _METRIC[obj]
            for row_i, (m, yl, mm) in enumerate(
                [(metric, ylabel, mult), ("offchip_energy_gain", "off-chip energy saved (%)", 100)]
            ):
                ax = axes[row_i][c]
                for ti, tr in enumerate(spec.traces):
                    for pi, pol in enumerate(p for p in spec.policies if p != "no_pb"):
                        pts = {}
                        for r in sel:
                            if r["objective"] == obj and r["trace"] == tr and r["policy"] == pol:
                                x = r[f"set_{fx}"] * scale
                                pts.setdefault(x, []).append(r[m] * mm)
                        if not pts:
                            continue
                        xs = sorted(pts)
                        ys = [sum(pts[x]) / len(pts[x]) for x in xs]
                        ax.plot(
                            xs,
                            ys,
                            styles[ti % len(styles)],
                            marker="o",
                            ms=3,
                            color=f"C{pi}",
                            label=f"{pol} ({tr})",
                        )
                ax.set_xscale("log", base=2)
                ax.set(ylabel=yl, title=f"objective {obj}")
                ax.grid(alpha=0.3)
                if row_i == 1:
                    ax.set_xlabel(label)
        axes[0][0].legend(fontsize=7)
        fixed = ", ".join(f"{k}={v}" for k, v in others.items())
        fig.suptitle(
            f"{spec.preset}, {', '.join(spec.supernets)}: gain over no_pb vs {fx}"
            + (f" ({fixed})" if fixed else "")
        )
        fig.tight_layout()
        path = out / f"gain_vs_{fx}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files
