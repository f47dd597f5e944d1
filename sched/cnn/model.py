"""The digits CNN SuperNet: an OFA-ResNet-style residual network, its SubNet space, the layer plan
every consumer walks, float inference and weight-sharing training.

Structure (default :class:`SuperNetSpec`; ``K = 3`` the largest kernel)::

    x        8x8x1 (pixels / 16)
    stem     conv 3x3, 1 -> 16, ReLU                                     8x8
    stage 1  1..2 basic blocks, width 16, stride 1 (identity shortcuts)   8x8
    stage 2  1..2 basic blocks, width 24, first block stride 2 + 1x1 projection  4x4
    stage 3  1..2 basic blocks, width 32, first block stride 2 + 1x1 projection  2x2
    pool     global average                                              1x1x32
    fc       32 -> 10, int32 logits

A basic block is ``relu(c2(relu(c1(x))) + sc(x))``: ``c1`` (``K x K``, carries the stride) maps the
block input to ``mid`` channels, ``c2`` (``K x K``) maps them back to the stage width, ``sc`` is
the identity or a 1x1 projection (stride 2).

A SubNet (:class:`SubNetConfig`) chooses, OFA-style:

* elastic depth: 1 or 2 blocks per stage (the leading blocks);
* elastic width: each block's ``mid`` (the leading output channels of ``c1`` and leading input
  channels of ``c2``), in whole tiles of 8 channels: {8, 16} / {8, 16, 24} / {8, 16, 24, 32};
* elastic kernel: each block's ``c1`` and ``c2`` use the centre ``k x k`` crop, ``k`` in {1, 3}
  (a 1x1 block is pointwise; stride-2 1x1 convolutions subsample).

Stage widths (the residual stream) are fixed, so every shortcut has one shape. Every SubNet layer
is a leading slice of its SuperNet tensor (leading output channels, leading input channels, centre
crop), which is what lets a cached SubGraph serve every SubNet that contains it.

**No bias, no BatchNorm.** The CONV command has no bias, so the network has none: every conv and
the classifier are bias-free, and there is no BatchNorm (whose shift would be a bias). Training
stability comes from the initialisation instead (He-normal, each residual branch's last conv
scaled down so that blocks start near the identity, as in Fixup). Without biases the float network
is positively homogeneous (``f(a x) = a f(x)`` for ``a > 0``), so int8 scales never change a
prediction's class except through rounding.

Training is pure numpy, float32, deterministic from a seed: the sandwich rule (the largest, the
smallest and ``n_random`` random SubNets on the same batch, gradients summed), the largest learning
from the labels and the others also from its soft predictions (in-place distillation); Adam,
cosine learning rate, +-1 pixel random shifts of the training images.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .data import IMAGE, N_CLASSES, float_images

DTYPE = np.float32  #: float arithmetic: training, calibration, float accuracy


class Block(NamedTuple):
    """One residual block of a SubNet: inner width ``mid`` and kernel ``k`` of ``c1``/``c2``."""

    mid: int
    k: int


class SubNetConfig(NamedTuple):
    """One SubNet: per stage, its active blocks (the leading ones). Hashable."""

    stages: tuple[tuple[Block, ...], ...]

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    @property
    def id(self) -> str:
        """Stable id: stages joined by ``-``, blocks by ``.``, e.g. ``16k3.8k1-24k3-32k3``."""
        return "-".join(".".join(f"{b.mid}k{b.k}" for b in s) for s in self.stages)

    @classmethod
    def parse(cls, text: str) -> SubNetConfig:
        """Inverse of :attr:`id`; ValueError if malformed (the space is checked separately)."""
        try:
            stages = []
            for s in str(text).split("-"):
                blocks = []
                for b in s.split("."):
                    mid, k = b.split("k")
                    blocks.append(Block(int(mid), int(k)))
                stages.append(tuple(blocks))
        except ValueError:
            raise ValueError(f"SubNet id {text!r} is not like '16k3.8k1-24k3-32k3'") from None
        return cls(tuple(stages))

    def as_json(self) -> list[list[list[int]]]:
        return [[[b.mid, b.k] for b in s] for s in self.stages]

    @classmethod
    def from_json(cls, v) -> SubNetConfig:  # noqa: ANN001
        try:
            return cls(tuple(tuple(Block(int(m), int(k)) for m, k in s) for s in v))
        except (TypeError, ValueError):
            raise ValueError(f"SubNet config {v!r} must be [[[mid, k], ...], ...]") from None


@dataclass(frozen=True)
class Op:
    """One operation of a SubNet's plan, over numbered values (0 is the input image).

    ``conv``: ``name`` is its SuperNet tensor, leading ``(c_out, c_in)`` and centre ``k x k``;
    ``add``: ``relu(ins[0] + ins[1])`` (the branch, then the shortcut); ``pool``: global average;
    ``fc``: ``pooled @ fc[:c_in, :c_out]``, int32 logits."""

    kind: str
    name: str
    ins: tuple[int, ...]
    out: int
    c_in: int
    c_out: int
    k: int = 1
    stride: int = 1
    relu: bool = False
    h_in: int = 1
    h_out: int = 1

    @property
    def pad(self) -> int:
        return self.k // 2


@dataclass(frozen=True)
class SuperNetSpec:
    """The SubNet space. ``mids[i]`` are stage ``i``'s inner widths, all multiples of 8."""

    stem_width: int = 16
    widths: tuple[int, ...] = (16, 24, 32)
    strides: tuple[int, ...] = (1, 2, 2)
    depths: tuple[int, ...] = (1, 2)
    mids: tuple[tuple[int, ...], ...] = ((8, 16), (8, 16, 24), (8, 16, 24, 32))
    kernels: tuple[int, ...] = (1, 3)
    n_out: int = N_CLASSES

    def __post_init__(self) -> None:
        def incr(v) -> bool:  # noqa: ANN001
            return bool(v) and list(v) == sorted(set(v)) and all(isinstance(i, int) for i in v)

        n = len(self.widths)
        if not (n == len(self.strides) == len(self.mids)) or n < 1:
            raise ValueError("widths, strides and mids need one entry per stage")
        if not incr(self.depths) or self.depths[0] < 1:
            raise ValueError(f"depths {self.depths} must be increasing integers >= 1")
        if not incr(self.kernels) or any(k not in (1, 3, 5, 7) for k in self.kernels):
            raise ValueError(f"kernels {self.kernels} must be increasing, from 1, 3, 5, 7")
        for i, m in enumerate(self.mids):
            if not incr(m) or m[0] < 1:
                raise ValueError(f"mids of stage {i + 1} {m} must be increasing integers >= 1")
        if any(s not in (1, 2) for s in self.strides):
            raise ValueError(f"strides {self.strides} must be 1 or 2")
        h = IMAGE
        for s in self.strides:
            h = (h - 1) // s + 1
        if h < 1:
            raise ValueError("the strides shrink the 8x8 image to nothing")

    @property
    def kmax(self) -> int:
        return self.kernels[-1]

    @property
    def n_stages(self) -> int:
        return len(self.widths)

    def stage_in(self, i: int) -> int:
        return self.stem_width if i == 0 else self.widths[i - 1]

    def has_projection(self, i: int) -> bool:
        return self.strides[i] != 1 or self.stage_in(i) != self.widths[i]

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every SuperNet tensor: convs ``[C_out, C_in, k, k]``, the classifier ``[K, N]``."""
        kk = self.kmax
        shapes: dict[str, tuple[int, ...]] = {"stem": (self.stem_width, 1, kk, kk)}
        for i, w in enumerate(self.widths):
            for j in range(self.depths[-1]):
                c_in = self.stage_in(i) if j == 0 else w
                mid = self.mids[i][-1]
                shapes[f"s{i + 1}.b{j + 1}.c1"] = (mid, c_in, kk, kk)
                shapes[f"s{i + 1}.b{j + 1}.c2"] = (w, mid, kk, kk)
                if j == 0 and self.has_projection(i):
                    shapes[f"s{i + 1}.b1.sc"] = (w, c_in, 1, 1)
        shapes["fc"] = (self.widths[-1], self.n_out)
        return shapes

    def largest(self) -> SubNetConfig:
        return SubNetConfig(tuple((Block(m[-1], self.kmax),) * self.depths[-1] for m in self.mids))

    def smallest(self) -> SubNetConfig:
        return SubNetConfig(
            tuple((Block(m[0], self.kernels[0]),) * self.depths[0] for m in self.mids)
        )

    def size(self) -> int:
        """How many SubNets the space holds."""
        total = 1
        for m in self.mids:
            per = len(m) * len(self.kernels)
            total *= sum(per**d for d in self.depths)
        return total

    def sample(self, rng: np.random.Generator) -> SubNetConfig:
        """A random SubNet: per stage a depth, then per block a width and a kernel, uniform."""
        stages = []
        for m in self.mids:
            d = self.depths[int(rng.integers(0, len(self.depths)))]
            stages.append(
                tuple(
                    Block(
                        m[int(rng.integers(0, len(m)))],
                        self.kernels[int(rng.integers(0, len(self.kernels)))],
                    )
                    for _ in range(d)
                )
            )
        return SubNetConfig(tuple(stages))

    def check(self, config) -> SubNetConfig:  # noqa: ANN001
        """``config`` (a :class:`SubNetConfig`, its id or its JSON) as a checked config, or
        ValueError naming what lies outside the space."""
        if isinstance(config, str):
            cfg = SubNetConfig.parse(config)
        elif isinstance(config, SubNetConfig):
            cfg = config
        else:
            cfg = SubNetConfig.from_json(config)
        if len(cfg.stages) != self.n_stages:
            raise ValueError(
                f"SubNet {cfg.id}: {len(cfg.stages)} stages, the space has {self.n_stages}"
            )
        for i, s in enumerate(cfg.stages):
            if len(s) not in self.depths:
                raise ValueError(
                    f"SubNet {cfg.id}: stage {i + 1} depth {len(s)} not in {self.depths}"
                )
            for j, b in enumerate(s):
                if b.mid not in self.mids[i]:
                    raise ValueError(
                        f"SubNet {cfg.id}: s{i + 1}.b{j + 1} width {b.mid} not in {self.mids[i]}"
                    )
                if b.k not in self.kernels:
                    raise ValueError(
                        f"SubNet {cfg.id}: s{i + 1}.b{j + 1} kernel {b.k} not in {self.kernels}"
                    )
        return cfg

    def plan(self, config) -> list[Op]:  # noqa: ANN001
        """The operations of a SubNet, in execution order (the last one is ``fc``)."""
        cfg = self.check(config)
        ops: list[Op] = []
        h = IMAGE

        def new(kind: str, name: str, ins: tuple[int, ...], **kw) -> int:  # noqa: ANN003
            out = len(ops) + 1
            ops.append(Op(kind, name, ins, out, **kw))
            return out

        kk = self.kmax
        v = new(
            "conv", "stem", (0,), c_in=1, c_out=self.stem_width, k=kk, relu=True, h_in=h, h_out=h
        )
        c = self.stem_width
        for i, blocks in enumerate(cfg.stages):
            w = self.widths[i]
            for j, b in enumerate(blocks):
                s = self.strides[i] if j == 0 else 1
                ho = (h - 1) // s + 1
                p = f"s{i + 1}.b{j + 1}"
                y = new(
                    "conv",
                    f"{p}.c1",
                    (v,),
                    c_in=c,
                    c_out=b.mid,
                    k=b.k,
                    stride=s,
                    relu=True,
                    h_in=h,
                    h_out=ho,
                )
                y = new("conv", f"{p}.c2", (y,), c_in=b.mid, c_out=w, k=b.k, h_in=ho, h_out=ho)
                sc = v
                if j == 0 and self.has_projection(i):
                    sc = new(
                        "conv", f"{p}.sc", (v,), c_in=c, c_out=w, k=1, stride=s, h_in=h, h_out=ho
                    )
                v = new("add", f"{p}.add", (y, sc), c_in=w, c_out=w, relu=True, h_in=ho, h_out=ho)
                c, h = w, ho
        v = new("pool", "pool", (v,), c_in=c, c_out=c, h_in=h, h_out=1)
        new("fc", "fc", (v,), c_in=c, c_out=self.n_out)
        return ops

    def to_dict(self) -> dict:
        d = asdict(self)
        return {
            k: [list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, tuple) else v
            for k, v in d.items()
        }

    @classmethod
    def from_dict(cls, d: dict) -> SuperNetSpec:
        return cls(
            stem_width=int(d["stem_width"]),
            widths=tuple(int(x) for x in d["widths"]),
            strides=tuple(int(x) for x in d["strides"]),
            depths=tuple(int(x) for x in d["depths"]),
            mids=tuple(tuple(int(x) for x in m) for m in d["mids"]),
            kernels=tuple(int(x) for x in d["kernels"]),
            n_out=int(d["n_out"]),
        )


def crop(w: np.ndarray, c_out: int, c_in: int, k: int) -> np.ndarray:
    """A SubNet's slice of a conv tensor: leading channels, centre ``k x k`` crop (a view)."""
    o = (w.shape[2] - k) // 2
    return w[:c_out, :c_in, o : o + k, o : o + k]


