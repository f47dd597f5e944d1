"""A tiny digits-like SuperNet (2-D ``kn`` tensors, elastic width) built on the generic
interface, with hand-set accuracies: used for policy tests with known answers."""

from sushi_sched.supernet.base import Layer, SubNetError, SuperNet

WIDTHS = (16, 32, 64)
ACC = {16: 80.0, 32: 90.0, 64: 95.0}


class ToyNet(SuperNet):
    name = "toy"

    def tensor_shapes(self):
        return {"l1": (64, 64), "l2": (64, 10)}

    def max_config(self):
        return {"w": 64}

    def lower(self, config):
        w = config.get("w")
        if w not in WIDTHS:
            raise SubNetError(f"toy: w = {w!r} is outside the space {list(WIDTHS)}")
        return f"w={w}", [
            Layer("l1", "l1", (64, w), "kn", 1, 64, w, 64, w),
            Layer("l2", "l2", (w, 10), "kn", 1, w, 10, w, 10),
        ]

    def accuracy_table(self):
        return [self.subnet({"w": w}, accuracy=ACC[w], id=i) for i, w in enumerate(WIDTHS)]
