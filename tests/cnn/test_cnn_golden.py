"""CNN SubNets' programs on the ISA golden model (``default`` preset), bit-exact against the
int8 numpy forward pass and the ``sushi_hw.reference`` operators, with and without a cached
SubGraph, with exact weight counters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sushi_hw import isa
from sushi_hw.config import PRESETS
from sushi_sched.cnn.lower import (
    input_bytes,
    logits_from_bytes,
    pb_layout,
    program_cost,
    subnet_program,
    weight_image,
)
from sushi_sched.cnn.space import DigitsCNNSpace, cached_blocks, pb_tiles
from sushi_sched.conv_image import cache_program
from sushi_sched.isa_sim import IsaSim
from sushi_sched.subgraph import SubGraph, intersect

PROG, CACHE_PROG, IN, OUT, W = 0x0, 0x1000, 0x2000, 0x3000, 0x10000
N_IMAGES = 3


def _subnets(net):
    """The largest, the smallest and a few others of the table (fixed choice)."""
    subs = net.subnets()
    return [subs[0], subs[1]] + subs[2:40:9]


@pytest.fixture(scope="module")
def space(net):
    return DigitsCNNSpace(net)


def _cache(space, a, b):
    """The SubGraph two table SubNets share, trimmed to fit the PB (largest tensors dropped)."""
    cfg = PRESETS["default"]
    sg = dict(intersect(space.accuracy_table()[a], space.accuracy_table()[b]))
    while pb_tiles(cfg, sg) > cfg.pb_tiles:
        del sg[max(sg, key=lambda t: math.prod(sg[t]))]
    return SubGraph(sg)


@pytest.mark.parametrize("cached", [False, True], ids=["no_pb", "pb"])
def test_subnet_programs_bit_exact(net, space, cached):
    cfg = PRESETS["default"]
    sim = IsaSim(cfg)
    image = weight_image(cfg, net, W)
    for addr, blob in image.writes():
        sim.write(addr, blob)
    x, _ = net.test_set()
    for s in _subnets(net):
        i = next(j for j, t in enumerate(net.subnets()) if t.id == s.id)
        layout, sg = None, SubGraph()
        if cached:
            sg = _cache(space, i, (i + 1) % len(net.subnets()))
            layout = pb_layout(cfg, image, sg)
            sim.write_program(CACHE_PROG, cache_program(cfg, image, layout) + [isa.done()])
            assert sim.run(CACHE_PROG).ok
        prog = subnet_program(cfg, net, s.id, image, layout, IN, OUT)
        sim.write_program(PROG, prog)
        want = net.reference_logits(s.id, x[:N_IMAGES])
        for n in range(N_IMAGES):
            what = f"{s.id} image {n} cached={cached}"
            sim.write(IN, input_bytes(cfg, x[n]))
            res = sim.run(PROG)
            assert res.ok, f"{what}: {res.error_name} at {res.pc:#x}"
            got = logits_from_bytes(cfg, sim.read(OUT, 64))
            assert np.array_equal(got, want[n]), what
            assert np.array_equal(got, net.reference_logits_ops(s.id, x[n])), what
            # weight counters: every tile once per M-tile (one M-tile: maps are <= 64 pixels),
            # from the PB exactly where the cached SubGraph covers it
            sub = space.subnet(space.config_of(s.id))
            blocks = cached_blocks(cfg, sub, sg)
            pb = sum(p for p, _ in blocks.values()) * cfg.tile_bytes
            total = sum(t for _, t in blocks.values()) * cfg.tile_bytes
            assert res.counters["pb_read_bytes"] == pb, what
            assert res.counters["rd_weight_bytes"] == total - pb, what
            if cached:
                assert pb > 0, what
            # the program's cost walk counts what the golden model counts
            cost = program_cost(cfg, prog)
            for name in ("rd_weight_bytes", "pb_read_bytes", "rd_act_bytes", "wr_bytes",
                         "mac_active", "commands"):  # fmt: skip
                assert getattr(cost, name) == res.counters[name], (what, name)


def test_program_shape(net):
    cfg = PRESETS["default"]
    image = weight_image(cfg, net, W)
    s = net.largest()
    ops = [isa.decode(c)[0] for c in subnet_program(cfg, net, s.id, image, None, IN, OUT)]
    plan = net.ops(s.id)
    n_conv = sum(op.kind == "conv" for op in plan)
    n_add = sum(op.kind == "add" for op in plan)
    assert ops.count(isa.Op.CONV) == n_conv and ops.count(isa.Op.ADD) == n_add
    assert ops.count(isa.Op.POOL) == 1 and ops.count(isa.Op.GEMM) == 1
    assert ops[0] == isa.Op.LOAD_ACT and ops[-2:] == [isa.Op.STORE_ACT, isa.Op.DONE]


def test_presets_the_space_does_not_fit_are_clear_errors(net):
    """``tiny`` has no CONV hardware; on ``large`` (16 columns) an 8-wide inner conv is not whole
    output tiles. Both are one CompileError naming the cause."""
    from sushi_sched.compiler import CompileError

    tiny = PRESETS["tiny"]
    with pytest.raises(CompileError, match="no convolution hardware"):
        subnet_program(tiny, net, net.largest().id, weight_image(tiny, net, W), None, IN, OUT)
    large = PRESETS["large"]
    with pytest.raises(CompileError, match="multiple of 16 columns"):
        subnet_program(large, net, net.smallest().id, weight_image(large, net, W), None, IN, OUT)
