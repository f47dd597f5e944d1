"""Cost model vs hand-computed small cases."""

import pytest
from sushi_hw.config import make_config
from sushi_sched.cost import CostModel, EnergyConstants, layer_parts, pb_footprint
from sushi_sched.subgraph import SubGraph
from sushi_sched.supernet.base import Layer, SubNet
from sushi_sched.timing import TimingModel

# 4x4 array, 8-row M-tiles, 2 B/cycle off-chip: a tile takes 16/2 = 8 cycles off-chip, 4 from PB
CFG = make_config(
    "tiny",
    rows=4,
    cols=4,
    acc_depth=8,
    act_bytes=64,
    pb_bytes=16 * 4,
    dyn_bytes=32,
    mem_width=4,
    mem_bytes_per_cycle=2,
    mem_latency=10,
)
TM = TimingModel(
    CFG,
    cmd_overhead=2,
    gemm_overhead=5,
    pb_tile_overhead=3,
    first_fetch=1,
    int32_row_cycles=3,
    load_overhead=1,
    query_overhead=7,
)


def kn(name, k, n, m):
    return Layer(name, name, (k, n), "kn", m, k, n, m * k, m * n)


def test_tile_period_and_gemm_cycles_by_hand():
    # off-chip tile: 16 B at 2 B/cycle = 8 cycles; PB tile: rows + 3 = 7 cycles
    assert TM.mem_fetch_cycles == 8 and TM.cmd_cycles == 10 + 16 + 2
    assert TM.tile_period(2, True) == 7 and TM.tile_period(2, False) == 8
    assert TM.tile_period(6, False) == 8 and TM.tile_period(8, True) == 8
    # M=10 -> M-tiles of 8 and 2; 2x2 tiles each, all off-chip: periods 4*8 + 4*8, the last
    # tile only takes its 2 rows (-8 + 2), the stream starts latency + 1 late, + overhead 5
    assert TM.gemm_cycles(10, 2, 2) == 64 - 8 + 2 + 11 + 5
    # tile (0,0) from the PB, the rest off-chip: tiles issue every 8 (M-tile 2: 7) cycles
    # unless the stream is late; it delivers off tile i at 11 + 8*i, so tile (0,1) waits 3
    # cycles and the later ones are prefetched in time: 7 starts + 3 wait + 2 rows + 5
    assert TM.gemm_cycles(10, 2, 2, 1, 1) == (8 * 4 + 7 * 3) + 3 + 2 + 5
    # everything from the PB: no stream start-up; the last tile is a PB tile (period 7)
    assert TM.gemm_cycles(10, 2, 2, 2, 2) == 32 + 28 - 7 + 2 + 5
    # int32 output: 20 rows x 4 words = 80 writer cycles against 4*8 + 4*7 = 60 of compute
    assert TM.gemm_cycles(10, 2, 2, 2, 2, int32=True) == TM.gemm_cycles(10, 2, 2, 2, 2) + 20
    # a single row: only the last row's 3 extra words show
    assert TM.gemm_cycles(1, 2, 2, 2, 2, int32=True) == TM.gemm_cycles(1, 2, 2, 2, 2) + 3


def test_layer_one_gemm_per_layer_by_hand():
    cm = CostModel(CFG, TM)
    ly = kn("w", 8, 8, 10)
    assert [(p.tiles, p.pb_tiles) for p in layer_parts(ly, None, CFG)] == [(4, 0)]
    # cached leading 8x4 block: all K-tiles of the first N-tile; still one GEMM whose first
    # two tiles come from the PB
    parts = layer_parts(ly, (8, 4), CFG)
    assert [(p.tiles, p.pb_tiles, p.kt, p.pb_kt, p.pb_nt) for p in parts] == [(4, 2, 2, 2, 1)]
    lc = cm.layer(ly, (8, 4))
    # two PB tiles per M-tile come first, so the stream (11 + 8*i) is always ahead: no waits;
    # starts 8+8+8+8+7+7+7, the last tile's 2 rows, + 5, + the command fetch
    assert lc.cycles == TM.cmd_cycles + (8 * 4 + 7 * 3 + 2 + 5)
    assert lc.gemms == 1
    assert lc.pb_hit_bytes == 2 * 2 * 16  # 2 M-tiles x 2 tiles x 16 B
    assert lc.weight_offchip_bytes == 2 * 2 * 16
    # a partly covered K (6 of 8 rows) only serves whole tiles: 1 K-tile
    parts = layer_parts(ly, (6, 8), CFG)
    assert [(p.tiles, p.pb_tiles) for p in parts] == [(4, 2)]
    # cache larger than the layer: the whole layer
    assert [(p.tiles, p.pb_tiles) for p in layer_parts(ly, (12, 12), CFG)] == [(4, 4)]


