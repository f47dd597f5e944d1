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
        help="talk to a SUSHI FPGA board over UART; flash image; run digits queries",
        description="Read the board's identity, status and counters, read and write its "
        "memory, run a program (docs/uart.md), and serve digits queries on it. Weights live in "
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
        help="run one digits query on the board and check it against the reference",
        description="Serve one query of the digits SuperNet on the board: check the board's "
        "INFO against the preset and that its flash holds the weight image ('sushi board "
        "image'), optionally fill the Persistent Buffer with a CACHE program, write the SubNet's "
        "program and the input image to the board's RAM, run it, read the int32 logits and the "
        "counters. Prints logits, prediction, whether the logits equal the numpy int8 "
        "reference bit for bit, cycles and the weight bytes read from flash and from the PB. "
        "Exit status 0 if they match (and the byte counters equal the compiler's), 1 if not, "
        "2 for a bad request or an unreachable board.",
        epilog="example: sushi board query --port /dev/ttyUSB1 --subnet i16-d2-16-16 --image 7 "
        "--cache-subgraph i16-d2-16-16",
    )
    q.add_argument(
        "--subnet",
        required=True,
        metavar="KEY",
        help="SubNet key, e.g. i8-d2-8-16 (inputs, depth, widths); 'sushi board subnets' "
        "lists all with their accuracy",
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

    im = sp.add_parser(
        "image",
        help="write the flash weight image and print how to program it",
        description="Write the digits SuperNet's weight image for a preset (every tensor as a "
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
        help="output file (default build/board/<preset>/weights.bin)",
    )
    im.add_argument("--json", action="store_true", help="print the layout as JSON")

    sn = sp.add_parser(
        "subnets",
        help="list the digits SubNet keys with accuracy and weight bytes",
        description="List every SubNet of the digits SuperNet that 'sushi board query "
        "--subnet' accepts, with its int8 accuracy measured on the held-out split and its "
        "weight bytes; with --preset also the bytes it reads from the flash as whole tiles.",
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
    p.set_defaults(func=run)


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


def _net():  # noqa: ANN202
    from ..digits.store import load_digits_supernet

    return load_digits_supernet()


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
    from ..runtime.server import net_tensors

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
    fi = build_flash_image(cfg, net_tensors(_net()))
    out = args.out or Path("build") / "board" / cfg.name / "weights.bin"
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
        f"wrote {out}: {len(fi.data)} bytes, digits weight image for preset {cfg.name} "
        f"(sha256 {fi.sha256[:16]}...)"
    )
    print(f"flash byte {fi.offset:#x} on = accelerator address {fi.base:#x} on:")
    print(f"  {'tensor':6s} {'shape':>8s} {'tiles':>7s} {'address':>10s} {'flash':>10s} bytes")
    for r in fi.layout():
        shape, tiles = "x".join(map(str, r["shape"])), "x".join(map(str, r["tiles"]))
        print(
            f"  {r['tensor']:6s} {shape:>8s} {tiles:>7s} {r['addr']:>#10x} "
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
    net = _net()
    cfg = _preset(args.preset) if getattr(args, "preset", None) else None
    rows = []
    for s in net.subnets():
        r = {
            "key": s.id,
            "depth": s.depth,
            "accuracy_int8": s.accuracy_int8,
            "weight_bytes": s.weight_bytes,
            "macs": s.macs,
        }
        if cfg is not None:
            r["tile_bytes"] = sum(
                -(-g.k // cfg.rows) * -(-g.n // cfg.cols) * cfg.tile_bytes for g in net.layers(s.id)
            )
        rows.append(r)
    if args.sort == "accuracy":
        rows.sort(key=lambda r: (-r["accuracy_int8"], r["weight_bytes"]))
    elif args.sort == "bytes":
        rows.sort(key=lambda r: (r["weight_bytes"], -r["accuracy_int8"]))
    n_test = len(net.test_set()[1])
    lines = []
    if args.json:
        out = {"supernet": "digits", "n_test": n_test, "subnets": rows}
        if cfg is not None:
            out["preset"] = cfg.name
        lines.append(json.dumps(out, indent=1))
    else:
        lines.append(
            f"{len(rows)} SubNets of the digits SuperNet (key i<inputs>-d<depth>-<widths>; "
            f"int8 accuracy on {n_test} held-out images)"
        )
        head = f"{'key':18s} {'depth':>5s} {'accuracy':>8s} {'weight B':>8s}"
        if cfg is not None:
            head += f" {'tiles B (' + cfg.name + ')':>14s}"
        lines.append(head)
        for r in rows:
            acc = 100 * r["accuracy_int8"]
            line = f"{r['key']:18s} {r['depth']:5d} {acc:7.1f}% {r['weight_bytes']:8d}"
            if cfg is not None:
                line += f" {r['tile_bytes']:14d}"
            lines.append(line)
    _print_lines(lines)
    return 0


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
    if args.action == "query":
        q = _query_request(args)  # check the request before touching the port
    port = _open_port(args)
    client = BoardClient(port)
    try:
        info = client.info()
        if args.action == "query":
            return _query(args, client, info, q)
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


def _query_request(args: argparse.Namespace) -> dict:
    """Check everything about a query that needs no board: SubNet, image, cached SubGraph."""
    from ..compiler import CompileError, pb_layout
    from ..runtime.server import ServeError, subgraph_of, subnet_info

    net = _net()
    try:
        info = subnet_info(net, args.subnet)
        sub = subgraph_of(net, args.cache_subgraph) if args.cache_subgraph else None
    except ServeError as e:
        raise UserError(str(e)) from None
    n = len(net.test_set()[1])
    if not 0 <= args.image < n:
        raise UserError(f"--image {args.image} out of range: the held-out split has 0..{n - 1}")
    cfg = _preset(args.preset) if args.preset else None
    if sub is not None and cfg is not None:
        try:
            pb_layout(cfg, sub)
        except CompileError as e:
            raise UserError(str(e)) from None
    return {"net": net, "info": info, "subgraph": sub}


def _query(args: argparse.Namespace, client, board_info, q: dict) -> int:  # noqa: ANN001
    from ..runtime.backend import RunError
    from ..runtime.board import connect, verify_flash
    from ..runtime.server import ServeError

    net, info, sub = q["net"], q["info"], q["subgraph"]
    cfg = _preset_of(board_info, args.preset)
    if cfg is None:
        raise UserError(
            f"the board's INFO (rows {board_info.rows}, cols {board_info.cols}, mem_width "
            f"{board_info.mem_width}, pb_bytes {board_info.pb_bytes}) matches no single preset; "
            "pass --preset"
        )
    try:
        server = connect(client, cfg, net, info=board_info, timeout_s=args.wait)
        st = client.status()
        if st.busy:
            raise UserError(
                "the accelerator is still busy with an earlier program; reset the board"
            )
        verify_flash(server.backend, server.flash)
        cache = server.fill_pb(sub) if sub is not None else None
        res = server.query(info.id, image=args.image, layout=cache.layout if cache else None)
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
            "ram_bytes": board_info.ram_bytes,
            "accuracy_int8": info.accuracy_int8,
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
        f"SubNet {res.subnet} (accuracy {100 * info.accuracy_int8:.1f}%), image {res.image} "
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
