"""The host runtime without a simulator: the server on the golden-model backend, the memory
map, and the CLI's one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sushi_hw.config import PRESETS
from sushi_sched.cli import main
from sushi_sched.compiler import PBLayout, pb_layout
from sushi_sched.digits import load_digits_supernet
from sushi_sched.runtime.backend import Backend, RunError
from sushi_sched.runtime.golden import GoldenBackend
from sushi_sched.runtime.memmap import MemoryMap, Workload
from sushi_sched.runtime.server import ServeError, Server, subgraph_of


@pytest.fixture(scope="module")
def net():
    return load_digits_supernet()


def test_golden_backend_is_a_backend():
    assert isinstance(GoldenBackend(PRESETS["tiny"]), Backend)


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_memory_map_regions_do_not_overlap(net, preset):
    cfg = PRESETS[preset]
    server = Server(GoldenBackend(cfg), net)
    m = server.mem
    regions = [(m.slot(i), m.prog_bytes) for i in range(m.prog_slots)] + [
        (m.cache_prog, m.cache_prog_bytes),
        (m.input, m.input_bytes),
        (m.output, m.output_bytes),
        (m.weights, server.image.end - server.image.base),
        (m.scratch, m.scratch_bytes),
    ]
    end = 0
    for addr, size in regions:
        assert addr >= end and addr % cfg.mem_width == 0, (addr, end)
        end = addr + size
    assert end == m.ram_bytes == cfg.mem_bytes and m.prog_slots > 1
    assert not m.weights_preloaded
    with pytest.raises(ValueError, match="needs"):
        MemoryMap.plan(cfg, Workload.of_digits(cfg, net.spec), ram_bytes=256, weight_bytes=1 << 20)


def test_golden_server_queries_bit_exactly(net):
    cfg = PRESETS["tiny"]
    server = Server(GoldenBackend(cfg), net)
    server.load_weights()
    key = "i16-d2-16-16"
    empty = server.query(key, image=3)
    assert empty.ok and empty.counters["pb_read_bytes"] == 0
    cache = server.fill_pb(subgraph_of(net, key))
    assert not cache.problems and cache.counters["rd_weight_bytes"] == cache.expected_bytes > 0
    full = server.query(key, image=3, layout=cache.layout)
    assert full.ok and full.counters["rd_weight_bytes"] == 0
    assert full.counters["pb_read_bytes"] == empty.counters["rd_weight_bytes"]
    assert np.array_equal(full.logits, empty.logits)
    # a partly cached layer is one GEMM: the same commands, weights from both sources
    half = server.fill_pb(pb_layout(cfg, {"fc1": (8, 8)})).layout
    part = server.query("i16-d2-16-16", image=3, layout=half)
    assert part.ok and part.counters["commands"] == empty.counters["commands"]
    assert part.counters["pb_read_bytes"] > 0 and part.counters["rd_weight_bytes"] > 0
    with pytest.raises(ServeError, match="unknown SubNet"):
        server.query("i8-d2-8-17", image=0)
    # a program that stops with an error raises RunError with the result
    server.backend.write(server.mem.scratch, bytes([9]) + bytes(31))
    with pytest.raises(RunError, match="ILLEGAL_OPCODE"):
        from sushi_sched.runtime.backend import require_ok

        require_ok(server.backend.run(server.mem.scratch, "bad"))


def test_golden_stream(net):
    from sushi_sched.digits.space import DigitsSpace
    from sushi_sched.runtime.stream import StreamJob
    from sushi_sched.simulate import Setup
    from sushi_sched.traces import generate

    cfg = PRESETS["default"]
    setup = Setup.build(DigitsSpace(net), cfg)
    trace = generate("phases", 30, 1, setup.scale(), phase_len=8.0)
    rows = [(q.t_ms, q.acc_floor, q.slo_ms) for q in trace]
    job = StreamJob(["sushi", "no_pb"], rows, supernet="digits-mlp", seed=1)
    res = job(GoldenBackend(cfg))
    assert res["cycles_source"] == "cost_model" and res["cosim_cycles_per_s"] is None
    for name, rep in res["policies"].items():
        assert rep["mismatches"] == 0, name
        assert all(r["cycles"] == r["model_cycles"] for r in res["records"][name])
    assert res["policies"]["sushi"]["pb_hit_bytes"] > 0
    assert res["policies"]["no_pb"]["pb_hit_bytes"] == 0


def test_demo_on_the_golden_backend(tmp_path, capsys):
    """The default demo (the CNN, two traces x both objectives) on the golden model: one
    report per run, named by its SuperNet, trace and objective, and a summary over all."""
    out = tmp_path / "demo"
    argv = ["demo", "--backend", "golden", "--queries", "6", "--out", str(out)]
    assert main([*argv, "--policies", "sushi,no_pb"]) == 0
    printed = capsys.readouterr().out
    assert "policy" in printed and "no clock" in printed and "digits-cnn" in printed
    top = json.loads((out / "report.json").read_text())
    assert top["supernet"] == "digits-cnn" and top["mismatches"] == 0
    assert set(top["runs"]) == {"phases-latency", "phases-accuracy", "walk-latency",
                                "walk-accuracy"}  # fmt: skip
    assert top["queries"] == 4 * 2 * 6
    for name, rep in top["runs"].items():
        trace, objective = name.split("-")
        assert (rep["supernet"], rep["trace"]["kind"], rep["objective"]) == (
            "digits-cnn", trace, objective)  # fmt: skip
        assert rep["cycles_source"] == "cost_model" and rep["model_error_max"] is None
        assert rep == json.loads((out / name / "report.json").read_text())
        for plot in ("stream.png", "layers.png"):
            assert (out / name / plot).stat().st_size > 0


def test_demo_serves_the_mlp_on_request(tmp_path):
    out = tmp_path / "demo"
    argv = ["demo", "--backend", "golden", "--queries", "5", "--out", str(out)]
    assert main([*argv, "--supernet", "digits-mlp", "--trace", "uniform", "--objective",
                 "latency", "--policies", "sushi"]) == 0  # fmt: skip
    rep = json.loads((out / "report.json").read_text())
    assert rep["supernet"] == "digits" and list(rep["runs"]) == ["uniform-latency"]


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["demo", "--preset", "huge"], "unknown preset 'huge'"),
        (["demo", "--backend", "fpga"], "unknown backend 'fpga'"),
        (["demo", "--sim", "vcs"], "unknown simulator 'vcs'"),
        (["demo", "--set", "rows=3"], "field 'rows'"),
        (["demo", "--set", "bogus=1"], "unknown config field 'bogus'"),
        (["demo", "--supernet", "lenet"], "unknown SuperNet 'lenet'"),
        (["demo", "--preset", "tiny", "--backend", "golden"], "no convolution hardware"),
        (["demo", "--trace", "phases,zigzag"], "give distinct kinds"),
        (
            ["simulate", "--json", "x.json", "--trace", "phases", "--preset", "huge"],
            "unknown preset 'huge'",
        ),
        (["supernet", "show", "digits", "--preset", "huge"], "unknown preset 'huge'"),
        (["verilog", "--preset", "huge"], "unknown preset 'huge'"),
        (["bench", "--preset", "huge"], "unknown preset 'huge'"),
        (["bench", "--sim", "vcs"], "unknown simulator 'vcs'"),
        (["board", "image", "--preset", "huge"], "unknown preset 'huge'"),
        (["gemm", "--preset", "huge", "--a", "a", "--w", "w", "--out", "o"], "unknown preset"),
        (["gemm", "--sim", "vcs", "--a", "a", "--w", "w", "--out", "o"], "unknown simulator"),
    ],
)
def test_bad_cli_values_are_one_line(tmp_path, capsys, monkeypatch, argv, msg):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_the_old_accel_option_is_gone(capsys):
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--accel", "default", "--json", "x.json"])
    assert e.value.code == 2


def test_layouts_are_one_function(net):
    cfg = PRESETS["tiny"]
    sub = subgraph_of(net, "i16-d2-16-16")
    assert (
        pb_layout(cfg, sub).blocks
        == PBLayout.allocate(
            cfg, {t: (-(-k // cfg.rows), -(-n // cfg.cols)) for t, (k, n) in sorted(sub.items())}
        ).blocks
    )


class FakeBoard:
    """A BoardClient look-alike over the golden model: RAM from 0, the flash image preloaded at
    the flash window (what the board's memory system maps)."""

    def __init__(self, cfg, flash, ram_bytes):  # noqa: ANN001
        from sushi_hw.fpga.host import BoardInfo
        from sushi_sched.isa_sim import IsaSim

        self.sim = IsaSim(cfg)
        self.sim.write(flash.base, flash.data)
        self._info = BoardInfo(1, cfg.rows, cfg.cols, cfg.mem_width, cfg.pb_bytes, ram_bytes)
        self.mem_width, self.result = cfg.mem_width, None

    def info(self):  # noqa: ANN201
        return self._info

    def status(self):  # noqa: ANN201
        from sushi_hw.fpga.host import BoardStatus

        r = self.result
        done, code = (r.done, r.error_code) if r else (False, 0)
        return BoardStatus(False, done, not done and r is not None, False, code, 0)

    def write(self, addr, data):  # noqa: ANN001, ANN201
        assert addr % self.mem_width == 0 and len(data) % self.mem_width == 0
        self.sim.write(addr, data)

    def read(self, addr, n):  # noqa: ANN001, ANN201
        return self.sim.read(addr, n)

    def run(self, addr):  # noqa: ANN001, ANN201
        self.result = self.sim.run(addr)

    def wait(self, max_polls=None, timeout_s=None):  # noqa: ANN001, ANN201
        return self.status()

    def counter(self, index):  # noqa: ANN001, ANN201
        return self.result.counters[list(self.result.counters)[int(index)]]


def test_board_backend_serves_like_the_golden_backend(net):
    """The board path (BoardBackend, flash weights, one program slot in a small RAM) gives the
    same logits and byte counters as the golden backend for the same queries."""
    from sushi_hw.generate import BOARD_SIM_RAM_BYTES
    from sushi_sched.runtime.board import build_flash_image, connect, verify_flash
    from sushi_sched.runtime.models import MLPModel

    cfg = PRESETS["tiny"]
    flash = build_flash_image(MLPModel(cfg, net))
    board = connect(FakeBoard(cfg, flash, BOARD_SIM_RAM_BYTES), cfg, net, flash=flash)
    verify_flash(board.backend, board.flash)
    assert board.mem.prog_slots == 1 and board.mem.weights_preloaded
    gold = Server(GoldenBackend(cfg), net)
    gold.load_weights()
    layout = None
    for key, image in (("i8-d2-8-16", 4), ("i16-d2-16-16", 9), ("i64-d3-64-64-64", 1)):
        a = board.query(key, image=image, layout=layout)
        b = gold.query(key, image=image, layout=layout)
        assert a.ok and b.ok and np.array_equal(a.logits, b.logits)
        ca, cb = dict(a.counters), dict(b.counters)
        assert ca == cb, (key, ca, cb)
        if layout is None:  # then with the PB holding this SubNet's weights
            sub = subgraph_of(net, key)
            layout = board.fill_pb(sub).layout
            assert gold.fill_pb(sub).layout.blocks == layout.blocks


def test_board_backend_serves_the_cnn_on_the_ulx3s_preset():
    """The CNN on the ULX3S's preset (large, 16x16, conv) over the board path: the flash
    image, one program slot in the board's RAM, and the same logits and counters as the
    golden backend, with and without a cached SubGraph."""
    from sushi_hw.fpga.boards import get_board
    from sushi_sched.runtime.board import build_flash_image, connect, verify_flash
    from sushi_sched.runtime.models import CNNModel

    board_spec = get_board("ulx3s")
    cfg = PRESETS[board_spec.preset]
    model = CNNModel(cfg)
    flash = build_flash_image(model)
    board = connect(FakeBoard(cfg, flash, board_spec.ram_bytes), cfg, model, flash=flash)
    verify_flash(board.backend, board.flash)
    assert board.mem.prog_slots == 1 and board.mem.weights_preloaded
    gold = Server(GoldenBackend(cfg), model)
    gold.load_weights()
    layout = None
    for key, image in (("16k3-24k3-32k1", 3), ("16k3-16k3-16k1", 8)):
        a = board.query(key, image=image, layout=layout)
        b = gold.query(key, image=image, layout=layout)
        assert a.ok and b.ok and np.array_equal(a.logits, b.logits)
        assert np.array_equal(a.logits, a.reference)
        assert dict(a.counters) == dict(b.counters), key
        if layout is None:
            sub = model.subgraph(key)
            layout = board.fill_pb(sub).layout
            assert gold.fill_pb(sub).layout.blocks == layout.blocks
    assert a.counters["pb_read_bytes"] > 0  # the second query read the shared slices from the PB


def test_calibration_bench_programs_run_on_the_golden_model():
    """The calibration bench's layers are OFA-ResNet50's 1x1 shapes; its programs (GEMMs from
    off-chip and from the PB, CACHE) are legal on the zcu104 array with memory shrunk to fit."""
    from sushi_hw.config import PRESETS
    from sushi_sched.runtime.bench import (
        CALIBRATION_PB,
        CalibrationBench,
        calibration_config,
        calibration_layers,
    )
    from sushi_sched.runtime.golden import GoldenBackend

    layers = calibration_layers()
    assert ("s3b0.down", 49, 1024, 2048) in layers and ("fc", 1, 2048, 1000) in layers
    cfg = calibration_config(PRESETS["zcu104"], layers)
    assert cfg.mem_bytes == 4 << 20 and cfg.rows == 32 and cfg.mem_bytes_per_cycle == 16
    assert set(CALIBRATION_PB) <= {n for n, *_ in layers}
    few = [("small", 49, 96, 128)]  # the same code paths, smaller (the golden model is slow)
    recs = CalibrationBench(few, {"small": 0.5})(GoldenBackend(cfg))
    kinds = [r["kind"] for r in recs]
    assert kinds[0] == "1x1 gemm, weights off-chip" and any(k.startswith("CACHE") for k in kinds)
    assert all(
        set(r) == {"layer", "M", "K", "N", "kind", "rtl_cycles", "model_cycles", "error"}
        for r in recs
    )


def test_calibration_bench_convs_run_on_the_golden_model():
    """The calibration's 3x3 layers are OFA-ResNet50's (the stem's second 3x3, each stage's
    first and last block); its CONV programs, from off-chip and partly from the PB, run on the
    golden model with the outputs checked bit-exactly, and model_cycles is the CostModel's."""
    import math

    from sushi_hw.config import PRESETS
    from sushi_sched.cost import CostModel
    from sushi_sched.runtime.bench import (
        CONV_CALIBRATION_PB,
        CalibrationBench,
        ConvShape,
        calibration_config,
        calibration_layers,
        conv_calibration_layers,
    )
    from sushi_sched.runtime.golden import GoldenBackend
    from sushi_sched.supernet.base import Layer

    shapes = conv_calibration_layers()
    assert [(s.layer.name, s.h, s.stride) for s in shapes[:3]] == [
        ("stem1", 112, 1),
        ("s0b0.conv2", 56, 1),
        ("s1b0.conv2", 56, 2),
    ]
    assert all(s.k == 3 for s in shapes) and set(CONV_CALIBRATION_PB) <= {
        s.layer.name for s in shapes
    }
    cfg = calibration_config(PRESETS["zcu104"], calibration_layers(), shapes)
    assert cfg.mem_bytes == 8 << 20 and cfg.rows == 32
    # the same code paths, smaller: 14x14x40 -> 64, stride 2, half the N-tiles in the PB
    small = Layer("small", "small", (64, 40, 3, 3), "oihw", 49, 360, 64, 14 * 14 * 40, 49 * 64)
    shape = ConvShape.of(small)
    assert (shape.h, shape.stride) == (14, 2)
    cfg = cfg.replace(pb_bytes=2 * 9 * cfg.tile_bytes)  # one N-tile of the two
    recs = CalibrationBench([], {}, [shape], ("small",))(GoldenBackend(cfg))
    assert [r["kind"] for r in recs] == [
        "conv3x3 stride 2, weights off-chip",
        "CACHE (1 commands)",
        "conv3x3 stride 2, weights in the PB (1/2 N-tiles)",
    ]
    cm = CostModel(cfg)
    for r, cached in zip([recs[0], recs[2]], [None, (32, 40, 3, 3)], strict=True):
        tm = cm.timing
        assert (
            r["model_cycles"] == tm.query_overhead + tm.cmd_cycles + cm.layer(small, cached).cycles
        )
        assert (r["M"], r["K"], r["N"]) == (49, 360, 64) and math.isfinite(r["model_cycles"])
