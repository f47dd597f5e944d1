"""Policies on tiny traces with known answers, the infinite-PB ceiling, the clairvoyant
schedule, PB reload accounting, determinism."""

import json

import pytest
from sushi_hw.config import make_config
from sushi_sched.simulate import Setup, simulate
from sushi_sched.subgraph import SubGraph
from sushi_sched.traces import Query, generate

from .toy import ToyNet

# default preset: 8x8, 4 B/cycle -> a weight tile takes 16 cycles off-chip, 8 from the PB; the
# toy net has M=1, so it is weight-bound and the PB matters for latency too.
CFG = make_config("default", pb_bytes=65536)  # pinned: independent of preset edits
ALL = (
    "sushi",
    "no_pb",
    "static_subnet",
    "static_subgraph",
    "last_subnet",
    "clairvoyant",
    "infinite_pb",
)
ONLINE_SAME_RULE = ("sushi", "no_pb", "static_subgraph", "last_subnet")


@pytest.fixture(scope="module")
def toy():
    net = ToyNet()
    return net, Setup.build(net, CFG)


def lat(setup, w, cached=False):
    s = setup.supernet.table_subnet({16: 0, 32: 1, 64: 2}[w])
    return setup.cost.query(s, SubGraph.of(s) if cached else SubGraph()).ms


def run(setup, trace, objective, policies=ALL, **kw):
    return simulate(
        setup.supernet, setup.cfg, trace, objective, policies, timing=False, setup=setup, **kw
    )


def test_latency_objective_known_answer(toy):
    net, setup = toy
    gap = 10.0  # ms, far above any service time: no queueing
    trace = [Query(i * gap, 85.0, 1.0) for i in range(20)]
    rep, ser = run(setup, trace, "latency")
    p = rep["policies"]
    l0, l1 = lat(setup, 32), lat(setup, 32, cached=True)
    assert l1 < l0
    assert p["no_pb"]["mean_latency_ms"] == pytest.approx(l0)
    assert all(a == 90.0 for a in ser["no_pb"].accuracy)
    # sushi caches the whole w=32 SubNet after the first query, loads once
    assert ser["sushi"].latency_ms[0] == pytest.approx(l0)
    assert ser["sushi"].latency_ms[1:] == pytest.approx([l1] * 19)
    assert p["sushi"]["cache_updates"] == 1
    tiles = 8 * 4 + 4 * 2  # l1 64x32: 8 K-tiles x 4 N-tiles ; l2 32x10: 4 x 2
    assert p["sushi"]["pb_hit_bytes"] == 19 * tiles * 64
    assert p["sushi"]["pb_load_bytes"] == tiles * 64
    assert p["last_subnet"]["mean_latency_ms"] == pytest.approx(p["sushi"]["mean_latency_ms"])
    # static_subgraph loads before the first query (which waits for the load): every query hits
    # one CACHE command per tile column of each block: 4 + 2
    load_ms = CFG.cycles_to_ms(setup.cost.load_cost(tiles * 64, 6)[0])
    assert ser["static_subgraph"].latency_ms == pytest.approx([l1 + load_ms] + [l1] * 19)
    assert p["static_subnet"]["served"] == {"#1": 20}
    assert p["infinite_pb"]["mean_latency_ms"] == pytest.approx(l1)
    # clairvoyant caches the SubNet before the first query, like static_subgraph
    assert ser["clairvoyant"].latency_ms == pytest.approx([l1 + load_ms] + [l1] * 19)
    assert p["sushi"]["offchip_bytes"] < p["no_pb"]["offchip_bytes"]


