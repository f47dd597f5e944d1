"""The CNN SuperNet as the scheduler sees it, and its SubGraph algebra against the compiler."""

import math

import pytest
from sushi_hw.config import PRESETS
from sushi_sched.cnn.lower import build_network, pb_layout, weight_image
from sushi_sched.cnn.space import DigitsCNNSpace, conv_cover, pb_tiles
from sushi_sched.compiler import CompileError
from sushi_sched.subgraph import SubGraph, covered_bytes, intersect, is_sub
from sushi_sched.supernet.base import SubNetError


@pytest.fixture(scope="module")
def space(net):
    return DigitsCNNSpace(net)


def test_table_and_lowering(space, net):
    table = space.accuracy_table()
    assert len(table) == len(net.subnets())
    for s, info in zip(table, net.subnets(), strict=True):
        assert s.key == info.id and s.accuracy == pytest.approx(100 * info.accuracy_val)
        assert s.weight_bytes == info.weight_bytes and s.macs == info.macs
        assert is_sub(s, space.largest())
    assert space.largest().key == net.largest().id
    with pytest.raises(SubNetError, match="digits-cnn"):
        space.subnet({"stages": [[[8, 5]], [[8, 1]], [[8, 1]]]})
    with pytest.raises(SubNetError):
        space.subnet({"id": "8k1-8k1-8k1-8k1"})
    adds = [v for v in space.vector_ops(space.max_config()) if v[0] == "add"]
    assert [(px, c) for _, _, px, c in adds] == [(64, 16)] * 2 + [(16, 24)] * 2 + [(4, 32)] * 2


def test_intersection_is_what_both_read(space):
    a = space.subnet({"id": "16k3.8k1-24k3-32k1.8k3"})
    b = space.subnet({"id": "8k1-16k3.8k3-24k3"})
    sg = intersect(a, b)
    assert sg["s1.b1.c1"] == (8, 16, 1, 1)  # narrower width, smaller (centre) crop
    assert sg["s3.b1.c2"] == (32, 24, 1, 1)
    assert "s1.b2.c1" not in sg and "s3.b2.c1" not in sg  # only a uses them
    assert sg["fc"] == (32, 10) and sg["stem"] == (16, 1, 3, 3)
    assert covered_bytes(a, sg) == sg.nbytes == sum(math.prod(d) for d in sg.values())


def test_pb_footprint_and_cover_match_the_compiler(space, net):
    cfg = PRESETS["default"]
    image = weight_image(cfg, net, 0x10000)
    table = space.accuracy_table()
    checked = 0
    for i in range(0, 40, 3):
        sg = dict(intersect(table[i], table[i + 1]))
        while pb_tiles(cfg, sg) > cfg.pb_tiles:
            del sg[max(sg, key=lambda t: math.prod(sg[t]))]
        layout = pb_layout(cfg, image, SubGraph(sg))
        assert layout.tiles == pb_tiles(cfg, sg)
        for s in (table[i], table[i + 2]):
            nw, _ = build_network(cfg, net, s.key, image, layout)
            convs = {op.args["layer"].tensor: op.args["ops"] for op in nw.ops if op.kind == "conv"}
            convs.update(
                {op.args["call"].tensor: op.args["ops"] for op in nw.ops if op.kind == "fc"}
            )
            for ly in s.layers:
                want = tuple(convs[ly.tensor].get(f, 0) for f in ("pb_nt", "pb_ct", "pb_t"))
                assert conv_cover(cfg, ly, sg.get(ly.tensor)) == want, (s.key, ly.name)
                checked += 1
    assert checked > 100


def test_a_subgraph_too_big_for_the_pb_is_rejected(space, net):
    cfg = PRESETS["default"]
    image = weight_image(cfg, net, 0x10000)
    with pytest.raises(CompileError, match="does not fit the PB"):
        pb_layout(cfg, image, SubGraph.of(space.largest()))
