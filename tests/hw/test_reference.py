"""The numpy reference operators against naive loops and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sushi_hw.reference import conv2d_ref, global_avg_pool_ref, requantize, residual_add_ref


def naive_conv(x, w, stride, pad):  # noqa: ANN001, ANN201
    h, wd, c_in = x.shape
    c_out, _, k, _ = w.shape
    h_out, w_out = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((h_out, w_out, c_out), dtype=np.int64)
    for oy in range(h_out):
        for ox in range(w_out):
            for co in range(c_out):
                s = 0
                for ci in range(c_in):
                    for ky in range(k):
                        for kx in range(k):
                            iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                            if 0 <= iy < h and 0 <= ix < wd:
                                s += int(x[iy, ix, ci]) * int(w[co, ci, ky, kx])
                out[oy, ox, co] = s
    return out


@pytest.mark.parametrize("seed", range(12))
def test_conv2d_ref_matches_naive_loops(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.choice([1, 3, 5, 7]))
    stride, pad = int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1))
    h, w = (int(rng.integers(max(1, k - 2 * pad), 8)) for _ in range(2))
    c_in, c_out = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.integers(-128, 128, (h, w, c_in), dtype=np.int8)
    wt = rng.integers(-128, 128, (c_out, c_in, k, k), dtype=np.int8)
    want = naive_conv(x, wt, stride, pad)
    got = conv2d_ref(x, wt, stride, pad)
    assert got.dtype == np.int32 and np.array_equal(got, want), f"seed {seed}"
    assert np.array_equal(conv2d_ref(x, wt, stride, pad, relu=True), np.maximum(want, 0))
    q = conv2d_ref(x, wt, stride, pad, requant=(3, 9), relu=True)
    assert q.dtype == np.int8 and np.array_equal(q, requantize(want.astype(np.int32), 3, 9, True))


def test_conv2d_ref_hand_cases():
    x = np.arange(1, 10, dtype=np.int8).reshape(3, 3, 1)
    ones = np.ones((1, 1, 3, 3), dtype=np.int8)
    # 3x3 box sum with zero padding: the centre sees all nine, a corner four
    out = conv2d_ref(x, ones, 1, 1)[:, :, 0]
    assert out[1, 1] == 45 and out[0, 0] == 1 + 2 + 4 + 5 and out[2, 2] == 5 + 6 + 8 + 9
    assert conv2d_ref(x, ones, 2, 1)[:, :, 0].tolist() == [[12, 16], [24, 28]]
    # cross-correlation, not convolution: a kernel with one tap at (0, 0) shifts the map
    tap = np.zeros((1, 1, 3, 3), dtype=np.int8)
    tap[0, 0, 0, 0] = 1
    assert conv2d_ref(x, tap, 1, 1)[:, :, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    # int32 wrap-around, as the accumulator
    big = np.full((1, 1, 4096 * 33), -128, dtype=np.int8)
    wbig = np.full((1, 4096 * 33, 1, 1), -128, dtype=np.int8)
    assert conv2d_ref(big, wbig)[0, 0, 0] == np.int32(
        ((128 * 128 * 4096 * 33) + 2**31) % 2**32 - 2**31
    )
    with pytest.raises(ValueError, match="does not fit"):
        conv2d_ref(x, np.ones((1, 1, 5, 5), dtype=np.int8))


def test_residual_add_ref():
    a = np.array([100, -100, 3, 5, -3], dtype=np.int8)
    b = np.array([100, -100, 0, -1, 0], dtype=np.int8)
    # (a*3 + b*1 + 2) >> 2 ; saturated, then with ReLU
    assert residual_add_ref(a, b, 3, 1, 2).tolist() == [100, -100, 2, 4, -2]
    assert residual_add_ref(a, b, 3, 1, 2, relu=True).tolist() == [100, 0, 2, 4, 0]
    assert residual_add_ref(a, b, 8, 8, 2).tolist() == [127, -128, 6, 8, -6]
    assert residual_add_ref(a, b, 1, 1, 0).tolist() == [127, -128, 3, 4, -3]  # no rounding term
    with pytest.raises(ValueError, match="mismatched"):
        residual_add_ref(a, b[:3], 1, 1, 0)


def test_global_avg_pool_ref():
    x = np.zeros((2, 2, 3), dtype=np.int8)
    x[:, :, 0] = [[1, 2], [3, 5]]  # sum 11: mean 2.75
    x[:, :, 1] = -127  # sum -508: mean -127
    x[:, :, 2] = 127
    assert global_avg_pool_ref(x, 1, 2).tolist() == [3, -127, 127]  # (11 + 2) >> 2 = 3
    assert global_avg_pool_ref(x, 3, 2).tolist() == [8, -128, 127]  # exact sum, then saturate
    assert global_avg_pool_ref(x, 1, 0).tolist() == [11, -128, 127]
