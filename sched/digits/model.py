"""The digits SuperNet: an elastic MLP, its SubNet space, float inference and weight-sharing
training.

Structure (``I = max(inputs) = 64``, ``H = max(widths)``, ``D = max(depths)``)::

    x = [1, 63 pixels / 16 in data.pixel_order]   (I = 64 features)
      -> fc1  [I, H]  ReLU
      -> fc2  [H, H]  ReLU        (only if depth >= 2)
      -> ...
      -> fcD  [H, H]  ReLU        (only if depth >= D)
      -> head [H, 10]             int32 logits in int8 inference (no ReLU, no requant)

A SubNet is ``SubNetConfig(inputs, (w_1, ..., w_d))`` with three elastic dimensions:

* elastic inputs: it reads the leading ``inputs`` features (the constant + the ``inputs - 1`` most
  variable pixels), like OFA's elastic resolution; it scales the cost of fc1;
* elastic depth: the first ``d`` hidden layers, then the shared head;
* elastic width: hidden layer ``l`` has ``w_l`` units.

Layer ``l`` uses the LEADING slice ``fc_l[:k, :w_l]`` with ``k`` the width of its input
(``inputs`` for fc1, ``w_{l-1}`` otherwise) and the head uses ``head[:w_d, :]``, so any two SubNets
share the leading blocks of every tensor they both use. Default space: inputs {8, 16, 32, 64},
depth {1, 2, 3}, widths {8, 16, 32, 64} per layer: 4 * (4 + 16 + 64) = 336 SubNets. Every K and N
but the head's N = 10 is a multiple of 8 (whole tiles on an 8x8 array).

Elastic depth without residual adds: layers fc2..fcD start as the identity (their inputs are
ReLU outputs, so ``relu(h @ I) = h``), hence a shallower SubNet starts out equal to a deeper one.

Biases are folded into the weights so the only operation is a GEMM: unit 0 of the input and of
every hidden layer is a constant 1. Row 0 of every tensor is therefore the bias of that layer, and
column 0 of every hidden tensor is fixed to ``e_0`` (``W[0, 0] = 1``, ``W[1:, 0] = 0``) so that
``relu(1 * 1) = 1`` re-creates the constant for the next layer. Widths count that constant unit,
so a width of 16 has 15 learned units and is a whole number of 8-wide tiles.

Training is pure numpy, float64, deterministic from a seed: the sandwich rule (each step trains
the largest, the smallest and ``n_random`` random SubNets on the same batch and sums their
gradients); the largest learns from the labels, the others from the labels and, by in-place
distillation, from the largest's soft predictions.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from .data import N_CLASSES, N_FEATURES, float_features


class SubNetConfig(NamedTuple):
    """One SubNet: how many input features it reads and the width of each hidden layer.

    ``inputs`` counts the constant feature (so 16 = the constant + the 15 most informative pixels)
    and ``widths`` count each layer's constant unit; ``len(widths)`` is the depth. Hashable.
    """

    inputs: int
    widths: tuple[int, ...]

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def id(self) -> str:
        """Stable string id, e.g. ``i32-d2-64-16``."""
        return f"i{self.inputs}-d{self.depth}-" + "-".join(str(w) for w in self.widths)


@dataclass(frozen=True)
class SuperNetSpec:
    """The SubNet space: elastic input features, elastic depth, elastic width per layer."""

    inputs: tuple[int, ...] = (8, 16, 32, 64)
    depths: tuple[int, ...] = (1, 2, 3)
    widths: tuple[int, ...] = (8, 16, 32, 64)
    n_out: int = N_CLASSES

    def __post_init__(self) -> None:
        for name in ("inputs", "depths", "widths"):
            v = getattr(self, name)
            if not v or list(v) != sorted(set(v)) or not all(isinstance(i, int) for i in v):
                raise ValueError(f"{name} {v} must be increasing integers")
        if self.depths[0] < 1:
            raise ValueError(f"depths {self.depths} must be >= 1")
        if self.widths[0] < 2 or self.inputs[0] < 2:
            raise ValueError("widths and inputs must be >= 2 (unit 0 is the bias constant)")
        if self.inputs[-1] > N_FEATURES:
            raise ValueError(f"inputs {self.inputs}: at most {N_FEATURES} features exist")

    @property
    def max_depth(self) -> int:
        return self.depths[-1]

    @property
    def max_width(self) -> int:
        return self.widths[-1]

    @property
    def n_in(self) -> int:
        return self.inputs[-1]

    def tensor_names(self) -> list[str]:
        return [f"fc{i + 1}" for i in range(self.max_depth)] + ["head"]

    def tensor_shapes(self) -> dict[str, tuple[int, int]]:
        h = self.max_width
        shapes = {"fc1": (self.n_in, h)}
        for i in range(1, self.max_depth):
            shapes[f"fc{i + 1}"] = (h, h)
        shapes["head"] = (h, self.n_out)
        return shapes

    def subnets(self) -> list[SubNetConfig]:
        """Every SubNet: by inputs, then depth, then widths (lexicographic)."""
        return [
            SubNetConfig(k, ws)
            for k in self.inputs
            for d in self.depths
            for ws in itertools.product(self.widths, repeat=d)
        ]

    def largest(self) -> SubNetConfig:
        return SubNetConfig(self.n_in, (self.max_width,) * self.max_depth)

    def smallest(self) -> SubNetConfig:
        return SubNetConfig(self.inputs[0], (self.widths[0],) * self.depths[0])

    def check(self, config) -> SubNetConfig:
        """``config`` as a :class:`SubNetConfig`, or ValueError if it is outside the space."""
        try:
            inputs, widths = config
            cfg = SubNetConfig(int(inputs), tuple(int(w) for w in widths))
        except (TypeError, ValueError):
            raise ValueError(f"SubNet config {config!r} must be (inputs, (width, ...))") from None
        if cfg.inputs not in self.inputs:
            raise ValueError(f"SubNet {cfg.id}: inputs {cfg.inputs} not in {self.inputs}")
        if cfg.depth not in self.depths:
            raise ValueError(f"SubNet {cfg.id}: depth {cfg.depth} not in {self.depths}")
        for w in cfg.widths:
            if w not in self.widths:
                raise ValueError(f"SubNet {cfg.id}: width {w} not in {self.widths}")
        return cfg

    def layer_shapes(self, config) -> list[tuple[str, int, int]]:
        """``(tensor name, k, n)`` of each GEMM of a SubNet: it uses ``tensor[:k, :n]``."""
        cfg = self.check(config)
        out = []
        k = cfg.inputs
        for i, w in enumerate(cfg.widths):
            out.append((f"fc{i + 1}", k, w))
            k = w
        out.append(("head", k, self.n_out))
        return out

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def macs(spec: SuperNetSpec, config, m: int = 1) -> int:
    """Multiply-accumulates of a SubNet for ``m`` images (unpadded)."""
    return sum(m * k * n for _, k, n in spec.layer_shapes(config))


def weight_bytes(spec: SuperNetSpec, config) -> int:
    """int8 weight bytes of a SubNet (its leading slices, unpadded)."""
    return sum(k * n for _, k, n in spec.layer_shapes(config))


# ---- float model ---------------------------------------------------------------------------


def init_params(
    spec: SuperNetSpec, rng: np.random.Generator, settings_init_noise: float = 0.1
) -> dict[str, np.ndarray]:
    """He-normal weights, zero biases (row 0), column 0 of hidden tensors fixed to ``e_0``."""
    params = {}
    for name, (k, n) in spec.tensor_shapes().items():
        w = rng.standard_normal((k, n)) * np.sqrt(2.0 / (k - 1))
        if name == "head":
            w *= np.sqrt(0.5)  # no ReLU after the head
        elif name != "fc1":
            # Near-identity: inputs are >= 0 (after a ReLU), so relu(h @ I) = h and a SubNet that
            # stops before this layer starts out computing the same thing as one that uses it.
            w = np.eye(k, n) + settings_init_noise * w
        w[0, :] = 0.0
        params[name] = w
    _fix_constant_units(spec, params)
    return params


def _fix_constant_units(spec: SuperNetSpec, params: dict[str, np.ndarray]) -> None:
    for i in range(spec.max_depth):
        w = params[f"fc{i + 1}"]
        w[:, 0] = 0.0
        w[0, 0] = 1.0


def float_forward(
    spec: SuperNetSpec, params: dict[str, np.ndarray], config: SubNetConfig, x: np.ndarray
) -> np.ndarray:
    """Float logits [N, 10] of SubNet ``config`` for float features ``x`` [N, 65]."""
    return _forward(spec, params, config, x)[0]


def _forward(spec, params, config, x):
    h = x[:, : config.inputs]
    hs = [h]
    for i, w in enumerate(config.widths):
        h = np.maximum(h @ params[f"fc{i + 1}"][: h.shape[1], :w], 0.0)
        hs.append(h)
    logits = h @ params["head"][: h.shape[1], :]
    return logits, hs


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _backward(spec, params, config, hs, dlogits, grads) -> None:
    """Accumulate d(loss)/d(params) of one SubNet into ``grads`` (leading slices only)."""
    h = hs[-1]
    grads["head"][: h.shape[1], :] += h.T @ dlogits
    dh = dlogits @ params["head"][: h.shape[1], :].T
    for i in range(config.depth - 1, -1, -1):
        h_in, h_out = hs[i], hs[i + 1]
        dz = dh * (h_out > 0)
        name = f"fc{i + 1}"
        grads[name][: h_in.shape[1], : h_out.shape[1]] += h_in.T @ dz
        if i:
            dh = dz @ params[name][: h_in.shape[1], : h_out.shape[1]].T


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    epochs: int = 200
    batch: int = 64
    lr: float = 1e-2
    lr_final: float = 1e-4  #: cosine decay from lr to lr_final over all steps
    weight_decay: float = 1e-3  #: L2 on learned weights (not the bias rows)
    n_random: int = 2  #: random SubNets per step besides the largest and the smallest
    kd_weight: float = 0.5  #: weight of the distillation term for non-largest SubNets
    test_fraction: float = 0.2
    spec: SuperNetSpec = field(default_factory=SuperNetSpec)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d


def _sample(spec: SuperNetSpec, rng: np.random.Generator) -> SubNetConfig:
    """A random SubNet: inputs, then depth, then each width, all uniform."""
    k = spec.inputs[int(rng.integers(0, len(spec.inputs)))]
    d = spec.depths[int(rng.integers(0, len(spec.depths)))]
    return SubNetConfig(k, tuple(spec.widths[int(j)] for j in rng.integers(0, len(spec.widths), d)))


def train(
    settings: TrainSettings,
    images: np.ndarray,
    labels: np.ndarray,
    order: np.ndarray,
    log=None,
) -> dict[str, np.ndarray]:
    """Train the SuperNet; returns float32 weights (rounded once, at the end).

    ``images`` are the training images [N, 64] (pixels 0..16), ``labels`` [N], ``order`` the
    input pixel order (``data.pixel_order``).
    Deterministic: one ``numpy.random.Generator`` seeded from ``settings.seed`` drives the
    initialisation, batch order and SubNet sampling.
    """
    spec = settings.spec
    rng = np.random.default_rng([int(settings.seed), 0x7EA1])
    params = init_params(spec, rng)
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    masks = {}
    for name, p in params.items():
        mask = np.ones_like(p)
        if name != "head":
            mask[:, 0] = 0.0  # the constant unit is not learned
        masks[name] = mask
    b1, b2, eps = 0.9, 0.999, 1e-8
    x_train = float_features(images, order)
    y_train = np.asarray(labels)
    n = x_train.shape[0]
    steps_per_epoch = -(-n // settings.batch)
    total = settings.epochs * steps_per_epoch
    largest, smallest = spec.largest(), spec.smallest()
    onehot = np.eye(spec.n_out)[y_train]
    t0 = time.perf_counter()
    step = 0
    for epoch in range(settings.epochs):
        perm = rng.permutation(n)
        for s in range(steps_per_epoch):
            idx = perm[s * settings.batch : (s + 1) * settings.batch]
            xb = x_train[idx]
            yb = onehot[idx]
            bs = xb.shape[0]
            grads = {k: np.zeros_like(p) for k, p in params.items()}
            sampled = [largest, smallest] + [_sample(spec, rng) for _ in range(settings.n_random)]
            teacher = None
            for cfg in sampled:
                logits, hs = _forward(spec, params, cfg, xb)
                p = _softmax(logits)
                if teacher is None:  # the largest SubNet comes first
                    teacher = p
                    dlogits = (p - yb) / bs
                else:
                    target = (1 - settings.kd_weight) * yb + settings.kd_weight * teacher
                    dlogits = (p - target) / bs
                _backward(spec, params, cfg, hs, dlogits, grads)
            step += 1
            frac = (step - 1) / max(1, total - 1)
            lr = settings.lr_final + 0.5 * (settings.lr - settings.lr_final) * (
                1 + np.cos(np.pi * frac)
            )
            for k in params:
                g = grads[k]
                wd = settings.weight_decay * params[k]
                wd[0, :] = 0.0
                g = (g + wd) * masks[k]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mh = m[k] / (1 - b1**step)
                vh = v[k] / (1 - b2**step)
                params[k] -= lr * mh / (np.sqrt(vh) + eps) * masks[k]
        if log is not None and (epoch + 1) % max(1, settings.epochs // 6) == 0:
            acc = float(
                np.mean(np.argmax(float_forward(spec, params, largest, x_train), 1) == y_train)
            )
            log(
                f"epoch {epoch + 1}/{settings.epochs}: largest train acc {acc:.4f} "
                f"({time.perf_counter() - t0:.1f} s)"
            )
    _fix_constant_units(spec, params)
    return {k: p.astype(np.float32) for k, p in params.items()}
