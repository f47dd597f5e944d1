"""Host side of a GEMM: validation, descriptor encoding and the stream data layouts.

The bit layouts come from the same Amaranth layouts the RTL is built from, so host and hardware
cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import AccelConfig
from .gemm_core import gemm_desc_layout
from .program import act_bytes, int32_from_bytes, int32_to_bytes, m_tiles, weight_bytes
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


def _words(raw: bytes, width: int) -> list[int]:
    """Split a byte image into little-endian stream words of ``width`` bytes."""
    return [int.from_bytes(raw[i : i + width], "little") for i in range(0, len(raw), width)]


def a_words(cfg: AccelConfig, a: np.ndarray) -> list[int]:
    """A[M,K] as rows-byte stream words, in the activation-buffer layout ``[mt][kt][m]``."""
    return _words(act_bytes(cfg, a), cfg.rows)


def w_words(cfg: AccelConfig, w: np.ndarray, m: int) -> list[int]:
    """W[K,N] as cols-byte rows, tiles ``[nt][kt]``, sent once per M-tile."""
    return _words(weight_bytes(cfg, w), cfg.cols) * len(m_tiles(cfg, m))


def c_words(cfg: AccelConfig, c: np.ndarray) -> list[int]:
    """C_in[M,N] int32 as cols-lane rows in ``[mt][nt][m]`` order (N zero-padded)."""
    return _words(int32_to_bytes(cfg, c), 4 * cfg.cols)


def out_matrix(cfg: AccelConfig, words: list[int], m: int, n: int) -> np.ndarray:
    """Reassemble int32 output rows (``[mt][nt][m]`` order) into an [M,N] matrix."""
    want = out_rows(cfg, m, n)
    if len(words) != want:
        raise GemmError(f"expected {want} output rows, got {len(words)}")
    mask = (1 << (32 * cfg.cols)) - 1
    raw = b"".join((w & mask).to_bytes(4 * cfg.cols, "little") for w in words)
    return int32_from_bytes(cfg, raw, m, n)


def out_rows(cfg: AccelConfig, m: int, n: int) -> int:
    return m * (-(-n // cfg.cols))
