"""``sushi gemm`` rejects bad input with a message naming the input, before any simulation."""

from __future__ import annotations

import numpy as np
import pytest
from sushi_sched.cli import main


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    paths = {
        "a": rng.integers(-128, 128, (5, 9), dtype=np.int8),
        "w": rng.integers(-128, 128, (9, 7), dtype=np.int8),
        "w_k8": np.zeros((8, 7), dtype=np.int8),
        "w_f32": np.zeros((9, 7), dtype=np.float32),
        "w_3d": np.zeros((9, 7, 1), dtype=np.int8),
        "c_bad": np.zeros((5, 6), dtype=np.int32),
    }
    out = {}
    for name, arr in paths.items():
        out[name] = tmp_path / f"{name}.npy"
        np.save(out[name], arr)
    out["txt"] = tmp_path / "x.txt"
    out["txt"].write_text("not numpy")
    out["out"] = tmp_path / "o.npy"
    return out


@pytest.mark.parametrize(
    "w,extra,message",
    [
        ("w_k8", [], "A's K (9) must equal W's K (8)"),
        ("w_f32", [], "W (--w) must be int8, got float32"),
        ("w_3d", [], "W (--w) must be 2-D"),
        ("txt", [], "is not a .npy array file"),
        ("missing", [], "does not exist"),
        ("w", ["--requant", "0,3"], "requant multiplier 0 out of range"),
        ("w", ["--requant", "7"], "must be MULT,SHIFT"),
        ("w", ["--c-in", "c_bad"], "C_in must be [M,N]"),
        ("w", ["--preset", "tiny", "--set", "max_dim=8"], "exceeds the configured maximum"),
    ],
)
def test_bad_input_is_named(files, tmp_path, capsys, w, extra, message):
    wpath = files.get(w, tmp_path / "missing.npy")
    extra = [str(files[x]) if x in files else x for x in extra]
    rc = main(
        ["gemm", "--a", str(files["a"]), "--w", str(wpath), "--out", str(files["out"]), *extra]
    )
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err, err
    assert not files["out"].exists()