def test_accuracy_objective_pb_buys_accuracy(toy):
    net, setup = toy
    slo = (lat(setup, 64) + lat(setup, 64, cached=True)) / 2  # w=64 fits only when cached
    assert lat(setup, 64, cached=True) < slo < lat(setup, 64)
    trace = [Query(i * 10.0, 0.0, slo) for i in range(10)]
    rep, ser = run(setup, trace, "accuracy")
    p = rep["policies"]
    assert ser["no_pb"].accuracy == [90.0] * 10
    assert ser["sushi"].accuracy == [90.0] + [95.0] * 9  # needs a cache first
    assert p["sushi"]["slo_attainment"] == p["no_pb"]["slo_attainment"] == 1.0
    assert ser["infinite_pb"].accuracy == [95.0] * 10
    assert ser["clairvoyant"].accuracy[1:] == [95.0] * 9


def test_floor_and_slo_misses_degrade_predictably(toy):
    net, setup = toy
    trace = [Query(0.0, 99.0, 1e-6), Query(10.0, 99.0, 1e-6)]
    rep, ser = run(setup, trace, "latency", ("no_pb",))
    assert ser["no_pb"].accuracy == [95.0, 95.0]  # no SubNet meets 99 %: the most accurate
    assert rep["policies"]["no_pb"]["floor_attainment"] == 0.0
    rep, ser = run(setup, trace, "accuracy", ("no_pb",))
    assert ser["no_pb"].accuracy == [80.0, 80.0]  # SLO unmeetable: the least accurate
    assert rep["policies"]["no_pb"]["slo_attainment"] == 0.0


def test_queueing_counts(toy):
    net, setup = toy
    trace = [Query(0.0, 85.0, 100.0)] * 3  # three simultaneous arrivals
    rep, ser = run(setup, trace, "latency", ("no_pb",))
    l0 = lat(setup, 32)
    assert ser["no_pb"].latency_ms == pytest.approx([l0, 2 * l0, 3 * l0])


def test_pb_too_small_still_works(toy):
    net, _ = toy
    setup = Setup.build(net, CFG.replace(pb_bytes=0))
    trace = [Query(i * 10.0, 85.0, 1.0) for i in range(5)]
    rep, _ = run(setup, trace, "latency")
    assert any("nothing is cached" in n for n in rep["config"]["notes"])
    base = rep["policies"]["no_pb"]
    for name in ("sushi", "static_subgraph", "last_subnet"):
        r = rep["policies"][name]
        assert r["pb_hit_bytes"] == 0 and r["cache_updates"] == 0
        assert r["mean_latency_ms"] == base["mean_latency_ms"]


@pytest.mark.parametrize("kind", ["phases", "uniform"])
@pytest.mark.parametrize("objective", ["latency", "accuracy"])
def test_infinite_pb_never_worse(zcu_setup, kind, objective):
    trace = generate(kind, 300, 3, zcu_setup.scale())
    rep, ser = run(zcu_setup, trace, objective)
    o = rep["policies"]["infinite_pb"]
    for name in ONLINE_SAME_RULE:
        r = rep["policies"][name]
        assert o["slo_attainment"] >= r["slo_attainment"], name
        if objective == "latency":
            assert all(
                a <= b + 1e-9
                for a, b in zip(ser["infinite_pb"].latency_ms, ser[name].latency_ms, strict=True)
            ), name
            assert o["p99_latency_ms"] <= r["p99_latency_ms"] + 1e-9
            assert o["offchip_bytes"] <= r["offchip_bytes"], name  # same SubNets served
        else:
            assert all(
                a >= b for a, b in zip(ser["infinite_pb"].accuracy, ser[name].accuracy, strict=True)
            ), name


def test_pb_capacity_respected_and_sushi_saves_energy(zcu_setup):
    trace = generate("phases", 400, 5, zcu_setup.scale())
    rep, ser = run(zcu_setup, trace, "latency")
    for name, r in rep["policies"].items():
        assert r["pb_peak_bytes"] <= zcu_setup.cfg.pb_bytes, name
    p = rep["policies"]
    assert p["sushi"]["offchip_energy_mj"] < p["no_pb"]["offchip_energy_mj"]
    assert p["sushi"]["mean_latency_ms"] <= p["no_pb"]["mean_latency_ms"]


