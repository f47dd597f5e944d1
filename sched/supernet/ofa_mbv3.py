"""Structural model of OFA-MobileNetV3 (``ofa_mbv3_d234_e346_k357_w1.0``), after Once-for-All's
``OFAMobileNetV3`` / ``DynamicMBConvLayer``. Shapes, MACs and weight bytes only: there is no
measured accuracy table for this space, so none is invented (traffic/latency studies only).

Configuration:

* ``ks``: 20 kernel sizes in {3,5,7}, one per block slot (5 units x max depth 4);
* ``e``: 20 expand ratios in {3,4,6};
* ``d``: 5 depths in {2,3,4}; a unit uses its leading slots;
* ``r``: resolution 128..224 step 4 (default 224).

Stem conv 3x3/2 (3->16), a fixed first block (dw 3x3 + pw 16->16), the 5 elastic units (widths
24,40,80,112,160, strides 2,2,2,1,2, SE in units 2,4,5), then 1x1 160->960, global pool,
960->1280, 1280->1000. A block: 1x1 expand (in -> mid = make_divisible(round(in*e))), depthwise
kxk, optional SE (mid -> make_divisible(mid//4) -> mid, at 1x1), 1x1 project (mid -> out).
Depthwise layers lower to ``dw`` GEMMs (see ``base``); kernel elasticity = nested center crops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    Dims,
    Layer,
    SubNetError,
    SuperNet,
    check_choice,
    check_len,
    conv_layer,
    conv_out,
    dw_layer,
    make_divisible,
)

BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
UNIT_STRIDE = (2, 2, 2, 1, 2)
UNIT_SE = (False, True, False, True, True)
DEPTH_CHOICES = (2, 3, 4)
EXPAND_CHOICES = (3, 4, 6)
KERNEL_CHOICES = (3, 5, 7)
N_CLASSES = 1000
RESOLUTIONS = tuple(range(128, 225, 4))
SE_REDUCTION = 4


class OFAMobileNetV3(SuperNet):
    name = "ofa-mbv3"
    description = "Once-for-All MobileNetV3 w1.0 space (structure only, no accuracy table)"

    def __init__(self, width_mult: float = 1.0):
        self.width_mult = width_mult
        self.widths = [make_divisible(b * width_mult) for b in BASE_WIDTHS]
        self._shapes: dict[str, Dims] | None = None

    def max_config(self) -> dict[str, Any]:
        return {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "r": 224}

    def tensor_shapes(self) -> dict[str, Dims]:
        if self._shapes is None:
            _, layers = self._lower(self.max_config(), check=False)
            self._shapes = {ly.tensor: ly.dims for ly in layers}
        return dict(self._shapes)

    def lower(self, config: Mapping[str, Any]) -> tuple[str, list[Layer]]:
        return self._lower(config, check=True)

    def _lower(self, config: Mapping[str, Any], check: bool) -> tuple[str, list[Layer]]:
        sp = self.name
        unknown = set(config) - {"ks", "e", "d", "r"}
        if unknown:
            raise SubNetError(f"{sp}: unknown configuration keys {sorted(unknown)} (ks, e, d, r)")
        for k in ("ks", "e", "d"):
            if k not in config:
                raise SubNetError(f"{sp}: configuration needs '{k}'")
        ks = check_len(sp, "ks", config["ks"], 20)
        e = check_len(sp, "e", config["e"], 20)
        d = check_len(sp, "d", config["d"], 5)
        r = config.get("r", 224)
        if check:
            check_choice(sp, "ks", ks, KERNEL_CHOICES)
            check_choice(sp, "e", e, EXPAND_CHOICES)
            check_choice(sp, "d", d, DEPTH_CHOICES)
            check_choice(sp, "r", [r], RESOLUTIONS)
        wd = self.widths
        layers: list[Layer] = []
        hw = conv_out(r, 2)
        layers.append(conv_layer("stem", "stem", wd[0], 3, 3, r, hw))
        layers.append(dw_layer("b0.dw", "b0.dw", wd[0], 3, hw, hw))
        layers.append(conv_layer("b0.pw", "b0.pw", wd[1], wd[0], 1, hw, hw))
        c_in = wd[1]
        for u in range(5):
            c_out = wd[2 + u]
            for i in range(d[u]):
                slot = u * 4 + i
                b = f"u{u}b{i}"
                st = UNIT_STRIDE[u] if i == 0 else 1
                out_hw = conv_out(hw, st)
                mid = make_divisible(round(c_in * e[slot]))
                layers.append(conv_layer(f"{b}.expand", f"{b}.expand", mid, c_in, 1, hw, hw))
                k = ks[slot]
                ly = dw_layer(f"{b}.dw", f"{b}.dw", mid, k, hw, out_hw)
                layers.append(ly)
                if UNIT_SE[u]:
                    se = make_divisible(mid // SE_REDUCTION)
                    layers.append(conv_layer(f"{b}.se_reduce", f"{b}.se_reduce", se, mid, 0, 1, 1))
                    layers.append(conv_layer(f"{b}.se_expand", f"{b}.se_expand", mid, se, 0, 1, 1))
                layers.append(
                    conv_layer(f"{b}.project", f"{b}.project", c_out, mid, 1, out_hw, out_hw)
                )
                c_in, hw = c_out, out_hw
        layers.append(conv_layer("final_expand", "final_expand", wd[7], c_in, 1, hw, hw))
        layers.append(conv_layer("feature_mix", "feature_mix", wd[8], wd[7], 0, 1, 1))
        layers.append(conv_layer("fc", "fc", N_CLASSES, wd[8], 0, 1, 1))
        key = "ks={} e={} d={} r={}".format(
            "".join(map(str, ks)), "".join(map(str, e)), "".join(map(str, d)), r
        )
        return key, layers
