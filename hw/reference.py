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


def _wrap_int32(acc: np.ndarray) -> np.ndarray:
    return ((acc.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def conv2d_ref(
    x: np.ndarray,
    w: np.ndarray,
    stride: int = 1,
    pad: int = 0,
    requant: tuple[int, int] | None = None,
    relu: bool = False,
) -> np.ndarray:
    """A 2-D convolution in PyTorch's conventions (cross-correlation, zero padding, no bias).

    ``x`` int8 ``[H, W, C_in]``, ``w`` int8 ``[C_out, C_in, k, k]``: ``out[oy, ox, co] =
    sum over ci, ky, kx of x[oy*stride + ky - pad, ox*stride + kx - pad, ci] * w[co, ci, ky, kx]``
    (x zero outside the map), int32 with wrap-around like :func:`gemm_ref`, then ReLU if
    ``relu``; with ``requant`` requantised to int8 (:func:`requantize`). ``[H_out, W_out, C_out]``.
    """
    if x.ndim != 3 or w.ndim != 4 or w.shape[1] != x.shape[2] or w.shape[2] != w.shape[3]:
        raise ValueError(f"x {x.shape} and w {w.shape} are not [H,W,C_in] and [C_out,C_in,k,k]")
    h, wd, _ = x.shape
    c_out, _, k, _ = w.shape
    h_out = (h + 2 * pad - k) // stride + 1
    w_out = (wd + 2 * pad - k) // stride + 1
    if h_out < 1 or w_out < 1:
        raise ValueError(f"a {k}x{k} kernel does not fit a {h}x{wd} map padded by {pad}")
    xp = np.zeros((h + 2 * pad, wd + 2 * pad, x.shape[2]), dtype=np.int64)
    xp[pad : pad + h, pad : pad + wd] = x
    acc = np.zeros((h_out, w_out, c_out), dtype=np.int64)
    for ky in range(k):
        for kx in range(k):
            patch = xp[ky : ky + stride * (h_out - 1) + 1 : stride,
                       kx : kx + stride * (w_out - 1) + 1 : stride]  # fmt: skip
            acc += patch @ w[:, :, ky, kx].astype(np.int64).T
    out = _wrap_int32(acc)
    if requant is None:
        return np.maximum(out, 0) if relu else out
    return requantize(out, requant[0], requant[1], relu)


def _round_shift(y: np.ndarray, shift: int) -> np.ndarray:
    """``(y + 2**(shift-1)) >> shift`` (arithmetic; no rounding term when ``shift`` is 0)."""
    if shift:
        y = (y + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    return y


def residual_add_ref(
    a: np.ndarray, b: np.ndarray, mult_a: int, mult_b: int, shift: int, relu: bool = False
) -> np.ndarray:
    """The ResNet shortcut as the ADD command computes it (docs/isa.md, ADD), element-wise:
    ``sat8(relu((a*mult_a + b*mult_b + 2**(shift-1)) >> shift))``, int8 out."""
    if a.shape != b.shape:
        raise ValueError(f"residual add of mismatched shapes {a.shape} and {b.shape}")
    if not (0 <= mult_a < (1 << MULT_BITS) and 0 <= mult_b < (1 << MULT_BITS)):
        raise ValueError(f"multipliers {mult_a}, {mult_b} out of range 0..{(1 << MULT_BITS) - 1}")
    if not (0 <= shift < (1 << SHIFT_BITS)):
        raise ValueError(f"shift {shift} out of range 0..{(1 << SHIFT_BITS) - 1}")
    y = a.astype(np.int64) * mult_a + b.astype(np.int64) * mult_b
    y = _round_shift(y, shift)
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127).astype(np.int8)


def global_avg_pool_ref(x: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """Global average pooling as POOL computes it (docs/isa.md, POOL): int8 ``[H, W, C]`` ->
    int8 ``[C]``, ``sat8((sum over pixels * mult + 2**(shift-1)) >> shift)`` with the exact sum
    (``1/(H*W)`` folded into ``mult``/``shift`` by the caller)."""
    if x.ndim != 3:
        raise ValueError(f"x must be [H, W, C], got {x.shape}")
    check_requant(mult, shift)
    s = x.astype(np.int64).sum(axis=(0, 1)) * mult
    return np.clip(_round_shift(s, shift), -128, 127).astype(np.int8)
