"""pytest entry point: a short SUSHI stream end to end on the RTL (the library's RTL backend,
:func:`sushi_sched.runtime.rtl.run_on_rtl`), on both simulators, and the RTL against the golden
model on the same programs and the same stream.

SushiSched (policies ``sushi`` and ``no_pb``) serves 20 queries of the digits CNN on ``sushi_sim``
(the MLP in the RTL-vs-golden comparison); every
served query's logits are checked bit-exactly by the server, and here the report's accuracy,
traffic and model error are checked against what they must be.
"""

from __future__ import annotations

import numpy as np
import pytest
from sushi_hw import isa
from sushi_hw.config import PRESETS, ceil_div
from sushi_hw.program import act_bytes, int32_from_bytes
from sushi_sched.compiler import LayerCall, PBLayout, WeightImage, cache_program, network_program
from sushi_sched.runtime.backend import Script
from sushi_sched.runtime.golden import GoldenBackend
from sushi_sched.runtime.models import served_model
from sushi_sched.runtime.rtl import run_on_rtl
from sushi_sched.runtime.server import query_images
from sushi_sched.runtime.stream import StreamJob
from sushi_sched.simulate import Setup
from sushi_sched.traces import generate
from sushi_tb.runner import SIM_BUILD, require_simulator

QUERIES = 12
#: what must agree between backends for every served query (all but the clock)
SAME = ("subnet", "predicted", "logits", "correct", "match", "offchip_bytes", "weight_bytes",
        "pb_bytes", "pb_tiles")  # fmt: skip


def stream_job(cfg, supernet: str = "digits-cnn", **kw) -> StreamJob:  # noqa: ANN001
    setup = Setup.build(served_model(supernet, cfg).space, cfg)
    trace = generate("phases", QUERIES, 3, setup.scale(), phase_len=8.0)
    return StreamJob(
        policies=["sushi", "no_pb"],
        supernet=supernet,
        trace=[(q.t_ms, q.acc_floor, q.slo_ms) for q in trace],
        seed=3,
        update_every=4,
        window=8,
        drift_len=2,
        **kw,
    )


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_stack_stream(sim: str) -> None:
    """The main job's stream: the CNN SuperNet, image to logits on chip."""
    require_simulator(sim)
    cfg = PRESETS["default"]
    model = served_model("digits-cnn", cfg)
    setup = Setup.build(model.space, cfg)
    res = run_on_rtl(cfg, stream_job(cfg), sim=sim, workdir=SIM_BUILD / "stack" / sim)
    assert res["backend"] == f"rtl/{sim}" and res["cycles_source"] == "measured"
    p = res["policies"]
    assert set(p) == {"sushi", "no_pb"}
    for name, rep in p.items():
        assert rep["mismatches"] == 0, name
        assert len(res["records"][name]) == QUERIES
    # no_pb never touches the PB; sushi serves weights from it once it has cached a SubGraph
    assert p["no_pb"]["pb_hit_bytes"] == 0 and p["no_pb"]["cache_updates"] == 0
    assert p["sushi"]["cache_updates"] >= 1 and p["sushi"]["pb_hit_bytes"] > 0
    # every weight byte of a query comes either from the PB or from off-chip memory
    for name, recs in res["records"].items():
        for r in recs:
            s = next(s for s in setup.candidates if s.key == r["subnet"])
            whole = setup.cost.query(s).weight_offchip_bytes  # every tile, from off-chip
            assert r["weight_bytes"] + r["pb_bytes"] == whole, (name, r)
    # measured accuracy = the int8 reference's predictions on the same images
    x, y = model.test_set
    images = query_images(QUERIES, 3, len(y))
    for name, recs in res["records"].items():
        want = [
            int(np.argmax(model.reference(r["subnet"], x[img])) == y[img])
            for r, img in zip(recs, images, strict=True)
        ]
        assert [int(r["correct"]) for r in recs] == want, name
        assert p[name]["mean_accuracy"] == pytest.approx(100.0 * sum(want) / QUERIES)
    assert res["model_error_max"] < 0.05, "cost model drifted from the RTL by more than 5%"
    # the free-running rate is measured over the same programs, in the time the host slept
    assert 0 < res["cosim_cycles_per_s"] < res["freerun_cycles_per_s"]


