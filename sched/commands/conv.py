"""``sushi conv``: run one convolution from .npy files on the RTL simulation (or the golden
model), checked bit-exactly against ``sushi_hw.reference.conv2d_ref``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sushi_hw.reference import check_requant, conv2d_ref

from ..cli import UserError
from ..cli_args import add_preset_args, check_out_file, config_from_args, sim_from_args
from .gemm import _parse_requant

BACKENDS = ("rtl", "golden")
PROG, W_BASE = 0x0, 0x1000  # program, then weights, input and output (aligned to the tile size)


def _load(path: Path, what: str, ndim: int) -> np.ndarray:
    if not path.is_file():
        raise UserError(f"{what} file {str(path)!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise UserError(f"{what} file {str(path)!r} is not a .npy array file") from None
    if not isinstance(arr, np.ndarray):
        raise UserError(f"{what} file {str(path)!r} is not a single .npy array")
    if arr.dtype != np.int8:
        raise UserError(f"{what} must be int8, got {arr.dtype.name}")
    if arr.ndim != ndim:
        raise UserError(f"{what} must be {ndim}-D, got shape {arr.shape}")
    return arr


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "conv",
        help="run one convolution on the RTL simulation",
        description="Compute OUT = conv2d(X, W) with SushiAccel's CONV command (implicit GEMM, "
        "docs/isa.md) on the cycle-accurate RTL (--backend rtl, default) or the ISA golden model "
        "(--backend golden). X is int8 [H,W,C_in], W int8 [C_out,C_in,k,k] (PyTorch's order; "
        "k 1, 3, 5 or 7). Without --requant OUT is int32 [H_out,W_out,C_out]; with it int8 "
        "(y = (acc*MULT + 2^(SHIFT-1)) >> SHIFT, saturated). The result is checked bit-exactly "
        "against the numpy reference; a mismatch is an error.",
    )
    add_preset_args(p, "default", sim=True)
    p.add_argument("--x", required=True, type=Path, help="int8 [H,W,C_in] .npy input map")
    p.add_argument("--w", required=True, type=Path, help="int8 [C_out,C_in,k,k] .npy weights")
    p.add_argument("--bias", type=Path, help="not supported: CONV has no bias this round")
    p.add_argument("--stride", type=int, default=1, help="1 or 2 (default 1)")
    p.add_argument("--pad", type=int, default=0, help="zero padding, 0 .. k//2 (default 0)")
    p.add_argument("--out", required=True, type=Path, help="output .npy file")
    p.add_argument("--requant", metavar="MULT,SHIFT", help="requantise to int8")
    p.add_argument("--relu", action="store_true", help="apply ReLU (before saturation)")
    p.add_argument(
        "--backend", default="rtl", help=f"{' or '.join(BACKENDS)} (default rtl: the RTL)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sushi_hw import isa

    from ..conv_compiler import CompileError, ConvLayer, conv_program
    from ..conv_image import ConvImage, fmap_bytes, fmap_from_bytes, fmap_words
    from ..runtime.backend import Script

    if args.bias is not None:
        raise UserError("--bias is not supported: the CONV command has no bias this round")
    if args.backend not in BACKENDS:
        raise UserError(f"unknown backend {args.backend!r}; choose one of {', '.join(BACKENDS)}")
    cfg = config_from_args(args)
    sim = sim_from_args(args) if args.backend == "rtl" else None
    if not cfg.conv:
        raise UserError(f"preset {cfg.name!r} has no convolution hardware (conv = false)")
    x = _load(args.x, "X (--x)", 3)
    w = _load(args.w, "W (--w)", 4)
    c_out, c_in, k, k2 = w.shape
    if k != k2 or k not in isa.KERNELS:
        raise UserError(f"W's kernel is {k}x{k2}; CONV supports 1x1, 3x3, 5x5 and 7x7")
    if x.shape[2] != c_in:
        raise UserError(
            f"X is {x.shape} but W is {w.shape}: X's C_in ({x.shape[2]}) must equal "
            f"W's C_in ({c_in})"
        )
    if args.stride not in isa.STRIDES:
        raise UserError(f"--stride {args.stride}: CONV supports stride 1 or 2")
    if not 0 <= args.pad <= k // 2:
        raise UserError(f"--pad {args.pad}: a {k}x{k} kernel takes 0 .. {k // 2}")
    requant = _parse_requant(args.requant)
    if requant is not None:
        check_requant(*requant)
    h, wd = x.shape[:2]
    h_out = isa.conv_out_size(h, k, args.stride, args.pad)
    w_out = isa.conv_out_size(wd, k, args.stride, args.pad)
    if h_out < 1 or w_out < 1:
        raise UserError(f"a {k}x{k} kernel does not fit the {h}x{wd} map padded by {args.pad}")
    if h > 255 or wd > 255 or c_in > 4095 or c_out > 4095:
        raise UserError(f"X {x.shape} / W {w.shape}: H, W at most 255, channels at most 4095")
    align = max(cfg.tile_bytes, cfg.mem_width)
    up = lambda v: -(-v // align) * align  # noqa: E731
    try:
        image = ConvImage.build(cfg, {"w": w}, W_BASE)
        x_raw = fmap_bytes(cfg, x)
        in_addr = up(image.end)
        out_addr = up(in_addr + len(x_raw))
        out_bytes = fmap_words(cfg, h_out, w_out, c_out, requant is None) * cfg.rows
        if out_addr + up(out_bytes) > cfg.mem_bytes:
            raise CompileError(f"weights, input and output need more than {cfg.mem_bytes} bytes")
        layer = ConvLayer("w", c_out, c_in, k, args.stride, args.pad, requant, args.relu)
        prog = conv_program(cfg, image, None, layer, h, wd, in_addr, out_addr)
        if W_BASE < len(prog) * isa.CMD_BYTES:
            raise CompileError(f"the program of {len(prog)} commands is too long")
    except (CompileError, ValueError) as e:
        raise UserError(f"cannot run this convolution on preset {cfg.name!r}: {e}") from None
    check_out_file(args.out, "--out")
    steps = [("write", a, b) for a, b in image.writes()]
    steps += [("write", in_addr, x_raw), ("write", PROG, b"".join(prog)), ("run", PROG)]
    steps.append(("read", out_addr, out_bytes))
    script = Script(steps)
    if args.backend == "golden":
        from ..runtime.golden import GoldenBackend

        res, raw = script(GoldenBackend(cfg))
    else:
        from ..runtime.rtl import RtlError, run_on_rtl

        work = (Path("build/conv") / sim).resolve()
        try:
            res, raw = run_on_rtl(cfg, script, sim=sim, workdir=work)
        except (RtlError, RuntimeError) as e:
            raise UserError(f"the RTL simulation failed: {str(e).splitlines()[0]}") from None
    if not res.ok:
        raise UserError(
            f"the accelerator stopped with done={res.done} error={res.error_name} "
            f"({args.backend}/{cfg.name})"
        )
    out = fmap_from_bytes(cfg, raw, h_out, w_out, c_out, requant is None)
    ref = conv2d_ref(x, w, args.stride, args.pad, requant, args.relu)
    if not np.array_equal(out, ref):
        bad = int(np.count_nonzero(out != ref))
        raise UserError(
            f"{args.backend}/{cfg.name}: the result differs from the reference in {bad} of "
            f"{ref.size} values; not written"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, out)
    c = res.counters
    where = f"{sim}/{cfg.name}" if sim else f"golden/{cfg.name}"
    cyc = f"in {c.get('cycles', 0)} cycles, " if args.backend == "rtl" else ""
    print(
        f"{where}: OUT {out.dtype}{list(out.shape)} -> {args.out} {cyc}matches the reference; "
        f"activation bytes read {c.get('rd_act_bytes', 0)} (input map {len(x_raw)}), "
        f"weight bytes read {c.get('rd_weight_bytes', 0)}"
    )
    return 0
