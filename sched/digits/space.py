"""The digits SuperNet as a :class:`sushi_sched.supernet.base.SuperNet` (the scheduler's view).

Every SubNet of the trained SuperNet is in the accuracy table, with its int8 accuracy measured
on the held-out split (in %, like the OFA tables). One query is one image: M = 1 per layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..supernet.base import Layer, SubNet, SubNetError, SuperNet
from .store import load_digits_supernet
from .supernet import DigitsSuperNet


class DigitsSpace(SuperNet):
    name = "digits"
    description = (
        "MLP weight-shared SuperNet trained in this project on scikit-learn digits "
        "(elastic inputs, depth and width; int8)"
    )

    def __init__(self, net: DigitsSuperNet | None = None):
        self.net = net or load_digits_supernet()
        self._table: list[SubNet] | None = None

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v) for k, v in self.net.spec.tensor_shapes().items()}

    def lower(self, config: Mapping[str, Any]) -> tuple[str, list[Layer]]:
        try:
            info = self.net.subnet((config["inputs"], tuple(config["widths"])))
        except (KeyError, TypeError, ValueError) as e:
            raise SubNetError(f"digits: {config!r} is not a SubNet of the space ({e})") from None
        layers = []
        for i, g in enumerate(self.net.layers(info.id)):
            out_bytes = g.n * (1 if g.requant is not None else 4)
            layers.append(Layer(f"L{i}", g.name, (g.k, g.n), "kn", g.m, g.k, g.n, g.k, out_bytes))
        return info.id, layers

    def accuracy_table(self) -> list[SubNet]:
        if self._table is None:
            self._table = [
                self.subnet(self.config_of(s.id), accuracy=100.0 * s.accuracy_int8, id=i)
                for i, s in enumerate(self.net.subnets())
            ]
        return self._table

    def config_of(self, subnet_id: str) -> dict[str, Any]:
        info = self.net.subnet(subnet_id)
        return {"inputs": info.config.inputs, "widths": list(info.config.widths)}

    def max_config(self) -> dict[str, Any]:
        return self.config_of(self.net.largest().id)
