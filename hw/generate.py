"""Verilog generation for each top-level design, cached per configuration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from .config import AccelConfig
from .gemm_engine import GemmEngine

#: top name -> component factory. Later tops (the full accelerator, board tops) register here.
TOPS: dict[str, Callable[[AccelConfig], wiring.Component]] = {
    "sushi_gemm": GemmEngine,
}

_SOURCES = Path(__file__).parent


def _design_hash(cfg: AccelConfig, top: str) -> str:
    """Changes whenever the config or any RTL generator source changes."""
    h = hashlib.sha256(json.dumps([top, cfg.to_dict()], sort_keys=True).encode())
    for p in sorted(_SOURCES.rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def generate_verilog(cfg: AccelConfig, top: str, out_dir: Path) -> Path:
    """Write ``<out_dir>/<top>.v`` for ``cfg`` unless an identical one is already there."""
    if top not in TOPS:
        raise ValueError(f"unknown top {top!r}; choose one of {', '.join(TOPS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{top}.v"
    stamp = out_dir / f"{top}.hash"
    digest = _design_hash(cfg, top)
    if path.exists() and stamp.exists() and stamp.read_text() == digest:
        return path
    text = verilog.convert(TOPS[top](cfg), name=top, emit_src=False)
    path.write_text(text)
    stamp.write_text(digest)
    return path
