"""The digits data set (``sklearn.datasets.load_digits``), its seeded split and input quantisation.

Images are 8x8 pixels with integer intensities 0..16. The network's input is a vector of
``N_FEATURES = 64`` features: feature 0 is the constant 1 that carries the first layer's bias (see
:mod:`sushi_sched.digits.model`), features 1..63 are 63 of the 64 pixels / 16 in a fixed ORDER
(:func:`pixel_order`: most variable on the training split first). A SubNet that reads ``k`` inputs
uses the leading ``k`` features (the constant and the ``k - 1`` most variable pixels), which is
what makes the number of inputs an elastic dimension. The pixel left out is one that is 0 in every
image of the data set.

The int8 input is the same vector on the grid ``1 / INPUT_Q``:
``[INPUT_Q, round(pixel * INPUT_Q / 16) ...]``. With ``INPUT_Q = 112 = 7 * 16`` the integer
pixels of the data set map exactly (``7 * p``), so input quantisation loses nothing on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_PIXELS = 64  #: 8 x 8
N_CLASSES = 10
PIXEL_MAX = 16.0  #: digits intensities are 0..16
INPUT_Q = 112  #: int8 units per 1.0 of float input (pixel 16 -> 112; the constant 1 -> 112)
N_FEATURES = N_PIXELS  #: the constant + 63 pixels (one always-zero pixel is left out)


@dataclass(frozen=True)
class Split:
    """Indices into ``load_digits()`` of the training and held-out samples."""

    train: np.ndarray
    test: np.ndarray


def load_raw() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 images as float64 [N, 64] in 0..16 and int64 labels [N]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


def make_split(labels: np.ndarray, seed: int, test_fraction: float = 0.2) -> Split:
    """A stratified split fixed by ``seed``: per class, a seeded permutation, the first
    ``round(test_fraction * n_class)`` go to the held-out set. Indices are returned sorted."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction {test_fraction} must be in (0, 1)")
    rng = np.random.default_rng([int(seed), 0x5EED])
    train, test = [], []
    for c in range(N_CLASSES):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        n_test = int(round(test_fraction * idx.size))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(test)))


def _as_pixels(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 3 and x.shape[1:] == (8, 8):
        x = x.reshape(x.shape[0], N_PIXELS)
    elif x.ndim == 2 and x.shape[1:] == (8, 8):
        x = x.reshape(1, N_PIXELS)
    elif x.ndim == 1 and x.shape == (N_PIXELS,):
        x = x.reshape(1, N_PIXELS)
    if x.ndim != 2 or x.shape[1] != N_PIXELS:
        raise ValueError(
            f"images must have shape [N, 64], [N, 8, 8], [64] or [8, 8]; got {np.shape(images)}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or infinity")
    return x


def pixel_order(train_images: np.ndarray) -> np.ndarray:
    """The 63 pixels the network reads, most variable (on ``train_images``) first; ties by index.

    The least variable pixel is left out; on the digits data three pixels are 0 in every image,
    so the one left out carries no information there.
    """
    x = _as_pixels(train_images)
    var = x.var(axis=0)
    order = np.lexsort((np.arange(N_PIXELS), -var))
    return order[: N_FEATURES - 1].astype(np.int64)


def check_order(order: np.ndarray) -> np.ndarray:
    o = np.asarray(order)
    if (
        o.shape != (N_FEATURES - 1,)
        or not np.issubdtype(o.dtype, np.integer)
        or len(set(o.tolist())) != o.size
        or o.min() < 0
        or o.max() >= N_PIXELS
    ):
        raise ValueError(f"pixel order must be {N_FEATURES - 1} distinct pixel indices 0..63")
    return o.astype(np.int64)


def float_features(images: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Float network input [N, 64]: ``[1, clip(pixels[order], 0, 16) / 16]``."""
    x = np.clip(_as_pixels(images)[:, check_order(order)], 0.0, PIXEL_MAX) / PIXEL_MAX
    return np.concatenate([np.ones((x.shape[0], 1)), x], axis=1)


def quantize_input(images: np.ndarray, order: np.ndarray) -> np.ndarray:
    """int8 network input [N, 64]: ``[INPUT_Q, round(clip(pixels[order], 0, 16) * INPUT_Q / 16)]``.

    Row ``i`` is image ``i``; a SubNet reading ``k`` inputs uses columns ``[:k]``, which is the A
    operand of its first GEMM (M = N images, K = k). Rounding is half-to-even (``np.rint``); for
    the data set's integer pixels it is exact.
    """
    x = np.clip(_as_pixels(images)[:, check_order(order)], 0.0, PIXEL_MAX)
    q = np.rint(x * (INPUT_Q / PIXEL_MAX)).astype(np.int8)
    return np.concatenate([np.full((q.shape[0], 1), INPUT_Q, np.int8), q], axis=1)
