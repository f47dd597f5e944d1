"""Structural model of the OFA-ResNet50 (ResNet50-D) SuperNet, following Once-for-All's
``OFAResNets`` / ``DynamicResNetBottleneckBlock`` and its FLOPs counter.

Configuration (``set_active_subnet(d, e, w)`` of ``ofa_resnet50``):

* ``d``: 5 ints in {0,1,2}. ``d[0] == 2`` keeps the stem's skippable residual 3x3 conv (OFA skips
  it for any other value); ``d[1..4]`` are extra blocks on top of base depth [2,2,4,2].
* ``e``: 18 expand ratios in {0.2,0.25,0.35}, one per block slot at max depth [4,4,6,4]; a stage
  uses its leading slots.
* ``w``: 6 indices into widths [0.65,0.8,1.0]: w[0] stem convs 0-1, w[1] stem conv 2, w[2..5]
  the four stages.
* ``r``: input resolution, 128..224 in steps of 4 (default 224).

Each bottleneck is conv1 1x1 -> conv2 3x3 (stride here) -> conv3 1x1, plus an avgpool + 1x1
downsample conv on the first block of each stage. Tensors are sized for the largest SubNet; a
SubNet takes leading slices (OFA's ``get_active_weight`` = ``weight[:out, :in]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .base import (
    Dims,
    Layer,
    SubNet,
    SubNetError,
    SuperNet,
    check_choice,
    check_len,
    conv_layer,
    conv_out,
    make_divisible,
)

DEPTH_CHOICES = (0, 1, 2)
EXPAND_CHOICES = (0.2, 0.25, 0.35)
WIDTH_CHOICES = (0.65, 0.8, 1.0)
BASE_DEPTH = (2, 2, 4, 2)
STAGE_WIDTH = (256, 512, 1024, 2048)
STAGE_STRIDE = (1, 2, 2, 2)
N_CLASSES = 1000
RESOLUTIONS = tuple(range(128, 225, 4))

#: Channel choices, exactly as OFA derives them (make_divisible to 8).
STEM_OUT = tuple(make_divisible(64 * w) for w in WIDTH_CHOICES)  # (40, 48, 64)
STEM_MID = tuple(make_divisible(c // 2) for c in STEM_OUT)  # (24, 24, 32)
STAGE_OUT = tuple(tuple(make_divisible(s * w) for w in WIDTH_CHOICES) for s in STAGE_WIDTH)


def _mid(out: int, e: float) -> int:
    return make_divisible(round(out * e))


def default_table_path() -> Path:
    return Path(str(resources.files("sushi_sched") / "data" / "ofa_resnet50_subnets.json"))


class OFAResNet50(SuperNet):
    name = "ofa-resnet50"
    description = "Once-for-All ResNet50-D space (ImageNet), accuracy table from measured SubNets"

    def __init__(self, table_path: str | Path | None = None):
        self.table_path = Path(table_path) if table_path else default_table_path()
        self._table: list[SubNet] | None = None
        self._shapes: dict[str, Dims] | None = None

    # ---- space -------------------------------------------------------------------------------
    def max_config(self) -> dict[str, Any]:
        return {"d": [2] * 5, "e": [max(EXPAND_CHOICES)] * 18, "w": [2] * 6, "r": 224}

    def tensor_shapes(self) -> dict[str, Dims]:
        if self._shapes is None:
            _, layers = self._lower(self.max_config(), check=False)
            self._shapes = {ly.tensor: ly.dims for ly in layers}
        return dict(self._shapes)

    def lower(self, config: Mapping[str, Any]) -> tuple[str, list[Layer]]:
        return self._lower(config, check=True)

    def _lower(self, config: Mapping[str, Any], check: bool) -> tuple[str, list[Layer]]:
        sp = self.name
        unknown = set(config) - {"d", "e", "w", "r"}
        if unknown:
            raise SubNetError(
                f"{sp}: unknown configuration keys {sorted(unknown)} (use d, e, w, r)"
            )
        for k in ("d", "e", "w"):
            if k not in config:
                raise SubNetError(f"{sp}: configuration needs '{k}'")
        d = check_len(sp, "d", config["d"], 5)
        e = [float(x) for x in check_len(sp, "e", config["e"], 18)]
        w = check_len(sp, "w", config["w"], 6)
        r = config.get("r", 224)
        if check:
            check_choice(sp, "d", d, DEPTH_CHOICES)
            check_choice(sp, "e", e, EXPAND_CHOICES)
            check_choice(sp, "w", w, range(len(WIDTH_CHOICES)))
            check_choice(sp, "r", [r], RESOLUTIONS)

        layers: list[Layer] = []
        hw = conv_out(r, 2)
        mid, c_out = STEM_MID[w[0]], STEM_OUT[w[1]]
        layers.append(conv_layer("stem0", "stem0", mid, 3, 3, r, hw))
        if d[0] == max(DEPTH_CHOICES):  # OFA: input_stem_skipping = d[0] != max(depth_list)
            layers.append(conv_layer("stem1", "stem1", mid, mid, 3, hw, hw))
        layers.append(conv_layer("stem2", "stem2", c_out, mid, 3, hw, hw))
        hw = conv_out(hw, 2)  # max pool
        c_in = c_out
        slot = 0
        for s, (base, stride) in enumerate(zip(BASE_DEPTH, STAGE_STRIDE, strict=True)):
            n_max = base + max(DEPTH_CHOICES)
            c_out = STAGE_OUT[s][w[2 + s]]
            for i in range(base + d[1 + s]):
                b = f"s{s}b{i}"
                st = stride if i == 0 else 1
                out_hw = conv_out(hw, st)
                mid = _mid(c_out, e[slot + i])
                layers.append(conv_layer(f"{b}.conv1", f"{b}.conv1", mid, c_in, 1, hw, hw))
                layers.append(conv_layer(f"{b}.conv2", f"{b}.conv2", mid, mid, 3, hw, out_hw))
                layers.append(conv_layer(f"{b}.conv3", f"{b}.conv3", c_out, mid, 1, out_hw, out_hw))
                if i == 0:  # avgpool_conv downsample (in/out channel lists differ)
                    layers.append(
                        conv_layer(f"{b}.down", f"{b}.down", c_out, c_in, 1, out_hw, out_hw)
                    )
                c_in, hw = c_out, out_hw
            slot += n_max
        layers.append(conv_layer("fc", "fc", N_CLASSES, c_in, 0, 1, 1))  # after global pool
        key = "d={} e={} w={} r={}".format(
            "".join(map(str, d)), ",".join(f"{x:g}" for x in e), "".join(map(str, w)), r
        )
        return key, layers

    # ---- accuracy table ----------------------------------------------------------------------
    def accuracy_table(self) -> list[SubNet]:
        if self._table is None:
            try:
                raw = json.loads(self.table_path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise SubNetError(
                    f"{self.name}: cannot read accuracy table {self.table_path}: {err}"
                ) from None
            table = []
            for row in raw["subnets"]:
                cfg = {"d": row["d"], "e": row["e"], "w": row["w"], "r": 224}
                sn = self.subnet(cfg, accuracy=float(row["accuracy"]), id=int(row["id"]))
                sn.extra.update(
                    {
                        "predicted_mflops": row.get("predicted_mflops"),  # type: ignore[attr-defined]
                        "forward_ms_a40_b1": row.get("forward_ms_a40_b1"),
                    }
                )
                table.append(sn)
            self._table = table
        return list(self._table)


def param_count(sn: SubNet) -> int:
    """PyTorch-style parameter count: conv/fc weights + 2 BN params per conv output channel +
    the classifier bias (what the published "M params" figures count)."""
    total = 0
    for ly in sn.layers:
        total += ly.weight_bytes + (ly.n if ly.name == "fc" else 2 * ly.n)
    return total
