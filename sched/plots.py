"""PNG plots of a simulation (matplotlib, Agg backend): latency and served accuracy over the
stream, and PB contents over time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .simulate import Series  # noqa: E402
from .traces import Query  # noqa: E402


def _rolling(x: Sequence[float], w: int) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    w = max(1, min(w, len(a)))
    c = np.cumsum(np.insert(a, 0, 0.0))
    out = np.empty_like(a)
    for i in range(len(a)):  # trailing mean (short prefix uses what exists)
        lo = max(0, i + 1 - w)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def plot_all(
    series: Mapping[str, Series],
    trace: Sequence[Query],
    out_dir: str | Path,
    prefix: str = "",
    tensor_order: Sequence[str] = (),
) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x = np.arange(len(trace))
    w = max(1, len(trace) // 100)
    files = []

    fig, ax = plt.subplots(figsize=(10, 4))
    for name, s in series.items():
        ax.plot(x, _rolling(s.latency_ms, w), label=name, lw=1)
    ax.plot(x, _rolling([q.slo_ms for q in trace], w), "k--", lw=0.8, label="SLO")
    ax.set(
        xlabel="query",
        ylabel=f"latency ms (rolling mean, {w} q)",
        yscale="log",
        title="Latency over the stream",
    )
    ax.legend(fontsize=8, ncol=4)
    files.append(_save(fig, out / f"{prefix}latency.png"))

    fig, ax = plt.subplots(figsize=(10, 4))
    for name, s in series.items():
        ax.plot(x, _rolling(s.accuracy, w), label=name, lw=1)
    ax.plot(x, _rolling([q.acc_floor for q in trace], w), "k--", lw=0.8, label="floor")
    ax.set(
        xlabel="query",
        ylabel=f"served top-1 % (rolling mean, {w} q)",
        title="Served accuracy over the stream",
    )
    ax.legend(fontsize=8, ncol=4)
    files.append(_save(fig, out / f"{prefix}accuracy.png"))

    fig, axes = plt.subplots(2, 1, figsize=(10, 7), height_ratios=[1, 2])
    for name, s in series.items():
        axes[0].step(x, np.asarray(s.pb_bytes) / 2**20, where="post", label=name, lw=1)
    axes[0].set(ylabel="PB MiB used", title="PB contents over time")
    axes[0].legend(fontsize=8, ncol=4)
    main = "sushi" if "sushi" in series else next(iter(series))
    s = series[main]
    tensors = list(tensor_order) or sorted({t for g in s.pb_tensors for t in g})
    grid = np.zeros((len(tensors), len(x)))
    for j, g in enumerate(s.pb_tensors):
        for i, t in enumerate(tensors):
            if t in g:
                grid[i, j] = float(np.prod(g[t]))
    axes[1].imshow(np.log1p(grid), aspect="auto", interpolation="nearest", cmap="viridis")
    step = max(1, len(tensors) // 30)
    axes[1].set_yticks(range(0, len(tensors), step), tensors[::step], fontsize=6)
    axes[1].set(xlabel="query", title=f"{main}: cached bytes per tensor (log)")
    files.append(_save(fig, out / f"{prefix}pb_contents.png"))
    return files


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
