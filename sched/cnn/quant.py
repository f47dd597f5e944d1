"""Post-training int8 quantisation of the digits CNN SuperNet, in the hardware's own arithmetic.

* **Weights**: one int8 tensor per SuperNet tensor, shared by every SubNet, symmetric with scale
  ``s_w = max|W| / 127``: ``Wq = clip(rint(W / s_w), -127, 127)``.
* **Activations**: per SubNet and per value, scale ``s = amax / 127`` with ``amax`` the largest
  ``|float value|`` of that SubNet on the training split (never validation or test). The input has
  ``s = 1 / INPUT_Q``. ReLU outputs use 0..127, the other values (a block's ``c2``, a projection)
  -127..127.
* **CONV** (no bias): ``requantize(acc, mult, shift, relu)`` with ``mult / 2**shift ~= s_in * s_w /
  s_out`` (``sushi_hw.reference.requantize``: round half up, ReLU, saturate).
* **ADD**: ``sat8(relu((a*mult_a + b*mult_b + 2**(shift-1)) >> shift))`` with ``mult_a / 2**shift
  ~= s_a / s_out`` and ``mult_b / 2**shift ~= s_b / s_out`` (one shift, the largest that keeps
  both multipliers in 16 bits).
* **POOL**: the mean rescaled to the pooled value's own calibrated scale:
  ``conv_compiler.pool_requant(pixels, s_in / s_pool)``.
* **FC**: int8 GEMM, the int32 accumulators are the logits (scale ``s_pool * s_fc > 0``, so the
  class is their argmax, ties to the lowest index).

The ``(mult, shift)`` integers are the model: the int8 reference (:mod:`.reference`) and the
programs (:mod:`.lower`) use exactly them.
"""

from __future__ import annotations

import numpy as np
from sushi_hw.reference import MULT_BITS, SHIFT_BITS, check_requant

from ..conv_compiler import pool_requant
from ..digits.quant import requant_params
from .data import INPUT_Q
from .model import Op, SubNetConfig, SuperNetSpec, forward

MULT_MAX = (1 << MULT_BITS) - 1
SHIFT_MAX = (1 << SHIFT_BITS) - 1

#: per op name: conv (mult, shift); add (mult_a, mult_b, shift); pool (mult, shift); fc ()
Params = dict[str, tuple[int, ...]]


def weight_scale(w: np.ndarray) -> float:
    amax = float(np.max(np.abs(w)))
    return amax / 127.0 if amax > 0 else 1.0


def quantize_weights(
    params: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Shared int8 tensors and their float scales."""
    q, scales = {}, {}
    for name, w in params.items():
        s = weight_scale(w)
        q[name] = np.clip(np.rint(w.astype(np.float64) / s), -127, 127).astype(np.int8)
        scales[name] = s
    return q, scales


def add_params(ratio_a: float, ratio_b: float) -> tuple[int, int, int]:
    """``(mult_a, mult_b, shift)`` of an ADD: the largest shift keeping both in 16 bits."""
    if not (ratio_a > 0 and ratio_b > 0):
        raise ValueError(f"ADD ratios {ratio_a}, {ratio_b} must be > 0")
    for shift in range(SHIFT_MAX, -1, -1):
        ma, mb = round(ratio_a * (1 << shift)), round(ratio_b * (1 << shift))
        if max(ma, mb) <= MULT_MAX:
            if min(ma, mb) < 1:
                raise ValueError(f"ADD ratios {ratio_a}, {ratio_b} too far apart for 16 bits")
            return int(ma), int(mb), shift
    raise ValueError(f"ADD ratios {ratio_a}, {ratio_b} too large for mult/shift")


def calibrate(
    spec: SuperNetSpec, params: dict[str, np.ndarray], config: SubNetConfig, x_calib: np.ndarray
) -> dict[int, float]:
    """``amax`` of every value of SubNet ``config`` (by value id) on float images ``x_calib``
    (computed in the dtype of ``params`` and ``x_calib``: the float32 weights as trained)."""
    _, vals, _, ops = forward(spec, params, config, x_calib, keep=True)
    return {op.out: max(float(np.max(np.abs(vals[op.out]))), 1e-6) for op in ops[:-1]}


def subnet_params(
    spec: SuperNetSpec, config: SubNetConfig, amax: dict[int, float], w_scale: dict[str, float]
) -> Params:
    """Every op's integer requantisation for a SubNet from its calibration."""
    scale = {0: 1.0 / INPUT_Q}
    scale.update({v: a / 127.0 for v, a in amax.items()})
    out: Params = {}
    for op in spec.plan(config):
        s_in = scale[op.ins[0]]
        if op.kind == "conv":
            out[op.name] = requant_params(s_in * w_scale[op.name] / scale[op.out])
        elif op.kind == "add":
            out[op.name] = add_params(s_in / scale[op.out], scale[op.ins[1]] / scale[op.out])
        elif op.kind == "pool":
            out[op.name] = pool_requant(op.h_in * op.h_in, s_in / scale[op.out])
        else:
            out[op.name] = ()
    return out


def check_params(ops: list[Op], params: Params, where: str) -> None:
    """ValueError unless ``params`` holds one valid entry per op of ``ops`` (and nothing else)."""
    names = {op.name for op in ops}
    if set(params) != names:
        extra = sorted(set(params) ^ names)
        raise ValueError(f"{where}: requantisation names differ from the SubNet's ops ({extra})")
    for op in ops:
        p = params[op.name]
        want = {"conv": 2, "add": 3, "pool": 2, "fc": 0}[op.kind]
        if len(p) != want:
            raise ValueError(f"{where}: {op.name} needs {want} integers, has {list(p)}")
        try:
            if op.kind in ("conv", "pool"):
                check_requant(*p)
            elif op.kind == "add":
                if not (0 <= p[0] <= MULT_MAX and 0 <= p[1] <= MULT_MAX and 0 <= p[2] <= SHIFT_MAX):
                    raise ValueError(f"ADD (mult_a, mult_b, shift) {list(p)} out of range")
        except ValueError as e:
            raise ValueError(f"{where}: {op.name}: {e}") from None
