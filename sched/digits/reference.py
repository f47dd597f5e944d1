"""int8 inference of a SubNet, one ``sushi_hw.reference.gemm_ref`` per layer.

This is what the accelerator must output, bit for bit: each hidden layer is a GEMM with
requantisation and ReLU, and its int8 output ``[M, N]`` is directly the next layer's A operand
``[M, K]`` (``K = N``); the head is a GEMM whose int32 accumulators are the logits (requantisation
disabled). Rows are independent, so M images in one GEMM give the same rows as M GEMMs of M = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sushi_hw.reference import gemm_ref


@dataclass(frozen=True, eq=False)
class GemmLayer:
    """One hardware GEMM of a SubNet: ``OUT[m, n] = A[m, k] @ weight[k, n]``, then requant.

    ``name`` is the shared SuperNet tensor; ``weight`` is its leading ``[k, n]`` slice (int8,
    read-only). ``mult``/``shift``/``relu`` is the requantisation to int8; ``mult is None`` (the
    head) means the int32 accumulators are the output. ``act_q_in``/``act_q_out`` are the integer
    inverse scales of A and OUT (informational; ``act_q_out`` is None for int32 output).
    """

    name: str
    m: int
    k: int
    n: int
    weight: np.ndarray
    mult: int | None
    shift: int | None
    relu: bool
    act_q_in: int
    act_q_out: int | None

    @property
    def requant(self) -> tuple[int, int] | None:
        return None if self.mult is None else (self.mult, self.shift)

    @property
    def weight_offset(self) -> tuple[int, int]:
        """Where the slice starts in the shared tensor: always the leading corner."""
        return (0, 0)


def as_int8_input(x_int8: np.ndarray, k: int) -> np.ndarray:
    """``x_int8`` as [N, >= k] int8 (a single vector becomes one row); ValueError otherwise."""
    x = np.asarray(x_int8)
    if x.dtype != np.int8:
        raise ValueError(f"input must be int8 (use quantize_input); got {x.dtype}")
    if x.ndim == 1:
        x = x.reshape(1, -1)
    if x.ndim != 2 or x.shape[1] < k:
        raise ValueError(f"input must have shape [N, >= {k}]; got {np.shape(x_int8)}")
    return x


def int8_forward(layers: Sequence[GemmLayer], x_int8: np.ndarray) -> np.ndarray:
    """int32 logits [N, n_out] of the GEMM chain ``layers`` on int8 input [N, >= layers[0].k]."""
    a = as_int8_input(x_int8, layers[0].k)[:, : layers[0].k]
    for i, layer in enumerate(layers):
        if a.shape[1] != layer.k:
            raise ValueError(f"layer {layer.name}: A has K={a.shape[1]}, weight has K={layer.k}")
        if layer.mult is None:
            if i != len(layers) - 1:
                raise ValueError(f"layer {layer.name}: int32 output is only allowed last")
            a = gemm_ref(a, layer.weight, relu=layer.relu)
        else:
            a = gemm_ref(a, layer.weight, requant=(layer.mult, layer.shift), relu=layer.relu)
    return a
