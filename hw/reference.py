"""Numpy golden models of what the RTL computes. Tests, the host and the compiler all use these."""

from __future__ import annotations

import numpy as np

MULT_BITS = 16  #: requantisation multiplier: unsigned, 1 .. 2**16 - 1
SHIFT_BITS = 5  #: requantisation shift: 0 .. 31


def check_requant(mult: int, shift: int) -> None:
    if not (1 <= mult < (1 << MULT_BITS)):
        raise ValueError(f"requant multiplier {mult} out of range 1..{(1 << MULT_BITS) - 1}")
    if not (0 <= shift < (1 << SHIFT_BITS)):
        raise ValueError(f"requant shift {shift} out of range 0..{(1 << SHIFT_BITS) - 1}")


def requantize(acc: np.ndarray, mult: int, shift: int, relu: bool = False) -> np.ndarray:
    """int32 -> int8, exactly as the RTL does it.

    ``y = (acc * mult + (2**(shift-1) if shift else 0)) >> shift`` (arithmetic shift, so ties
    round towards +inf), then ``max(y, 0)`` if ``relu``, then saturation to [-128, 127].
    """
    check_requant(mult, shift)
    y = acc.astype(np.int64) * np.int64(mult)
    if shift:
        y = (y + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127).astype(np.int8)


def gemm_ref(
    a: np.ndarray,
    w: np.ndarray,
    c_in: np.ndarray | None = None,
    requant: tuple[int, int] | None = None,
    relu: bool = False,
) -> np.ndarray:
    """``A[M,K] @ W[K,N] (+ C_in)`` in int32 with wrap-around, optionally requantised to int8."""
    acc = a.astype(np.int64) @ w.astype(np.int64)
    if c_in is not None:
        acc = acc + c_in.astype(np.int64)
    acc = ((acc + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)  # int32 wrap, like the RTL
    if requant is None:
        if relu:
            acc = np.maximum(acc, 0)
        return acc
    return requantize(acc, requant[0], requant[1], relu)
