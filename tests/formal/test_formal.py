"""The fast formal proofs (each well under a minute) under pytest; ``make formal`` runs them all
(:mod:`formal_props` says what each proves). Skipped, with the reason, when the YoWASP tools are
not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import formal_props as fp  # noqa: E402

FAST = [p for p in fp.proofs() if p.fast]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    missing = fp.missing_tools()
    if missing:
        pytest.skip(f"formal tools missing: {', '.join(missing)} (pip install -e '.[dev,fpga]')")
    e = fp.tool_env(tmp_path_factory.mktemp("formal_bin"))
    fp.warm_up(e)
    return e


@pytest.mark.parametrize("proof", FAST, ids=[p.name for p in FAST])
def test_proof(proof, env, tmp_path):
    r = fp.run_proof(proof, tmp_path, env)
    assert r["status"] == proof.expect, (r, (tmp_path / f"{proof.name}.log").read_text()[-3000:])
