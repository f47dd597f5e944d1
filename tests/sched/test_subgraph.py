"""Property tests of the SubGraph algebra (hypothesis)."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from sushi_sched.subgraph import (
    EMPTY,
    SubGraph,
    covered_bytes,
    intersect,
    intersect_all,
    is_sub,
    nbytes,
    union,
)
from sushi_sched.supernet import get_supernet

R50 = get_supernet("ofa-resnet50")
MBV3 = get_supernet("ofa-mbv3")

r50_cfg = st.fixed_dictionaries(
    {
        "d": st.lists(st.sampled_from([0, 1, 2]), min_size=5, max_size=5),
        "e": st.lists(st.sampled_from([0.2, 0.25, 0.35]), min_size=18, max_size=18),
        "w": st.lists(st.sampled_from([0, 1, 2]), min_size=6, max_size=6),
    }
)
mbv3_cfg = st.fixed_dictionaries(
    {
        "ks": st.lists(st.sampled_from([3, 5, 7]), min_size=20, max_size=20),
        "e": st.lists(st.sampled_from([3, 4, 6]), min_size=20, max_size=20),
        "d": st.lists(st.sampled_from([2, 3, 4]), min_size=5, max_size=5),
    }
)
subnets = st.one_of(r50_cfg.map(R50.subnet), mbv3_cfg.map(MBV3.subnet))
r50_subnets = r50_cfg.map(R50.subnet)


@st.composite
def subgraphs(draw, net=R50):
    shapes = net.tensor_shapes()
    names = draw(st.lists(st.sampled_from(sorted(shapes)), unique=True, max_size=12))
    return SubGraph({t: tuple(draw(st.integers(0, x)) for x in shapes[t]) for t in names})


FAST = settings(max_examples=60, deadline=None)


@FAST
@given(r50_subnets, r50_subnets)
def test_commutative(a, b):
    assert intersect(a, b) == intersect(b, a)


@FAST
@given(subnets)
def test_idempotent(a):
    assert intersect(a, a) == SubGraph.of(a)
    assert nbytes(intersect(a, a)) == a.weight_bytes


@FAST
@given(r50_subnets, r50_subnets, r50_subnets)
def test_associative_and_many(a, b, c):
    assert (
        intersect(intersect(a, b), c) == intersect(a, intersect(b, c)) == intersect_all([a, b, c])
    )


@FAST
@given(r50_subnets, r50_subnets, subgraphs())
def test_monotone(a, b, g):
    ab = intersect(a, b)
    assert is_sub(ab, a) and is_sub(ab, b)
    assert nbytes(ab) <= min(a.weight_bytes, b.weight_bytes)
    # a bigger cache covers at least as much of any SubNet
    assert covered_bytes(a, intersect(g, SubGraph.of(b))) <= covered_bytes(a, g)
    if is_sub(a, b):
        assert covered_bytes(a, g) <= covered_bytes(b, g)


@FAST
@given(r50_subnets, subgraphs())
def test_bytes_consistent(a, g):
    cov = covered_bytes(a, g)
    assert cov == nbytes(intersect(a, g)) <= min(a.weight_bytes, nbytes(g))
    assert covered_bytes(a, SubGraph.of(a)) == a.weight_bytes
    assert covered_bytes(a, EMPTY) == 0
    # bytes is the sum of per-tensor products: inclusion-exclusion per tensor holds
    u = union(a, g)
    for t in u:
        pa = math.prod(SubGraph.of(a).get(t, (0,)))
        pg = math.prod(g.get(t, (0,)))
        assert math.prod(u[t]) >= max(pa, pg)


@FAST
@given(r50_subnets, r50_subnets)
def test_shared_subgraph_is_a_leading_slice_of_the_supernet(a, b):
    shapes = R50.tensor_shapes()
    for t, d in intersect(a, b).items():
        assert all(x <= y for x, y in zip(d, shapes[t], strict=True))


def test_hand_example():
    a = SubGraph({"w1": (8, 4, 3, 3), "w2": (10, 8)})
    b = SubGraph({"w1": (6, 5, 3, 3), "w3": (2, 2)})
    ab = a & b
    assert dict(ab) == {"w1": (6, 4, 3, 3)}
    assert ab.nbytes == 6 * 4 * 9
    assert intersect_all([]) == EMPTY
    assert SubGraph({"z": (0, 3)}) == EMPTY  # empty slices are dropped
