"""``sushi board``: talk to a SUSHI board over its UART host link (docs/uart.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "board",
        help="talk to a SUSHI FPGA board over UART",
        description="Read the board's identity, status and counters, read and write its "
        "memory, and run a program (docs/uart.md). Weights live in the board's SPI flash: "
        "program a weight image at flash offset 0x100000 with the board programmer "
        "(iceprog -o 1M / openFPGALoader -o 0x100000); the accelerator (and READ) see it in the "
        "upper half of the preset's address space, from mem_bytes/2 "
        f"({_flash_bases()}). 'info' prints the address as flash_base.",
    )
    p.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per response")
    p.add_argument(
        "--preset",
        help="the board's accelerator preset (default: the preset whose rows, cols, mem_width "
        "and pb_bytes match the board's INFO); sets the flash address",
    )
    sp = p.add_subparsers(dest="action", metavar="ACTION")
    sp.required = True
    sp.add_parser("info", help="design parameters")
    sp.add_parser("status", help="busy/done/error flags")
    c = sp.add_parser("counter", help="read one counter")
    c.add_argument("index", type=int)
    r = sp.add_parser("read", help="read memory to a file (or hex to stdout)")
    r.add_argument("addr", type=lambda x: int(x, 0))
    r.add_argument("length", type=lambda x: int(x, 0))
    r.add_argument("--out", type=Path)
    w = sp.add_parser("write", help="write a file into memory")
    w.add_argument("addr", type=lambda x: int(x, 0))
    w.add_argument("file", type=Path)
    x = sp.add_parser("run", help="ring the doorbell for the program at ADDR and wait")
    x.add_argument("addr", type=lambda x: int(x, 0))
    x.add_argument("--wait", type=float, default=10.0, help="seconds to wait for done")
    p.set_defaults(func=run)


def _flash_bases() -> str:
    from sushi_hw.config import PRESETS
    from sushi_hw.fpga.host import flash_base

    return ", ".join(f"{n} {flash_base(c):#x}" for n, c in PRESETS.items())


def _preset_of(info, name: str | None):  # noqa: ANN001, ANN202
    """The AccelConfig the board was built with: ``name``, or the one matching its INFO."""
    from sushi_hw.config import PRESETS

    if name is not None:
        if name not in PRESETS:
            raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return PRESETS[name]
    key = (info.rows, info.cols, info.mem_width, info.pb_bytes)
    hits = [c for c in PRESETS.values() if (c.rows, c.cols, c.mem_width, c.pb_bytes) == key]
    return hits[0] if len(hits) == 1 else None


def run(args: argparse.Namespace) -> int:
    try:
        import serial
    except ImportError:
        raise UserError("pyserial is not installed (pip install 'pyserial==3.*')") from None
    from sushi_hw.fpga.host import BoardClient, LinkError, RemoteError, flash_window

    try:
        port = serial.Serial(args.port, args.baud, timeout=args.timeout)
    except serial.SerialException as e:
        raise UserError(f"cannot open {args.port}: {e}") from None
    client = BoardClient(port)
    try:
        info = client.info()
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
    except (LinkError, RemoteError, ValueError) as e:
        raise UserError(str(e)) from None
    finally:
        port.close()
    return 0