def test_rtl_and_golden_serve_the_same_stream() -> None:
    """With the same clock (the cost model's) the policies take the same decisions on both
    backends, so every query must give the same SubNet, logits, prediction and byte counters."""
    require_simulator("verilator")
    cfg = PRESETS["default"]
    job = stream_job(cfg, "digits-mlp", clock="cost_model")
    rtl = run_on_rtl(cfg, job, sim="verilator", workdir=SIM_BUILD / "stack" / "compare")
    gold = job(GoldenBackend(cfg))
    assert rtl["backend"] == "rtl/verilator" and gold["backend"] == "golden"
    for name in ("sushi", "no_pb"):
        a, b = rtl["records"][name], gold["records"][name]
        assert [{k: r[k] for k in SAME} for r in a] == [{k: r[k] for k in SAME} for r in b]
        for key in ("offchip_bytes", "pb_hit_bytes", "cache_updates", "cache_load_bytes"):
            assert rtl["policies"][name][key] == gold["policies"][name][key], (name, key)
    # this run's clock is the cost model on both backends
    for r in rtl["records"]["sushi"]:
        assert r["cycles"] == r["model_cycles"]  # the clock of this run is the model's


def random_script(cfg, rng: np.random.Generator) -> tuple[Script, list]:  # noqa: ANN001
    """A random 1-3 layer network, served with an empty PB, then split between PB and
    off-chip memory: the programs and where to read the results."""
    layers = int(rng.integers(1, 4))
    dims = [int(rng.integers(1, 4 * cfg.rows + 1)) for _ in range(layers + 1)]
    tensors, calls = {}, []
    for i in range(layers):
        tensors[f"t{i}"] = rng.integers(-128, 128, (dims[i], dims[i + 1]), dtype=np.int8)
        rq = None if i == layers - 1 else (int(rng.integers(1, 1 << 16)), int(rng.integers(8, 20)))
        calls.append(LayerCall(f"t{i}", dims[i], dims[i + 1], rq, relu=bool(rng.integers(0, 2))))
    m = int(rng.integers(1, 2 * cfg.rows + 1))
    x = rng.integers(-128, 128, (m, dims[0]), dtype=np.int8)
    image = WeightImage.build(cfg, tensors, 0x8000)
    steps: list[tuple] = [("write", image.addr[n], b) for n, b in image.blobs.items()]
    steps.append(("write", 0x1000, act_bytes(cfg, x)))
    out_bytes = m * ceil_div(dims[-1], cfg.cols) * cfg.rows * 4
    blocks = {c.tensor: (int(rng.integers(1, ceil_div(c.k, cfg.rows) + 1)), 1) for c in calls}
    layout = PBLayout.allocate(cfg, blocks)
    steps.append(("write", 0x800, b"".join([*cache_program(cfg, image, layout), isa.done()])))
    steps.append(("run", 0x800))
    for lay in (PBLayout(), layout):
        prog = network_program(cfg, image, lay, calls, m, 0x1000, 0x4000)
        steps += [("write", 0x0, b"".join(prog)), ("run", 0x0), ("read", 0x4000, out_bytes)]
    return Script(steps), [m, dims[-1]]


def test_rtl_and_golden_run_the_same_programs() -> None:
    require_simulator("verilator")
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(7)
    scripts = [random_script(cfg, rng) for _ in range(4)]
    steps = [s for script, _ in scripts for s in [("reset",), *script.steps]]
    script = Script(steps)
    rtl = run_on_rtl(cfg, script, sim="verilator", workdir=SIM_BUILD / "programs" / "verilator")
    gold = script(GoldenBackend(cfg))
    assert len(rtl) == len(gold) == 4 * 5
    for i, (a, b) in enumerate(zip(rtl, gold, strict=True)):
        if isinstance(a, bytes):
            assert a == b, f"result {i}: memory differs"
            continue
        assert a.ok and b.ok, (i, a, b)
        assert (a.done, a.error_code) == (b.done, b.error_code)
        ca = {k: v for k, v in a.counters.items() if k != "cycles"}
        cb = {k: v for k, v in b.counters.items() if k != "cycles"}
        assert ca == cb, f"result {i}: counters differ"
    # and the results are the right ones (not just equal): the int32 logits of one network
    m, n = scripts[0][1]
    assert int32_from_bytes(cfg, gold[2], m, n).shape == (m, n)