def op_slice(op: Op, kmax: int) -> tuple[slice, ...]:
    """Index of ``op``'s slice in its SuperNet tensor (leading channels, centre crop)."""
    if op.kind == "fc":
        return (slice(0, op.c_in), slice(0, op.c_out))
    o = (tensor_kernel(op.name, kmax) - op.k) // 2
    return (slice(0, op.c_out), slice(0, op.c_in), slice(o, o + op.k), slice(o, o + op.k))


def tensor_kernel(name: str, kmax: int) -> int:
    """Kernel size of a conv tensor: 1 for the projections, ``kmax`` otherwise."""
    return 1 if name.endswith(".sc") else kmax


def macs(spec: SuperNetSpec, config) -> int:  # noqa: ANN001
    """Multiply-accumulates of one image (unpadded channels)."""
    return sum(
        op.h_out * op.h_out * op.c_out * op.c_in * op.k * op.k
        for op in spec.plan(config)
        if op.kind in ("conv", "fc")
    )


def weight_bytes(spec: SuperNetSpec, config) -> int:  # noqa: ANN001
    """int8 weight bytes of a SubNet's slices (unpadded)."""
    return sum(
        op.c_out * op.c_in * op.k * op.k for op in spec.plan(config) if op.kind in ("conv", "fc")
    )


