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
from typing import List

from experiments.analysis.verdict import Results, blocks_in, known_intervals, render, stale_quotes
from experiments.errors import StarbenchError
from experiments.records import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]


def default_pages(root: Path) -> List[Path]:
    pages = [root / "docs" / "reproduction.md", root / "README.md",
             *sorted((root / "docs" / "results").rglob("README.md"))]
    return [p for p in pages if p.exists()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", type=Path, help="markdown pages (default: the reproduction's pages)")
    parser.add_argument("--results", type=Path, default=ROOT / "docs" / "results", help="the results root")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a stale block or an "
                        "interval no record gives")
    args = parser.parse_args(argv)
    pages = args.pages or default_pages(ROOT)
    try:
        results = Results(args.results)
        problems: List[str] = []
        known = known_intervals(results) if args.check else []
        for page in pages:
            text = page.read_text()
            new = render(text, results) if blocks_in(text) else text
            if args.check:
                if new != text:
                    problems.append(f"{page}: generated blocks are stale ({', '.join(blocks_in(text))}); run "
                                    "python scripts/docs_tables.py")
                problems += [f"{page}:{line}: '{quote}' is no statistic of the records"
                             for line, quote in stale_quotes(new, known)]
            elif new != text:
                atomic_write_text(page, new)
                print(f"rewrote {page}")
    except (StarbenchError, OSError) as e:
        print(f"docs_tables: error: {e}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
