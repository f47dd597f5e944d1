"""Compiler: (SubNet layers, cached SubGraph, PB layout) -> a SushiAccel command program.

Off-chip memory holds every SuperNet tensor once, as its full tile grid (``[nt][kt]``). A SubNet
layer uses the leading ``k x n`` slice, i.e. the leading tiles of that grid (``w_stride`` = the
tensor's K-tile count). The PB holds, per cached tensor, a leading block of ``kc x nc`` tiles.
A GEMM takes tile (nt, kt) from the PB when it lies inside both the cached block and the layer,
else from off-chip memory; the accumulator adds both kinds, so a partly cached layer is one GEMM.
:func:`pb_layout` packs a cached SubGraph into the PB (the one layout every backend uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_hw.program import in_words, out_words, weight_bytes


class CompileError(ValueError):
    """The program cannot be built for this configuration; the message says why."""


@dataclass(frozen=True)
class LayerCall:
    """One GEMM of a SubNet: ``out = A[m, k] @ tensor[:k, :n]``, then requant/ReLU."""

    tensor: str
    k: int
    n: int
    requant: tuple[int, int] | None  # None: int32 output (only the last layer)
    relu: bool = False


def layer_calls(layers) -> list[LayerCall]:  # noqa: ANN001 - a SuperNet's layer records
    """The GEMMs of a SubNet from its layer records (``name, k, n, requant, relu``)."""
    return [LayerCall(g.name, g.k, g.n, g.requant, g.relu) for g in layers]


@dataclass
class WeightImage:
    """Where each SuperNet tensor lives off-chip, as a zero-padded tile grid."""

    cfg: AccelConfig
    base: int
    addr: dict[str, int] = field(default_factory=dict)
    kt: dict[str, int] = field(default_factory=dict)  # K-tiles of the full tensor (= w_stride)
    shape: dict[str, tuple[int, int]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    end: int = 0

    @classmethod
    def build(cls, cfg: AccelConfig, tensors: dict[str, np.ndarray], base: int) -> WeightImage:
        if base % cfg.mem_width:
            raise CompileError(f"weight base {base:#x} is not aligned to {cfg.mem_width} bytes")
        img = cls(cfg, base)
        at = base
        for name, w in tensors.items():
            if w.dtype != np.int8 or w.ndim != 2:
                raise CompileError(f"tensor {name!r} must be a 2-D int8 array")
            blob = weight_bytes(cfg, w)
            img.addr[name], img.kt[name], img.shape[name] = (
                at,
                ceil_div(w.shape[0], cfg.rows),
                w.shape,
            )
            img.blobs[name] = blob
            at += len(blob)
        img.end = check_weights_fit(cfg, base, at)
        return img

    def writes(self) -> list[tuple[int, bytes]]:
        """(address, bytes) to write into off-chip memory."""
        return [(self.addr[n], b) for n, b in self.blobs.items()]


def check_weights_fit(cfg: AccelConfig, base: int, end: int) -> int:
    """``end`` if a weight image from ``base`` to ``end`` fits the memory; else CompileError."""
    if end > cfg.mem_bytes:
        raise CompileError(
            f"weights need {end - base} bytes at {base:#x}; memory holds {cfg.mem_bytes}"
        )
    return end


@dataclass
class PBLayout:
    """Cached block per tensor: (first PB tile, kc, nc) in tiles; row stride is kc."""

    blocks: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    @classmethod
    def allocate(cls, cfg: AccelConfig, plan: dict[str, tuple[int, int]]) -> PBLayout:
        """Pack ``{tensor: (kc, nc)}`` tile blocks one after another; error if they don't fit."""
        out, at = cls(), 0
        for name, (kc, nc) in plan.items():
            if kc <= 0 or nc <= 0:
                continue
            out.blocks[name] = (at, kc, nc)
            at += kc * nc
        if at > cfg.pb_tiles:
            raise CompileError(f"cache plan needs {at} tiles; the PB holds {cfg.pb_tiles}")
        return out

    @property
    def tiles(self) -> int:
        return sum(kc * nc for _, kc, nc in self.blocks.values())

    def key(self) -> tuple:
        """Hashable contents (to cache the programs compiled for this layout)."""
        return tuple(sorted(self.blocks.items()))


def pb_layout(cfg: AccelConfig, sub: Mapping[str, tuple[int, int]]) -> PBLayout:
    """The PB tile blocks that hold SubGraph ``sub`` (``{tensor: (k, n)}`` leading slices of
    ``kn`` tensors), packed in tensor order; CompileError if they do not fit the PB."""
    plan = {t: (ceil_div(d[0], cfg.rows), ceil_div(d[1], cfg.cols)) for t, d in sorted(sub.items())}
    try:
        return PBLayout.allocate(cfg, plan)
    except CompileError as e:
        nbytes = sum(k * n for k, n in sub.values())
        raise CompileError(
            f"SubGraph of {nbytes} weight bytes does not fit the PB of preset {cfg.name!r} "
            f"({cfg.pb_bytes} bytes): {e}"
        ) from None


