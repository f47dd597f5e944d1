"""pytest entry points: the GEMM engine's cocotb tests on both simulators and two presets."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sushi_hw.config import PRESETS
from sushi_hw.reference import gemm_ref
from sushi_sched.cli import main
from sushi_tb.runner import require_simulator, run

SEED = int(os.environ.get("SUSHI_SEED", "1"))


@pytest.mark.parametrize("preset", ["tiny", "default"])
@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_gemm_engine(sim: str, preset: str) -> None:
    require_simulator(sim)
    tests, failed, xml = run(
        sim, "sushi_gemm", PRESETS[preset], "gemm_tb", env={"SUSHI_SEED": str(SEED)}, quiet=False
    )
    assert tests >= 3, f"only {tests} cocotb tests ran ({xml})"
    assert failed == 0, f"{failed} of {tests} cocotb tests failed, seed={SEED} ({xml})"


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
def test_sushi_gemm_command(sim: str, tmp_path) -> None:
    """``sushi gemm`` runs the user's matrices through the RTL and writes the exact result."""
    require_simulator(sim)
    rng = np.random.default_rng(SEED)
    a = rng.integers(-128, 128, (7, 13), dtype=np.int8)
    w = rng.integers(-128, 128, (13, 6), dtype=np.int8)
    c = rng.integers(-(2**20), 2**20, (7, 6)).astype(np.int32)
    for name, arr in (("a", a), ("w", w), ("c", c)):
        np.save(tmp_path / f"{name}.npy", arr)
    out = tmp_path / "out.npy"
    args = [
        "gemm",
        "--preset",
        "tiny",
        "--sim",
        sim,
        "--a",
        str(tmp_path / "a.npy"),
        "--w",
        str(tmp_path / "w.npy"),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    np.testing.assert_array_equal(np.load(out), gemm_ref(a, w))
    assert main([*args, "--c-in", str(tmp_path / "c.npy"), "--requant", "300,9", "--relu"]) == 0
    got = np.load(out)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, gemm_ref(a, w, c, (300, 9), True))