def test_query_activations_energy_by_hand():
    e = EnergyConstants(dram_pj_per_32b=4.0, sram_pj_per_32b=0.0, mul8_pj=0.0, add32_pj=0.0)
    cm = CostModel(CFG, TM, e)
    l1, l2 = kn("a", 4, 8, 10), kn("b", 8, 4, 10)  # l1 output 80 B > act_bytes 64: spills
    sn = SubNet("toy", "t", {}, (l1, l2))
    q = cm.query(sn)
    assert q.act_offchip_bytes == 40 + 2 * 80 + 40  # input, spill out+in, output
    assert q.weight_offchip_bytes == 2 * (2 + 2) * 16  # 2 M-tiles x 2 tiles, per layer
    g1, g2 = TM.gemm_cycles(10, 1, 2), TM.gemm_cycles(10, 2, 1)
    xfer = lambda b: TM.cmd_cycles + 10 + -(-b // 2) + 1  # noqa: E731 - fetch + transfer
    assert q.cycles == 7 + TM.cmd_cycles + (TM.cmd_cycles + g1) + (TM.cmd_cycles + g2) + xfer(
        40
    ) + 2 * xfer(80) + xfer(40)
    assert q.ms == pytest.approx(q.cycles / (CFG.clock_mhz * 1e3))
    assert q.offchip_energy_mj == pytest.approx(q.offchip_bytes * 1.0 * 1e-9)
    # caching all of layer a removes its weight bytes and moves them to PB hits
    qc = cm.query(sn, SubGraph({"a": (4, 8)}))
    assert qc.weight_offchip_bytes == q.weight_offchip_bytes - 64
    assert qc.pb_hit_bytes == 64
    assert qc.cycles < q.cycles


def test_energy_defaults_are_horowitz():
    e = EnergyConstants()
    assert (e.dram_pj_per_32b, e.sram_pj_per_32b, e.mul8_pj, e.add32_pj) == (640, 5, 0.2, 0.1)
    assert e.dram_pj_per_byte == 160 and e.mac_pj == pytest.approx(0.3)


def test_depthwise_block_diagonal():
    ly = Layer("dw", "dw", (6, 1, 3, 3), "dw", 4, 9, 6, 24, 24)
    parts = layer_parts(ly, None, CFG)
    # N-tiles of 4 and 2 channels: ceil(4*9/4)=9 and ceil(2*9/4)=5 K-tiles
    assert [(p.tiles, p.pb_tiles) for p in parts] == [(9, 0), (5, 0)]
    assert [p.pb_tiles for p in layer_parts(ly, (4, 1, 3, 3), CFG)] == [9, 0]
    assert [p.pb_tiles for p in layer_parts(ly, (6, 1, 1, 1), CFG)] == [0, 0]


def test_pb_footprint_and_timing_mismatch():
    lay = {"a": "kn", "c": "oihw"}
    g = SubGraph({"a": (5, 4), "c": (4, 2, 3, 3)})
    # a: ceil(5/4)*1 = 2 tiles; c: 1 channel tile x 9 taps x 1 N-tile (a tile is one tap)
    assert pb_footprint(g, lay, CFG) == (2 + 9) * 16
    with pytest.raises(ValueError, match="different AccelConfig"):
        CostModel(make_config("default"), TM)


def test_real_net_cache_never_slower(zcu_setup):
    cm = zcu_setup.cost
    for s in zcu_setup.candidates:
        q0, q1 = cm.query(s), cm.query(s, SubGraph.of(s))
        assert q1.cycles <= q0.cycles and q1.weight_offchip_bytes == 0
        assert q0.macs == s.macs
