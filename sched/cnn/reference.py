"""int8 inference of a CNN SubNet: what the accelerator must output, bit for bit.

Two implementations of one definition:

* :func:`int8_forward_ops`: one image, operator by operator with ``sushi_hw.reference``
  (``conv2d_ref``, ``residual_add_ref``, ``global_avg_pool_ref``, ``gemm_ref``): the definition.
* :func:`int8_forward`: a batch at once, requantised with ``sushi_hw.reference``'s own functions;
  used to measure accuracies. The im2col products are summed in float32, which is exact here:
  every partial sum of at most ``K = 9 * 32`` products of int8 x int8 is an integer below
  ``127 * 128 * 288 < 2**24`` (:data:`EXACT_K` bounds K). The tests check both agree.
"""

from __future__ import annotations

import numpy as np
from sushi_hw.reference import (
    _round_shift,
    _wrap_int32,
    check_requant,
    conv2d_ref,
    gemm_ref,
    global_avg_pool_ref,
    requantize,
    residual_add_ref,
)

from .model import Op, SuperNetSpec, _im2col, _wmat, op_slice
from .quant import Params

EXACT_K = (1 << 24) // (128 * 128)  #: float32 sums of K int8 products are exact up to this K


def _check_input(x: np.ndarray, batch: bool) -> np.ndarray:
    x = np.asarray(x)
    shape = "[N, 8, 8, 1]" if batch else "[8, 8, 1]"
    if x.dtype != np.int8 or x.shape[-3:] != (8, 8, 1) or x.ndim != (4 if batch else 3):
        raise ValueError(f"input must be int8 {shape} (quantize_images); got {x.dtype} {x.shape}")
    return x


def int8_forward_ops(
    spec: SuperNetSpec, w8: dict[str, np.ndarray], ops: list[Op], params: Params, x: np.ndarray
) -> np.ndarray:
    """int32 logits ``[10]`` of one int8 image ``[8, 8, 1]``, one reference operator per op."""
    vals = {0: _check_input(x, batch=False)}
    for op in ops:
        a, p = vals[op.ins[0]], params[op.name]
        if op.kind == "conv":
            w = w8[op.name][op_slice(op, spec.kmax)]
            y = conv2d_ref(a, w, op.stride, op.pad, requant=p, relu=op.relu)
        elif op.kind == "add":
            y = residual_add_ref(a, vals[op.ins[1]], *p, relu=op.relu)
        elif op.kind == "pool":
            y = global_avg_pool_ref(a, *p)
        else:
            y = gemm_ref(a[None, :], w8["fc"][op_slice(op, spec.kmax)])[0]
        vals[op.out] = y
    return vals[ops[-1].out]


def int8_forward(
    spec: SuperNetSpec, w8: dict[str, np.ndarray], ops: list[Op], params: Params, x: np.ndarray
) -> np.ndarray:
    """int32 logits ``[N, 10]`` of int8 images ``[N, 8, 8, 1]`` (= :func:`int8_forward_ops` per
    image)."""
    vals = {0: _check_input(x, batch=True)}
    for op in ops:
        a, p = vals[op.ins[0]], params[op.name]
        if op.kind == "conv":
            if op.c_in * op.k * op.k > EXACT_K:
                raise ValueError(
                    f"{op.name}: K = {op.c_in * op.k * op.k} > {EXACT_K}, float32 "
                    "sums would not be exact"
                )
            w = w8[op.name][op_slice(op, spec.kmax)]
            cols, ho = _im2col(a.astype(np.float32), op.k, op.stride, op.pad)
            acc = (cols @ _wmat(w.astype(np.float32))).astype(np.int64)
            acc = _wrap_int32(acc.reshape(a.shape[0], ho, ho, op.c_out))
            y = requantize(acc, *p, relu=op.relu)
        elif op.kind == "add":
            y = residual_add_ref(a, vals[op.ins[1]], *p, relu=op.relu)
        elif op.kind == "pool":
            check_requant(*p)
            s = a.astype(np.int64).sum(axis=(1, 2)) * p[0]
            y = np.clip(_round_shift(s, p[1]), -128, 127).astype(np.int8)
        else:
            y = gemm_ref(a, w8["fc"][op_slice(op, spec.kmax)])
        vals[op.out] = y
    return vals[ops[-1].out]
