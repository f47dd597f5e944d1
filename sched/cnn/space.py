"""The digits CNN SuperNet as a :class:`sushi_sched.supernet.base.SuperNet` (the scheduler's view),
and its SubGraph algebra on the convolution hardware.

**SubNets.** Every SubNet of the accuracy table, its int8 accuracy measured on the VALIDATION split
(in %, like the OFA tables); the test split stays for the demo's queries. A config is
``{"stages": [[[mid, k], ...], ...]}`` (or ``{"id": "16k3.8k1-24k3-32k3"}``); any SubNet of the
space lowers to layers, the table's also to programs (they have requantisation). One query is one
image.

**Layers.** Each convolution is one ``oihw`` :class:`Layer` with dims ``(c_out, c_in, k, k)`` of
its tensor (``m`` = output pixels, ``k`` = ``c_in*k*k``, ``n`` = ``c_out``), the classifier one
``kn`` layer ``(k, n)`` with int32 output. Residual adds and pooling have no weights: they are not
layers; :meth:`DigitsCNNSpace.vector_ops` lists them for a cost model.

**SubGraphs.** ``sushi_sched.subgraph.SubGraph`` is the algebra (tensor -> leading dims; the
intersection is the elementwise min; bytes are ``prod(dims)``): a conv slice's dims are leading
output channels, leading input channels and the centre ``k x k`` crop, so the min of two crops is
the smaller crop, which is exactly what both SubNets read. On the CONV hardware the taps are
stored in ring order (docs/isa.md), so a cached ``1x1`` block also serves the centre tap of a
``3x3`` layer: :func:`conv_cover` gives the tiles a cached block serves a layer. (The generic
``Layer.gemm_cover`` models host-side im2col, where a different crop shares no GEMM rows; for this
SuperNet a cost model should use :func:`conv_cover`.) :func:`pb_tiles` is a SubGraph's PB footprint
in whole tiles, as :func:`sushi_sched.cnn.lower.pb_layout` packs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sushi_hw.config import AccelConfig, ceil_div

from ..supernet.base import Dims, Layer, SubNet, SubNetError, SuperNet
from .store import load_cnn_supernet
from .supernet import CNNSuperNet


class DigitsCNNSpace(SuperNet):
    name = "digits-cnn"
    description = (
        "OFA-ResNet-style CNN weight-shared SuperNet trained in this project on scikit-learn "
        "digits (elastic depth, width and kernel; int8; accuracy on the validation split)"
    )

    def __init__(self, net: CNNSuperNet | None = None):
        self.net = net or load_cnn_supernet()
        self._table: list[SubNet] | None = None

    def tensor_shapes(self) -> dict[str, Dims]:
        return {k: tuple(v) for k, v in self.net.spec.tensor_shapes().items()}

    def _config(self, config: Mapping[str, Any]):  # noqa: ANN202
        """A SubNet of the space (not necessarily in the accuracy table)."""
        try:
            return self.net.spec.check(config["id"] if "id" in config else config["stages"])
        except (KeyError, TypeError, ValueError) as e:
            raise SubNetError(
                f"digits-cnn: {config!r} is not a SubNet of the space ({e})"
            ) from None

    def lower(self, config: Mapping[str, Any]) -> tuple[str, list[Layer]]:
        cfg = self._config(config)
        layers = []
        for op in self.net.spec.plan(cfg):
            if op.kind == "conv":
                dims = (op.c_out, op.c_in, op.k, op.k)
                layers.append(
                    Layer(
                        op.name,
                        op.name,
                        dims,
                        "oihw",
                        op.h_out * op.h_out,
                        op.c_in * op.k * op.k,
                        op.c_out,
                        op.h_in * op.h_in * op.c_in,
                        op.h_out * op.h_out * op.c_out,
                    )  # fmt: skip
                )
            elif op.kind == "fc":
                layers.append(
                    Layer(
                        "fc",
                        "fc",
                        (op.c_in, op.c_out),
                        "kn",
                        1,
                        op.c_in,
                        op.c_out,
                        op.c_in,
                        4 * op.c_out,
                    )  # fmt: skip
                )
        return cfg.id, layers

    def vector_ops(self, config: Mapping[str, Any]) -> list[tuple[str, str, int, int]]:
        """The weightless commands of a SubNet in order: ``(kind, name, pixels, channels)``
        for each ADD (``pixels`` = h*w of the map) and the POOL."""
        return [
            (op.kind, op.name, op.h_in * op.h_in, op.c_in)
            for op in self.net.spec.plan(self._config(config))
            if op.kind in ("add", "pool")
        ]

    def accuracy_table(self) -> list[SubNet]:
        if self._table is None:
            self._table = [
                self.subnet(self.config_of(s.id), accuracy=100.0 * s.accuracy_val, id=i)
                for i, s in enumerate(self.net.subnets())
            ]
        return self._table

    def config_of(self, subnet_id: str) -> dict[str, Any]:
        return {"stages": self.net.subnet(subnet_id).config.as_json()}

    def max_config(self) -> dict[str, Any]:
        return self.config_of(self.net.largest().id)


# ---- the SubGraph algebra on the CONV hardware ---------------------------------------------------
def slice_tiles(cfg: AccelConfig, dims: Dims) -> tuple[int, int, int]:
    """``(nt, ct, taps)`` of a slice: conv ``(c_out, c_in, k, k)``, fc ``(k, n)`` (one tap)."""
    if len(dims) == 4:
        return ceil_div(dims[0], cfg.cols), ceil_div(dims[1], cfg.rows), dims[2] * dims[3]
    if len(dims) == 2:
        return ceil_div(dims[1], cfg.cols), ceil_div(dims[0], cfg.rows), 1
    raise ValueError(f"dims {dims} are neither conv nor fc")


def pb_tiles(cfg: AccelConfig, subgraph: Mapping[str, Dims]) -> int:
    """PB tiles a SubGraph occupies (whole tiles per tensor block, as ``lower.pb_layout``)."""
    return sum(math.prod(slice_tiles(cfg, d)) for d in subgraph.values())


def pb_bytes(cfg: AccelConfig, subgraph: Mapping[str, Dims]) -> int:
    return pb_tiles(cfg, subgraph) * cfg.tile_bytes


def conv_cover(cfg: AccelConfig, layer: Layer, cached: Dims | None) -> tuple[int, int, int]:
    """``(pb_nt, pb_ct, pb_t)``: the block of ``layer``'s tiles a cached slice of its tensor
    serves, as the compiler issues it (``conv_compiler.weight_operands``); ``(0, 0, 0)`` when
    nothing is cached. The layer's tiles are ``slice_tiles(cfg, layer.dims)``; every tile in the
    block is read from the PB, the others from off-chip."""
    if not cached:
        return 0, 0, 0
    if len(cached) != len(layer.dims):
        raise ValueError(f"layer {layer.name}: cached dims {cached} vs {layer.dims}")
    use = tuple(map(min, slice_tiles(cfg, layer.dims), slice_tiles(cfg, tuple(cached))))
    return use if min(use) > 0 else (0, 0, 0)


def cached_blocks(
    cfg: AccelConfig, subnet: SubNet, cache: Mapping[str, Dims]
) -> dict[str, tuple[int, int]]:
    """Per layer of ``subnet``: ``(tiles from the PB, tiles in all)``: which of its tensors and
    how much of each a cached SubGraph holds."""
    out = {}
    for ly in subnet.layers:
        total = math.prod(slice_tiles(cfg, ly.dims))
        out[ly.name] = (math.prod(conv_cover(cfg, ly, cache.get(ly.tensor))), total)
    return out
