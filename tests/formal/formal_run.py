"""``make formal``: run every proof of :mod:`formal_props` and write
``build/formal/report.json`` (each property's status, mode, depth and time).

``python tests/formal/formal_run.py [--out build/formal] [--only NAME,...] [--fast]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import formal_props as fp  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/formal"))
    ap.add_argument("--only", default="", help="comma-separated proof names")
    ap.add_argument("--fast", action="store_true", help="only the proofs pytest runs")
    args = ap.parse_args(argv)
    missing = fp.missing_tools()
    if missing:
        print(f"formal: missing tools: {', '.join(missing)} (pip install -e '.[dev,fpga]')")
        return 2
    proofs = fp.proofs()
    if args.only:
        names = set(args.only.split(","))
        unknown = names - {p.name for p in proofs}
        if unknown:
            print(f"formal: unknown proof(s): {', '.join(sorted(unknown))}")
            return 2
        proofs = [p for p in proofs if p.name in names]
    if args.fast:
        proofs = [p for p in proofs if p.fast]
    args.out.mkdir(parents=True, exist_ok=True)
    env = fp.tool_env(args.out / "bin")
    fp.warm_up(env)
    report_path = args.out / "report.json"
    results = []
    for p in proofs:
        print(f"formal: {p.name} ({p.mode}, depth {p.depth}) ...", flush=True)
        r = fp.run_proof(p, args.out / p.name, env)
        results.append(r)
        tag = "" if r["as_expected"] else " (UNEXPECTED)"
        print(f"formal: {p.name}: {r['status']}{tag} in {r['seconds']} s", flush=True)
        report_path.write_text(json.dumps({"solver": fp.SOLVER, "proofs": results}, indent=2))
    bad = [r for r in results if not r["as_expected"]]
    known = [r for r in results if r["status"] == "FAIL" and r["as_expected"]]
    print(
        f"formal: {sum(r['status'] == 'PASS' for r in results)} of {len(results)} proved, "
        f"{len(known)} known finding(s) reproduced, {len(bad)} unexpected; {report_path}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
