"""Compare reruns of finished jobs with their records (docs/reproduction.md, "Determinism"):

    python scripts/compare_reruns.py RECORDS_DIR RERUN_DIR [--metric top1] [--out FILE.md]

RECORDS_DIR: a sweep dir or a committed results dir (docs/results/<preset>/runs); RERUN_DIR: a sweep dir
holding reruns of some of its jobs (matched by config hash). Prints, per rerun, both results and whether it
repeats its record bit for bit, then the mean difference with its 95% interval beside the records' seed-to-seed
spread; --out also writes that as markdown.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.analysis.jobs import load_jobs
from experiments.analysis.reruns import compare_reruns, markdown
from experiments.errors import StarbenchError
from experiments.records import atomic_write_text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("records", type=Path, help="sweep or results dir with the jobs' records")
    parser.add_argument("reruns", type=Path, help="sweep dir with reruns of some of them")
    parser.add_argument("--metric", default="top1")
    parser.add_argument("--out", type=Path, help="also write the report here (markdown)")
    args = parser.parse_args(argv)
    try:
        report = compare_reruns(load_jobs(args.records), load_jobs(args.reruns), args.metric)
        if not report.pairs:
            raise StarbenchError(f"no completed rerun in {args.reruns} matches a completed record in {args.records}")
    except StarbenchError as e:
        print(f"compare_reruns: error: {e}", file=sys.stderr)
        return 1
    text = "\n".join(markdown(report)) + "\n"
    print(text, end="")
    if args.out:
        atomic_write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
