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
        "(iceprog -o 1M / openFPGALoader -o 0x100000); the accelerator reads it at 0x10000000.",
    )
    p.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds per response")
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


def run(args: argparse.Namespace) -> int:
    import time

    try:
        import serial
    except ImportError:
        raise UserError("pyserial is not installed (pip install 'pyserial==3.*')") from None
    from sushi_hw.fpga.host import BoardClient, LinkError, RemoteError

    try:
        port = serial.Serial(args.port, args.baud, timeout=args.timeout)
    except serial.SerialException as e:
        raise UserError(f"cannot open {args.port}: {e}") from None
    client = BoardClient(port)
    try:
        info = client.info()
        if args.action == "info":
            print(json.dumps(info.__dict__))
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
            t0 = time.time()
            while True:
                st = client.status()
                if not st.busy:
                    break
                if time.time() - t0 > args.wait:
                    raise UserError(f"still busy after {args.wait} s")
            print(json.dumps(st.__dict__))
            if st.error:
                return 1
    except (LinkError, RemoteError, ValueError) as e:
        raise UserError(str(e)) from None
    finally:
        port.close()
    return 0