def cache_program(cfg: AccelConfig, image: WeightImage, layout: PBLayout) -> list[bytes]:
    """CACHE commands filling the PB per ``layout`` (one per tile row of each block)."""
    tb = cfg.tile_bytes
    cmds = []
    for name, (pb_tile, kc, nc) in layout.blocks.items():
        if name not in image.addr:
            raise CompileError(f"cache plan names unknown tensor {name!r}")
        kt_full = image.kt[name]
        nt_full = ceil_div(image.shape[name][1], cfg.cols)
        if kc > kt_full or nc > nt_full:
            raise CompileError(f"cached block {kc}x{nc} tiles exceeds tensor {name!r}")
        for j in range(nc):
            cmds.append(isa.cache(image.addr[name] + j * kt_full * tb, pb_tile + j * kc, kc))
    return cmds


def check_layer(cfg: AccelConfig, image: WeightImage, call: LayerCall) -> None:
    kmax, nmax = image.shape[call.tensor]
    if not (1 <= call.k <= kmax and 1 <= call.n <= nmax):
        raise CompileError(
            f"layer on {call.tensor!r} uses {call.k}x{call.n} of a {kmax}x{nmax} tensor"
        )
    # The slice must be whole tiles (or reach the tensor's zero-padded edge), so the padding a
    # GEMM sees is zeros, never another SubNet's weights.
    if call.k % cfg.rows and call.k != kmax:
        raise CompileError(
            f"layer on {call.tensor!r}: k={call.k} is not a multiple of {cfg.rows} rows"
        )
    if call.n % cfg.cols and call.n != nmax:
        raise CompileError(
            f"layer on {call.tensor!r}: n={call.n} is not a multiple of {cfg.cols} columns"
        )


def pb_tiles_for(layout: PBLayout, cfg: AccelConfig, call: LayerCall) -> tuple[int, int, int, int]:
    """(pb_tile, pb_stride, pb_kt, pb_nt) of the part of ``call`` the PB serves."""
    if call.tensor not in layout.blocks:
        return 0, 0, 0, 0
    pb_tile, kc, nc = layout.blocks[call.tensor]
    return pb_tile, kc, min(kc, ceil_div(call.k, cfg.rows)), min(nc, ceil_div(call.n, cfg.cols))


def network_program(
    cfg: AccelConfig,
    image: WeightImage,
    layout: PBLayout,
    calls: list[LayerCall],
    m: int,
    in_addr: int,
    out_addr: int,
) -> list[bytes]:
    """LOAD_ACT the input, one GEMM per layer through the ping-pong buffers, STORE_ACT, DONE."""
    if not calls:
        raise CompileError("a network needs at least one layer")
    for what, addr in (("input", in_addr), ("output", out_addr)):
        if addr % cfg.mem_width:
            raise CompileError(f"{what} address {addr:#x} is not aligned to {cfg.mem_width} bytes")
    for i, call in enumerate(calls):
        check_layer(cfg, image, call)
        if i and call.k != calls[i - 1].n:
            raise CompileError(
                f"layer {i} expects k={call.k} inputs, layer {i - 1} gives {calls[i - 1].n}"
            )
        if call.requant is None and i != len(calls) - 1:
            raise CompileError("only the last layer may produce int32 output")
    # LOAD_ACT and STORE_ACT move whole memory beats: when a beat is wider than an activation
    # word (mem_width > rows) their word counts are rounded up to whole beats
    per_beat = max(1, cfg.mem_width // cfg.rows)

    def beats(words: int) -> int:
        return ceil_div(words, per_beat) * per_beat

    words_in = beats(in_words(cfg, m, calls[0].k))
    cmds = [isa.load_act(in_addr, 0, 0, words_in)]
    for i, call in enumerate(calls):
        a_buf = i % 2
        need = max(in_words(cfg, m, call.k), out_words(cfg, m, call.n, int32=call.requant is None))
        if i == 0:
            need = max(need, words_in)
        if i == len(calls) - 1:
            need = max(need, beats(out_words(cfg, m, call.n, int32=call.requant is None)))
        if need > cfg.act_words:
            raise CompileError(
                f"layer {i} needs {need} activation words; a buffer holds {cfg.act_words}"
            )
        pb_tile, pb_stride, pb_kt, pb_nt = pb_tiles_for(layout, cfg, call)
        cmds.append(
            isa.gemm(
                m=m,
                k=call.k,
                n=call.n,
                a_buf=a_buf,
                a_word=0,
                o_buf=1 - a_buf,
                o_word=0,
                w_addr=image.addr[call.tensor],
                w_stride=image.kt[call.tensor],
                pb_tile=pb_tile,
                pb_stride=pb_stride,
                pb_kt=pb_kt,
                pb_nt=pb_nt,
                requant=call.requant,
                relu=call.relu,
            )
        )
    last = calls[-1]
    words_out = out_words(cfg, m, last.n, int32=last.requant is None)
    cmds.append(isa.store_act(out_addr, len(calls) % 2, 0, beats(words_out)))
    cmds.append(isa.done())
    return cmds


def offchip_weight_bytes(cfg: AccelConfig, layout: PBLayout, calls: list[LayerCall], m: int) -> int:
    """Weight bytes the program's GEMMs read off-chip (what the RTL counter must show)."""
    total = 0
    for call in calls:
        _, _, pb_kt, pb_nt = pb_tiles_for(layout, cfg, call)
        tiles = ceil_div(call.k, cfg.rows) * ceil_div(call.n, cfg.cols) - pb_kt * pb_nt
        total += tiles * cfg.tile_bytes * ceil_div(m, cfg.acc_depth)
    return total
