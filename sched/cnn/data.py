"""The digits data set as 8x8x1 images, its three-way seeded split and input quantisation.

* **Split.** Stratified per class and fixed by the seed: ``train`` (fits the weights and
  calibrates the int8 activation scales), ``val`` (measures every SubNet of the accuracy table: what
  the scheduler selects on) and ``test`` (the demo's queries; nothing is tuned on it, its
  accuracies are reported only).
* **Input.** The float image is ``pixels / 16`` (0..1), ``[N, 8, 8, 1]``. The int8 image is
  ``pixels * 7`` (scale ``1 / INPUT_Q``, ``INPUT_Q = 112``): the data set's integer pixels 0..16 map
  exactly, so input quantisation loses nothing. One channel: the accelerator's feature map pads it
  to a whole tile of lanes with zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE = 8  #: images are IMAGE x IMAGE pixels
N_PIXELS = IMAGE * IMAGE
N_CLASSES = 10
PIXEL_MAX = 16.0
INPUT_Q = 112  #: int8 units per 1.0 of float input (pixel 16 -> 112)


@dataclass(frozen=True)
class Split:
    """Sorted indices into ``load_digits()``."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def load_raw() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 images as float64 ``[N, 64]`` in 0..16 and int64 labels ``[N]``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64), d.target.astype(np.int64)


def make_split(
    labels: np.ndarray, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2
) -> Split:
    """Per class a seeded permutation: the first ``round(test_fraction * n)`` go to ``test``, the
    next ``round(val_fraction * n)`` to ``val``, the rest to ``train``."""
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(
            f"fractions val {val_fraction}, test {test_fraction} must be > 0 and sum below 1"
        )
    rng = np.random.default_rng([int(seed), 0xC5911])
    parts: tuple[list, list, list] = ([], [], [])
    for c in range(N_CLASSES):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        n_test = int(round(test_fraction * idx.size))
        n_val = int(round(val_fraction * idx.size))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return Split(*(np.sort(np.concatenate(p)).astype(np.int64) for p in parts))


def as_pixels(images: np.ndarray) -> np.ndarray:
    """``[N, 64]``, ``[N, 8, 8]``, ``[N, 8, 8, 1]``, ``[64]`` or ``[8, 8]`` -> float ``[N, 8, 8]``
    clipped to 0..16; ValueError otherwise."""
    x = np.asarray(images, dtype=np.float64)
    if x.shape in ((N_PIXELS,), (IMAGE, IMAGE)):
        x = x.reshape(1, IMAGE, IMAGE)
    elif x.ndim == 2 and x.shape[1] == N_PIXELS:
        x = x.reshape(-1, IMAGE, IMAGE)
    elif x.ndim == 4 and x.shape[1:] == (IMAGE, IMAGE, 1):
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (IMAGE, IMAGE):
        raise ValueError(
            f"images must be [N, 64], [N, 8, 8], [N, 8, 8, 1], [64] or [8, 8]; "
            f"got {np.shape(images)}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("images contain NaN or infinity")
    return np.clip(x, 0.0, PIXEL_MAX)


def float_images(images: np.ndarray) -> np.ndarray:
    """Float network input ``[N, 8, 8, 1]``: pixels / 16."""
    return (as_pixels(images) / PIXEL_MAX)[..., None]


def quantize_images(images: np.ndarray) -> np.ndarray:
    """int8 network input ``[N, 8, 8, 1]``: ``rint(pixels * INPUT_Q / 16)`` (exact for integer
    pixels)."""
    return np.rint(as_pixels(images) * (INPUT_Q / PIXEL_MAX)).astype(np.int8)[..., None]
