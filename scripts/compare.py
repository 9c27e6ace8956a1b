"""Rebuild a sweep's star-vs-sum table and figure from W&B, to check the dashboard against the
local summary:

    python scripts/compare.py --project ENTITY/PROJECT --group GROUP        # online (wandb.Api)
    python scripts/compare.py --project ENTITY/PROJECT --sweep SWEEP_DIR    # group from the sweep dir
    python scripts/compare.py --local SWEEP_DIR                             # the runs' local .wandb files

Writes summary.csv, summary.md and star_vs_sum.png into --out (default outputs/compare/<group>).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


from experiments.analysis import write_outputs
from experiments.records import sweep_group
from experiments.errors import StarbenchError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--project", help="W&B project path ENTITY/PROJECT (online)")
    source.add_argument("--local", type=Path, help="dir whose wandb/*/run-*.wandb files to read")
    parser.add_argument("--group", help="W&B group of the sweep (with --project)")
    parser.add_argument("--sweep", type=Path, help="sweep dir to derive the group from (with --project)")
    parser.add_argument("--metric", default=None, help="default: map50_95 for detection runs, else top1")
    parser.add_argument("--reference", default=None, metavar="OP", help="the op every other op is compared "
                        "with (default: sum)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from experiments.analysis import wandb_runs
    try:
        if args.project:
            if not (args.group or args.sweep):
                raise StarbenchError("--project needs --group GROUP or --sweep SWEEP_DIR")
            group = args.group or sweep_group(args.sweep)
            jobs, source_name = wandb_runs.jobs_from_api(args.project, group), f"W&B {args.project} group {group}"
        else:
            group = sweep_group(args.local)
            jobs, source_name = wandb_runs.jobs_from_local(args.local), f"W&B run files under {args.local}"
        out = args.out or Path("outputs") / "compare" / group
        _, paths = write_outputs(jobs, out, source_name, args.metric, reference=args.reference)
    except StarbenchError as e:
        print(f"compare: error: {e}", file=sys.stderr)
        return 1
    print("\n".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
