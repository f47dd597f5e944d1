"""Host side of a GEMM: validation, descriptor encoding and the stream data layouts.

The bit layouts come from the same Amaranth layouts the RTL is built from, so host and hardware
cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import AccelConfig
from .gemm_core import gemm_desc_layout
from .reference import check_requant


class GemmError(ValueError):
    """A GEMM that the hardware cannot run; the message names the offending field."""


@dataclass(frozen=True)
class GemmSpec:
    m: int
    k: int
    n: int
    accumulate: bool = False
    requant: tuple[int, int] | None = None  # (mult, shift)
    relu: bool = False

    def kt(self, cfg: AccelConfig) -> int:
        return -(-self.k // cfg.rows)

    def nt(self, cfg: AccelConfig) -> int:
        return -(-self.n // cfg.cols)

    def mt(self, cfg: AccelConfig) -> int:
        return -(-self.m // cfg.acc_depth)

    def validate(self, cfg: AccelConfig) -> None:
        for name in ("m", "k", "n"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise GemmError(f"GEMM {name.upper()} = {v!r}: must be a positive integer")
            if v > cfg.max_dim:
                raise GemmError(
                    f"GEMM {name.upper()} = {v}: exceeds the configured maximum "
                    f"max_dim = {cfg.max_dim} of preset {cfg.name!r}"
                )
        words = self.m * self.kt(cfg)
        if words > cfg.act_words:
            raise GemmError(
                f"GEMM A operand needs {words * cfg.rows} bytes (M={self.m} x K padded to "
                f"{self.kt(cfg) * cfg.rows}) but the activation buffer holds {cfg.act_bytes}"
            )
        if self.requant is not None:
            try:
                check_requant(*self.requant)
            except ValueError as e:
                raise GemmError(str(e)) from None

    def ideal_cycles(self, cfg: AccelConfig) -> int:
        return -(-(self.m * self.k * self.n) // (cfg.rows * cfg.cols))


def encode_desc(cfg: AccelConfig, spec: GemmSpec, a_base: int = 0) -> int:
    spec.validate(cfg)
    mult, shift = spec.requant if spec.requant is not None else (1, 0)
    layout = gemm_desc_layout(cfg)
    const = layout.const(
        {
            "m": spec.m,
            "k": spec.k,
            "n": spec.n,
            "accumulate": int(spec.accumulate),
            "requant": {
                "enable": int(spec.requant is not None),
                "relu": int(spec.relu),
                "mult": mult,
                "shift": shift,
            },
            "a_base": a_base,
        }
    )
    return const.as_value().value


def _pack_lanes(rows: np.ndarray, bits: int) -> list[int]:
    """Each row of ``rows`` (lane 0 in the low bits) as one unsigned integer."""
    mask = (1 << bits) - 1
    u = rows.astype(np.int64) & mask
    shifts = [bits * i for i in range(rows.shape[1])]
    return [sum(int(v) << s for v, s in zip(r, shifts, strict=True)) for r in u]


def unpack_lanes(words: list[int], lanes: int, bits: int) -> np.ndarray:
    mask = (1 << bits) - 1
    out = np.empty((len(words), lanes), dtype=np.int64)
    for i, w in enumerate(words):
        for j in range(lanes):
            v = (w >> (bits * j)) & mask
            out[i, j] = v - (1 << bits) if v >> (bits - 1) else v
    return out


def _m_tiles(cfg: AccelConfig, m: int) -> list[tuple[int, int]]:
    d = cfg.acc_depth
    return [(s, min(d, m - s)) for s in range(0, m, d)]


def a_words(cfg: AccelConfig, a: np.ndarray) -> list[int]:
    """A[M,K] as rows-byte words in ``[mt][kt][m]`` order (K zero-padded)."""
    m, k = a.shape
    kt = -(-k // cfg.rows)
    pad = np.zeros((m, kt * cfg.rows), dtype=np.int8)
    pad[:, :k] = a
    blocks = [
        pad[ms : ms + mr, t * cfg.rows : (t + 1) * cfg.rows]
        for ms, mr in _m_tiles(cfg, m)
        for t in range(kt)
    ]
    return _pack_lanes(np.concatenate(blocks), 8)


def w_words(cfg: AccelConfig, w: np.ndarray, m: int) -> list[int]:
    """W[K,N] as cols-byte rows, tiles in ``[mt][nt][kt]`` order (re-sent per M-tile)."""
    k, n = w.shape
    kt, nt = -(-k // cfg.rows), -(-n // cfg.cols)
    pad = np.zeros((kt * cfg.rows, nt * cfg.cols), dtype=np.int8)
    pad[:k, :n] = w
    tiles = [
        pad[t * cfg.rows : (t + 1) * cfg.rows, j * cfg.cols : (j + 1) * cfg.cols]
        for j in range(nt)
        for t in range(kt)
    ]
    one_pass = _pack_lanes(np.concatenate(tiles), 8)
    return one_pass * len(_m_tiles(cfg, m))


def c_words(cfg: AccelConfig, c: np.ndarray) -> list[int]:
    """C_in[M,N] int32 as cols-lane rows in ``[mt][nt][m]`` order (N zero-padded)."""
    m, n = c.shape
    nt = -(-n // cfg.cols)
    pad = np.zeros((m, nt * cfg.cols), dtype=np.int64)
    pad[:, :n] = c
    blocks = [
        pad[ms : ms + mr, j * cfg.cols : (j + 1) * cfg.cols]
        for ms, mr in _m_tiles(cfg, m)
        for j in range(nt)
    ]
    return _pack_lanes(np.concatenate(blocks), 32)


def out_matrix(cfg: AccelConfig, words: list[int], m: int, n: int) -> np.ndarray:
    """Reassemble output rows (``[mt][nt][m]`` order) into an int32 [M,N] matrix."""
    nt = -(-n // cfg.cols)
    rows = unpack_lanes(words, cfg.cols, 32)
    out = np.zeros((m, nt * cfg.cols), dtype=np.int64)
    i = 0
    for ms, mr in _m_tiles(cfg, m):
        for j in range(nt):
            out[ms : ms + mr, j * cfg.cols : (j + 1) * cfg.cols] = rows[i : i + mr]
            i += mr
    if i != len(words):
        raise GemmError(f"expected {i} output rows, got {len(words)}")
    return out[:, :n].astype(np.int32)


def out_rows(cfg: AccelConfig, m: int, n: int) -> int:
    return m * (-(-n // cfg.cols))
