"""``sushi bitstream``: an FPGA bitstream of SushiAccel for a board, plus report.json."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from sushi_hw.fpga.boards import BOARDS, BoardError, get_board
from sushi_hw.fpga.fit import FitError, check_fit
from sushi_hw.fpga.flow import ToolError

from ..cli import UserError
from ..cli_args import add_preset_args, check_out_dir, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bitstream",
        help="build an FPGA bitstream for a board (YoWASP tools by default)",
        description="Check that the preset fits the board, then synthesise, place and route "
        "the board top (SushiAccel, UART host link, SPI-flash weights) and write the "
        "bitstream, report.json and report_detail.json into OUT/<board>/. The tools are the "
        "YoWASP ones from PyPI unless YOSYS, NEXTPNR_ICE40/ICEPACK or NEXTPNR_ECP5/ECPPACK "
        "point elsewhere.",
    )
    p.add_argument("--board", required=True, help=f"one of: {', '.join(BOARDS)}")
    add_preset_args(p, None, preset_help="preset; default: the board's own")
    p.add_argument("--out", type=Path, default=Path("build"), help="output root")
    p.add_argument(
        "--seed",
        type=_seed_list,
        default=[1],
        metavar="N[,N...]",
        help="nextpnr placement seed, or a comma-separated list to sweep: Yosys runs once, "
        "nextpnr once per seed (--jobs at a time), and the best result (timing met, then "
        "the highest Fmax) is kept; OUT/<board>/seeds.json lists them all (default 1)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="J",
        help="seeds placed and routed at once (default: one per CPU core; the YoWASP "
        "nextpnr runs on one core)",
    )
    p.add_argument(
        "--nextpnr-args",
        default="",
        metavar="ARGS",
        help="extra nextpnr options, one shell-quoted string, e.g. '--router router1'; "
        "they follow the board's own for the preset (ulx3s with large: "
        + " ".join(BOARDS["ulx3s"].nextpnr_opts.get("large", ()))
        + ") and replace an option of the same name; a single option needs the = form: "
        "--nextpnr-args=--detailed-timing-report",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="MIN",
        help="stop the tools after MIN minutes with an error (default 120): nextpnr's router "
        "has no limit of its own and runs on when it does not converge",
    )
    p.add_argument(
        "--top",
        choices=TOPS,
        default="board",
        help="board (default): the board design (accelerator, UART host link, RAM, SPI flash) "
        "into OUT/<board>/; axi: the sushi_axi IP alone, every AXI port registered and reached "
        "through two scan chains (sushi_hw.fpga.axi_board), to measure its resources and Fmax, "
        "into OUT/<board>-axi/",
    )
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate")
    p.add_argument(
        "--check-only", action="store_true", help="only run the fit check and print the plan"
    )
    p.add_argument(
        "--estimate",
        action="store_true",
        help="skip the fit check; synthesise and pack (iCE40) or place without routing (ECP5) "
        "and write OUT/<board>/estimate.json: what the design needs even if it does not fit, "
        "and on ECP5 the placer's Fmax estimate. Minutes, not the hour a full ECP5 route takes",
    )
    p.set_defaults(func=run)


#: what ``--top`` builds
TOPS = ("board", "axi")


def _top(board, cfg, opts, args: argparse.Namespace):  # noqa: ANN001
    """(top, output directory, design name) of ``--top``."""
    if args.top == "axi":
        from sushi_hw.fpga.axi_board import AxiBoardTop

        return (
            AxiBoardTop(board, cfg, opts),
            args.out / f"{board.name}-axi",
            f"sushi_{board.name}_axi",
        )
    from sushi_hw.fpga.board import BoardTop

    top = BoardTop(board, cfg, opts, ram_bytes=board.ram_bytes, baud=args.baud)
    return top, args.out / board.name, f"sushi_{board.name}"


def _seed_list(text: str) -> list[int]:
    """``--seed``: one seed or a comma-separated list of them."""
    try:
        seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a seed or a comma-separated list of seeds (e.g. 1,2,3)"
        ) from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"seeds must not be negative: {text!r}")
    return seeds


def run(args: argparse.Namespace) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    if args.check_only and args.estimate:
        raise UserError("--check-only and --estimate exclude each other: give one")
    if not (args.timeout > 0):
        raise UserError(f"--timeout must be > 0 minutes, got {args.timeout:g}")
    try:
        shlex.split(args.nextpnr_args)
    except ValueError as e:
        raise UserError(f"--nextpnr-args {args.nextpnr_args!r}: {e}") from None
    if not args.check_only:
        check_out_dir(args.out, "--out")
    try:
        board = get_board(args.board)
        cfg = config_from_args(args, args.preset or board.preset)
        if args.estimate:
            return _estimate(board, cfg, args)
        fit = check_fit(board, cfg, host=args.top == "board")
    except (BoardError, FitError) as e:
        raise UserError(str(e)) from None
    print(fit.summary())
    if args.check_only:
        return 0
    from sushi_hw.fpga.flow import build_bitstream

    top, out, name = _top(board, cfg, fit.build_options(), args)
    try:
        rep = build_bitstream(
            board,
            top,
            cfg,
            out,
            name=name,
            clock_mhz=cfg.clock_mhz,
            seeds=args.seed,
            jobs=args.jobs,
            nextpnr_args=shlex.split(args.nextpnr_args),
            timeout_min=args.timeout,
            progress=lambda msg: print(f"sushi: {msg}", flush=True),
        )
    except ToolError as e:
        raise UserError(str(e)) from None
    if len(args.seed) > 1:
        print(f"sushi: kept the best seed; all of them in {out / 'seeds.json'}")
    print(json.dumps(rep, indent=2))
    if not rep["timing_met"]:
        print(
            f"sushi: warning: timing NOT met: {rep['fmax_mhz']} MHz < {rep['clock_mhz']} MHz "
            f"(critical path in {out / 'report_detail.json'})"
        )
    return 0


def _estimate(board, cfg, args: argparse.Namespace) -> int:
    from sushi_hw.fpga.fit import plan
    from sushi_hw.fpga.flow import estimate

    if len(args.seed) > 1:
        raise UserError("--estimate takes one --seed, not a list")
    p = plan(board, cfg, host=args.top == "board")
    print(p.summary())
    for problem in p.problems:
        print(f"  does not fit: {problem}")
    top, out, name = _top(board, cfg, p.build_options(), args)
    try:
        est = estimate(
            board,
            top,
            cfg,
            out,
            name=name,
            seed=args.seed[0],
            nextpnr_args=shlex.split(args.nextpnr_args),
            timeout_min=args.timeout,
        )
    except ToolError as e:
        raise UserError(str(e)) from None
    print(json.dumps(est, indent=2))
    print(f"wrote {out / 'estimate.json'}")
    return 0
