"""Query traces: seeded generators and CSV replay.

A query is ``(t_ms, acc_floor, slo_ms)``. Generators take a :class:`TraceScale` (the accuracy and
latency range of the SubNets on the accelerator being studied) so that floors and SLOs land where
the choice between SubNets matters, whatever the preset.

Requirement patterns (``kind``):

* ``phases``: piecewise-constant requirement phases (mean ``phase_len`` queries, geometric) with
  small per-query jitter: temporal locality;
* ``walk``: floor and log-SLO do independent reflected random walks (step 2% of the range);
* ``uniform``: every query independent and uniform: no locality, an honest worst case.

Arrival processes (``arrivals``): ``poisson`` (exponential gaps), ``gamma`` (shape 0.25: gaps
with coefficient of variation 2, i.e. bursts), ``periodic``. The mean gap is
``busy_ms / load`` where ``busy_ms`` is the service time of the slowest candidate SubNet, so a
long phase that needs the biggest SubNet still keeps the accelerator below ``load`` utilisation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("phases", "walk", "uniform")
ARRIVALS = ("poisson", "gamma", "periodic")
CSV_COLUMNS = ("t_ms", "acc_floor", "slo_ms")
GAMMA_SHAPE = 0.25


class TraceError(ValueError):
    """A trace that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Query:
    t_ms: float
    acc_floor: float
    slo_ms: float


@dataclass(frozen=True)
class TraceScale:
    """Where requirements are drawn: floors in [acc_lo, acc_hi], SLOs log-uniform in
    [slo_lo_ms, slo_hi_ms]; ``busy_ms`` (slowest SubNet's service time) sets the arrival rate."""

    acc_lo: float
    acc_hi: float
    slo_lo_ms: float
    slo_hi_ms: float
    busy_ms: float

    @classmethod
    def from_points(cls, points: Sequence[tuple[float, float]]) -> TraceScale:
        """From (latency_ms, accuracy) of the candidate SubNets (empty PB): floors from 1 point
        below the least accurate to the most accurate; SLOs from 0.9x the fastest to 1.3x the
        slowest."""
        lat = [p[0] for p in points]
        acc = [p[1] for p in points]
        return cls(min(acc) - 1.0, max(acc), 0.9 * min(lat), 1.3 * max(lat), max(lat))


def _arrivals(n: int, rng: np.random.Generator, mean_gap: float, kind: str) -> np.ndarray:
    if kind == "poisson":
        gaps = rng.exponential(mean_gap, n)
    elif kind == "gamma":
        gaps = rng.gamma(GAMMA_SHAPE, mean_gap / GAMMA_SHAPE, n)
    elif kind == "periodic":
        gaps = np.full(n, mean_gap)
    else:
        raise TraceError(f"unknown arrival process {kind!r}; choose one of {', '.join(ARRIVALS)}")
    gaps[0] = 0.0
    return np.cumsum(gaps)


def generate(
    kind: str,
    n: int,
    seed: int,
    scale: TraceScale,
    arrivals: str = "poisson",
    load: float = 0.8,
    phase_len: float = 250.0,
) -> list[Query]:
    """A seeded synthetic trace of ``n`` queries."""
    if kind not in KINDS:
        raise TraceError(f"unknown trace kind {kind!r}; choose one of {', '.join(KINDS)}")
    if n < 1:
        raise TraceError(f"a trace needs at least one query (got {n})")
    if not (0 < load <= 10):
        raise TraceError(f"load must be in (0, 10], got {load}")
    rng = np.random.default_rng(seed)
    a_lo, a_hi = scale.acc_lo, scale.acc_hi
    s_lo, s_hi = math.log(scale.slo_lo_ms), math.log(scale.slo_hi_ms)
    if kind == "uniform":
        acc = rng.uniform(a_lo, a_hi, n)
        slo = rng.uniform(s_lo, s_hi, n)
    elif kind == "walk":
        acc, slo = np.empty(n), np.empty(n)
        a, s = rng.uniform(a_lo, a_hi), rng.uniform(s_lo, s_hi)
        da, ds = 0.02 * (a_hi - a_lo), 0.02 * (s_hi - s_lo)
        for i in range(n):
            acc[i], slo[i] = a, s
            a = _reflect(a + rng.normal(0, da), a_lo, a_hi)
            s = _reflect(s + rng.normal(0, ds), s_lo, s_hi)
    else:  # phases
        acc, slo = np.empty(n), np.empty(n)
        i = 0
        while i < n:
            length = int(rng.geometric(1.0 / phase_len))
            ca, cs = rng.uniform(a_lo, a_hi), rng.uniform(s_lo, s_hi)
            j = min(n, i + length)
            acc[i:j] = np.clip(ca + rng.normal(0, 0.03 * (a_hi - a_lo), j - i), a_lo, a_hi)
            slo[i:j] = np.clip(cs + rng.normal(0, 0.03 * (s_hi - s_lo), j - i), s_lo, s_hi)
            i = j
    t = _arrivals(n, rng, scale.busy_ms / load, arrivals)
    return [
        Query(round(float(t[i]), 6), round(float(acc[i]), 4), round(float(math.exp(slo[i])), 6))
        for i in range(n)
    ]


def _reflect(x: float, lo: float, hi: float) -> float:
    while x < lo or x > hi:
        x = 2 * lo - x if x < lo else 2 * hi - x
    return x


def write_csv(path: str | Path, trace: Sequence[Query]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for q in trace:
            w.writerow([repr(q.t_ms), repr(q.acc_floor), repr(q.slo_ms)])


def read_csv(path: str | Path) -> list[Query]:
    """Read ``t_ms,acc_floor,slo_ms`` (header required; blank and ``#`` lines skipped).

    Rejects, naming the line: wrong column count, non-numbers, non-finite values, negative time,
    timestamps going backwards, accuracy floors outside [0, 100], SLOs that are not > 0.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"trace file {path} does not exist")
    out: list[Query] = []
    header_seen = False
    prev_t = None
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            where = f"{path}:{lineno}"
            cells = [c.strip() for c in row]
            if not header_seen:
                if tuple(cells) != CSV_COLUMNS:
                    raise TraceError(
                        f"{where}: expected header {','.join(CSV_COLUMNS)}, got {','.join(cells)}"
                    )
                header_seen = True
                continue
            if len(cells) != 3:
                raise TraceError(
                    f"{where}: expected 3 columns ({','.join(CSV_COLUMNS)}), got {len(cells)}"
                )
            vals = []
            for name, c in zip(CSV_COLUMNS, cells, strict=True):
                try:
                    v = float(c)
                except ValueError:
                    raise TraceError(f"{where}: {name} {c!r} is not a number") from None
                if not math.isfinite(v):
                    raise TraceError(f"{where}: {name} {c!r} is not finite")
                vals.append(v)
            t, acc, slo = vals
            if t < 0:
                raise TraceError(f"{where}: t_ms {t} is negative")
            if prev_t is not None and t < prev_t:
                raise TraceError(
                    f"{where}: t_ms {t} is before the previous query's {prev_t} "
                    "(timestamps must be non-decreasing)"
                )
            if not 0 <= acc <= 100:
                raise TraceError(f"{where}: acc_floor {acc} is outside [0, 100] (percent)")
            if slo <= 0:
                raise TraceError(f"{where}: slo_ms {slo} must be > 0")
            prev_t = t
            out.append(Query(t, acc, slo))
    if not header_seen:
        raise TraceError(f"{path}: empty trace (no header {','.join(CSV_COLUMNS)})")
    if not out:
        raise TraceError(f"{path}: the trace has a header but no queries")
    return out
