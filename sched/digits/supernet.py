"""The trained, quantised digits SuperNet as others use it (see ``load_digits_supernet``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import data
from .model import SubNetConfig, SuperNetSpec, float_forward
from .reference import GemmLayer, int8_forward


@dataclass(frozen=True)
class SubNetInfo:
    """One SubNet and its measured accuracy on the held-out split."""

    id: str
    config: SubNetConfig  #: (inputs, (width, ...)); hashable
    accuracy_int8: float
    accuracy_float: float
    macs: int  #: per image (M = 1), unpadded
    weight_bytes: int  #: int8 weight bytes of its leading slices, unpadded
    correct_int8: int
    correct_float: int
    act_q: tuple[int, ...]  #: integer inverse activation scale of the input and each hidden layer
    requant: tuple[tuple[int, int], ...]  #: (mult, shift) of each hidden layer

    @property
    def depth(self) -> int:
        return self.config.depth


class DigitsSuperNet:
    """Shared int8 tensors + per-SubNet requantisation + measured accuracies.

    Build it with :func:`sushi_sched.digits.load_digits_supernet`, which verifies the artefact.
    """

    def __init__(
        self,
        *,
        spec: SuperNetSpec,
        weights_int8: dict[str, np.ndarray],
        weights_float: dict[str, np.ndarray],
        inv_scale: dict[str, int],
        pixel_order: np.ndarray,
        test_idx: np.ndarray,
        subnets: list[SubNetInfo],
        manifest: dict,
    ) -> None:
        self.spec = spec
        self._w8 = {k: _readonly(v) for k, v in weights_int8.items()}
        self._wf = {k: _readonly(v) for k, v in weights_float.items()}
        self.inv_scale = dict(inv_scale)
        self.pixel_order = _readonly(pixel_order)
        self._test_idx = _readonly(test_idx)
        self._subnets = list(subnets)
        self._by_id = {s.id: s for s in subnets}
        self._by_config = {s.config: s for s in subnets}
        self.manifest = manifest
        self._test_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # ---- the SubNet space ------------------------------------------------------------------
    def subnets(self) -> list[SubNetInfo]:
        return list(self._subnets)

    def subnet(self, subnet) -> SubNetInfo:
        """A SubNet by id (``"i64-d2-32-16"``), :class:`SubNetConfig` or ``(inputs, widths)``."""
        if isinstance(subnet, SubNetInfo):
            subnet = subnet.id
        if isinstance(subnet, str):
            if subnet not in self._by_id:
                raise ValueError(f"unknown SubNet id {subnet!r}")
            return self._by_id[subnet]
        cfg = self.spec.check(subnet)
        return self._by_config[cfg]

    def largest(self) -> SubNetInfo:
        return self.subnet(self.spec.largest())

    def smallest(self) -> SubNetInfo:
        return self.subnet(self.spec.smallest())

    def tensor(self, name: str) -> np.ndarray:
        """The whole shared int8 tensor ``name`` (read-only)."""
        if name not in self._w8:
            raise ValueError(f"unknown tensor {name!r}; tensors are {', '.join(self._w8)}")
        return self._w8[name]

    def tensor_names(self) -> list[str]:
        return list(self._w8)

    def layers(self, subnet, m: int = 1) -> list[GemmLayer]:
        """The hardware GEMMs of a SubNet for ``m`` images (M = m; one query is m = 1)."""
        info = self.subnet(subnet)
        return make_layers(self.spec, self._w8, info.config, info.act_q, info.requant, m)

    # ---- inference -------------------------------------------------------------------------
    def quantize_input(self, images: np.ndarray) -> np.ndarray:
        """int8 input rows [N, 64] for images [N, 64] or [N, 8, 8] (pixels 0..16, as digits).

        A SubNet reading ``k`` inputs uses columns ``[:k]``; that is the A operand of its first
        GEMM. Column 0 is the bias constant.
        """
        return data.quantize_input(images, self.pixel_order)

    def reference_logits(self, subnet, x_int8: np.ndarray) -> np.ndarray:
        """int32 logits [N, 10]: exactly what the hardware outputs for int8 input rows."""
        info = self.subnet(subnet)
        x = np.asarray(x_int8)
        return int8_forward(self.layers(info, m=1 if x.ndim == 1 else max(1, x.shape[0])), x)

    def predict(self, subnet, x_int8: np.ndarray) -> np.ndarray:
        """Classes [N] from the int8 reference (argmax of the int32 logits; ties -> lowest)."""
        return np.argmax(self.reference_logits(subnet, x_int8), axis=1)

    def float_logits(self, subnet, images: np.ndarray) -> np.ndarray:
        """Float logits [N, 10] of the trained float weights (before quantisation)."""
        info = self.subnet(subnet)
        x = data.float_features(images, self.pixel_order)
        params = {k: v.astype(np.float64) for k, v in self._wf.items()}
        return float_forward(self.spec, params, info.config, x)

    def predict_float(self, subnet, images: np.ndarray) -> np.ndarray:
        return np.argmax(self.float_logits(subnet, images), axis=1)

    # ---- the held-out split ----------------------------------------------------------------
    def _test(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._test_cache is None:
            images, labels = data.load_raw()
            imgs = images[self._test_idx]
            self._test_cache = (imgs, self.quantize_input(imgs), labels[self._test_idx])
        return self._test_cache

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Held-out split: int8 input rows [N, 64] and labels [N] (copies)."""
        _, x, y = self._test()
        return x.copy(), y.copy()

    def test_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Held-out split as float images [N, 64] (pixels 0..16) and labels [N] (copies)."""
        imgs, _, y = self._test()
        return imgs.copy(), y.copy()

    def verify(self) -> None:
        """Re-measure every SubNet's float and int8 accuracy on the held-out split and compare
        them with the manifest; ValueError naming the first SubNet that differs."""
        imgs, x, y = self._test()
        for s in self._subnets:
            c8 = int(np.sum(self.predict(s.id, x) == y))
            cf = int(np.sum(self.predict_float(s.id, imgs) == y))
            if (c8, cf) != (s.correct_int8, s.correct_float):
                raise ValueError(
                    f"SubNet {s.id}: measured {c8} (int8) / {cf} (float) correct of {y.size}, "
                    f"manifest says {s.correct_int8} / {s.correct_float}"
                )


def make_layers(
    spec: SuperNetSpec,
    weights_int8: dict[str, np.ndarray],
    config: SubNetConfig,
    act_q: tuple[int, ...],
    requant: tuple[tuple[int, int], ...],
    m: int = 1,
) -> list[GemmLayer]:
    """The GEMM chain of SubNet ``config``: leading weight slices + its requantisation."""
    if not (isinstance(m, int | np.integer) and m >= 1):
        raise ValueError(f"m must be a positive integer; got {m!r}")
    out = []
    for i, (name, k, n) in enumerate(spec.layer_shapes(config)):
        w = weights_int8[name][:k, :n]
        if i < config.depth:
            mult, shift = requant[i]
            out.append(GemmLayer(name, int(m), k, n, w, mult, shift, True, act_q[i], act_q[i + 1]))
        else:
            out.append(GemmLayer(name, int(m), k, n, w, None, None, False, act_q[i], None))
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a