def test_determinism(zcu_setup):
    trace = generate("walk", 200, 11, zcu_setup.scale(), "gamma")
    a, _ = run(zcu_setup, trace, "accuracy")
    b, _ = run(Setup.build(zcu_setup.supernet, zcu_setup.cfg), trace, "accuracy")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_unknown_policy_and_objective(toy):
    _, setup = toy
    with pytest.raises(ValueError, match="unknown policy 'lru'"):
        run(setup, [Query(0, 0, 1)], "latency", ("lru",))
    with pytest.raises(ValueError, match="unknown objective"):
        run(setup, [Query(0, 0, 1)], "energy")


def test_reloads_follow_the_compilers_packing(toy):
    """Blocks are packed in tensor order (compiler.pb_layout): growing l1 moves l2's block, so
    l2 is written again although its slice did not change."""
    from sushi_sched.compiler import pb_layout
    from sushi_sched.cost import pb_blocks, reload_tiles

    _, setup = toy
    lay = setup.layouts
    old = SubGraph({"l1": (64, 16), "l2": (16, 10)})
    new = SubGraph({"l1": (64, 32), "l2": (16, 10)})
    # the cost model's blocks are the compiler's layout
    for g in (old, new):
        want = pb_layout(CFG, dict(g)).blocks
        got = pb_blocks(g, lay, CFG)
        assert {t: (at, kc * nc, nc) for t, (at, kc, nc) in want.items()} == got
    assert reload_tiles(old, new, lay, CFG) == (8 * 4 + 2 * 2, 4 + 2)  # both blocks, 6 commands
    # shrinking only the last block leaves the first in place
    last = SubGraph({"l1": (64, 16), "l2": (8, 10)})
    assert reload_tiles(old, last, lay, CFG) == (1 * 2, 2)
    assert reload_tiles(old, old, lay, CFG) == (0, 0)


def test_clairvoyant_pays_for_its_loads_and_never_exceeds_the_pb(zcu_setup):
    trace = generate("phases", 300, 7, zcu_setup.scale())
    rep, ser = run(zcu_setup, trace, "latency", ("no_pb", "clairvoyant", "infinite_pb"))
    c = rep["policies"]["clairvoyant"]
    assert c["pb_peak_bytes"] <= zcu_setup.cfg.pb_bytes
    assert c["cache_updates"] >= 1 and c["pb_load_bytes"] > 0
    assert c["offchip_bytes"] >= c["pb_load_bytes"]  # loads are off-chip traffic
    # updates only at window boundaries: after query 0 and every update_every queries
    assert all(i == 0 or i % 64 == 0 for i in ser["clairvoyant"].updates_at)
    # the ceiling bounds it
    assert rep["policies"]["infinite_pb"]["mean_latency_ms"] <= c["mean_latency_ms"]


def test_sram_energy_grows_with_the_buffer():
    from sushi_sched.cost import EnergyConstants

    e = EnergyConstants()
    # Horowitz's table, per 32 bits: 8 KB 5 pJ, 32 KB 10 pJ, 1 MB 50 pJ
    assert e.sram_pj_per_32b_at(8 << 10) == pytest.approx(5.0)
    assert e.sram_pj_per_32b_at(32 << 10) == pytest.approx(10.0)
    assert e.sram_pj_per_32b_at(1 << 20) == pytest.approx(50.0)
    sizes = [1 << k for k in range(10, 24)]
    vals = [e.sram_pj_per_32b_at(s) for s in sizes]
    assert vals == sorted(vals) and vals[-1] > 50.0
    cm = make_config("zcu104")
    from sushi_sched.cost import CostModel

    m = CostModel(cm)
    assert m.pj_pb > m.pj_act > m.pj_dyn  # 2 MiB PB > 1 MiB activations > 64 KiB dynamic
