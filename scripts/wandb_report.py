"""A W&B Report (and with --workspace a saved workspace view) for one sweep's W&B group:

    python scripts/wandb_report.py outputs/sweeps/2026-01-02/03-04-05 --project ENTITY/PROJECT [--workspace]
    python scripts/wandb_report.py SWEEP_DIR --project ENTITY/PROJECT --dry-run     # JSON, W&B not contacted

The report: the verdict from summary.md; the sweep's metric (top1, or map50_95 for detection sweeps) per
swept-axis value and op, mean ± std over seeds; per-epoch validation curves grouped by op; parallel
coordinates over the swept knobs; a run comparer with only the config keys that differ; the summary
run's table, figure and gap chart. Needs `pip install -e ".[report]"`; saving needs a W&B login
(`wandb login`). Run scripts/aggregate.py on the sweep first (summary.md, and the summary run).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments.errors import StarbenchError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--project", required=True, help="ENTITY/PROJECT the sweep's runs are in")
    parser.add_argument("--metric", default=None, help="record field to compare (default: as aggregate: "
                        "map50_95 for detection sweeps, else top1)")
    parser.add_argument("--reference", default=None, metavar="OP", help="the op the others are compared with "
                        "(default: sum, as aggregate)")
    parser.add_argument("--workspace", action="store_true", help="also save a workspace view of the group")
    parser.add_argument("--dry-run", action="store_true", help="print the objects' structure as JSON; "
                        "nothing is sent to W&B")
    args = parser.parse_args(argv)
    from experiments.analysis import wandb_report as wrep
    try:
        entity, project = wrep.parse_project(args.project)
        view = wrep.load_view(args.sweep_dir, args.metric, args.reference)
        report = wrep.build_report(view, entity, project)
        workspace = wrep.build_workspace(view, entity, project) if args.workspace else None
    except StarbenchError as e:
        parser.error(str(e))
    if args.dry_run:
        out = {"report": wrep.describe(report)}
        if workspace is not None:
            out["workspace"] = wrep.describe(workspace)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    try:
        wrep.require_login()
        report.save()
        print(report.url)
        if workspace is not None:
            workspace.save()
            print(workspace.url)
    except StarbenchError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the W&B API: permissions, a missing project, the network
        first = (str(e).strip().splitlines() or [""])[0]
        print(f"{parser.prog}: error: saving to W&B failed: {type(e).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