# ---- float model ---------------------------------------------------------------------------------
def _pad(x: np.ndarray, pad: int) -> np.ndarray:
    if not pad:
        return x
    n, h, w, c = x.shape
    xp = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=x.dtype)
    xp[:, pad : pad + h, pad : pad + w] = x
    return xp


def _im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int]:
    """``[N, H, W, C]`` -> rows ``[N*Ho*Wo, k*k*C]`` (tap-major, channel-minor), ``Ho``."""
    n, h, w, c = x.shape
    ho = (h + 2 * pad - k) // stride + 1
    if k == 1 and stride == 1:
        return x.reshape(n * h * w, c), h
    v = sliding_window_view(_pad(x, pad), (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return v.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * ho, k * k * c), ho


def _col2im(dcols: np.ndarray, shape: tuple, k: int, stride: int, pad: int, ho: int) -> np.ndarray:
    n, h, w, c = shape
    if k == 1 and stride == 1:
        return dcols.reshape(shape)
    dxp = np.zeros((n, h + 2 * pad, w + 2 * pad, c), dtype=dcols.dtype)
    d = dcols.reshape(n, ho, ho, k, k, c)
    for ky in range(k):
        for kx in range(k):
            dxp[
                :,
                ky : ky + stride * (ho - 1) + 1 : stride,
                kx : kx + stride * (ho - 1) + 1 : stride,
            ] += d[:, :, :, ky, kx, :]
    return dxp[:, pad : pad + h, pad : pad + w] if pad else dxp


def _wmat(w: np.ndarray) -> np.ndarray:
    """``[C_out, C_in, k, k]`` -> ``[k*k*C_in, C_out]`` matching :func:`_im2col`'s columns."""
    c_out, c_in, k, _ = w.shape
    return w.transpose(2, 3, 1, 0).reshape(k * k * c_in, c_out)


def forward(
    spec: SuperNetSpec, params: dict[str, np.ndarray], config, x: np.ndarray, keep: bool = False
):  # noqa: ANN001, ANN201
    """Float logits ``[N, 10]`` of SubNet ``config`` for images ``x`` ``[N, 8, 8, 1]``; with
    ``keep`` also every value (``vals[i]``, value 0 the input) and the backward caches."""
    ops = spec.plan(config)
    vals: dict[int, np.ndarray] = {0: x}
    cache: dict[int, object] = {}
    for op in ops:
        a = vals[op.ins[0]]
        if op.kind == "conv":
            wm = _wmat(params[op.name][op_slice(op, spec.kmax)])
            cols, ho = _im2col(a, op.k, op.stride, op.pad)
            y = (cols @ wm).reshape(a.shape[0], ho, ho, op.c_out)
            if op.relu:
                y = np.maximum(y, 0.0)
            if keep:
                cache[op.out] = (cols, wm, a.shape)
        elif op.kind == "add":
            y = np.maximum(a + vals[op.ins[1]], 0.0)
        elif op.kind == "pool":
            y = a.mean(axis=(1, 2))
        else:
            y = a @ params["fc"][: op.c_in, : op.c_out]
        vals[op.out] = y
    logits = vals[ops[-1].out]
    return (logits, vals, cache, ops) if keep else logits


def backward(spec, params, vals, cache, ops, dlogits, grads) -> None:  # noqa: ANN001
    """Accumulate d(loss)/d(params) of one SubNet into ``grads`` (its slices only)."""
    d: dict[int, np.ndarray] = {ops[-1].out: dlogits}
    for op in reversed(ops):
        g = d.pop(op.out, None)
        if g is None:
            continue
        if op.kind == "fc":
            a = vals[op.ins[0]]
            grads["fc"][: op.c_in, : op.c_out] += a.T @ g
            gi = g @ params["fc"][: op.c_in, : op.c_out].T
            _acc(d, op.ins[0], gi)
        elif op.kind == "pool":
            a = vals[op.ins[0]]
            gi = np.broadcast_to(g[:, None, None, :] / (a.shape[1] * a.shape[2]), a.shape)
            _acc(d, op.ins[0], gi)
        elif op.kind == "add":
            g = g * (vals[op.out] > 0)
            _acc(d, op.ins[0], g)
            _acc(d, op.ins[1], g)
        else:
            if op.relu:
                g = g * (vals[op.out] > 0)
            cols, wm, shape = cache[op.out]
            g2 = g.reshape(-1, op.c_out)
            dwm = cols.T @ g2
            dw = dwm.reshape(op.k, op.k, op.c_in, op.c_out).transpose(3, 2, 0, 1)
            grads[op.name][op_slice(op, spec.kmax)] += dw
            if op.ins[0] != 0:
                _acc(d, op.ins[0], _col2im(g2 @ wm.T, shape, op.k, op.stride, op.pad, op.h_out))


def _acc(d: dict, key: int, g: np.ndarray) -> None:
    d[key] = g if key not in d else d[key] + g


def init_params(spec: SuperNetSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-normal convs; each residual branch's ``c2`` scaled by 0.2 (blocks start near the
    identity, so shallower SubNets start close to deeper ones); a 1x1 projection without ReLU
    and the classifier at unit gain."""
    params = {}
    for name, shape in spec.tensor_shapes().items():
        if name == "fc":
            params[name] = rng.standard_normal(shape) * np.sqrt(1.0 / shape[0])
            continue
        fan_in = shape[1] * shape[2] * shape[3]
        gain = 1.0 if name.endswith(".sc") else 2.0
        w = rng.standard_normal(shape) * np.sqrt(gain / fan_in)
        if name.endswith(".c2"):
            w *= 0.2
        params[name] = w
    return params


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    epochs: int = 40
    batch: int = 64
    lr: float = 3e-3
    lr_final: float = 5e-5  #: cosine decay from lr to lr_final over all steps
    weight_decay: float = 5e-4  #: L2 on every weight
    n_random: int = 2  #: random SubNets per step besides the largest and the smallest
    kd_weight: float = 0.5  #: weight of the distillation term for the other SubNets
    shift: int = 1  #: random shifts of the training images by up to this many pixels
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    spec: SuperNetSpec = field(default_factory=SuperNetSpec)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d


def _shift_batch(x: np.ndarray, rng: np.random.Generator, s: int) -> np.ndarray:
    """Each image moved by a random (dy, dx) in [-s, s]^2, zero filled."""
    if s == 0:
        return x
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))
    dy, dx = rng.integers(0, 2 * s + 1, n), rng.integers(0, 2 * s + 1, n)
    iy = dy[:, None] + np.arange(h)[None, :]
    ix = dx[:, None] + np.arange(w)[None, :]
    return xp[np.arange(n)[:, None, None], iy[:, :, None], ix[:, None, :]]


def train(
    settings: TrainSettings, images: np.ndarray, labels: np.ndarray, log=None
) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Train the SuperNet on ``images`` (``[N, 64]`` pixels 0..16) and ``labels``; returns float32
    weights. Deterministic: one generator seeded from ``settings.seed`` drives initialisation,
    batch order, shifts and SubNet sampling; BLAS runs on one thread (the matrices are small, and
    one thread keeps the sums' order, hence the bytes, fixed)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _train(settings, images, labels, log)


def _train(settings, images, labels, log):  # noqa: ANN001, ANN202
    spec = settings.spec
    rng = np.random.default_rng([int(settings.seed), 0xC0411])
    params = {k: p.astype(DTYPE) for k, p in init_params(spec, rng).items()}
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    x_train = float_images(images).astype(DTYPE)
    y = np.asarray(labels)
    n = x_train.shape[0]
    steps_per_epoch = -(-n // settings.batch)
    total = settings.epochs * steps_per_epoch
    largest, smallest = spec.largest(), spec.smallest()
    onehot = np.eye(spec.n_out, dtype=DTYPE)[y]
    t0 = time.perf_counter()
    step = 0
    for epoch in range(settings.epochs):
        perm = rng.permutation(n)
        for s in range(steps_per_epoch):
            idx = perm[s * settings.batch : (s + 1) * settings.batch]
            xb = _shift_batch(x_train[idx], rng, settings.shift)
            yb = onehot[idx]
            bs = xb.shape[0]
            grads = {k: np.zeros_like(p) for k, p in params.items()}
            sampled = [largest, smallest] + [spec.sample(rng) for _ in range(settings.n_random)]
            teacher = None
            for cfg in sampled:
                logits, vals, cache, ops = forward(spec, params, cfg, xb, keep=True)
                p = _softmax(logits)
                if teacher is None:  # the largest comes first
                    teacher = p
                    dlogits = (p - yb) / bs
                else:
                    target = (1 - settings.kd_weight) * yb + settings.kd_weight * teacher
                    dlogits = (p - target) / bs
                backward(spec, params, vals, cache, ops, dlogits, grads)
            step += 1
            frac = (step - 1) / max(1, total - 1)
            lr = settings.lr_final + 0.5 * (settings.lr - settings.lr_final) * (
                1 + float(np.cos(np.pi * frac))
            )
            for k in params:
                g = grads[k] + settings.weight_decay * params[k]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mh = m[k] / (1 - b1**step)
                vh = v[k] / (1 - b2**step)
                params[k] -= lr * mh / (np.sqrt(vh) + eps)
        if log is not None and (epoch + 1) % max(1, settings.epochs // 5) == 0:
            acc = float(np.mean(np.argmax(forward(spec, params, largest, x_train), 1) == y))
            log(
                f"epoch {epoch + 1}/{settings.epochs}: largest train acc {acc:.4f} "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    return {k: p.astype(np.float32) for k, p in params.items()}
