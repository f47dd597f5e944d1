"""The testbenches' entry to the simulator builds: :mod:`sushi_sched.runtime.simbuild` (which
builds and caches the models) with ``tb/`` on the simulator's Python path, and the pytest skip
for a missing simulator."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sushi_hw.build_options import BuildOptions
from sushi_hw.config import AccelConfig
from sushi_sched.runtime import simbuild
from sushi_sched.runtime.simbuild import (  # noqa: F401 - re-exported for tests and tb/
    SIM_BUILD,
    SIMULATORS,
    VERILATOR_WAIVERS,
    _icarus_time0_fix,
    build,
    lint_verilog,
    setup_verilator_env,
    simulator_available,
)

TB_DIR = Path(__file__).resolve().parent


def require_simulator(sim: str) -> None:
    """Skip the calling pytest test when ``sim`` is missing, or fail under SUSHI_REQUIRE_SIMS=1."""
    import pytest

    if simulator_available(sim):
        return
    why = f"{sim} is not installed" + (" (apt-get install iverilog)" if sim == "icarus" else "")
    if os.environ.get("SUSHI_REQUIRE_SIMS") == "1":
        pytest.fail(f"{why}, and SUSHI_REQUIRE_SIMS=1 demands every simulator")
    pytest.skip(why)


def run(
    sim: str,
    top: str,
    cfg: AccelConfig,
    test_module: str,
    *,
    env: Mapping[str, str] | None = None,
    testcase: str | None = None,
    test_dir: Path | None = None,
    opts: BuildOptions | None = None,
    quiet: bool = True,
) -> tuple[int, int, Path]:
    """Run testbench ``test_module`` (a module in ``tb/``) against ``top``."""
    return simbuild.run(
        sim,
        top,
        cfg,
        test_module,
        env=env,
        testcase=testcase,
        test_dir=test_dir,
        opts=opts,
        quiet=quiet,
        module_dir=TB_DIR,
    )
