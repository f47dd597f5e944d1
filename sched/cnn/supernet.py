"""The trained, quantised digits CNN SuperNet as others use it (see ``load_cnn_supernet``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from . import data
from .model import DTYPE, Op, SubNetConfig, SuperNetSpec, forward
from .quant import Params
from .reference import int8_forward, int8_forward_ops


@dataclass(frozen=True)
class SubNetInfo:
    """One SubNet of the accuracy table: int8 accuracy measured on the validation split (what
    the scheduler selects on) and, for reporting only, on the test split."""

    id: str
    config: SubNetConfig
    accuracy_val: float  #: int8, validation split
    accuracy_test: float  #: int8, test split (reported, never used for a choice)
    accuracy_val_float: float  #: the float model before quantisation, validation split
    correct_val: int
    correct_test: int
    correct_val_float: int
    macs: int  #: per image, unpadded
    weight_bytes: int  #: int8 bytes of its slices, unpadded
    params: Params  #: per op: conv (mult, shift), add (mult_a, mult_b, shift), pool (mult, shift)

    @property
    def depths(self) -> tuple[int, ...]:
        return self.config.depths


class CNNSuperNet:
    """Shared int8 tensors + per-SubNet requantisation + measured accuracies. Build it with
    :func:`sushi_sched.cnn.load_cnn_supernet`, which verifies the artefact."""

    def __init__(
        self,
        *,
        spec: SuperNetSpec,
        weights_int8: dict[str, np.ndarray],
        weights_float: dict[str, np.ndarray],
        weight_scale: dict[str, float],
        val_idx: np.ndarray,
        test_idx: np.ndarray,
        subnets: list[SubNetInfo],
        manifest: dict,
    ) -> None:
        self.spec = spec
        self._w8 = {k: _readonly(v) for k, v in weights_int8.items()}
        self._wf = {k: _readonly(v) for k, v in weights_float.items()}
        self.weight_scale = dict(weight_scale)
        self._idx = {"val": _readonly(val_idx), "test": _readonly(test_idx)}
        self._subnets = list(subnets)
        self._by_id = {s.id: s for s in subnets}
        self.manifest = manifest
        self._sets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # ---- the SubNets ----------------------------------------------------------------------
    def subnets(self) -> list[SubNetInfo]:
        """The accuracy table, in a fixed order (largest, smallest, then the sampled ones)."""
        return list(self._subnets)

    def subnet(self, subnet) -> SubNetInfo:  # noqa: ANN001
        """A table SubNet by id (``"16k3.8k1-24k3-32k3"``), config or :class:`SubNetInfo`;
        ValueError outside the space or the table."""
        if isinstance(subnet, SubNetInfo):
            subnet = subnet.id
        cfg = self.spec.check(subnet)
        if cfg.id not in self._by_id:
            raise ValueError(f"SubNet {cfg.id} is in the space but not in the accuracy table")
        return self._by_id[cfg.id]

    def largest(self) -> SubNetInfo:
        return self.subnet(self.spec.largest())

    def smallest(self) -> SubNetInfo:
        return self.subnet(self.spec.smallest())

    def ops(self, subnet) -> list[Op]:  # noqa: ANN001
        return self.spec.plan(self.subnet(subnet).config)

    def tensor(self, name: str) -> np.ndarray:
        """The whole shared int8 tensor (read-only): conv ``[C_out, C_in, k, k]``, fc ``[K, N]``."""
        if name not in self._w8:
            raise ValueError(f"unknown tensor {name!r}; tensors are {', '.join(self._w8)}")
        return self._w8[name]

    def tensor_names(self) -> list[str]:
        return list(self._w8)

    # ---- inference ------------------------------------------------------------------------
    def quantize_images(self, images: np.ndarray) -> np.ndarray:
        """int8 ``[N, 8, 8, 1]`` for images (pixels 0..16) in any shape ``data.as_pixels`` takes."""
        return data.quantize_images(images)

    def reference_logits(self, subnet, x_int8: np.ndarray) -> np.ndarray:  # noqa: ANN001
        """int32 logits: ``[N, 10]`` for ``[N, 8, 8, 1]``, ``[10]`` for one ``[8, 8, 1]`` image;
        exactly what the hardware outputs."""
        info = self.subnet(subnet)
        ops = self.spec.plan(info.config)
        x = np.asarray(x_int8)
        if x.ndim == 3:
            return int8_forward(self.spec, self._w8, ops, info.params, x[None])[0]
        return int8_forward(self.spec, self._w8, ops, info.params, x)

    def reference_logits_ops(self, subnet, x_int8: np.ndarray) -> np.ndarray:  # noqa: ANN001
        """int32 logits ``[10]`` of one image, operator by operator (``sushi_hw.reference``)."""
        info = self.subnet(subnet)
        ops = self.spec.plan(info.config)
        return int8_forward_ops(self.spec, self._w8, ops, info.params, x_int8)

    def predict(self, subnet, x_int8: np.ndarray) -> np.ndarray:  # noqa: ANN001
        """Classes (argmax of the int32 logits; ties -> the lowest)."""
        return np.argmax(self.reference_logits(subnet, x_int8), axis=-1)

    def float_logits(self, subnet, images: np.ndarray) -> np.ndarray:  # noqa: ANN001
        info = self.subnet(subnet)
        x = data.float_images(images).astype(DTYPE)
        with threadpool_limits(limits=1):  # the order of sums the manifest's numbers came from
            return forward(self.spec, dict(self._wf), info.config, x)

    # ---- the held-out splits --------------------------------------------------------------
    def _set(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if split not in self._idx:
            raise ValueError(f"split must be 'val' or 'test', got {split!r}")
        if split not in self._sets:
            images, labels = data.load_raw()
            idx = self._idx[split]
            self._sets[split] = (images[idx], data.quantize_images(images[idx]), labels[idx])
        return self._sets[split]

    def val_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Validation split (the accuracy table's): int8 images ``[N, 8, 8, 1]``, labels."""
        _, x, y = self._set("val")
        return x.copy(), y.copy()

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Test split (the demo's queries; nothing was tuned on it): int8 images, labels."""
        _, x, y = self._set("test")
        return x.copy(), y.copy()

    def test_images(self) -> tuple[np.ndarray, np.ndarray]:
        """Test split as float images ``[N, 64]`` (pixels 0..16) and labels."""
        imgs, _, y = self._set("test")
        return imgs.copy(), y.copy()

    def verify(self, every: int = 1) -> None:
        """Re-measure every ``every``-th SubNet of the table (int8 on both splits, float on
        validation) against the manifest; ValueError naming the first that differs."""
        with threadpool_limits(limits=1):
            self._verify(every)

    def _verify(self, every: int) -> None:
        xv, yv = self._set("val")[1:]
        xt, yt = self._set("test")[1:]
        iv = self._set("val")[0]
        for s in self._subnets[::every]:
            got = (
                int(np.sum(self.predict(s, xv) == yv)),
                int(np.sum(self.predict(s, xt) == yt)),
                int(np.sum(np.argmax(self.float_logits(s, iv), 1) == yv)),
            )
            if got != (s.correct_val, s.correct_test, s.correct_val_float):
                raise ValueError(
                    f"SubNet {s.id}: measured {got} correct (int8 val, int8 test, float val), "
                    f"manifest says {(s.correct_val, s.correct_test, s.correct_val_float)}"
                )


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a
