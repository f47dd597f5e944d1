"""``sushi board``: talk to a SUSHI board over its UART host link (docs/uart.md), make its flash
weight image and run digits queries on it (the one server of ``sushi_sched.runtime`` on the board
backend)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..cli import UserError
from ..cli_args import add_preset_args, check_preset


def _link_args(p: argparse.ArgumentParser, suppress: bool) -> None:
    """--port/--baud/--timeout/--preset. On ``sushi board`` itself they have defaults; on each
    action they are SUPPRESSed unless given, so both ``sushi board --port P info`` and
    ``sushi board info --port P`` work."""

    def d(value):  # noqa: ANN001, ANN202
        return argparse.SUPPRESS if suppress else value

    p.add_argument("--port", default=d(None), help="serial device, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=d(115200), help="default 115200")
    p.add_argument("--timeout", type=float, default=d(2.0), help="seconds per response (default 2)")
    add_preset_args(
        p,
        d(None),
        overrides=False,
        preset_help="the board's accelerator preset (default: the preset whose rows, cols, "
        "mem_width and pb_bytes match the board's INFO); sets the flash address",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "board",
        help="talk to a SUSHI FPGA board over UART; flash image; run queries",
        description="Read the board's identity, status and counters, read and write its "
        "memory, run a program (docs/uart.md), and serve queries of the digits CNN (on a preset "
        "with convolution hardware) or MLP on it. Weights live in "
        "the board's SPI flash: 'sushi board image' writes the weight image and prints the "
        "command that programs it at flash offset 0x100000 (iceprog -o 1M / openFPGALoader "
        "-f -o 0x100000); the accelerator (and READ) see it in the upper half of the preset's "
        f"address space, from mem_bytes/2 ({_flash_bases()}). 'info' prints the address as "
        "flash_base. Link options (--port, --baud, --timeout, --preset) may come before or "
        "after the action.",
    )
    _link_args(p, suppress=False)
    sp = p.add_subparsers(dest="action", metavar="ACTION")
    sp.required = True

    def link_parser(name: str, **kw) -> argparse.ArgumentParser:
        a = sp.add_parser(name, **kw)
        _link_args(a, suppress=True)
        return a

    link_parser("info", help="design parameters")
    link_parser("status", help="busy/done/error flags")
    c = link_parser("counter", help="read one counter")
    c.add_argument("index", type=int)
    r = link_parser("read", help="read memory to a file (or hex to stdout)")
    r.add_argument("addr", type=lambda x: int(x, 0))
    r.add_argument("length", type=lambda x: int(x, 0))
    r.add_argument("--out", type=Path)
    w = link_parser("write", help="write a file into memory")
    w.add_argument("addr", type=lambda x: int(x, 0))
    w.add_argument("file", type=Path)
    x = link_parser("run", help="ring the doorbell for the program at ADDR and wait")
    x.add_argument("addr", type=lambda x: int(x, 0))
    x.add_argument("--wait", type=float, default=10.0, help="seconds to wait for done")

    q = link_parser(
        "query",
        help="run one query on the board and check it against the reference",
        description="Serve one query of a trained SuperNet on the board: check the board's "
        "INFO against the preset and that its flash holds the weight image ('sushi board "
        "image'), optionally fill the Persistent Buffer with a CACHE program, write the SubNet's "
        "program and the input image to the board's RAM, run it, read the int32 logits and the "
        "counters. Prints logits, prediction, whether the logits equal the numpy int8 "
        "reference bit for bit, cycles and the weight bytes read from flash and from the PB. "
        "Exit status 0 if they match (and the byte counters equal the compiler's), 1 if not, "
        "2 for a bad request or an unreachable board.",
        epilog="examples: sushi board query --port /dev/ttyUSB1 --subnet 16k3-24k3-32k1 "
        "--image 7 (the CNN, on the ULX3S); sushi board query --port /dev/ttyUSB1 --subnet "
        "i16-d2-16-16 --cache-subgraph i16-d2-16-16 (the MLP, on the iCEBreaker)",
    )
    q.add_argument(
        "--subnet",
        required=True,
        metavar="KEY",
        help="SubNet key, e.g. 16k3-24k3-32k1 (CNN: width and kernel per block, stages "
        "split by -) or i8-d2-8-16 (MLP: inputs, depth, widths); 'sushi board subnets' lists "
        "all with their accuracy",
    )
    q.add_argument(
        "--image",
        type=int,
        default=0,
        metavar="N",
        help="index into the held-out test split (default 0)",
    )
    q.add_argument(
        "--cache-subgraph",
        metavar="KEY[,KEY...]",
        help="before the query, CACHE the weights of this SubNet (several: the slices they "
        "share) in the PB; the query then reads those tiles from the PB instead of the flash. "
        "Default: empty PB, every weight from the flash",
    )
    q.add_argument(
        "--wait", type=float, default=10.0, help="seconds to wait for each program (default 10)"
    )
    q.add_argument("--json", action="store_true", help="print the result as JSON")
    _supernet_arg(q)

    im = sp.add_parser(
        "image",
        help="write the flash weight image and print how to program it",
        description="Write a SuperNet's weight image for a preset (every tensor as a "
        "zero-padded tile grid, as the compiler lays it out from the flash window's base) and "
        "print the command that programs it into the board's SPI flash at offset 0x100000 "
        "(1 MiB, past the bitstream). No serial port needed.",
    )
    add_preset_args(
        im,
        argparse.SUPPRESS,
        overrides=False,
        preset_help="accelerator preset (default: the board's)",
    )
    im.add_argument(
        "--board", help="icebreaker or ulx3s (default: the board built with the preset)"
    )
    im.add_argument(
        "--out",
        type=Path,
        help="output file (default build/board/<preset>/<supernet>.bin)",
    )
    im.add_argument("--json", action="store_true", help="print the layout as JSON")
    _supernet_arg(im)

    sn = sp.add_parser(
        "subnets",
        help="list the SubNet keys with accuracy and weight bytes",
        description="List every SubNet of the SuperNet that 'sushi board query --subnet' "
        "accepts, with the int8 accuracy the scheduler uses (CNN: validation split; MLP: "
        "held-out split) and its weight bytes; with --preset also the bytes it reads from the "
        "flash as whole tiles.",
    )
    add_preset_args(
        sn,
        argparse.SUPPRESS,
        overrides=False,
        preset_help="add the tile-padded bytes for this preset",
    )
    sn.add_argument(
        "--sort",
        choices=("key", "accuracy", "bytes"),
        default="key",
        help="order (default: the SuperNet's)",
    )
    sn.add_argument("--json", action="store_true", help="print JSON")
    _supernet_arg(sn)
    p.set_defaults(func=run)


def _supernet_arg(p: argparse.ArgumentParser) -> None:
    from ..runtime.models import MODELS

    p.add_argument(
        "--supernet",
        metavar="NAME",
        help=f"the trained SuperNet: {', '.join(MODELS)} (default for 'query': the one the "
        "SubNet key belongs to; otherwise digits-cnn on a preset with convolution hardware, "
        "e.g. large on the ULX3S, and digits-mlp on one without, e.g. tiny on the iCEBreaker)",
    )


def _model(args: argparse.Namespace, cfg):  # noqa: ANN001, ANN202 - a ServedModel
    """The SuperNet the action serves on ``cfg`` (``--supernet``, or the preset's default)."""
    from ..runtime.models import served_model
    from ..runtime.server import ServeError

    name = getattr(args, "supernet", None) or _default_supernet(cfg)
    try:
        return served_model(name, cfg)
    except ServeError as e:
        raise UserError(str(e)) from None


def _default_supernet(cfg) -> str:  # noqa: ANN001
    return "digits-cnn" if cfg is None or cfg.conv else "digits-mlp"


def _flash_bases() -> str:
    from sushi_hw.config import PRESETS
    from sushi_hw.fpga.host import flash_base

    return ", ".join(f"{n} {flash_base(c):#x}" for n, c in PRESETS.items())


def _preset(name: str):  # noqa: ANN202
    from sushi_hw.config import PRESETS

    return PRESETS[check_preset(name)]


def _preset_of(info, name: str | None):  # noqa: ANN001, ANN202
    """The AccelConfig the board was built with: ``name``, or the one matching its INFO."""
    from sushi_hw.config import PRESETS

    if name is not None:
        return _preset(name)
    key = (info.rows, info.cols, info.mem_width, info.pb_bytes)
    hits = [c for c in PRESETS.values() if (c.rows, c.cols, c.mem_width, c.pb_bytes) == key]
    return hits[0] if len(hits) == 1 else None


def run(args: argparse.Namespace) -> int:
    if args.action == "image":
        return image(args)
    if args.action == "subnets":
        return subnets(args)
    return _link(args)


# ---- image / subnets (no board needed) -----------------------------------------------------


def image(args: argparse.Namespace) -> int:
    from sushi_hw.fpga.boards import get_board

    from ..runtime.board import FLASH_OFFSET, boards_for, build_flash_image, program_command
    from ..runtime.server import ServeError

    board = None
    if args.board is not None:
        try:
            board = get_board(args.board)
        except ValueError as e:
            raise UserError(str(e)) from None
    name = getattr(args, "preset", None) or (board.preset if board else None)
    if name is None:
        raise UserError("give --preset (e.g. tiny) or --board (icebreaker, ulx3s)")
    cfg = _preset(name)
    model = _model(args, cfg)
    try:
        fi = build_flash_image(model)
    except ServeError as e:
        raise UserError(str(e)) from None
    out = args.out or Path("build") / "board" / cfg.name / f"{model.name}.bin"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(fi.data)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e}") from None
    boards = [board] if board else boards_for(cfg)
    commands = {b.name: program_command(b, out) for b in boards}
    if args.json:
        print(
            json.dumps(
                {
                    "preset": cfg.name,
                    "supernet": model.name,
                    "file": str(out),
                    "bytes": len(fi.data),
                    "sha256": fi.sha256,
                    "flash_offset": fi.offset,
                    "flash_base": fi.base,
                    "tensors": fi.layout(),
                    "program": commands,
                },
                indent=1,
            )
        )
        return 0
    print(
        f"wrote {out}: {len(fi.data)} bytes, {model.name} weight image for preset {cfg.name} "
        f"(sha256 {fi.sha256[:16]}...)"
    )
    print(f"flash byte {fi.offset:#x} on = accelerator address {fi.base:#x} on:")
    print(f"  {'tensor':10s} {'shape':>11s} {'tiles':>7s} {'address':>10s} {'flash':>10s} bytes")
    for r in fi.layout():
        shape, tiles = "x".join(map(str, r["shape"])), "x".join(map(str, r["tiles"]))
        print(
            f"  {r['tensor']:10s} {shape:>11s} {tiles:>7s} {r['addr']:>#10x} "
            f"{r['flash_offset']:>#10x} {r['bytes']}"
        )
    if commands:
        for b, cmd in commands.items():
            print(f"program it ({b}): {cmd}")
    else:
        print(
            f"no board is built with preset {cfg.name}; write the file at flash offset "
            f"{FLASH_OFFSET:#x} with the board's programmer"
        )
    return 0


