"""Summarise a sweep dir by hand (a SLURM sweep, an interrupted one, or a new metric):

    python scripts/aggregate.py outputs/sweeps/fig1_width/2026-01-02_03-04-05 [--metric best_top1] [--no-wandb]
    python scripts/aggregate.py SWEEP_DIR --reference max      # every other op against max (default: sum)

Writes summary.csv, summary.md and star_vs_sum.png into the sweep dir; when the jobs logged to
W&B, also updates the sweep's W&B summary run. Every op that is a name gets its paired gap, 95% CI,
significance and pooled test against the reference op.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from experiments.entry import summarize_sweep
from experiments.errors import StarbenchError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--metric", default=None, help="record field to compare (top1, best_top1, top5, "
                        "map50_95; default: map50_95 for detection sweeps, else top1)")
    parser.add_argument("--reference", default=None, metavar="OP", help="the op every other op is compared "
                        "with (default: sum); it must have completed jobs in the sweep")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the summary run to W&B")
    args = parser.parse_args(argv)
    try:
        paths = summarize_sweep(args.sweep_dir, args.metric, wandb=None if args.no_wandb else "auto",
                                reference=args.reference)
    except StarbenchError as e:
        print(f"aggregate: error: {e}", file=sys.stderr)
        return 1
    print("\n".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
