"""``sushi gemm``: run one GEMM from .npy files on the RTL simulation."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sushi_hw.gemm_host import GemmSpec

from ..cli import UserError
from ..cli_args import add_preset_args, check_out_file, config_from_args, sim_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gemm",
        help="run one GEMM on the RTL simulation",
        description="Compute OUT = A @ W (+ C_IN) on the cycle-accurate RTL of SushiAccel's GEMM "
        "engine. A is int8 [M,K], W is int8 [K,N], C_IN is int32 [M,N]. Without --requant the "
        "result is int32; with it, int8 (y = (acc*MULT + 2^(SHIFT-1)) >> SHIFT, saturated).",
    )
    add_preset_args(p, "default", sim=True)
    p.add_argument("--a", required=True, type=Path, help="int8 [M,K] .npy file")
    p.add_argument("--w", required=True, type=Path, help="int8 [K,N] .npy file")
    p.add_argument("--c-in", type=Path, help="optional int32 [M,N] .npy accumulate input")
    p.add_argument("--out", required=True, type=Path, help="output .npy file")
    p.add_argument("--requant", metavar="MULT,SHIFT", help="requantise to int8")
    p.add_argument("--relu", action="store_true", help="apply ReLU before saturation")
    p.set_defaults(func=run)


def _load(path: Path, what: str, dtype: type, ndim: int = 2) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{what} file {str(path)!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise UserError(f"{what} file {str(path)!r} is not a .npy array file") from None
    if not isinstance(arr, np.ndarray):
        raise UserError(f"{what} file {str(path)!r} is not a single .npy array")
    if arr.dtype != np.dtype(dtype):
        raise UserError(f"{what} must be {np.dtype(dtype).name}, got {arr.dtype.name}")
    if arr.ndim != ndim:
        raise UserError(f"{what} must be 2-D, got shape {arr.shape}")
    return arr


def _parse_requant(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        mult, shift = (int(x, 0) for x in text.split(","))
    except ValueError:
        raise UserError(f"--requant {text!r} must be MULT,SHIFT (two integers)") from None
    return mult, shift


def run(args: argparse.Namespace) -> int:
    from ..runtime.gemm_rtl import TOP as GEMM_TOP
    from ..runtime.gemm_rtl import GemmJob
    from ..runtime.rtl import RtlError, run_on_rtl

    cfg = config_from_args(args)
    sim = sim_from_args(args)
    a = _load(args.a, "A (--a)", np.int8)
    w = _load(args.w, "W (--w)", np.int8)
    if a.shape[1] != w.shape[0]:
        raise UserError(
            f"A is {a.shape} but W is {w.shape}: A's K ({a.shape[1]}) must equal "
            f"W's K ({w.shape[0]})"
        )
    c = None
    if args.c_in is not None:
        c = _load(args.c_in, "C_in (--c-in)", np.int32)
        if c.shape != (a.shape[0], w.shape[1]):
            raise UserError(f"C_in must be [M,N] = {(a.shape[0], w.shape[1])}, got {c.shape}")
    spec = GemmSpec(
        a.shape[0],
        a.shape[1],
        w.shape[1],
        accumulate=c is not None,
        requant=_parse_requant(args.requant),
        relu=args.relu,
    )
    spec.validate(cfg)
    check_out_file(args.out, "--out")
    # simulator work dir, one per simulator so that runs on both at once (the test suite under
    # pytest -n) do not overwrite each other's files; its log stays for inspection
    work = (Path("build/gemm") / sim).resolve()
    job = GemmJob(a, w, c, spec.requant, spec.relu)
    try:
        out, cycles = run_on_rtl(cfg, job, sim=sim, workdir=work, top=GEMM_TOP)
    except (RtlError, RuntimeError) as e:
        raise UserError(f"the RTL simulation failed: {str(e).splitlines()[0]}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, out)
    print(
        f"{sim}/{cfg.name}: OUT {out.dtype}{list(out.shape)} -> {args.out} "
        f"in {cycles} cycles ({spec.ideal_cycles(cfg)} ideal)"
    )
    return 0
