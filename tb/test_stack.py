"""pytest entry point: a short SUSHI stream end to end on the RTL, on both simulators.

SushiSched (policies ``sushi`` and ``no_pb``) serves 20 digits queries on ``sushi_sim``; every
served query's logits are checked bit-exactly inside the cocotb host, and here the report's
accuracy, traffic and model error are checked against what they must be.
"""

from __future__ import annotations

import json

import pytest
from sushi_hw.config import PRESETS
from sushi_sched.digits.space import DigitsSpace
from sushi_sched.simulate import Setup
from sushi_sched.stack import query_images
from sushi_sched.traces import generate
from sushi_tb.runner import SIM_BUILD, require_simulator, run

QUERIES = 20


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_stack_stream(sim: str) -> None:
    require_simulator(sim)
    cfg = PRESETS["default"]
    space = DigitsSpace()
    setup = Setup.build(space, cfg)
    trace = generate("phases", QUERIES, 3, setup.scale(), phase_len=8.0)
    out = SIM_BUILD / "stack" / sim
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "results.json"
    raw.unlink(missing_ok=True)
    job = {
        "policies": ["sushi", "no_pb"],
        "objective": "latency",
        "seed": 3,
        "trace": [[q.t_ms, q.acc_floor, q.slo_ms] for q in trace],
        "update_every": 4,
        "window": 8,
        "drift_len": 2,
        "out": str(raw),
        "freerun_repeats": 2,
    }
    tests, failed, xml = run(
        sim,
        "sushi_sim",
        cfg,
        "stack_tb",
        test_dir=out,
        quiet=False,
        env={"SUSHI_STACK_JOB": json.dumps(job)},
    )
    assert tests == 1 and failed == 0, f"stack run failed ({xml})"
    res = json.loads(raw.read_text())
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
            padded = sum(-(-ly.k // 8) * -(-ly.n // 8) * 64 for ly in s.layers)
            assert r["weight_bytes"] + r["pb_bytes"] == padded, (name, r)
    # measured accuracy = the int8 reference's predictions on the same images
    x, y = space.net.test_set()
    images = query_images(QUERIES, 3, len(y))
    for name, recs in res["records"].items():
        want = [
            int(space.net.predict(r["subnet"], x[img : img + 1])[0] == y[img])
            for r, img in zip(recs, images, strict=True)
        ]
        assert [int(r["correct"]) for r in recs] == want, name
        assert p[name]["mean_accuracy"] == pytest.approx(100.0 * sum(want) / QUERIES)
    assert res["model_error_max"] < 0.05, "cost model drifted from the RTL by more than 5%"
