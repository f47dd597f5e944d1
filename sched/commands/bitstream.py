"""``sushi bitstream``: an FPGA bitstream of SushiAccel for a board, plus report.json."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from sushi_hw.config import make_config, parse_overrides
from sushi_hw.fpga.boards import BOARDS, BoardError, get_board
from sushi_hw.fpga.fit import FitError, check_fit
from sushi_hw.fpga.flow import ToolError

from ..cli import UserError


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
    p.add_argument("--preset", help="preset (default: the board's own)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--out", type=Path, default=Path("build"), help="output root")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
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


def run(args: argparse.Namespace) -> int:
    try:
        board = get_board(args.board)
        cfg = make_config(args.preset or board.preset, **parse_overrides(args.set))
        if args.estimate:
            return _estimate(board, cfg, args)
        fit = check_fit(board, cfg)
    except (BoardError, FitError) as e:
        raise UserError(str(e)) from None
    print(fit.summary())
    if args.check_only:
        return 0
    from sushi_hw.fpga.board import BoardTop
    from sushi_hw.fpga.flow import build_bitstream

    out = args.out / board.name
    top = BoardTop(board, cfg, ram_bytes=board.ram_bytes, baud=args.baud)
    try:
        rep = build_bitstream(
            board,
            top,
            cfg,
            out,
            clock_mhz=cfg.clock_mhz,
            seed=args.seed,
            nextpnr_args=shlex.split(args.nextpnr_args),
            timeout_min=args.timeout,
        )
    except ToolError as e:
        raise UserError(str(e)) from None
    print(json.dumps(rep, indent=2))
    if not rep["timing_met"]:
        print(
            f"sushi: warning: timing NOT met: {rep['fmax_mhz']} MHz < {rep['clock_mhz']} MHz "
            f"(critical path in {out / 'report_detail.json'})"
        )
    return 0


def _estimate(board, cfg, args: argparse.Namespace) -> int:
    from sushi_hw.fpga.board import BoardTop
    from sushi_hw.fpga.fit import plan
    from sushi_hw.fpga.flow import estimate

    p = plan(board, cfg)
    print(p.summary())
    for problem in p.problems:
        print(f"  does not fit: {problem}")
    out = args.out / board.name
    top = BoardTop(board, cfg, ram_bytes=board.ram_bytes, baud=args.baud)
    try:
        est = estimate(
            board,
            top,
            cfg,
            out,
            seed=args.seed,
            nextpnr_args=shlex.split(args.nextpnr_args),
            timeout_min=args.timeout,
        )
    except ToolError as e:
        raise UserError(str(e)) from None
    print(json.dumps(est, indent=2))
    print(f"wrote {out / 'estimate.json'}")
    return 0
