"""CNN SubNet queries on any backend (golden model, RTL, ...), checked bit-exactly.

:class:`QueryCheck` is a picklable job (``job(backend, progress)``, as
``sushi_sched.runtime.rtl.run_on_rtl`` takes): for each ``(SubNet, cached SubGraph of two table
SubNets or none)`` it fills the PB, runs the SubNet's program on a few test images and records the
logits against the int8 reference, the counters against :func:`lower.program_cost` and the
measured cycles against the model's. The lead's serving integrates the same pieces
(``lower.weight_image``, ``pb_layout``, ``subnet_program``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sushi_hw import isa

from ..conv_image import cache_program
from ..runtime.backend import require_ok
from ..subgraph import SubGraph, intersect
from .lower import (
    input_bytes,
    logits_from_bytes,
    pb_layout,
    program_cost,
    subnet_program,
    weight_image,
)
from .space import DigitsCNNSpace, pb_tiles

PROG, CACHE_PROG, IN, OUT, W = 0x0, 0x1000, 0x2000, 0x3000, 0x10000
COUNTERS = ("rd_weight_bytes", "pb_read_bytes", "rd_act_bytes", "wr_bytes", "mac_active",
            "commands")  # fmt: skip


def shared_subgraph(cfg, space: DigitsCNNSpace, a: int, b: int) -> SubGraph:  # noqa: ANN001
    """What table SubNets ``a`` and ``b`` share, its largest tensors dropped until it fits."""
    table = space.accuracy_table()
    sg = dict(intersect(table[a], table[b]))
    while pb_tiles(cfg, sg) > cfg.pb_tiles:
        del sg[max(sg, key=lambda t: math.prod(sg[t]))]
    return SubGraph(sg)


@dataclass
class QueryCheck:
    """``cases``: ``(table index of the SubNet, (a, b) table indices whose shared SubGraph is
    cached, or None)``; ``images``: test images per case."""

    cases: list[tuple[int, tuple[int, int] | None]]
    images: int = 2

    def __call__(self, backend, progress=None) -> list[dict]:  # noqa: ANN001
        cfg = backend.cfg
        space = DigitsCNNSpace()
        net = space.net
        image = weight_image(cfg, net, W)
        for addr, blob in image.writes():
            backend.write(addr, blob)
        x, _ = net.test_set()
        out = []
        for idx, pair in self.cases:
            s = net.subnets()[idx]
            layout, sg = None, SubGraph()
            if pair is not None:
                sg = shared_subgraph(cfg, space, *pair)
                layout = pb_layout(cfg, image, sg)
                backend.write(CACHE_PROG, b"".join([*cache_program(cfg, image, layout),
                                                    isa.done()]))  # fmt: skip
                require_ok(backend.run(CACHE_PROG, "cache"))
            prog = subnet_program(cfg, net, s.id, image, layout, IN, OUT)
            backend.write(PROG, b"".join(prog))
            cost = program_cost(cfg, prog)
            want = net.reference_logits(s.id, x[: self.images])
            for n in range(self.images):
                backend.write(IN, input_bytes(cfg, x[n]))
                res = require_ok(backend.run(PROG, f"{s.id} image {n}"))
                got = logits_from_bytes(cfg, backend.read(OUT, 64))
                out.append({
                    "subnet": s.id,
                    "cached": sg.as_json(),
                    "image": n,
                    "match": bool(np.array_equal(got, want[n])),
                    "counters_match": all(getattr(cost, c) == res.counters[c] for c in COUNTERS),
                    "cycles": int(res.counters["cycles"]),
                    "model_cycles": cost.cycles,
                    "pb_read_bytes": int(res.counters["pb_read_bytes"]),
                    "rd_weight_bytes": int(res.counters["rd_weight_bytes"]),
                })  # fmt: skip
                if progress is not None:
                    progress.update()
        return out
