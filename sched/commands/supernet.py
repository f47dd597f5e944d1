"""``sushi supernet``: inspect SuperNet spaces (accuracy table, MACs, weights, cost)."""

from __future__ import annotations

import argparse
import json

from ..cli_args import add_preset_args, config_from_args, supernet_from_name, supernet_help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "supernet", help="inspect SuperNet spaces", description="Inspect SuperNet spaces."
    )
    ss = p.add_subparsers(dest="action", metavar="ACTION")
    ss.required = True
    sh = ss.add_parser(
        "show",
        help="list the SubNets of a space's accuracy table",
        description="List each SubNet of the accuracy table with id, accuracy, MACs and int8 "
        "weight bytes; with --preset also the cost model's latency and off-chip "
        "bytes with an empty PB. A space without an accuracy table lists its "
        "largest SubNet only.",
    )
    sh.add_argument("name", help=supernet_help())
    sh.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_preset_args(sh, default=None)
    sh.set_defaults(func=show)
    ls = ss.add_parser(
        "list", help="list known SuperNet spaces", description="List the known SuperNet spaces."
    )
    ls.set_defaults(func=list_spaces)


def list_spaces(args: argparse.Namespace) -> int:
    from ..supernet import supernet_names

    for n in supernet_names():
        print(f"{n:16s} {supernet_from_name(n).description}")
    return 0


def show(args: argparse.Namespace) -> int:
    from ..cost import CostModel

    sn = supernet_from_name(args.name)
    table = sn.accuracy_table() or [sn.largest()]
    cm = None
    if args.preset is not None:
        cm = CostModel(config_from_args(args))
    elif args.overrides:
        from ..cli import UserError

        raise UserError("--set needs --preset")
    rows = []
    for s in table:
        r = {
            "id": s.id,
            "key": s.key,
            "accuracy": s.accuracy,
            "macs": s.macs,
            "weight_bytes": s.weight_bytes,
            "layers": len(s.layers),
        }
        if cm is not None:
            q = cm.query(s)
            r.update(
                latency_ms=q.ms,
                offchip_bytes=q.offchip_bytes,
                offchip_energy_mj=q.offchip_energy_mj,
                energy_mj=q.energy_mj,
            )
        rows.append(r)
    if args.json:
        out = {"supernet": sn.name, "subnets": rows}
        if cm is not None:
            out["accel"] = cm.cfg.to_dict()
        print(json.dumps(out, indent=1))
        return 0
    for r in rows:
        extra = (
            f"  {r['latency_ms']:9.3f} ms  {r['offchip_bytes'] / 1e6:8.2f} MB off-chip"
            if cm is not None
            else ""
        )
        acc = f"{r['accuracy']:.3f}%" if r["accuracy"] is not None else "   n/a "
        print(
            f"id {r['id']!s:>4}  {acc}  {r['macs'] / 1e6:9.1f} MMAC  "
            f"{r['weight_bytes'] / 1e6:7.2f} MB{extra}  {r['key']}"
        )
    return 0
