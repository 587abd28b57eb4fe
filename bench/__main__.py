"""``python -m bench`` runs every case (quick); ``--full`` runs the long forms.

``--only floor,dispatch`` picks cases; ``--case MODULE --out FILE`` is how the
harness runs one case in a child process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import harness


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="run the long forms")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--out", type=Path, default=harness.RESULTS / "latest.json")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        return harness.case_main(args.case, quick=not args.full, out=args.out)
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - {case.name for case in harness.CASES}
    if unknown:
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    harness.run_all(quick=not args.full, only=only, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
