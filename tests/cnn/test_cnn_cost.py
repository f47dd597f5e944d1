"""The scheduler's cost model (``CostModel.query``, what the policies and ``sushi simulate`` use)
against the program the server runs (``lower.program_cost``, command by command; its counters
equal the golden model's and its cycles the RTL's, tests/cnn/test_cnn_rtl.py): same weight bytes
from off-chip and from the PB, cycles within 0.1%, for table SubNets with and without a shared
SubGraph cached. The CONV, ADD, POOL and GEMM commands and the feature-map LOAD_ACT all count."""

from __future__ import annotations

import numpy as np
from sushi_hw.config import PRESETS
from sushi_sched.cnn.check import shared_subgraph
from sushi_sched.cnn.lower import pb_layout, program_cost, subnet_program, weight_image
from sushi_sched.cnn.space import DigitsCNNSpace
from sushi_sched.cost import CostModel
from sushi_sched.subgraph import SubGraph


def test_cost_model_matches_the_programs(net):
    cfg = PRESETS["default"]
    space = DigitsCNNSpace(net)
    image = weight_image(cfg, net, 0x10000)
    cost = CostModel(cfg)
    table = space.accuracy_table()
    rng = np.random.default_rng(5)
    picks = [0, 1, *rng.choice(np.arange(2, len(table)), 10, replace=False)]
    for i in picks:
        i = int(i)
        s = table[i]
        assert s.extra["vector_ops"], "the CNN's ADDs and POOL reach the cost model"
        for other in (None, int(rng.integers(len(table)))):
            sg = SubGraph() if other is None else shared_subgraph(cfg, space, i, other)
            layout = pb_layout(cfg, image, sg) if other is not None else None
            prog = subnet_program(cfg, net, net.subnets()[i].id, image, layout, 0, 0x100)
            want, got = program_cost(cfg, prog), cost.query(s, sg)
            where = f"SubNet {s.key} cached {sg.as_json()}"
            assert got.weight_offchip_bytes == want.rd_weight_bytes, where
            assert got.pb_hit_bytes == want.pb_read_bytes, where
            assert abs(got.cycles - want.cycles) <= 0.001 * want.cycles, (where, got, want)
