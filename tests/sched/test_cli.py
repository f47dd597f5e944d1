"""The sushi CLI: JSON shapes, plots, CSV replay, errors."""

import json

import pytest
from sushi_sched.cli import main

KEYS = {
    "mean_latency_ms",
    "p50_latency_ms",
    "p99_latency_ms",
    "slo_attainment",
    "mean_accuracy",
    "offchip_bytes",
    "offchip_energy_mj",
    "pb_hit_bytes",
    "cache_updates",
    "decision_us_mean",
}


def sim(tmp_path, *extra, name="out.json"):
    out = tmp_path / name
    rc = main(
        [
            "simulate",
            "--preset",
            "zcu104",
            "--queries",
            "120",
            "--seed",
            "2",
            "--no-progress",
            "--json",
            str(out),
            *extra,
        ]
    )
    return rc, out


def test_simulate_json_shape_and_plots(tmp_path):
    rc, out = sim(tmp_path, "--trace", "phases", "--plots", str(tmp_path / "plots"))
    assert rc == 0
    rep = json.loads(out.read_text())
    assert set(rep) == {"config", "policies", "sushi_vs_clairvoyant"}
    assert set(rep["sushi_vs_clairvoyant"]) == {
        "mean_latency_ms",
        "offchip_energy_mj",
        "mean_accuracy",
        "slo_attainment",
    }
    assert set(rep["policies"]) == {
        "sushi",
        "no_pb",
        "static_subnet",
        "static_subgraph",
        "last_subnet",
        "clairvoyant",
        "infinite_pb",
    }
    for r in rep["policies"].values():
        assert KEYS <= set(r)
        assert isinstance(r["offchip_bytes"], int) and isinstance(r["cache_updates"], int)
        assert all(
            isinstance(r[k], float)
            for k in KEYS - {"offchip_bytes", "pb_hit_bytes", "cache_updates"}
        )
    cfg = rep["config"]
    assert cfg["accel"]["name"] == "zcu104" and cfg["trace"]["seed"] == 2
    assert cfg["supernet"] == "ofa-resnet50" and cfg["objective"] == "latency"
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["out_accuracy.png", "out_latency.png", "out_pb_contents.png"]
    assert all((tmp_path / "plots" / p).stat().st_size > 1000 for p in pngs)


def test_same_seed_same_json(tmp_path):
    a = sim(tmp_path, "--trace", "walk", "--no-timing", "--objective", "accuracy", name="a.json")
    b = sim(tmp_path, "--trace", "walk", "--no-timing", "--objective", "accuracy", name="b.json")
    assert a[0] == b[0] == 0
    assert a[1].read_text() == b[1].read_text()


def test_trace_command_and_replay(tmp_path, capsys):
    csv = tmp_path / "t.csv"
    assert main(["trace", "uniform", "--queries", "50", "--seed", "4", "--out", str(csv)]) == 0
    assert csv.read_text().splitlines()[0] == "t_ms,acc_floor,slo_ms"
    rc, out = sim(tmp_path, "--trace-file", str(csv), "--policies", "sushi,no_pb")
    assert rc == 0
    rep = json.loads(out.read_text())
    assert set(rep["policies"]) == {"sushi", "no_pb"}
    assert rep["config"]["queries"] == 50


def test_supernet_show(capsys):
    assert main(["supernet", "show", "ofa-resnet50", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["subnets"]
    assert [r["id"] for r in rows] == list(range(6))
    assert {"id", "accuracy", "macs", "weight_bytes"} <= set(rows[0])
    assert "latency_ms" not in rows[0]
    assert main(["supernet", "show", "ofa-resnet50", "--json", "--preset", "zcu104"]) == 0
    rows = json.loads(capsys.readouterr().out)["subnets"]
    assert rows[0]["latency_ms"] > 0 and rows[0]["offchip_bytes"] > rows[0]["weight_bytes"] * 0.9
    assert main(["supernet", "show", "ofa-mbv3", "--preset", "default"]) == 0
    assert "n/a" in capsys.readouterr().out


def test_pb_too_small_is_reported(tmp_path, capsys):
    rc, out = sim(tmp_path, "--trace", "uniform", "--set", "pb_bytes=0")
    assert rc == 0
    assert "nothing is cached" in capsys.readouterr().err
    rep = json.loads(out.read_text())
    assert rep["policies"]["sushi"]["pb_hit_bytes"] == 0


@pytest.mark.parametrize(
    "argv, msg",
    [
        (["--supernet", "vgg", "--trace", "phases"], "unknown SuperNet 'vgg'"),
        (["--preset", "u250", "--trace", "phases"], "unknown preset 'u250'"),
        (["--trace", "phases", "--policies", "sushi,lru"], "unknown policy lru"),
        (["--trace", "phases", "--set", "rows=3"], "field 'rows'"),
        (["--trace", "phases", "--queries", "0"], "--queries must be >= 1"),
        (["--supernet", "ofa-mbv3", "--trace", "phases"], "has no accuracy table"),
    ],
)
def test_simulate_bad_input(tmp_path, capsys, argv, msg):
    rc = main(["simulate", "--json", str(tmp_path / "x.json"), "--no-progress", *argv])
    assert rc == 2
    assert msg in capsys.readouterr().err


def test_bad_csv_names_the_line(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("t_ms,acc_floor,slo_ms\n0,75,5\n2,75,5\n1,75,5\n")
    rc, _ = sim(tmp_path, "--trace-file", str(p))
    assert rc == 2
    assert "bad.csv:4: t_ms 1.0 is before" in capsys.readouterr().err
    p.write_text("t_ms,acc_floor,slo_ms\n0,75,-5\n")
    rc, _ = sim(tmp_path, "--trace-file", str(p))
    assert rc == 2 and "slo_ms -5.0 must be > 0" in capsys.readouterr().err


def test_unknown_supernet_in_show(capsys):
    assert main(["supernet", "show", "nope"]) == 2
    assert "unknown SuperNet 'nope'" in capsys.readouterr().err
