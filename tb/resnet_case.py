"""A small ResNet on chip, input to logits: basic block (identity), basic block (projection,
stride 2), bottleneck (projection, stride 2), bottleneck (identity), global average pooling and
the classifier, with its numpy reference operator by operator (``sushi_hw.reference``).

Shared by the golden-model test (tests/sched/test_conv_golden.py) and the RTL test
(tb/conv_tb.py), so both run exactly the same program.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sushi_hw.config import AccelConfig
from sushi_hw.reference import conv2d_ref, gemm_ref, global_avg_pool_ref, residual_add_ref
from sushi_sched.compiler import LayerCall
from sushi_sched.conv_compiler import ConvLayer, Network, pool_requant
from sushi_sched.conv_image import ConvImage, ConvPBLayout, conv_pb_layout

RQ = (3, 7)  # conv requantisation
ADD = (3, 2, 2)  # mult_a, mult_b, shift


@dataclass
class ResnetCase:
    image: ConvImage
    layout: ConvPBLayout | None
    program: list[bytes]
    x: np.ndarray  # int8 [h, w, c]
    want: np.ndarray  # int32 logits [1, 10]
    convs: int
    adds: int


def crop(w: np.ndarray, c_out: int, c_in: int, k: int) -> np.ndarray:
    """A SubNet's slice of a SuperNet conv tensor: leading channels, centre k x k crop."""
    o = (w.shape[2] - k) // 2
    return w[:c_out, :c_in, o : o + k, o : o + k]


def resnet_case(
    cfg: AccelConfig, seed: int, cached: bool, w_addr: int, in_addr: int, out_addr: int
) -> ResnetCase:
    r = cfg.rows
    rng = np.random.default_rng(seed)
    c1, c2, c3, mid = r, 2 * r, 3 * r, r // 2 + 1

    def small(shape: tuple) -> np.ndarray:  # small weights: activations stay off saturation
        return rng.integers(-6, 7, shape, dtype=np.int8)

    tensors = {
        "b1.c1": small((c1, c1, 3, 3)),
        "b1.c2": small((c1, c1, 3, 3)),
        "b2.c1": small((c2, c1, 5, 5)),  # used as 3x3: the centre crop of a 5x5
        "b2.c2": small((c2, c2, 3, 3)),
        "b2.sc": small((c2, c1, 1, 1)),
        "b3.c1": small((mid, c2, 1, 1)),
        "b3.c2": small((mid, mid, 3, 3)),
        "b3.c3": small((c3, mid, 1, 1)),
        "b3.sc": small((c3, c2, 1, 1)),
        "b4.c1": small((mid, c3, 1, 1)),
        "b4.c2": small((mid, mid, 3, 3)),
        "b4.c3": small((c3, mid, 1, 1)),
        "fc": small((c3, 10)),
    }
    image = ConvImage.build(cfg, tensors, w_addr)
    layout = None
    if cached:
        sub = {"b1.c2": (c1, c1, 1), "b2.c1": (c2, c1, 3), "b3.sc": (r, c2, 1), "fc": (c3, 10)}
        layout = conv_pb_layout(cfg, image, sub)

    def conv(name: str, c_out: int, c_in: int, k: int, stride: int = 1, relu: bool = True):
        return ConvLayer(name, c_out, c_in, k, stride, None, RQ, relu)

    b1 = (conv("b1.c1", c1, c1, 3), conv("b1.c2", c1, c1, 3, relu=False))
    b2 = (conv("b2.c1", c2, c1, 3, 2), conv("b2.c2", c2, c2, 3, relu=False))
    b2sc = conv("b2.sc", c2, c1, 1, 2, relu=False)
    b3 = (
        conv("b3.c1", mid, c2, 1),
        conv("b3.c2", mid, mid, 3, 2),
        conv("b3.c3", c3, mid, 1, relu=False),
    )
    b3sc = conv("b3.sc", c3, c2, 1, 2, relu=False)
    b4 = (
        conv("b4.c1", mid, c3, 1),
        conv("b4.c2", mid, mid, 3),
        conv("b4.c3", c3, mid, 1, relu=False),
    )
    fc = LayerCall("fc", c3, 10, None)
    h = w = 12
    net = Network(cfg, image, layout)
    x = net.input(h, w, c1)
    y = net.basic_block(x, *b1, ADD)
    y = net.basic_block(y, *b2, ADD, shortcut=b2sc)
    y = net.bottleneck_block(y, *b3, ADD, shortcut=b3sc)
    y = net.bottleneck_block(y, *b4, ADD)
    mult, shift = pool_requant(y.h * y.w)
    y = net.fc(net.pool(y), fc)
    program = net.program(y, in_addr, out_addr)

    # the reference, operator by operator
    x_np = rng.integers(-128, 128, (h, w, c1), dtype=np.int8)

    def ref_conv(v: np.ndarray, lay: ConvLayer) -> np.ndarray:
        wt = crop(tensors[lay.tensor], lay.c_out, lay.c_in, lay.k)
        return conv2d_ref(v, wt, lay.stride, lay.padding, lay.requant, lay.relu)

    def block(v: np.ndarray, convs: tuple, sc: ConvLayer | None) -> np.ndarray:
        u = v
        for lay in convs:
            u = ref_conv(u, lay)
        s = v if sc is None else ref_conv(v, sc)
        return residual_add_ref(u, s, *ADD, relu=True)

    v = block(x_np, b1, None)
    v = block(v, b2, b2sc)
    v = block(v, b3, b3sc)
    v = block(v, b4, None)
    assert v.shape == (3, 3, c3)
    pooled = global_avg_pool_ref(v, mult, shift)
    want = gemm_ref(pooled[None, :], tensors["fc"])
    return ResnetCase(image, layout, program, x_np, want, convs=12, adds=4)
