"""The off-chip weight image of a convolutional SuperNet and its Persistent Buffer layout (the
formats are in :mod:`sushi_sched.conv_compiler`'s docstring), and the host's feature-map byte
layouts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div
from sushi_hw.program import weight_tiles

from .compiler import CompileError, check_weights_fit


# ---- host layouts -------------------------------------------------------------------------------
def fmap_bytes(cfg: AccelConfig, x: np.ndarray) -> bytes:
    """int8 ``[H, W, C]`` as feature-map words ``[ct][y][x]`` of ``rows`` bytes (lanes beyond C
    zero)."""
    if x.ndim != 3 or x.dtype != np.int8:
        raise CompileError(f"a feature map must be int8 [H, W, C], got {x.dtype} {x.shape}")
    h, w, c = x.shape
    ct, r = ceil_div(c, cfg.rows), cfg.rows
    pad = np.zeros((h, w, ct * r), dtype=np.int8)
    pad[:, :, :c] = x
    return np.ascontiguousarray(pad.reshape(h, w, ct, r).transpose(2, 0, 1, 3)).tobytes()


def fmap_words(cfg: AccelConfig, h: int, w: int, c: int, int32: bool = False) -> int:
    return ceil_div(c, cfg.rows) * h * w * (4 if int32 else 1)


def fmap_from_bytes(
    cfg: AccelConfig, raw: bytes, h: int, w: int, c: int, int32: bool = False
) -> np.ndarray:
    """Inverse of :func:`fmap_bytes`; with ``int32`` the 4-words-per-pixel int32 output of a
    CONV without requantisation (``[H, W, C]`` int32)."""
    ct, r = ceil_div(c, cfg.rows), cfg.rows
    n = fmap_words(cfg, h, w, c, int32) * r
    if int32:
        a = np.frombuffer(raw[:n], dtype="<i4").reshape(ct, h, w, r).astype(np.int32)
    else:
        a = np.frombuffer(raw[:n], dtype=np.int8).reshape(ct, h, w, r)
    return np.ascontiguousarray(a.transpose(1, 2, 0, 3).reshape(h, w, ct * r)[:, :, :c])


def conv_weight_tiles(cfg: AccelConfig, w: np.ndarray) -> np.ndarray:
    """int8 ``[C_out, C_in, k, k]`` -> tiles ``[NT, CT, k*k, rows, cols]`` (taps in ring order)."""
    c_out, c_in, k, _ = w.shape
    r, c = cfg.rows, cfg.cols
    nt, ct = ceil_div(c_out, c), ceil_div(c_in, r)
    taps = isa.ring_taps(k)
    ky = np.array([dy + k // 2 for dy, _ in taps])
    kx = np.array([dx + k // 2 for _, dx in taps])
    pad = np.zeros((nt * c, ct * r, k * k), dtype=np.int8)
    pad[:c_out, :c_in] = w[:, :, ky, kx]
    return np.ascontiguousarray(pad.reshape(nt, c, ct, r, k * k).transpose(0, 2, 4, 3, 1))


# ---- weight image -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tensor:
    """Where one SuperNet tensor lives off-chip: a tile grid ``[nt][ct][taps]``."""

    addr: int
    shape: tuple[int, ...]  # [C_out, C_in, K, K] (conv) or [K, N] (fc)
    nt: int
    ct: int  # input channel tiles (fc: K-tiles)
    taps: int  # K*K (fc: 1)

    @property
    def is_conv(self) -> bool:
        return len(self.shape) == 4

    @property
    def cstride(self) -> int:
        return self.taps

    @property
    def nstride(self) -> int:
        return self.ct * self.taps

    @property
    def tiles(self) -> int:
        return self.nt * self.ct * self.taps


@dataclass
class ConvImage:
    """The off-chip weight image of a convolutional SuperNet (4-D conv and 2-D FC tensors)."""

    cfg: AccelConfig
    base: int
    tensors: dict[str, Tensor] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    end: int = 0

    @classmethod
    def build(cls, cfg: AccelConfig, tensors: Mapping[str, np.ndarray], base: int) -> ConvImage:
        if base % cfg.mem_width:
            raise CompileError(f"weight base {base:#x} is not aligned to {cfg.mem_width} bytes")
        img, at = cls(cfg, base), base
        for name, w in tensors.items():
            if w.dtype != np.int8 or w.ndim not in (2, 4):
                raise CompileError(
                    f"tensor {name!r} must be int8 [C_out, C_in, k, k] or [K, N], "
                    f"got {w.dtype} {w.shape}"
                )
            if w.ndim == 4:
                if w.shape[2] != w.shape[3] or w.shape[2] not in isa.KERNELS:
                    raise CompileError(
                        f"tensor {name!r}: kernel {w.shape[2]}x{w.shape[3]} is not one of "
                        f"{', '.join(f'{k}x{k}' for k in isa.KERNELS)}"
                    )
                tiles = conv_weight_tiles(cfg, w)
            else:
                tiles = weight_tiles(cfg, w)[:, :, None]
            nt, ct, taps = tiles.shape[:3]
            img.tensors[name] = Tensor(at, tuple(w.shape), nt, ct, taps)
            img.blobs[name] = tiles.tobytes()
            at += len(img.blobs[name])
        img.end = check_weights_fit(cfg, base, at)
        return img

    def writes(self) -> list[tuple[int, bytes]]:
        """(address, bytes) to write into off-chip memory."""
        return [(self.tensors[n].addr, b) for n, b in self.blobs.items()]

    def tensor(self, name: str) -> Tensor:
        if name not in self.tensors:
            raise CompileError(f"unknown tensor {name!r}")
        return self.tensors[name]


# ---- Persistent Buffer --------------------------------------------------------------------------
@dataclass
class ConvPBLayout:
    """Cached block per tensor: ``(pb_tile, nt, ct, taps)``, dense ``[nt][ct][taps]``."""

    blocks: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)

    @property
    def tiles(self) -> int:
        return sum(n * c * t for _, n, c, t in self.blocks.values())

    def key(self) -> tuple:
        return tuple(sorted(self.blocks.items()))


def slice_tiles(cfg: AccelConfig, t: Tensor, dims: tuple[int, ...]) -> tuple[int, int, int]:
    """(nt, ct, taps) of a leading slice: ``(c_out, c_in, k)`` of a conv tensor, ``(k, n)`` of
    an FC tensor."""
    if t.is_conv:
        c_out, c_in, k = dims
        return ceil_div(c_out, cfg.cols), ceil_div(c_in, cfg.rows), k * k
    k, n = dims
    return ceil_div(n, cfg.cols), ceil_div(k, cfg.rows), 1


def check_slice(
    cfg: AccelConfig, name: str, t: Tensor, dims: tuple[int, ...], cached: bool = False
) -> None:
    what = "cached block" if cached else "layer"
    if t.is_conv:
        if len(dims) != 3:
            raise CompileError(f"{what} on conv tensor {name!r} needs (c_out, c_in, k)")
        c_out, c_in, k = dims
        cm, im, km = t.shape[:3]
        if k not in isa.KERNELS:
            raise CompileError(f"{what} on {name!r}: kernel {k} is not one of {isa.KERNELS}")
        if not (1 <= c_out <= cm and 1 <= c_in <= im and k <= km):
            raise CompileError(
                f"{what} on {name!r} uses {c_out}x{c_in}x{k}x{k} of a {cm}x{im}x{km}x{km} tensor"
            )
        if not cached and c_out % cfg.cols and c_out != cm:
            raise CompileError(
                f"layer on {name!r}: c_out={c_out} is neither a multiple of {cfg.cols} columns "
                f"nor the tensor's {cm}; its last output tile would carry other channels"
            )
    else:
        if len(dims) != 2:
            raise CompileError(f"{what} on FC tensor {name!r} needs (k, n)")
        k, n = dims
        km, nm = t.shape
        if not (1 <= k <= km and 1 <= n <= nm):
            raise CompileError(f"{what} on {name!r} uses {k}x{n} of a {km}x{nm} tensor")
        if not cached and n % cfg.cols and n != nm:
            raise CompileError(
                f"layer on {name!r}: n={n} is neither a multiple of {cfg.cols} columns "
                f"nor the tensor's {nm}"
            )


def conv_pb_layout(
    cfg: AccelConfig, image: ConvImage, sub: Mapping[str, tuple[int, ...]]
) -> ConvPBLayout:
    """The PB blocks holding SubGraph ``sub`` (``{tensor: (c_out, c_in, k)}`` for conv tensors,
    ``{tensor: (k, n)}`` for FC ones), packed in tensor order; CompileError if they do not fit."""
    out, at = ConvPBLayout(), 0
    for name, dims in sorted(sub.items()):
        t = image.tensor(name)
        check_slice(cfg, name, t, dims, cached=True)
        nt, ct, taps = slice_tiles(cfg, t, dims)
        out.blocks[name] = (at, nt, ct, taps)
        at += nt * ct * taps
    if at > cfg.pb_tiles:
        raise CompileError(
            f"SubGraph of {at} weight tiles does not fit the PB of preset {cfg.name!r} "
            f"({cfg.pb_tiles} tiles of {cfg.tile_bytes} bytes)"
        )
    return out


def cache_program(cfg: AccelConfig, image: ConvImage, layout: ConvPBLayout) -> list[bytes]:
    """CACHE commands filling the PB per ``layout``: one per contiguous run of source tiles
    (a whole block when it spans every input tile and tap of the tensor)."""
    tb, cmds = cfg.tile_bytes, []
    for name, (pb_tile, nt, ct, taps) in layout.blocks.items():
        t = image.tensor(name)
        src = [n * t.nstride + c * t.cstride + k for n in range(nt) for c in range(ct)
               for k in range(taps)]  # fmt: skip
        start = 0
        for i in range(1, len(src) + 1):
            if i == len(src) or src[i] != src[i - 1] + 1:
                cmds.append(isa.cache(t.addr + src[start] * tb, pb_tile + start, i - start))
                start = i
    return cmds
