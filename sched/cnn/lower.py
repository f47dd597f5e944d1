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
* :func:`program_cost`: a program's cycles from the calibrated ``TimingModel``, command by command,
  and its counters (off-chip weight bytes, PB bytes, ...) as the hardware counts them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div

from ..compiler import LayerCall
from ..conv_compiler import ConvLayer, Fmap, Network
from ..conv_image import ConvImage, ConvPBLayout, conv_pb_layout
from ..timing import TimingModel
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
    from ..conv_image import fmap_bytes

    return fmap_bytes(cfg, np.asarray(x_int8))


def logits_from_bytes(cfg: AccelConfig, raw: bytes, n_out: int = 10) -> np.ndarray:
    """int32 logits ``[n_out]`` from the bytes STORE_ACT wrote."""
    from ..conv_image import fmap_from_bytes

    return fmap_from_bytes(cfg, raw, 1, 1, n_out, int32=True).reshape(n_out)


# ---- what a program costs ------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgramCost:
    """A query program's cost: cycles from ``sushi_sched.timing.TimingModel`` command by command
    (its ``conv_cycles``, ``vector_cycles``, ``gemm_cycles``, ``transfer_cycles``), counters as the
    hardware counts them (docs/isa.md, "Counters"; equal to the golden model's, tested)."""

    cycles: int
    rd_weight_bytes: int
    pb_read_bytes: int
    rd_act_bytes: int
    wr_bytes: int
    mac_active: int
    commands: int

    @property
    def offchip_bytes(self) -> int:
        """Weights, input and output (commands excluded)."""
        return self.rd_weight_bytes + self.rd_act_bytes + self.wr_bytes


def program_cost(
    cfg: AccelConfig, program: list[bytes], timing: TimingModel | None = None
) -> ProgramCost:
    """Cost of running ``program`` (one doorbell) on ``cfg``: walks the commands as decoded."""
    tm = timing or TimingModel(cfg)
    tb, r, c = cfg.tile_bytes, cfg.rows, cfg.cols
    cycles = tm.query_overhead
    w_off = pb = act = wr = macs = 0
    for raw in program:
        op, f = isa.decode(raw)
        cycles += tm.cmd_cycles
        if op == isa.Op.LOAD_ACT:
            act += f["words"] * r
            cycles += tm.transfer_cycles(f["words"] * r, tm.load_overhead)
        elif op == isa.Op.STORE_ACT:
            wr += f["words"] * r
            cycles += tm.transfer_cycles(f["words"] * r, tm.store_overhead)
        elif op == isa.Op.CACHE:
            w_off += f["tiles"] * tb
            cycles += tm.transfer_cycles(f["tiles"] * tb, tm.cache_overhead)
        elif op == isa.Op.CONV:
            ho = isa.conv_out_size(f["h"], f["k"], f["stride"], f["pad"])
            wo = isa.conv_out_size(f["w"], f["k"], f["stride"], f["pad"])
            ct, nt, taps = ceil_div(f["c_in"], r), ceil_div(f["c_out"], c), f["k"] ** 2
            use = (f["pb_nt"], f["pb_ct"], f["pb_t"])
            in_pb = math.prod(use)
            mt = ceil_div(ho * wo, cfg.acc_depth)
            w_off += mt * (nt * ct * taps - in_pb) * tb
            pb += mt * in_pb * tb
            macs += ho * wo * ct * taps * nt
            cycles += tm.conv_cycles(ho * wo, ct, taps, nt, use, int32=not f["requant"])
        elif op == isa.Op.GEMM:
            kt, nt = ceil_div(f["k"], r), ceil_div(f["n"], c)
            in_pb = f["pb_kt"] * f["pb_nt"]
            mt = ceil_div(f["m"], cfg.acc_depth)
            w_off += mt * (kt * nt - in_pb) * tb
            pb += mt * in_pb * tb
            macs += f["m"] * kt * nt
            cycles += tm.gemm_cycles(f["m"], kt, nt, f["pb_kt"], f["pb_nt"],
                                     int32=not f["requant"])  # fmt: skip
        elif op == isa.Op.ADD:
            cycles += tm.vector_cycles(2 * f["words"], op)
        elif op == isa.Op.POOL:
            cycles += tm.vector_cycles(f["pixels"] * f["tiles"], op)
    return ProgramCost(int(cycles), w_off, pb, act, wr, macs, len(program))
