"""The generic SuperNet interface every space implements (OFA-ResNet50, OFA-MobileNetV3, digits).

Vocabulary
----------
* A **SuperNet** owns named weight tensors with full shapes (``tensor_shapes``).
* A **SubNet** is a configuration. It lowers to an ordered list of GEMM :class:`Layer` s (im2col,
  batch 1). Each layer names one SuperNet tensor and the *leading slice* of it that it uses, as a
  dims tuple: ``W[:d0, :d1, ...]``.
* A **SubGraph** (``sushi_sched.subgraph``) is the same kind of object: tensor name -> dims.

Layouts (how a tensor slice maps onto the GEMM ``A[M,K] @ W[K,N]``):

* ``"oihw"``: dims ``(cout, cin, kh, kw)`` or ``(cout, cin)`` for a linear layer. ``N = cout``,
  ``K = cin*kh*kw`` with ``cin`` outermost, so the leading ``cin'`` channels are the leading
  ``cin'*kh*kw`` rows of K.
* ``"kn"``: dims ``(k, n)``; the tensor already is the GEMM weight (the digits SuperNet).
* ``"dw"``: depthwise conv, dims ``(ch, 1, kh, kw)``; ``K = kh*kw`` per channel, ``N = ch``.

Kernel elasticity (OFA-MobileNetV3 kernel 7/5/3) is treated as *nested center crops*: a
kernel-3 SubNet uses the center 3x3 of the 7x7 tensor. (OFA itself additionally applies a small
learned kernel-transform matrix; weight *bytes* and *sharing* are the same, so for traffic studies
the crop model is exact in bytes.) The dims tuple still records ``kh, kw``, and the elementwise
min in the algebra is the crop of the crop. Because a cropped kernel interleaves differently with
``cin`` in K, a PB block cached for one kernel size serves no GEMM rows of another kernel size
(:meth:`Layer.gemm_cover`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Dims = tuple[int, ...]

LAYOUTS = ("oihw", "kn", "dw")


class SubNetError(ValueError):
    """A SubNet configuration outside its SuperNet's space. The message names the problem."""


@dataclass(frozen=True)
class Layer:
    """One GEMM of a SubNet (batch 1, im2col). ``m`` output pixels, ``k`` x ``n`` weights."""

    name: str
    tensor: str
    dims: Dims
    layout: str
    m: int
    k: int
    n: int
    #: int8 bytes of the input feature map (before im2col) and of the output feature map.
    in_bytes: int
    out_bytes: int

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layer {self.name}: unknown layout {self.layout!r}")
        if min(self.m, self.k, self.n) < 1 or min(self.dims, default=0) < 1:
            raise ValueError(f"layer {self.name}: empty GEMM or dims {self.dims}")
        if self.layout != "dw" and self.k * self.n != math.prod(self.dims):
            raise ValueError(f"layer {self.name}: K*N={self.k * self.n} != prod{self.dims}")

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    @property
    def weight_bytes(self) -> int:
        return math.prod(self.dims)

    def gemm_cover(self, cached: Dims | None) -> tuple[int, int]:
        """``(k', n')``: the leading GEMM block of this layer's weights a cached slice holds.

        For ``dw`` the block is ``(k, channels covered)``: whole channels, all kernel taps.
        """
        if not cached:
            return 0, 0
        if len(cached) != len(self.dims):
            raise ValueError(f"layer {self.name}: cached dims {cached} vs {self.dims}")
        if self.layout == "kn":
            return min(self.k, cached[0]), min(self.n, cached[1])
        if tuple(cached[2:]) != tuple(self.dims[2:]):
            return 0, 0  # different kernel crop: rows interleave differently (see module doc)
        n_cov = min(self.dims[0], cached[0])
        if self.layout == "dw":
            return (self.k, n_cov) if n_cov else (0, 0)
        taps = math.prod(self.dims[2:])
        return min(self.dims[1], cached[1]) * taps, n_cov


@dataclass(frozen=True, eq=False)
class SubNet:
    """A configuration of a SuperNet, lowered to GEMM layers. Equal iff same space and key."""

    supernet: str
    key: str
    config: Mapping[str, Any]
    layers: tuple[Layer, ...]
    accuracy: float | None = None
    id: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SubNet) and (self.supernet, self.key) == (
            other.supernet,
            other.key,
        )

    def __hash__(self) -> int:
        return hash((self.supernet, self.key))

    @property
    def label(self) -> str:
        return f"#{self.id}" if self.id is not None else self.key

    @property
    def macs(self) -> int:
        return sum(ly.macs for ly in self.layers)

    @property
    def weight_bytes(self) -> int:
        """int8 weight bytes of the GEMM layers (what the accelerator streams)."""
        return sum(ly.weight_bytes for ly in self.layers)

    @property
    def tensor_dims(self) -> dict[str, Dims]:
        """tensor -> the leading slice this SubNet uses (elementwise max if used twice)."""
        out: dict[str, Dims] = {}
        for ly in self.layers:
            old = out.get(ly.tensor)
            out[ly.tensor] = ly.dims if old is None else tuple(map(max, old, ly.dims))
        return out


