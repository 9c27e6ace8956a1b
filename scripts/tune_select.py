"""Apply a tuning sweep's selection rule (docs/protocol.md, amendment 6) and write the test-set preset that runs each
op at its own best trial:

    python scripts/tune_select.py outputs/sweeps/tune_width/<date> [--name tuned_width] [--seeds 6] [--conf conf]

For each (op, cell) of the sweep (``experiments.analysis.tuning``, written by ``experiments.analysis.selection``), the
trial with the highest validation score (ties: the smaller tuned values) becomes ``conf/tuned/<cell>_<op>.yaml`` (op,
cell and tuned knobs); the preset ``conf/experiment/<name>.yaml`` sweeps seeds 0..n-1 and those options (seed
outermost, then cell, then op, so each pair runs side by side), on the protocol's test-set data. Commit both before
launching ``python run.py experiment=<name>``. A sweep not finished (a job not completed, or an op short of a
trial of the grid) is refused in one line, before anything is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.analysis.selection import select_tuned
from experiments.errors import StarbenchError

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dir", type=Path, help="a finished tuning sweep (experiment=tune_width)")
    p.add_argument("--name", default="tuned_width", help="the preset to write (conf/experiment/<name>.yaml)")
    p.add_argument("--seeds", type=int, default=6, help="seeds per op and cell (the protocol's 6)")
    p.add_argument("--conf", type=Path, default=ROOT / "conf", help="the config dir to write into")
    p.add_argument("--metric", default=None, help="record field the rule maximises (default: top1)")
    a = p.parse_args(argv)
    if not a.sweep_dir.is_dir():
        p.error(f"{a.sweep_dir} is not a directory")
    if a.seeds < 2:
        p.error("--seeds must be at least 2")
    try:
        lines = select_tuned(a.sweep_dir, a.conf, a.name, a.seeds, a.metric)
    except StarbenchError as e:
        print(f"tune_select: error: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