def subnets(args: argparse.Namespace) -> int:
    from sushi_hw.config import PRESETS

    cfg = _preset(args.preset) if getattr(args, "preset", None) else None
    # the table does not depend on the configuration; the tile bytes do
    model = _model(args, cfg or PRESETS["default"])
    rows = [
        {
            "key": sid,
            "accuracy_int8": s.accuracy / 100,
            "weight_bytes": s.weight_bytes,
            "macs": s.macs,
        }
        for sid, s in model.table()
    ]
    if cfg is not None:
        image = model.weight_image(0)
        for r in rows:
            r["tile_bytes"] = _flash_bytes(model, image, r["key"])
    if args.sort == "accuracy":
        rows.sort(key=lambda r: (-r["accuracy_int8"], r["weight_bytes"]))
    elif args.sort == "bytes":
        rows.sort(key=lambda r: (r["weight_bytes"], -r["accuracy_int8"]))
    n_test = len(model.test_set[1])
    lines = []
    if args.json:
        out = {"supernet": model.name, "n_test": n_test, "subnets": rows}
        if cfg is not None:
            out["preset"] = cfg.name
        lines.append(json.dumps(out, indent=1))
    else:
        lines.append(
            f"{len(rows)} SubNets of {model.name} ({_KEY_FORMAT[model.name]}; the int8 "
            f"accuracy the scheduler uses; queries come from {n_test} held-out test images)"
        )
        if cfg is not None:
            runs = sum(r["tile_bytes"] is not None for r in rows)
            lines.append(
                f"{runs} run on preset {cfg.name} ({cfg.rows}x{cfg.cols}); tiles B '-': a "
                f"layer narrower than {cfg.cols} columns that is not its tensor's full width"
            )
        width = max(len(r["key"]) for r in rows)
        head = f"{'key':{width}s} {'accuracy':>8s} {'weight B':>8s} {'MACs':>8s}"
        if cfg is not None:
            head += f" {'tiles B (' + cfg.name + ')':>14s}"
        lines.append(head)
        for r in rows:
            acc = 100 * r["accuracy_int8"]
            line = f"{r['key']:{width}s} {acc:7.1f}% {r['weight_bytes']:8d} {r['macs']:8d}"
            if cfg is not None:
                tiles = r["tile_bytes"]
                line += f" {'-' if tiles is None else tiles:>14}"
            lines.append(line)
    _print_lines(lines)
    return 0