class SuperNet(ABC):
    """A weight-shared space. Subclasses give tensor shapes, lowering and (optionally) accuracy."""

    name: str = ""
    description: str = ""

    @abstractmethod
    def tensor_shapes(self) -> dict[str, Dims]:
        """Full shape of every SuperNet weight tensor."""

    @abstractmethod
    def lower(self, config: Mapping[str, Any]) -> tuple[str, list[Layer]]:
        """Validate ``config`` (raise :class:`SubNetError`) and return (canonical key, layers)."""

    def accuracy_table(self) -> list[SubNet]:
        """SubNets with measured accuracy. Empty when the space has none (never invented)."""
        return []

    def vector_ops(self, config: Mapping[str, Any]) -> list[tuple[str, str, int, int]]:
        """The weightless on-chip commands of a SubNet, ``(kind, name, pixels, channels)``
        (``add``, ``pool``), for a cost model; empty for a space that does not lower them."""
        return []

    # ---- shared helpers ----------------------------------------------------------------------
    def subnet(
        self, config: Mapping[str, Any], accuracy: float | None = None, id: int | None = None
    ) -> SubNet:
        key, layers = self.lower(config)
        shapes = self.tensor_shapes()
        for ly in layers:  # the defining property of a SubNet: leading slices of SuperNet tensors
            full = shapes.get(ly.tensor)
            if full is None or len(full) != len(ly.dims) or any(map(int.__gt__, ly.dims, full)):
                raise SubNetError(
                    f"{self.name}: layer {ly.name} uses {ly.dims} of {ly.tensor} "
                    f"{full}: not a leading slice"
                )
        vec = tuple(self.vector_ops(config))
        extra = {"vector_ops": vec} if vec else {}
        return SubNet(self.name, key, dict(config), tuple(layers), accuracy, id, extra)

    def table_subnet(self, id: int) -> SubNet:
        for s in self.accuracy_table():
            if s.id == id:
                return s
        ids = [s.id for s in self.accuracy_table()]
        raise SubNetError(f"{self.name}: no SubNet with id {id} in the accuracy table (ids {ids})")

    def largest(self) -> SubNet:
        """The SubNet using every tensor in full (used for capacity and plots)."""
        return self.subnet(self.max_config())

    @abstractmethod
    def max_config(self) -> dict[str, Any]:
        """Configuration of the largest SubNet."""


def check_choice(space: str, what: str, values: Sequence[Any], allowed: Iterable[Any]) -> None:
    allowed = list(allowed)
    for i, v in enumerate(values):
        if v not in allowed:
            raise SubNetError(f"{space}: {what}[{i}] = {v!r} is outside the space {allowed}")


def check_len(space: str, what: str, values: Any, n: int) -> list[Any]:
    if not isinstance(values, (list, tuple)) or len(values) != n:
        raise SubNetError(f"{space}: '{what}' must be a list of {n} values, got {values!r}")
    return list(values)


def make_divisible(v: float, divisor: int = 8, min_val: int | None = None) -> int:
    """Once-for-All's channel rounding (``ofa.utils.make_divisible``)."""
    min_val = divisor if min_val is None else min_val
    new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # never round down by more than 10%
        new_v += divisor
    return new_v


def conv_out(size: int, stride: int) -> int:
    """Output size of a 'same'-padded conv / pool, as OFA computes it."""
    return int((size - 1) / stride + 1)


def conv_layer(
    name: str, tensor: str, cout: int, cin: int, k: int, in_hw: int, out_hw: int
) -> Layer:
    """A dense conv (or linear, k=0) as a GEMM layer in ``oihw`` layout."""
    dims: Dims = (cout, cin, k, k) if k else (cout, cin)
    taps = k * k if k else 1
    return Layer(
        name,
        tensor,
        dims,
        "oihw",
        out_hw * out_hw,
        cin * taps,
        cout,
        in_hw * in_hw * cin,
        out_hw * out_hw * cout,
    )


def dw_layer(name: str, tensor: str, ch: int, k: int, in_hw: int, out_hw: int) -> Layer:
    return Layer(
        name,
        tensor,
        (ch, 1, k, k),
        "dw",
        out_hw * out_hw,
        k * k,
        ch,
        in_hw * in_hw * ch,
        out_hw * out_hw * ch,
    )
