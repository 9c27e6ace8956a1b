"""Rewrite the generated tables of the reproduction's pages from the committed records, or check them:

    python scripts/docs_tables.py            # rewrite every generated block of the pages below
    python scripts/docs_tables.py --check    # exit 1, naming each stale block and each interval no record gives

The pages: docs/reproduction.md, README.md and every README.md under docs/results. A block is the lines
between ``<!-- generated: NAME ... -->`` and ``<!-- end generated: NAME -->``; NAME is one of
``experiments.analysis.verdict.BLOCKS`` (the verdict table, each preset's table, the op zoo's tables, the reruns, the
probe). The numbers come from docs/results/<preset>/runs (moons: its summary.csv, the records not being kept), the
linear baselines from each results dir's linear_baseline.json (never refitted). --check also reads every interval
quoted in the pages' prose ("+0.07 [−0.05, +0.19]") and fails on one that is no statistic of the records
(``verdict.known_intervals``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.analysis.verdict import default_pages, update_pages
from experiments.errors import StarbenchError

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", type=Path, help="markdown pages (default: the reproduction's pages)")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results", help="the results root")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a stale block or an "
                        "interval no record gives")
    args = parser.parse_args(argv)
    try:
        problems = update_pages(args.pages or default_pages(ROOT), args.results, check=args.check)
    except (StarbenchError, OSError) as e:
        print(f"docs_tables: error: {e}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
