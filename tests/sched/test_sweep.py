"""``sushi sweep``: spec checks, a tiny sweep on a local pool and on a Dask LocalCluster, resume."""

import json
import textwrap

import pytest
from sushi_sched.cli import main
from sushi_sched.sweep import SweepError, load_spec, parse_spec, read_csv, run_sweep

TINY = """
[sweep]
preset = "zcu104"
traces = ["phases"]
objectives = ["latency", "accuracy"]
policies = ["sushi", "clairvoyant"]
queries = 60
[sweep.set]
mem_bytes_per_cycle = [4, 64]
pb_bytes = ["1MiB"]
"""


def write(tmp_path, text, name="spec.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_spec_points_and_width_follows(tmp_path):
    spec = load_spec(write(tmp_path, TINY))
    pts = spec.points()
    assert len(pts) == 2 * 2  # bandwidths x objectives
    assert spec.policies[0] == "no_pb"  # the reference is always run
    sets = {json.dumps(p["set"], sort_keys=True) for p in pts}
    # 64 B/cycle needs a 64-byte port (zcu104's is 16): the width follows the bandwidth
    assert sets == {
        json.dumps({"mem_bytes_per_cycle": 4, "pb_bytes": 1 << 20}, sort_keys=True),
        json.dumps(
            {"mem_bytes_per_cycle": 64, "mem_width": 64, "pb_bytes": 1 << 20}, sort_keys=True
        ),
    }
    assert len({p["key"] for p in pts}) == len(pts)


@pytest.mark.parametrize(
    "body, match",
    [
        ("[sweep]\npreset = 'zcu999'\n", "unknown preset 'zcu999'"),
        ("[sweep]\ntraces = ['zigzag']\n", "unknown trace 'zigzag'"),
        ("[sweep]\npolicies = ['lru']\n", "unknown policy 'lru'"),
        ("[sweep]\nobjectives = ['energy']\n", "unknown objective 'energy'"),
        ("[sweep]\nsupernets = ['ofa-mbv3']\n", "no accuracy table"),
        ("[sweep]\nqueries = 0\n", "queries must be a positive integer"),
        ("[sweep]\nbogus = 1\n", "unknown key"),
        ("[sweep.set]\nrowz = [8]\n", "'rowz' is not an AccelConfig field"),
        ("[sweep.set]\npb_bytes = ['1.5KiB']\n", "field 'pb_bytes'"),
        ("[sweep.set]\npb_bytes = []\n", "pb_bytes is empty"),
        ("[sweep.set]\nrows = [3]\n", "power of two"),
        ("[sweep\n", "not valid TOML"),
        ("[other]\n", "exactly one table"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, capsys, body, match):
    p = write(tmp_path, body)
    with pytest.raises(SweepError, match=match):
        load_spec(p)
    assert main(["sweep", str(p), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sushi: error:") and "\n" not in err and "Traceback" not in err


def test_missing_spec(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_local_sweep_table_plots_and_resume(tmp_path):
    spec = load_spec(write(tmp_path, TINY))
    out = tmp_path / "out"
    res = run_sweep(spec, out, jobs=1, progress=False)
    assert (res.done, res.kept, res.failed) == (4, 0, [])
    rows = read_csv(res.csv)
    assert len(rows) == 4 * 3  # points x (no_pb, sushi, clairvoyant)
    for r in rows:
        if r["policy"] == "no_pb":
            assert float(r["latency_gain"]) == 0.0
    assert {p.name for p in res.plots} == {
        "gain_vs_mem_bytes_per_cycle.png",
        "gain_vs_pb_bytes.png",
    }
    # a stopped sweep resumes: only the missing point runs again
    first = sorted((out / "points").glob("*.json"))
    first[0].unlink()
    res2 = run_sweep(spec, out, jobs=1, progress=False)
    assert (res2.done, res2.kept) == (1, 3)
    assert read_csv(res2.csv) == rows  # the same table


def test_dask_local_cluster_sweep(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = parse_spec(
        {
            "sweep": {
                "preset": "zcu104",
                "traces": ["walk"],
                "policies": ["sushi"],
                "queries": 40,
                "set": {"pb_bytes": ["1MiB", "2MiB"]},
            }
        }
    )
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        res = run_sweep(
            spec, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False
        )
    assert (res.done, res.failed) == (2, [])
    local = run_sweep(spec, tmp_path / "local", jobs=1, progress=False)
    strip = lambda rows: [{k: v for k, v in r.items()} for r in rows]  # noqa: E731
    assert strip(read_csv(res.csv)) == strip(read_csv(local.csv))  # same numbers either way


def test_unreachable_scheduler(tmp_path, capsys):
    p = write(tmp_path, TINY)
    rc = main(["sweep", str(p), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"])
    assert rc == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err
