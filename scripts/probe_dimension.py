"""The implicit-dimension probe: do star's hidden features span more dimensions than sum's?

    python scripts/probe_dimension.py RUN_DIR [RUN_DIR ...] [--out outputs/probe_dimension] [--images 256]
    python scripts/probe_dimension.py outputs/sweeps/fig1_width/*/op=*      # every job of a sweep

What the paper predicts ("Rewrite the Stars", Ma et al., CVPR 2024, sec. 3): the element-wise product of two
linear branches maps a d-dimensional input into an implicit space of about d^2/2 dimensions (every pairwise
product of input features), while a sum stays in a space of the input's dimension. So, at the same width,
**star's fused hidden features op(act(x1), x2) should span more dimensions than sum's**. The paper makes no
prediction of how that lead changes with width; its d^2/2 grows with d (faster than the explicit width 3d), so if
its argument says anything about width it is that the lead grows. A richer hidden space might also make each
block's output more linearly separable (higher probe accuracy). The probe measures both; it assumes neither.

For each trained DemoNet run (a dir with .hydra/config.yaml and last.pt; its EMA weights when it kept an
EMA), per block: (a) the effective rank (Roy & Vetterli 2007: exp of the entropy of the normalised singular
values) and the number of singular values reaching 90% and 99% of the energy of the fused hidden features, the
input of the block's Linear g, over every token of the first --images evaluation images (column means removed;
experiments/analysis/rank.py); (b) the top-1 of a linear probe (softmax regression,
experiments.analysis.baseline.fit_linear) on each block's mean-pooled output, fitted on the first
--probe-train training images and scored on the first --probe-test evaluation images. The runs are grouped by
(op, width, depth); each statistic is averaged over blocks, then over seeds (95% t interval).

Writes probe_dimension.json (every run's per-block numbers and the groups) and probe_dimension.png (effective
rank and 99%-energy count averaged over blocks, and the last block's probe accuracy, against width, one line
per op) into --out, and prints, for each width with both star and sum, whether star's effective rank is the
higher. Exit 1 with a one-line error for a dir that is not a trained DemoNet classification run.

Each completed run's own result is also kept in its dir as probe.json, with the settings it was measured with and
the run's config hash, so it outlives the checkpoint: a run dir holding its records but no last.pt (a sweep's
committed records, docs/results/<preset>/runs) is summarised from its probe.json when the settings match. A run is
probed again when its probe.json is missing, stale (other settings, another configuration) or --recompute is given.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.analysis.probe import (PROBE_FILE, PROBE_TEST, PROBE_TRAIN, RANK_IMAGES, probe_dimension,
                                        probe_settings)
from experiments.errors import StarbenchError
from experiments.tools.export import model_from_run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--out", type=Path, default=Path("outputs") / "probe_dimension")
    ap.add_argument("--images", type=int, default=RANK_IMAGES, help="evaluation images whose tokens the rank "
                    f"statistics use (default {RANK_IMAGES})")
    ap.add_argument("--probe-train", type=int, default=PROBE_TRAIN, help="training images the linear probe is "
                    f"fitted on (default {PROBE_TRAIN})")
    ap.add_argument("--probe-test", type=int, default=PROBE_TEST, help="evaluation images it is scored on "
                    f"(default {PROBE_TEST})")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--recompute", action="store_true", help=f"probe every run from its checkpoint, even one whose "
                    f"{PROBE_FILE} has these settings")
    args = ap.parse_args(argv)
    try:
        lines = probe_dimension(args.run_dirs, args.out, probe_settings(args.images, args.probe_train, args.probe_test),
                                model_from_run, recompute=args.recompute, threads=args.threads)
    except StarbenchError as e:
        print(f"probe_dimension: error: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
