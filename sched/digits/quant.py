"""Post-training int8 quantisation of the digits SuperNet.

Every scale is the reciprocal of an integer, which is what keeps the folded biases exact:

* Weights: one int8 tensor per layer, shared by all SubNets, with scale ``1 / V`` where
  ``V = floor(127 / max|W|)`` over the whole SuperNet tensor: ``Wq = clip(rint(W * V), -127, 127)``.
  The constant unit's weight ``W[0, 0] = 1`` becomes exactly ``V``.
* Activations: per SubNet and per layer, scale ``1 / Q`` with ``Q = floor(127 / max(1, amax))``
  where ``amax`` is the largest float activation of that layer of that SubNet on the training
  split (never the held-out split). The input has ``Q = INPUT_Q``. The constant unit is then the
  integer ``Q`` (= real 1.0).
* Requantisation of hidden layer ``l``: ``acc * mult >> shift`` approximates
  ``Q_l / (Q_{l-1} * V_l)``; ``shift`` is the largest that keeps ``mult <= 65535``. The constant
  unit is recomputed by the hardware as ``requantize(Q_{l-1} * V_l) = Q_l`` (checked per SubNet).
* The head has no requantisation: its int32 accumulators are the logits, in units of
  ``1 / (Q_d * V_head)`` (a positive scale, so the argmax is the class). Its bias row is weighted
  by the constant ``Q_d``, so the bias is right for every depth ``d``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sushi_hw.reference import MULT_BITS, SHIFT_BITS, requantize

from .data import INPUT_Q
from .model import SubNetConfig, SuperNetSpec, _forward

MULT_MAX = (1 << MULT_BITS) - 1
SHIFT_MAX = (1 << SHIFT_BITS) - 1


def weight_inv_scale(w: np.ndarray) -> int:
    """``V`` with weight scale ``1 / V``: the largest integer with ``max|W| * V <= 127``."""
    amax = float(np.max(np.abs(w)))
    v = int(np.floor(127.0 / amax)) if amax > 0 else 127
    if v < 1:
        raise ValueError(f"weights up to {amax} do not fit int8 with an integer inverse scale")
    return min(v, 127)


def quantize_weights(
    params: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Shared int8 tensors and their inverse scales ``V``."""
    q, inv = {}, {}
    for name, w in params.items():
        v = weight_inv_scale(w)
        q[name] = np.clip(np.rint(w.astype(np.float64) * v), -127, 127).astype(np.int8)
        inv[name] = v
    return q, inv


def requant_params(ratio: float) -> tuple[int, int]:
    """``(mult, shift)`` with ``mult / 2**shift ~= ratio``, as precise as the fields allow."""
    if not ratio > 0:
        raise ValueError(f"requantisation ratio {ratio} must be > 0")
    for shift in range(SHIFT_MAX, -1, -1):
        mult = int(round(ratio * (1 << shift)))
        if mult <= MULT_MAX:
            if mult < 1:
                raise ValueError(f"requantisation ratio {ratio} too small for mult/shift")
            return mult, shift
    raise ValueError(f"requantisation ratio {ratio} too large for mult/shift")


@dataclass(frozen=True)
class SubNetQuant:
    """Per-SubNet quantisation: activation inverse scales and one requant per hidden layer."""

    act_q: tuple[int, ...]  #: ``Q`` of the input and of each hidden layer's output
    requant: tuple[tuple[int, int], ...]  #: (mult, shift) of each hidden layer; the head has none


def calibrate(
    spec: SuperNetSpec,
    params: dict[str, np.ndarray],
    config: SubNetConfig,
    x_calib: np.ndarray,
) -> tuple[int, ...]:
    """``Q`` of the input and of each hidden layer of ``config``, from float inputs ``x_calib``."""
    _, hs = _forward(spec, {k: p.astype(np.float64) for k, p in params.items()}, config, x_calib)
    qs = [INPUT_Q]
    for h in hs[1:]:
        amax = max(1.0, float(h.max()))
        qs.append(max(1, min(127, int(np.floor(127.0 / amax)))))
    return tuple(qs)


def subnet_quant(
    spec: SuperNetSpec, config: SubNetConfig, act_q: tuple[int, ...], inv_scale: dict[str, int]
) -> SubNetQuant:
    """Requantisation of each hidden layer; checks that the constant unit stays exact."""
    cfg = spec.check(config)
    if len(act_q) != cfg.depth + 1:
        raise ValueError(f"SubNet {cfg.id}: {len(act_q)} activation scales for depth {cfg.depth}")
    rq = []
    for i in range(cfg.depth):
        q_in, q_out, v = act_q[i], act_q[i + 1], inv_scale[f"fc{i + 1}"]
        mult, shift = requant_params(q_out / (q_in * v))
        check_constant_unit(cfg.id, f"fc{i + 1}", q_in, v, q_out, mult, shift)
        rq.append((mult, shift))
    return SubNetQuant(tuple(act_q), tuple(rq))


def check_constant_unit(
    sid: str, layer: str, q_in: int, v: int, q_out: int, mult: int, shift: int
) -> None:
    got = int(requantize(np.array([q_in * v], np.int32), mult, shift, relu=True)[0])
    if got != q_out:
        raise ValueError(
            f"SubNet {sid} layer {layer}: constant unit requantises to {got}, expected {q_out} "
            f"(Q_in={q_in}, V={v}, mult={mult}, shift={shift})"
        )
