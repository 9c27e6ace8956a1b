"""Seed a sweep dir with finished jobs' records, so that a sweep counts them as done instead of rerunning them:

    python scripts/seed_sweep.py docs/results/fig1_width/runs outputs/sweeps/op_zoo/D \\
        --rename experiment=fig1_width:experiment=op_zoo --only width=8,16,32
    python scripts/seed_sweep.py docs/results/op_zoo/runs outputs/sweeps/op_zoo/D     # a preset's own records

Copies each completed job dir of SOURCE (its metrics.json, .hydra/ and probe.json; no checkpoint) into DEST
under its name, with --rename's OLD:NEW applied to the name: a sweep launched on DEST skips a job whose dir
holds a completed record of the same config hash (experiments/entry.py), and runs any other. A dir already in
DEST is left as it is. --only KEY=V1,V2 keeps jobs whose name has one of those values (repeatable). Exit 1,
with one line, when SOURCE holds no completed job, --only names a key no job name has or keeps none of them,
SOURCE and DEST are one dir, or DEST cannot be written.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from experiments.analysis.jobs import load_jobs
from experiments.errors import StarbenchError

KEEP = ("metrics.json", "probe.json", ".hydra")


def name_parts(name: str) -> dict:
    """A job dir's name (Hydra's ``key=value,...``) as a dict."""
    return dict(p.split("=", 1) for p in name.split(",") if "=" in p)


def wanted(name: str, only: dict) -> bool:
    parts = name_parts(name)
    return all(parts.get(key) in values for key, values in only.items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="dir of finished job dirs (a sweep dir or docs/results/<preset>/runs)")
    parser.add_argument("dest", type=Path, help="the sweep dir to seed (created if missing)")
    parser.add_argument("--rename", default=None, metavar="OLD:NEW", help="replace OLD with NEW in each job's name")
    parser.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2", help="keep these values only")
    args = parser.parse_args(argv)
    try:
        copied, kept = seed(args)
    except (StarbenchError, OSError) as e:
        print(f"seed_sweep: error: {e}", file=sys.stderr)
        return 1
    print(f"seeded {args.dest}: {copied} completed job(s) copied, {kept} already there")
    return 0


def seed(args) -> tuple:
    """Copy SOURCE's wanted completed jobs into DEST: (copied, already there)."""
    if not args.source.is_dir():
        raise StarbenchError(f"{args.source} is not a directory")
    if args.dest.exists() and args.dest.resolve() == args.source.resolve():
        raise StarbenchError(f"{args.source} is both the source and the dest")
    try:
        only = {k: set(v.split(",")) for k, v in (o.split("=", 1) for o in args.only)}
        old, new = args.rename.split(":", 1) if args.rename else ("", "")
    except ValueError:
        raise StarbenchError("--only takes KEY=V1,V2 and --rename OLD:NEW") from None
    completed = [record for record in load_jobs(args.source) if record.status == "completed"]
    if not completed:
        raise StarbenchError(f"{args.source} holds no completed job")
    names = [name_parts(record.run_dir.name) for record in completed]
    for key in only:  # a misspelled key (widht=8) would otherwise copy nothing and exit 0
        if not any(key in parts for parts in names):
            raise StarbenchError(f"--only {key}=...: no job name in {args.source} has {key} "
                                 f"(keys there: {', '.join(sorted({k for parts in names for k in parts}))})")
    chosen = [record for record in completed if wanted(record.run_dir.name, only)]
    if not chosen:
        raise StarbenchError(f"--only {' '.join(args.only)} keeps none of the {len(completed)} completed jobs")
    copied = kept = 0
    for record in chosen:
        job = record.run_dir
        target = args.dest / (job.name.replace(old, new) if old else job.name)
        if target.exists():
            kept += 1
            continue
        staging = target.with_name(target.name + ".seeding")  # never a half-copied job dir under its real name
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir(parents=True)
            for item in KEEP:
                if (job / item).is_dir():
                    shutil.copytree(job / item, staging / item)
                elif (job / item).is_file():
                    shutil.copy2(job / item, staging / item)
            staging.rename(target)
        except OSError:  # a full disk, a file where a dir should be: no staging dir left behind
            shutil.rmtree(staging, ignore_errors=True)
            raise
        copied += 1
    return copied, kept


if __name__ == "__main__":
    sys.exit(main())
