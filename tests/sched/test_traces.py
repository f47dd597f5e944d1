"""Trace generators and CSV replay."""

import numpy as np
import pytest
from sushi_sched.traces import TraceError, TraceScale, generate, read_csv, write_csv

SCALE = TraceScale(70.0, 80.0, 2.0, 20.0, 10.0)


@pytest.mark.parametrize("kind", ["phases", "walk", "uniform"])
@pytest.mark.parametrize("arrivals", ["poisson", "gamma", "periodic"])
def test_generate_deterministic_and_in_range(kind, arrivals):
    a = generate(kind, 300, 7, SCALE, arrivals)
    assert a == generate(kind, 300, 7, SCALE, arrivals)
    assert a != generate(kind, 300, 8, SCALE, arrivals)
    t = [q.t_ms for q in a]
    assert t[0] == 0 and all(x <= y for x, y in zip(t, t[1:], strict=False))
    assert all(70 <= q.acc_floor <= 80 and 2 - 1e-6 <= q.slo_ms <= 20 + 1e-6 for q in a)
    assert np.mean(np.diff(t)) == pytest.approx(10.0 / 0.8, rel=0.35)


def test_locality_ordering():
    def jump(kind):
        f = np.array([q.acc_floor for q in generate(kind, 2000, 1, SCALE)])
        return np.mean(np.abs(np.diff(f)))

    assert jump("phases") < jump("uniform") / 3 and jump("walk") < jump("uniform") / 3


def test_gamma_is_burstier_than_poisson():
    def cv(arr):
        g = np.diff([q.t_ms for q in generate("uniform", 4000, 3, SCALE, arr)])
        return g.std() / g.mean()

    assert cv("gamma") > 1.5 > cv("poisson") > 0.8 and cv("periodic") < 1e-9


def test_csv_roundtrip(tmp_path):
    tr = generate("phases", 50, 1, SCALE)
    write_csv(tmp_path / "t.csv", tr)
    assert read_csv(tmp_path / "t.csv") == tr


@pytest.mark.parametrize(
    "body, msg",
    [
        ("t_ms,acc_floor,slo_ms\n0,75,5\n1,75\n", r"t\.csv:3: expected 3 columns"),
        ("t_ms,acc_floor,slo_ms\n0,75,5\nx,75,5\n", r"t\.csv:3: t_ms 'x' is not a number"),
        ("t_ms,acc_floor,slo_ms\n0,75,5\n5,75,5\n4,75,5\n", r"t\.csv:4: t_ms 4.0 is before"),
        ("t_ms,acc_floor,slo_ms\n0,75,-1\n", r"t\.csv:2: slo_ms -1.0 must be > 0"),
        ("t_ms,acc_floor,slo_ms\n0,175,1\n", r"t\.csv:2: acc_floor 175.0 is outside"),
        ("t_ms,acc_floor,slo_ms\n0,75,nan\n", r"t\.csv:2: slo_ms 'nan' is not finite"),
        ("time,acc,slo\n0,75,5\n", r"t\.csv:1: expected header"),
        ("t_ms,acc_floor,slo_ms\n", "no queries"),
        ("", "empty trace"),
    ],
)
def test_csv_rejects_bad_lines(tmp_path, body, msg):
    p = tmp_path / "t.csv"
    p.write_text(body)
    with pytest.raises(TraceError, match=msg):
        read_csv(p)


def test_csv_skips_blank_and_comment_lines(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("# a comment\nt_ms,acc_floor,slo_ms\n\n0,75,5\n0,76,6\n")
    assert [q.acc_floor for q in read_csv(p)] == [75, 76]


def test_bad_generator_args():
    with pytest.raises(TraceError, match="unknown trace kind"):
        generate("zigzag", 10, 0, SCALE)
    with pytest.raises(TraceError, match="unknown arrival"):
        generate("uniform", 10, 0, SCALE, "bursty")
    with pytest.raises(TraceError, match="at least one query"):
        generate("uniform", 0, 0, SCALE)
