"""Compiler for convolutional networks: (SubNet layers, cached SubGraph, PB layout) -> a CONV /
ADD / POOL / GEMM command program (docs/isa.md).

**Weights.** Off-chip memory holds every SuperNet tensor once. A conv tensor
``[C_out_max, C_in_max, K_max, K_max]`` is stored as tiles ``[nt][ct][t]`` (rows x cols bytes
each: tile row r = input channel ``ct*rows + r``, column c = output channel ``nt*cols + c``, the
taps ``t`` in ring order, :func:`sushi_hw.isa.ring_taps`; zero padded), so
``w_cstride = K_max**2`` and ``w_nstride = CT_max * K_max**2``. An FC tensor ``[K, N]`` is a GEMM
tile grid ``[nt][kt]`` (one tap). A SubNet's ``(c_out', c_in', k')`` slice (leading output
channels, leading input channels, centre k' x k' crop) is the leading tile range on each axis, so
it is addressed in place: same ``w_addr``, same strides, fewer tiles.

**PB.** A cached SubGraph holds, per tensor, a dense ``[pb_nt][pb_ct][pb_t]`` block
(``pb_cstride = pb_t``, ``pb_nstride = pb_ct*pb_t``) copied from the image by CACHE commands, one
per contiguous run of source tiles. A SubNet takes ``min(its slice, the cached block)`` on each
axis from the PB and the rest off-chip: one CONV per layer either way.

**Programs.** :class:`Network` records a graph of layers (conv, residual add, global average
pooling, FC) and :meth:`Network.program` lowers it: LOAD_ACT of the input once, one command per
layer with the feature maps allocated in the two activation buffers (first fit, freed after
their last use, an ADD written in place over a dying input), STORE_ACT of the output once.
There is **no bias** in CONV (the ISA has none this round): fold a layer's bias elsewhere or
leave it out.

Lanes beyond a feature map's channel count are always zero (the host pads the input, every
producer's padding columns have zero weights), so a layer may use any ``c_in'``; its ``c_out'``
must be whole output tiles or the tensor's full ``C_out`` so that it writes no other channel's
values into those lanes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sushi_hw import isa
from sushi_hw.config import AccelConfig, ceil_div

from .compiler import CompileError, LayerCall
from .conv_image import (
    ConvImage,
    ConvPBLayout,
    check_slice,
    fmap_words,
    slice_tiles,
)


# ---- layers -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvLayer:
    """One CONV: the ``(c_out, c_in, k)`` leading slice of conv tensor ``tensor`` (the centre
    k x k crop), stride and zero padding (default ``k // 2``), then requantisation (None: int32,
    only for a network's output) and ReLU. No bias: the ISA has none this round."""

    tensor: str
    c_out: int
    c_in: int
    k: int
    stride: int = 1
    pad: int | None = None
    requant: tuple[int, int] | None = (1, 0)
    relu: bool = False

    @property
    def padding(self) -> int:
        return self.k // 2 if self.pad is None else self.pad


def weight_operands(
    cfg: AccelConfig, image: ConvImage, layout: ConvPBLayout | None, name: str, dims: tuple
) -> dict[str, int]:
    """The CONV weight fields of a layer on ``name``'s ``dims`` slice: off-chip strides of the
    full tensor, and the part of the cached block the slice uses (none if any axis is empty)."""
    t = image.tensor(name)
    check_slice(cfg, name, t, dims)
    nt, ct, taps = slice_tiles(cfg, t, dims)
    ops = dict(w_addr=t.addr, w_cstride=t.cstride, w_nstride=t.nstride)
    if layout is not None and name in layout.blocks:
        pb_tile, bn, bc, bt = layout.blocks[name]
        use = (min(nt, bn), min(ct, bc), min(taps, bt))
        if min(use) > 0:
            ops.update(pb_tile=pb_tile, pb_cstride=bt, pb_nstride=bc * bt)
            ops.update(pb_nt=use[0], pb_ct=use[1], pb_t=use[2])
    return ops


def pool_requant(pixels: int, scale: float = 1.0) -> tuple[int, int]:
    """(mult, shift) of a POOL over ``pixels`` pixels that computes ``scale * mean``: the largest
    shift (<= 31) with ``mult = round(scale * 2**shift / pixels)`` below 2**16.

    Rounding: POOL gives ``floor(sum*mult / 2**shift + 1/2)``. With ``scale = 1`` and ``pixels``
    a power of two this is exactly the mean rounded half up; otherwise ``mult / 2**shift`` is
    within ``2**-(shift+1)`` of ``1/pixels`` (``mult >= 2**15``), so the result is the mean
    rounded half up except when the mean lies within ``2**-9`` of a half (possible only for
    ``pixels >= 256``, or an exact half), where it may be the other neighbour."""
    if pixels < 1 or scale <= 0:
        raise CompileError(f"pooling over {pixels} pixels with scale {scale}")
    for shift in range(31, -1, -1):
        mult = round(scale * (1 << shift) / pixels)
        if 1 <= mult < (1 << 16):
            return mult, shift
    raise CompileError(f"scale {scale} / {pixels} pixels has no 16-bit multiplier")


# ---- the network ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fmap:
    """A value of the network: ``h x w x c`` (int8, or int32 for an output)."""

    id: int
    h: int
    w: int
    c: int
    int32: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.h, self.w, self.c


@dataclass
class _Op:
    kind: str  # input, conv, add, pool, fc
    out: Fmap
    ins: tuple[Fmap, ...]
    args: dict


class Network:
    """A graph of layers over feature maps, lowered by :meth:`program`."""

    def __init__(self, cfg: AccelConfig, image: ConvImage, layout: ConvPBLayout | None = None):
        if not cfg.conv:
            raise CompileError(f"preset {cfg.name!r} has no convolution hardware (conv = false)")
        self.cfg, self.image, self.layout = cfg, image, layout
        self.ops: list[_Op] = []

    def _new(self, kind: str, ins: tuple[Fmap, ...], h, w, c, int32=False, **args) -> Fmap:  # noqa: ANN001
        for x in ins:
            if x.int32:
                raise CompileError(f"{kind} cannot read an int32 feature map (only an output)")
        out = Fmap(len(self.ops), h, w, c, int32)
        self.ops.append(_Op(kind, out, ins, args))
        return out

    def input(self, h: int, w: int, c: int) -> Fmap:
        if self.ops:
            raise CompileError("the input must be the network's first value")
        if not (1 <= h <= 255 and 1 <= w <= 255 and 1 <= c < 4096):
            raise CompileError(f"input {h}x{w}x{c}: H and W must be 1..255, C 1..4095")
        return self._new("input", (), h, w, c)

    def conv(self, x: Fmap, layer: ConvLayer) -> Fmap:
        """One CONV of ``x`` (``layer.c_in`` must be x's channel count)."""
        if layer.c_in != x.c:
            raise CompileError(
                f"conv on {layer.tensor!r} expects {layer.c_in} input channels, gets {x.c}"
            )
        if layer.stride not in isa.STRIDES:
            raise CompileError(f"conv on {layer.tensor!r}: stride {layer.stride} not in (1, 2)")
        p = layer.padding
        if not 0 <= p <= layer.k // 2:
            raise CompileError(f"conv on {layer.tensor!r}: pad {p} not in 0..{layer.k // 2}")
        h_out = isa.conv_out_size(x.h, layer.k, layer.stride, p)
        w_out = isa.conv_out_size(x.w, layer.k, layer.stride, p)
        if h_out < 1 or w_out < 1:
            raise CompileError(
                f"conv on {layer.tensor!r}: a {layer.k}x{layer.k} kernel does not fit a "
                f"{x.h}x{x.w} map padded by {p}"
            )
        ops = weight_operands(
            self.cfg, self.image, self.layout, layer.tensor, (layer.c_out, layer.c_in, layer.k)
        )
        return self._new("conv", (x,), h_out, w_out, layer.c_out, layer.requant is None,
                         layer=layer, ops=ops)  # fmt: skip

    def add(
        self, a: Fmap, b: Fmap, mult_a: int, mult_b: int, shift: int, relu: bool = True
    ) -> Fmap:
        """The residual add ``sat8(relu((a*mult_a + b*mult_b + round) >> shift))``."""
        if a.shape != b.shape:
            raise CompileError(
                f"residual add of mismatched shapes {a.h}x{a.w}x{a.c} and {b.h}x{b.w}x{b.c}"
            )
        for v, what, bits in ((mult_a, "mult_a", 16), (mult_b, "mult_b", 16), (shift, "shift", 5)):
            if not 0 <= v < (1 << bits):
                raise CompileError(f"residual add: {what} = {v} does not fit {bits} bits")
        return self._new("add", (a, b), a.h, a.w, a.c, mult_a=mult_a, mult_b=mult_b,
                         shift=shift, relu=relu)  # fmt: skip

    def pool(self, x: Fmap, mult: int | None = None, shift: int | None = None) -> Fmap:
        """Global average pooling to ``1 x 1 x C``; ``mult``/``shift`` default to
        :func:`pool_requant` of the map's pixel count (the mean)."""
        if (mult is None) != (shift is None):
            raise CompileError("give both mult and shift of a pool, or neither")
        if mult is None:
            mult, shift = pool_requant(x.h * x.w)
        if not (1 <= mult < (1 << 16) and 0 <= shift < 32):
            raise CompileError(f"pool: mult {mult} / shift {shift} out of range")
        return self._new("pool", (x,), 1, 1, x.c, mult=mult, shift=shift)

    def fc(self, x: Fmap, call: LayerCall) -> Fmap:
        """The classifier: a GEMM (m = 1) of a pooled ``1 x 1 x C`` map by FC tensor
        ``call.tensor``'s ``(k, n)`` slice."""
        if (x.h, x.w) != (1, 1):
            raise CompileError(f"fc on {call.tensor!r} needs a pooled 1x1 map, got {x.h}x{x.w}")
        if call.k != x.c:
            raise CompileError(f"fc on {call.tensor!r} expects k={call.k} inputs, gets {x.c}")
        t = self.image.tensor(call.tensor)
        if t.is_conv:
            raise CompileError(f"fc on {call.tensor!r}: that is a conv tensor")
        ops = weight_operands(self.cfg, self.image, self.layout, call.tensor, (call.k, call.n))
        return self._new("fc", (x,), 1, 1, call.n, call.requant is None, call=call, ops=ops)

    def basic_block(
        self,
        x: Fmap,
        conv1: ConvLayer,
        conv2: ConvLayer,
        add: tuple[int, int, int],
        shortcut: ConvLayer | None = None,
    ) -> Fmap:
        """ResNet basic block: ``relu(conv2(conv1(x)) * ma + sc(x) * mb)``, ``sc`` the identity
        or a projection conv (1x1, stride 2). ``add`` = (mult_a, mult_b, shift)."""
        y = self.conv(self.conv(x, conv1), conv2)
        return self._residual(x, y, add, shortcut)

    def bottleneck_block(
        self,
        x: Fmap,
        conv1: ConvLayer,
        conv2: ConvLayer,
        conv3: ConvLayer,
        add: tuple[int, int, int],
        shortcut: ConvLayer | None = None,
    ) -> Fmap:
        """ResNet bottleneck block: 1x1, 3x3 (carries the stride), 1x1, then the shortcut add."""
        y = self.conv(self.conv(self.conv(x, conv1), conv2), conv3)
        return self._residual(x, y, add, shortcut)

    def _residual(self, x: Fmap, y: Fmap, add, shortcut: ConvLayer | None) -> Fmap:  # noqa: ANN001
        s = x if shortcut is None else self.conv(x, shortcut)
        if s.shape != y.shape:
            how = "identity" if shortcut is None else "projection"
            raise CompileError(
                f"residual of mismatched shape: the block gives {y.h}x{y.w}x{y.c}, its "
                f"{how} shortcut {s.h}x{s.w}x{s.c}"
            )
        return self.add(y, s, *add, relu=True)

    # ---- lowering --------------------------------------------------------------------------
    def words(self, v: Fmap) -> int:
        return fmap_words(self.cfg, v.h, v.w, v.c, v.int32)

    def _beats(self, words: int) -> int:
        per_beat = max(1, self.cfg.mem_width // self.cfg.rows)
        return ceil_div(words, per_beat) * per_beat

    def program(self, out: Fmap, in_addr: int, out_addr: int) -> list[bytes]:
        """LOAD_ACT the input, one command per layer, STORE_ACT ``out``, DONE."""
        cfg = self.cfg
        if not self.ops or self.ops[0].kind != "input":
            raise CompileError("a network starts with its input")
        for what, addr in (("input", in_addr), ("output", out_addr)):
            if addr % cfg.mem_width:
                raise CompileError(f"{what} address {addr:#x} is not aligned to {cfg.mem_width}")
        last = {}
        for i, op in enumerate(self.ops):
            for x in op.ins:
                last[x.id] = i
        last[out.id] = len(self.ops)
        live: dict[int, tuple[int, int, int]] = {}  # id -> (buf, word, words)

        def alloc(v: Fmap, avoid: int | None) -> tuple[int, int, int]:
            n = self._beats(self.words(v))
            order = [1 - avoid, avoid] if avoid is not None else [0, 1]
            for buf in order:
                used = sorted((w, w + k) for b, w, k in live.values() if b == buf)
                at = 0
                for s, e in used:
                    if at + n <= s:
                        break
                    at = max(at, e)
                if at + n <= cfg.act_words:
                    return buf, at, n
            busy = sum(k for _, _, k in live.values())
            raise CompileError(
                f"{self.ops[v.id].kind} output {v.h}x{v.w}x{v.c} needs {n} activation words; "
                f"with {busy} words live the two buffers of {cfg.act_words} words have no room"
            )

        cmds = []
        for i, op in enumerate(self.ops):
            v = op.out
            if op.kind == "add":
                a, b = op.ins
                dying = [x for x in (a, b) if last[x.id] == i and x.id != out.id]
                live[v.id] = live[dying[0].id] if dying else alloc(v, live[a.id][0])
            else:
                live[v.id] = alloc(v, live[op.ins[0].id][0] if op.ins else None)
            ob, ow, _ = live[v.id]
            if op.kind == "input":
                cmds.append(isa.load_act(in_addr, ob, ow, self._beats(self.words(v))))
            elif op.kind == "conv":
                (x,) = op.ins
                lay: ConvLayer = op.args["layer"]
                cmds.append(
                    isa.conv(
                        h=x.h,
                        w=x.w,
                        c_in=x.c,
                        c_out=v.c,
                        k=lay.k,
                        stride=lay.stride,
                        pad=lay.padding,
                        a_buf=live[x.id][0],
                        a_word=live[x.id][1],
                        o_buf=ob,
                        o_word=ow,
                        requant=lay.requant,
                        relu=lay.relu,
                        **op.args["ops"],
                    )  # fmt: skip
                )
            elif op.kind == "add":
                a, b = op.ins
                cmds.append(
                    isa.add(
                        a_buf=live[a.id][0],
                        a_word=live[a.id][1],
                        b_buf=live[b.id][0],
                        b_word=live[b.id][1],
                        o_buf=ob,
                        o_word=ow,
                        words=self.words(v),
                        **op.args,
                    )  # fmt: skip
                )
            elif op.kind == "pool":
                (x,) = op.ins
                cmds.append(
                    isa.pool(
                        a_buf=live[x.id][0],
                        a_word=live[x.id][1],
                        o_buf=ob,
                        o_word=ow,
                        pixels=x.h * x.w,
                        tiles=ceil_div(x.c, cfg.rows),
                        **op.args,
                    )  # fmt: skip
                )
            else:  # fc
                (x,) = op.ins
                call: LayerCall = op.args["call"]
                o = op.args["ops"]
                cmds.append(
                    isa.gemm(
                        m=1,
                        k=call.k,
                        n=call.n,
                        a_buf=live[x.id][0],
                        a_word=live[x.id][1],
                        o_buf=ob,
                        o_word=ow,
                        w_addr=o["w_addr"],
                        w_stride=o["w_nstride"],
                        pb_tile=o.get("pb_tile", 0),
                        pb_stride=o.get("pb_nstride", 0),
                        pb_kt=o.get("pb_ct", 0),
                        pb_nt=o.get("pb_nt", 0),
                        requant=call.requant,
                        relu=call.relu,
                    )  # fmt: skip
                )
            for x in op.ins:  # free what dies here (an in-place ADD's region lives on as v)
                if last[x.id] == i:
                    live.pop(x.id, None)
        ob, ow, _ = live[out.id]
        cmds.append(isa.store_act(out_addr, ob, ow, self._beats(self.words(out))))
        cmds.append(isa.done())
        return cmds


def conv_program(
    cfg: AccelConfig,
    image: ConvImage,
    layout: ConvPBLayout | None,
    layer: ConvLayer,
    h: int,
    w: int,
    in_addr: int,
    out_addr: int,
) -> list[bytes]:
    """One convolution of an ``h x w x layer.c_in`` map: LOAD_ACT, CONV, STORE_ACT, DONE. When
    the output does not fit a buffer (int32 output is 4 words per pixel and tile) the CONV is
    split by output channel tiles, each part stored after the previous one (the output layout
    is ``[nt][y][x]``, so the parts are contiguous in memory)."""
    net = Network(cfg, image, layout)
    x = net.input(h, w, layer.c_in)
    y = net.conv(x, layer)
    in_words = net._beats(net.words(x))
    if in_words > cfg.act_words:
        raise CompileError(
            f"the {h}x{w}x{layer.c_in} input needs {in_words} activation words; "
            f"a buffer holds {cfg.act_words}"
        )
    per_tile = net.words(Fmap(-1, y.h, y.w, min(y.c, cfg.cols), y.int32))
    nt = ceil_div(y.c, cfg.cols)
    group = max(1, min(nt, cfg.act_words // per_tile))
    if net._beats(per_tile * group) > cfg.act_words:
        group -= 1
    if group < 1:
        raise CompileError(
            f"one output channel tile of {y.h}x{y.w} pixels needs {per_tile} activation words; "
            f"a buffer holds {cfg.act_words}"
        )
    if group >= nt:
        return net.program(y, in_addr, out_addr)
    cmds = [isa.load_act(in_addr, 0, 0, in_words)]
    ops = net.ops[1].args["ops"]
    t = image.tensor(layer.tensor)
    for n0 in range(0, nt, group):
        n = min(group, nt - n0)
        part = dict(ops, w_addr=t.addr + n0 * t.nstride * cfg.tile_bytes)
        if ops.get("pb_nt", 0) > n0:
            part.update(
                pb_tile=ops["pb_tile"] + n0 * ops["pb_nstride"], pb_nt=min(n, ops["pb_nt"] - n0)
            )
        else:
            for f in ("pb_tile", "pb_cstride", "pb_nstride", "pb_nt", "pb_ct", "pb_t"):
                part.pop(f, None)
        c_out = min(n * cfg.cols, layer.c_out - n0 * cfg.cols)
        cmds.append(
            isa.conv(
                h=h,
                w=w,
                c_in=layer.c_in,
                c_out=c_out,
                k=layer.k,
                stride=layer.stride,
                pad=layer.padding,
                a_buf=0,
                a_word=0,
                o_buf=1,
                o_word=0,
                requant=layer.requant,
                relu=layer.relu,
                **part,
            )  # fmt: skip
        )
        words = n * per_tile
        cmds.append(isa.store_act(out_addr + n0 * per_tile * cfg.rows, 1, 0, net._beats(words)))
    cmds.append(isa.done())
    return cmds
