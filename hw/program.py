"""Host-side data layouts for SushiAccel programs (see docs/isa.md and docs/architecture.md).

* Activations: rows-byte words in ``[mt][kt][m]`` order (a layer's int8 output rows are in
  exactly this order for the next layer, since the array is square).
* Weights: R x C tiles of R rows of C int8, stored off-chip in ``[nt][kt]`` order. The PB holds a
  cached leading block (pb_kt x pb_nt tiles) in the same ``[nt][kt]`` order.
"""

from __future__ import annotations

import numpy as np

from .config import AccelConfig, ceil_div


def m_tiles(cfg: AccelConfig, m: int) -> list[tuple[int, int]]:
    d = cfg.acc_depth
    return [(s, min(d, m - s)) for s in range(0, m, d)]


def act_bytes(cfg: AccelConfig, a: np.ndarray) -> bytes:
    """int8 A[M,K] as activation-buffer words, K zero-padded to a multiple of rows."""
    m, k = a.shape
    kt, r = ceil_div(k, cfg.rows), cfg.rows
    pad = np.zeros((m, kt * r), dtype=np.int8)
    pad[:, :k] = a
    blocks = [pad[s : s + n, t * r : (t + 1) * r] for s, n in m_tiles(cfg, m) for t in range(kt)]
    return np.ascontiguousarray(np.concatenate(blocks)).tobytes()


def act_from_bytes(cfg: AccelConfig, raw: bytes, m: int, n: int) -> np.ndarray:
    """Inverse of :func:`act_bytes`: int8 [M,N] from buffer words."""
    r, nt = cfg.rows, ceil_div(n, cfg.rows)
    words = np.frombuffer(raw, dtype=np.int8).reshape(-1, r)
    out = np.zeros((m, nt * r), dtype=np.int8)
    i = 0
    for s, rows in m_tiles(cfg, m):
        for t in range(nt):
            out[s : s + rows, t * r : (t + 1) * r] = words[i : i + rows]
            i += rows
    return out[:, :n]


def int32_from_bytes(cfg: AccelConfig, raw: bytes, m: int, n: int) -> np.ndarray:
    """int32 [M,N] from a GEMM written without requantisation (4 words per output row)."""
    c, nt = cfg.cols, ceil_div(n, cfg.cols)
    rows = np.frombuffer(raw, dtype="<i4").reshape(-1, c)
    out = np.zeros((m, nt * c), dtype=np.int32)
    i = 0
    for s, mr in m_tiles(cfg, m):
        for t in range(nt):
            out[s : s + mr, t * c : (t + 1) * c] = rows[i : i + mr]
            i += mr
    return out[:, :n]


def int32_to_bytes(cfg: AccelConfig, c: np.ndarray) -> bytes:
    """Inverse of :func:`int32_from_bytes`: int32 [M,N] as cols-lane rows ``[mt][nt][m]``."""
    m, n = c.shape
    col, nt = cfg.cols, ceil_div(n, cfg.cols)
    pad = np.zeros((m, nt * col), dtype="<i4")
    pad[:, :n] = c
    blocks = [
        pad[s : s + r, t * col : (t + 1) * col] for s, r in m_tiles(cfg, m) for t in range(nt)
    ]
    return np.ascontiguousarray(np.concatenate(blocks)).tobytes()


def out_words(cfg: AccelConfig, m: int, n: int, int32: bool = False) -> int:
    return m * ceil_div(n, cfg.cols) * (4 if int32 else 1)


def in_words(cfg: AccelConfig, m: int, k: int) -> int:
    return m * ceil_div(k, cfg.rows)


def weight_tiles(cfg: AccelConfig, w: np.ndarray) -> np.ndarray:
    """int8 W[K,N] -> tiles [NT, KT, rows, cols], zero-padded."""
    k, n = w.shape
    r, c = cfg.rows, cfg.cols
    kt, nt = ceil_div(k, r), ceil_div(n, c)
    pad = np.zeros((kt * r, nt * c), dtype=np.int8)
    pad[:k, :n] = w
    return pad.reshape(kt, r, nt, c).transpose(2, 0, 1, 3)


def pb_block_bytes(cfg: AccelConfig, w: np.ndarray, pb_kt: int, pb_nt: int) -> bytes:
    """The cached leading block of W (pb_kt x pb_nt tiles), as the CACHE command copies it."""
    t = weight_tiles(cfg, w)
    if pb_kt > t.shape[1] or pb_nt > t.shape[0]:
        raise ValueError(f"PB block {pb_kt}x{pb_nt} tiles exceeds W's {t.shape[1]}x{t.shape[0]}")
    return np.ascontiguousarray(t[:pb_nt, :pb_kt]).tobytes()


def weight_bytes(cfg: AccelConfig, w: np.ndarray) -> bytes:
    """W's tiles in ``[nt][kt]`` order: its off-chip image. A GEMM fetches the tiles outside its
    cached block; CACHE copies the block one tile row (pb_kt tiles at ``nt*KT``) at a time."""
    return np.ascontiguousarray(weight_tiles(cfg, w)).tobytes()


def offchip_tiles(cfg: AccelConfig, k: int, n: int, pb_kt: int = 0, pb_nt: int = 0) -> int:
    """Tiles one M-tile pass of a GEMM fetches from off-chip memory."""
    return ceil_div(k, cfg.rows) * ceil_div(n, cfg.cols) - pb_kt * pb_nt
