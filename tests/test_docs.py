"""Numbers in docs/ that can be recomputed from committed files or a model built in milliseconds: recomputed, and
the docs must say what the code says (a doc that went stale fails here, not in a new user's hands)."""
import csv

import pytest

from tests.conftest import ROOT, compose_cfg


def test_failures_md_gives_the_small_models_counts_as_run_py_prints_them():
    from experiments.train.models import build_model, count_flops, count_params, human_count
    model = build_model(compose_cfg("width=8", "depth=2", "op=star"), 1, 10)  # Fashion-MNIST: 1 x 28 x 28, 10 classes
    params, flops = count_params(model), count_flops(model, (1, 28, 28))
    line = f"demonet op=star width=8 depth=2: {human_count(params)} params, {human_count(flops)} FLOPs"
    doc = (ROOT / "docs" / "failures.md").read_text()
    assert line in doc and f"{params:,} parameters, {flops:,} multiply-adds" in doc


@pytest.mark.parametrize("op", ["star", "sum"])
def test_detection_md_gives_the_committed_runs_mean_and_std(op):
    from experiments.analysis.stats import mean_std
    rows = [r for r in csv.DictReader((ROOT / "docs" / "results" / "detect_op" / "summary.csv").open()) if r["op"] == op]
    cells = []
    for metric in ("map50_95", "map50"):
        mean, std = mean_std([float(r[metric]) for r in rows])
        cells.append(f"{mean:.2f} ± {std:.2f}")
    row = f"| StarNet-S050-YOLOv8, {op} | 2.22 | 6.52 |"
    (line,) = [line for line in (ROOT / "docs" / "detection.md").read_text().splitlines() if line.startswith(row)]
    assert line.endswith(f"| {cells[0]} | {cells[1]} | {len(rows)} |"), line