_KEY_FORMAT = {
    "digits-mlp": "key i<inputs>-d<depth>-<widths>",
    "digits-cnn": "key <width>k<kernel> per block, blocks split by '.', stages by '-'",
}


def _flash_bytes(model, image, sid: str) -> int | None:  # noqa: ANN001
    """Weight bytes SubNet ``sid`` reads from the flash with an empty PB (whole tiles); None
    if it does not lower onto this array (a CNN layer narrower than the array's columns)."""
    from ..compiler import CompileError
    from ..subgraph import SubGraph

    layout = model.layout(image, SubGraph())
    try:
        program = model.program(image, sid, layout, 0, 0)
    except CompileError:
        return None
    return model.expected(image, sid, layout, program)["rd_weight_bytes"]


def _print_lines(lines: list[str]) -> None:
    """Print, quietly stopping if the reader goes away (``sushi board subnets | head``)."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


# ---- actions over the serial port --------------------------------------------------------


def _open_port(args: argparse.Namespace):  # noqa: ANN202
    if args.port is None:
        raise UserError(f"'sushi board {args.action}' needs --port (e.g. --port /dev/ttyUSB1)")
    try:
        import serial
    except ImportError:
        raise UserError("pyserial is not installed (pip install 'pyserial==3.*')") from None
    try:
        return serial.Serial(args.port, args.baud, timeout=args.timeout)
    except (serial.SerialException, OSError, ValueError) as e:
        msg = " ".join(str(e).split())
        raise UserError(f"cannot open serial port {args.port}: {msg}") from None


def _link(args: argparse.Namespace) -> int:
    from sushi_hw.fpga.host import BoardClient, LinkError, RemoteError, flash_window

    q = None
    if args.action == "query":  # check the request before touching the port
        q = _query_request(args, _preset(args.preset) if args.preset else None)
    port = _open_port(args)
    client = BoardClient(port)
    try:
        info = client.info()
        if args.action == "query":
            cfg = _preset_of(info, args.preset)
            if cfg is None:
                raise UserError(
                    f"the board's INFO (rows {info.rows}, cols {info.cols}, mem_width "
                    f"{info.mem_width}, pb_bytes {info.pb_bytes}) matches no single preset; "
                    "pass --preset"
                )
            if not args.preset:  # now that the array is known: does the SubNet lower onto it?
                q = _query_request(argparse.Namespace(**{**vars(args), "supernet": q["name"]}), cfg)
            return _query(args, client, info, cfg, q)
        if args.action == "info":
            out = dict(info.__dict__)
            cfg = _preset_of(info, args.preset)
            if cfg is not None:
                base, size = flash_window(cfg)
                out.update(preset=cfg.name, flash_base=base, flash_window_bytes=size)
            print(json.dumps(out))
        elif args.action == "status":
            print(json.dumps(client.status().__dict__))
        elif args.action == "counter":
            print(client.counter(args.index))
        elif args.action == "read":
            data = client.read(args.addr, args.length)
            if args.out:
                args.out.write_bytes(data)
            else:
                print(data.hex())
        elif args.action == "write":
            client.write(args.addr, args.file.read_bytes())
        elif args.action == "run":
            client.run(args.addr)
            st = client.wait(timeout_s=args.wait)
            print(json.dumps(st.__dict__))
            if st.error:
                return 1
    except (LinkError, RemoteError) as e:
        raise UserError(f"board on {args.port}: {e}") from None
    finally:
        port.close()
    return 0


def _query_request(args: argparse.Namespace, cfg) -> dict:  # noqa: ANN001
    """Check everything about a query that needs no board: SuperNet (``--supernet``, or the
    one whose SubNet ``--subnet`` is), SubNet, image, cached SubGraph and, with the preset
    ``cfg`` known, that the SubNet lowers onto its array."""
    from sushi_hw.config import PRESETS

    from ..compiler import CompileError
    from ..runtime.server import ServeError
    from ..subgraph import SubGraph

    name = args.supernet or _supernet_of(args.subnet)
    model = _model(argparse.Namespace(supernet=name), cfg or PRESETS["default"])
    try:
        sid = model.subnet_id(args.subnet)
        sub = model.subgraph(args.cache_subgraph) if args.cache_subgraph else None
        if cfg is not None:
            image = model.weight_image(0)
            layout = model.layout(image, sub if sub is not None else SubGraph())
    except (ServeError, CompileError) as e:
        raise UserError(str(e)) from None
    if cfg is not None:
        try:
            model.program(image, sid, layout, 0, 0)
        except CompileError as e:
            raise UserError(
                f"SubNet {sid} does not run on preset {cfg.name!r} ({cfg.rows}x{cfg.cols}): {e}; "
                f"'sushi board subnets --supernet {name} --preset {cfg.name}' lists those that do"
            ) from None
    n = len(model.test_set[1])
    if not 0 <= args.image < n:
        raise UserError(f"--image {args.image} out of range: the held-out split has 0..{n - 1}")
    accuracy = {k: s.accuracy for k, s in model.table()}[sid]
    return {"name": name, "model": model, "subnet": sid, "subgraph": sub, "accuracy": accuracy}


def _supernet_of(key: str) -> str:
    """The SuperNet that has SubNet ``key`` (their keys differ); UserError with the closest
    suggestion if none has it."""
    from sushi_hw.config import PRESETS

    from ..runtime.models import MODELS, served_model
    from ..runtime.server import ServeError

    errors = []
    for name in MODELS:
        try:
            served_model(name, PRESETS["default"]).subnet_id(key)
            return name
        except ServeError as e:
            errors.append(str(e))
    hint = [e for e in errors if "did you mean" in e]
    raise UserError((hint or errors)[0])


def _query(args: argparse.Namespace, client, board_info, cfg, q: dict) -> int:  # noqa: ANN001
    from ..runtime.backend import RunError
    from ..runtime.board import connect, verify_flash
    from ..runtime.server import ServeError

    model, sid, sub = q["model"], q["subnet"], q["subgraph"]
    try:
        server = connect(client, cfg, model, info=board_info, timeout_s=args.wait)
        st = client.status()
        if st.busy:
            raise UserError(
                "the accelerator is still busy with an earlier program; reset the board"
            )
        verify_flash(server.backend, server.flash)
        cache = server.fill_pb(sub) if sub is not None else None
        res = server.query(sid, image=args.image, layout=cache.layout if cache else None)
    except ServeError as e:
        raise UserError(str(e)) from None
    except RunError as e:
        print(f"sushi: error: {e}", file=sys.stderr)
        return 1
    problems = (cache.problems if cache else []) + res.problems
    ok = res.match and not problems
    if args.json:
        out = {
            "preset": cfg.name,
            "supernet": model.name,
            "ram_bytes": board_info.ram_bytes,
            "accuracy_int8": q["accuracy"] / 100,
            **res.as_dict(),
            "problems": problems,
            "ok": ok,
        }
        if cache is not None:
            out["cache"] = {
                "blocks": {t: list(b) for t, b in cache.layout.blocks.items()},
                "tiles": cache.layout.tiles,
                "expected_bytes": cache.expected_bytes,
                **cache.counters,
            }
        print(json.dumps(out, indent=1))
        return 0 if ok else 1
    ctr = res.counters
    print(
        f"board on {args.port}: preset {cfg.name} ({cfg.rows}x{cfg.cols}), RAM "
        f"{board_info.ram_bytes} B, weights in flash from {server.image.base:#x}"
    )
    if cache is not None:
        print(
            f"PB: cached {cache.layout.tiles} tiles ({cache.expected_bytes} B) of "
            f"{args.cache_subgraph} in {cache.counters['cycles']} cycles"
        )
    print(
        f"SubNet {res.subnet} of {model.name} (accuracy {q['accuracy']:.1f}%), image {res.image} "
        f"(label {res.label})"
    )
    print(f"logits:    {res.logits.tolist()}")
    print(f"reference: {res.reference.tolist()}")
    verdict = "MATCH" if res.match else "MISMATCH"
    print(
        f"prediction {res.predicted} (reference {res.reference_predicted}, label {res.label}): "
        f"logits {verdict}"
    )
    print(
        f"cycles {ctr['cycles']}, weight bytes from flash {ctr['rd_weight_bytes']} (expected "
        f"{res.expected_offchip_bytes}), from PB {ctr['pb_read_bytes']} (expected "
        f"{res.expected_pb_bytes}), commands {ctr['commands']}, host {res.wall_s * 1e3:.0f} ms"
    )
    for p in problems:
        print(f"counter mismatch: {p}")
    return 0 if ok else 1
