"""Lowering CNN SubNets to SushiAccel programs with ``sushi_sched.conv_compiler``.

* :func:`weight_image`: every SuperNet tensor once in off-chip memory (conv tensors as
  ``[nt][ct][ring-order tap]`` tiles, the classifier as GEMM tiles), so a SubNet's slice (leading
  output channels, leading input channels, centre crop) is addressed in place.
* :func:`pb_layout`: the PB blocks of a cached SubGraph (``{tensor: dims}`` in the scheduler's
  convention, :mod:`sushi_sched.cnn.space`); one cached SubGraph serves every SubNet that contains
  part of it, whatever its widths and kernels.
* :func:`subnet_program`: LOAD_ACT of the image, one CONV per convolution, one ADD per residual,
  POOL, the classifier GEMM (int32 logits), STORE_ACT, DONE; the tiles of each layer inside the
  cached block come from the PB, the rest from off-chip, in one command.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sushi_hw.config import AccelConfig

from ..compiler import LayerCall
from ..conv_compiler import ConvImage, ConvLayer, ConvPBLayout, Fmap, Network, conv_pb_layout
from .data import IMAGE
from .supernet import CNNSuperNet


def weight_image(cfg: AccelConfig, net: CNNSuperNet, base: int) -> ConvImage:
    """The off-chip image of every SuperNet tensor from byte address ``base``."""
    return ConvImage.build(cfg, {n: net.tensor(n) for n in net.tensor_names()}, base)


def compiler_dims(subgraph: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Scheduler dims (conv ``(c_out, c_in, k, k)``, fc ``(k, n)``) -> ``conv_pb_layout``'s
    (conv ``(c_out, c_in, k)``, fc ``(k, n)``)."""
    out = {}
    for name, d in subgraph.items():
        d = tuple(int(x) for x in d)
        if len(d) == 4:
            if d[2] != d[3]:
                raise ValueError(f"SubGraph tensor {name!r}: kernel {d[2]}x{d[3]} is not square")
            out[name] = d[:3]
        elif len(d) == 2:
            out[name] = d
        else:
            raise ValueError(f"SubGraph tensor {name!r}: dims {d} are neither conv nor fc")
    return out


def pb_layout(
    cfg: AccelConfig, image: ConvImage, subgraph: Mapping[str, tuple[int, ...]]
) -> ConvPBLayout:
    """The PB blocks of a cached SubGraph (CompileError if it does not fit the PB)."""
    return conv_pb_layout(cfg, image, compiler_dims(subgraph))


def build_network(
    cfg: AccelConfig,
    net: CNNSuperNet,
    subnet,  # noqa: ANN001 - id, config or SubNetInfo
    image: ConvImage,
    layout: ConvPBLayout | None = None,
) -> tuple[Network, Fmap]:
    """The SubNet's :class:`Network` (and its output value, the int32 logits)."""
    info = net.subnet(subnet)
    nw = Network(cfg, image, layout)
    vals = {0: nw.input(IMAGE, IMAGE, 1)}
    for op in net.spec.plan(info.config):
        p = info.params[op.name]
        x = vals[op.ins[0]]
        if op.kind == "conv":
            layer = ConvLayer(op.name, op.c_out, op.c_in, op.k, op.stride, op.pad, p, op.relu)
            y = nw.conv(x, layer)
        elif op.kind == "add":
            y = nw.add(x, vals[op.ins[1]], *p, relu=op.relu)
        elif op.kind == "pool":
            y = nw.pool(x, *p)
        else:
            y = nw.fc(x, LayerCall("fc", op.c_in, op.c_out, None))
        vals[op.out] = y
    return nw, y


def subnet_program(
    cfg: AccelConfig,
    net: CNNSuperNet,
    subnet,  # noqa: ANN001
    image: ConvImage,
    layout: ConvPBLayout | None,
    in_addr: int,
    out_addr: int,
) -> list[bytes]:
    """The whole query: input image at ``in_addr`` (:func:`input_bytes`) to int32 logits at
    ``out_addr`` (:func:`logits_from_bytes`)."""
    nw, y = build_network(cfg, net, subnet, image, layout)
    return nw.program(y, in_addr, out_addr)


def input_bytes(cfg: AccelConfig, x_int8: np.ndarray) -> bytes:
    """One int8 image ``[8, 8, 1]`` as the feature-map words LOAD_ACT reads (lanes 1.. zero)."""
    from ..conv_compiler import fmap_bytes

    return fmap_bytes(cfg, np.asarray(x_int8))


def logits_from_bytes(cfg: AccelConfig, raw: bytes, n_out: int = 10) -> np.ndarray:
    """int32 logits ``[n_out]`` from the bytes STORE_ACT wrote."""
    from ..conv_compiler import fmap_from_bytes

    return fmap_from_bytes(cfg, raw, 1, 1, n_out, int32=True).reshape(n_out)
