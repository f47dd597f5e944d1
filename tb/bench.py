"""Benchmarks on the RTL simulation; results land as JSON under build/bench/."""

from __future__ import annotations

import json
from pathlib import Path

from sushi_hw.config import AccelConfig

from .runner import run


def gemm_shapes(cfg: AccelConfig) -> list[tuple[int, int, int]]:
    """Large squares (16*rows), batch-1 GEMVs and a few odd shapes, all within the config."""
    big = 16 * cfg.rows
    shapes = [
        (big, big, big),
        (1, big, big),
        (1, 4 * cfg.rows, 4 * cfg.cols),
        (37, 53, 29),
        (3 * cfg.rows + 1, 5, 2 * cfg.cols + 3),
        (cfg.acc_depth + 7, 24, 40),
    ]
    words = lambda m, k: m * -(-k // cfg.rows)  # noqa: E731
    return [s for s in shapes if words(s[0], s[1]) <= cfg.act_words and max(s) <= cfg.max_dim]


def bench_gemm(
    cfg: AccelConfig, sim: str, out_dir: Path, shapes: list[tuple[int, int, int]] | None = None
) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    part = out_dir / f"gemm.{cfg.name}.{sim}.json"
    part.unlink(missing_ok=True)
    tests, failed, xml = run(
        sim,
        "sushi_gemm",
        cfg,
        "gemm_tb",
        testcase="bench",
        env={
            "SUSHI_BENCH_OUT": str(part.resolve()),
            "SUSHI_BENCH_SHAPES": json.dumps(shapes or gemm_shapes(cfg)),
        },
    )
    if failed or not part.exists():
        raise RuntimeError(
            f"GEMM benchmark failed on {sim}/{cfg.name}; see {xml.with_suffix('.log')}"
        )
    return json.loads(part.read_text())


def bench_memory(cfg: AccelConfig, sim: str, out_dir: Path) -> list[dict]:
    """One GEMM per weight source (PB, off-chip, split) on the full accelerator.

    The largest layer (16*rows square) must fit the PB for the all-PB case; a preset whose PB is
    smaller is measured with ``pb_bytes`` raised to fit, and every record names the PB size.
    """
    need = (16 * cfg.rows) ** 2
    if cfg.pb_bytes < need:
        cfg = cfg.replace(name=f"{cfg.name}+pb{need // 1024}k", pb_bytes=need)
    out_dir.mkdir(parents=True, exist_ok=True)
    part = out_dir / f"memory.{cfg.name}.{sim}.json"
    part.unlink(missing_ok=True)
    tests, failed, xml = run(
        sim,
        "sushi_sim",
        cfg,
        "accel_tb",
        testcase="bench_memory",
        env={"SUSHI_BENCH_OUT": str(part.resolve())},
    )
    if failed or not part.exists():
        raise RuntimeError(
            f"memory benchmark failed on {sim}/{cfg.name}; see {xml.with_suffix('.log')}"
        )
    return json.loads(part.read_text())
