"""Summarise a sweep dir by hand (a SLURM sweep, an interrupted one, or a new metric):

    python scripts/aggregate.py outputs/sweeps/fig1_width/2026-01-02_03-04-05 [--metric best_top1] [--no-wandb]
    python scripts/aggregate.py SWEEP_DIR --reference max      # every other op against max (default: sum)

Writes summary.csv, summary.md and star_vs_sum.png into the sweep dir; when the jobs logged to
W&B, also updates the sweep's W&B summary run. Every op that is a name gets its paired gap, 95% CI,
significance and pooled test against the reference op.

Committed results (each job's records under docs/results/<preset>/runs) are summarised into the results dir with
--out, from one or more dirs, --only some of their jobs (by knob; no W&B):

    python scripts/aggregate.py docs/results/fig1_width/runs --out docs/results/fig1_width
    python scripts/aggregate.py docs/results/op_zoo/runs docs/results/fig1_width/runs --only width=8,16,32 \\
        --out docs/results/op_zoo     # the zoo's 90 jobs and the star and sum jobs it shares with fig1_width
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from experiments.entry import summarize_dirs, summarize_sweep
from experiments.errors import StarbenchError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dirs", type=Path, nargs="+", metavar="SWEEP_DIR")
    parser.add_argument("--metric", default=None, help="record field to compare (top1, best_top1, top5, "
                        "map50_95; default: map50_95 for detection sweeps, else top1)")
    parser.add_argument("--reference", default=None, metavar="OP", help="the op every other op is compared "
                        "with (default: sum); it must have completed jobs in the sweep")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the summary run to W&B")
    parser.add_argument("--out", type=Path, default=None, help="write the summary files here instead of into the "
                        "sweep dir (needed with several dirs; never logs to W&B)")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2",
                        help="keep the jobs whose knob KEY is one of these values (repeatable; needs --out)")
    args = parser.parse_args(argv)
    try:
        only = {}
        for item in args.only:
            key, sep, values = item.partition("=")
            if not sep or not key or not values:
                raise StarbenchError(f"--only takes KEY=V1,V2, not '{item}'")
            only[key] = values.split(",")
        if args.out is None and (len(args.sweep_dirs) > 1 or only):
            raise StarbenchError("several sweep dirs, or --only, need --out (the dir the summary files go to)")
        if args.out is None:
            paths = summarize_sweep(args.sweep_dirs[0], args.metric, wandb=None if args.no_wandb else "auto",
                                    reference=args.reference)
        else:
            paths = summarize_dirs(args.sweep_dirs, args.out, args.metric, reference=args.reference, only=only)
    except StarbenchError as e:
        print(f"aggregate: error: {e}", file=sys.stderr)
        return 1
    print("\n".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
