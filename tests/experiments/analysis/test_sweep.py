"""Sweep aggregation (``experiments.analysis.aggregate``) on hand-written job dirs, checked against statistics
worked out by hand."""
import csv
import json
import math

import pytest
import yaml

from experiments.analysis import aggregate, load_jobs, summarize
from experiments.errors import StarbenchError

# width -> op -> per-seed top1
RESULTS = {16: {"sum": [70.0, 72.0, 74.0], "star": [75.0, 76.0, 80.0]},
           32: {"sum": [80.0, 81.0, 82.0], "star": [80.5, 80.0, 83.5]}}


def write_job(sweep, status="completed", error=None, **fields):
    name = ",".join(f"{k}={fields[k]}" for k in ("op", "seed", "width"))
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"{k}={fields[k]}" for k in ("op", "seed", "width")]))
    record = {"status": status, "error": error, "task": "classify", "model": "demonet", "variant": None,
              "act": "gelu", "depth": 12, "data": "fashion_mnist", "epochs": 4, "history": [], **fields}
    (job / "metrics.json").write_text(json.dumps(record))
    return job


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweeps" / "fig1"
    for width, ops in RESULTS.items():
        for op, accs in ops.items():
            for seed, acc in enumerate(accs):
                write_job(root, op=op, seed=seed, width=width, top1=acc, best_top1=acc + 0.1)
    write_job(root, status="failed", error="ValueError: boom", op="star", seed=3, width=32, top1=None)
    (root / "never_started" / ".hydra").mkdir(parents=True)
    (root / "never_started" / ".hydra" / "overrides.yaml").write_text("- op=sum\n- seed=3\n- width=32\n")
    return root


def test_summary_rows_and_statistics(sweep):
    jobs = load_jobs(sweep)
    assert len(jobs) == 14
    summary = summarize(jobs)
    assert summary.axes == ["width"]
    assert [r.key for r in summary.rows] == [(16,), (32,)]
    narrow, wide = summary.rows
    assert narrow.gap.significant and narrow.gap.mean == pytest.approx(5)
    # diffs 0.5, -1, 1.5: mean 1/3, sd sqrt(19/12); the interval spans 0
    half = 4.302653 * math.sqrt(19 / 12) / math.sqrt(3)
    assert wide.gap.mean == pytest.approx(1 / 3)
    assert wide.gap.lo == pytest.approx(1 / 3 - half, abs=1e-5)
    assert wide.gap.significant is False
    assert wide.gap.n == 3  # the failed seed-3 star job is not paired


def test_files_written_and_failures_listed(sweep):
    paths = aggregate(sweep, wandb=None)
    assert [p.name for p in paths] == ["summary.csv", "summary.md", "star_vs_sum.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    md = (sweep / "summary.md").read_text()
    assert "| 16 | 72.00 ± 2.00 | 77.00 ± 2.65 | +5.00 [+2.52, +7.48] | 3 | yes |" in md
    assert "| 32 | 81.00 ± 1.00 | 81.33 ± 1.89 | +0.33 [-2.79, +3.46] | 3 | no |" in md
    assert "Star vs sum: DemoNet (depth 12) on fashion_mnist (4 epochs, 3 seeds)" in md
    assert "ValueError: boom" in md and "never_started" in md
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 14
    assert {r["status"] for r in rows} == {"completed", "failed", "missing"}
    assert list(rows[0])[:6] == ["job", "status", "error", "op", "seed", "width"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed[0]["error"] == "ValueError: boom" and failed[0]["width"] == "32"


def test_best_top1_metric(sweep):
    summary = summarize(load_jobs(sweep), metric="best_top1")
    assert summary.rows[0].values("sum") == pytest.approx([70.1, 72.1, 74.1])


def test_other_ops_are_reported_outside_the_gap(sweep):
    for seed, acc in enumerate([77.0, 78.0, 79.0]):  # e.g. a per-stage op list, op=[sum,sum,star,star]
        write_job(sweep, op="[sum,sum,star,star]", seed=seed, width=16, top1=acc)
    aggregate(sweep, wandb=None)
    md = (sweep / "summary.md").read_text()
    assert "| 16 | 72.00 ± 2.00 | 77.00 ± 2.65 | +5.00 [+2.52, +7.48] | 3 | yes |" in md  # the gap unchanged
    assert "## Other ops (not in the gap)" in md
    assert "| 16 | `[sum,sum,star,star]` | 78.00 ± 1.00 | 3 |" in md, md


def test_unknown_metric_is_an_error_and_keeps_the_summary(sweep):
    aggregate(sweep, wandb=None)
    before = (sweep / "summary.md").read_text()
    with pytest.raises(StarbenchError, match="no completed job records metric 'top_1'; they record: .*top1"):
        aggregate(sweep, metric="top_1", wandb=None)
    assert (sweep / "summary.md").read_text() == before


def test_sweep_without_axes_and_bad_dir(tmp_path):
    for op, acc in (("sum", 60.0), ("star", 65.0)):
        write_job(tmp_path / "s", op=op, seed=0, width=8, top1=acc)
    summary = summarize(load_jobs(tmp_path / "s"))
    assert summary.axes == [] and summary.rows[0].gap.mean == pytest.approx(5)
    aggregate(tmp_path / "s", wandb=None)
    assert "| all | 60.00 | 65.00 | +5.00 | 1 | n/a (1 pair) |" in (tmp_path / "s" / "summary.md").read_text()
    with pytest.raises(Exception, match="does not exist"):
        aggregate(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no jobs found"):
        aggregate(tmp_path / "empty")


def _sweep_of(root, results, extra=None):
    """results: width -> op -> per-seed top1."""
    for width, ops in results.items():
        for op, accs in ops.items():
            for seed, acc in enumerate(accs):
                write_job(root, op=op, seed=seed, width=width, top1=acc, **(extra or {}))
    return root


def test_degenerate_intervals_are_not_significant(tmp_path):
    # Top-1 moves in steps: equal paired differences give a zero-width interval, which says nothing.
    sweep = _sweep_of(tmp_path / "s", {8: {"sum": [80.0, 81.0], "star": [79.8, 80.8]},
                                       16: {"sum": [80.0, 81.0, 82.0], "star": [80.2, 81.2, 82.2]}})
    aggregate(sweep, wandb=None)
    md = (sweep / "summary.md").read_text()
    assert "| -0.20 [-0.20, -0.20] | 2 | n/a (2 pairs) |" in md
    assert "| 3 | n/a (no spread) |" in md
    assert "| yes |" not in md
    assert "cannot separate" not in md


def test_runs_that_cannot_separate_the_ops_say_so(tmp_path):
    sweep = _sweep_of(tmp_path / "s", {8: {"sum": [50.0, 51.0, 52.0], "star": [50.0, 51.0, 52.0]},
                                       16: {"sum": [55.0, 56.0, 57.0], "star": [55.0, 56.0, 57.0]}})
    aggregate(sweep, wandb=None)
    md = (sweep / "summary.md").read_text()
    assert "**Not evidence either way: these runs cannot separate the ops.**" in md.split("## ")[0]  # first


def test_title_counts_runs_per_cell(tmp_path):
    sweep = _sweep_of(tmp_path / "s", {8: {"sum": [80.0, 81.0], "star": [80.5]}})
    aggregate(sweep, wandb=None)
    assert "(4 epochs, 1–2 seeds per cell)" in (sweep / "summary.md").read_text()


def test_pooled_section_in_summary(sweep):
    aggregate(sweep, wandb=None)
    md = (sweep / "summary.md").read_text()
    assert "## Pooled over all 6 pairs (2 rows)" in md
    assert "| star wins / ties / losses | 5 / 0 / 1 |" in md  # gaps 5, 4, 6 and 0.5, -1, 1.5
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert {r["pooled_wins"] for r in rows} == {"5"} and {r["pooled_pairs"] for r in rows} == {"6"}
    assert float(rows[0]["pooled_gap"]) == pytest.approx((5 + 4 + 6 + 0.5 - 1 + 1.5) / 6)


SYNTHETIC = {"name": "synthetic", "image_size": 8, "in_chans": 1, "num_classes": 4, "patch_size": 4,
             "train_size": 128, "val_size": 64, "augment": False, "noise": 0.5, "mean": [0.0], "std": [1.0]}


def test_linear_baseline_and_trained_regime_check(tmp_path):
    sweep = _sweep_of(tmp_path / "s", {8: {"sum": [99.0, 99.5, 1.0], "star": [99.0, 99.2, 99.9]}})
    for job in sweep.iterdir():  # the saved config tells which images the jobs trained and scored on
        record = json.loads((job / "metrics.json").read_text())
        (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(
            {"data": SYNTHETIC, **{k: record[k] for k in ("op", "seed", "width")}}))
        record["history"] = [{"epoch": 1, "top1": record["top1"] - 1.0}, {"epoch": 2, "top1": record["top1"]}]
        (job / "metrics.json").write_text(json.dumps(record))
    aggregate(sweep, wandb=None)
    md = (sweep / "summary.md").read_text()
    baseline = json.loads((sweep / "linear_baseline.json").read_text())
    (value,) = baseline.values()
    assert f"Linear baseline (softmax regression on the same training images, same evaluation images): " \
           f"**{value:.2f}%**" in md
    assert "- 5 of 6 runs beat the linear baseline" in md            # the 1% run is flagged, not dropped
    assert "- 0 of 6 runs gained less than 0.3 points in their last epoch." in md  # each gained 1 point
    assert "op=sum, seed=2 (1.00" in md.split("Flagged")[1]
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert {r["linear_baseline"] for r in rows} == {str(value)} and {r["last_epoch_gain"] for r in rows} == {"1.0"}


def test_summary_files_are_replaced_atomically(sweep, monkeypatch):
    """A full disk while the summary is rewritten leaves the previous summary.csv / .md / .png whole (and no temp
    file), not a truncated one: they go through records.atomic_write like metrics.json."""
    import errno
    import os

    paths = aggregate(sweep, wandb=None)
    before = {p.name: p.read_bytes() for p in paths}
    write_job(sweep, op="sum", seed=4, width=16, top1=10.0, best_top1=10.0)  # the next summary differs

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StarbenchError, match="No space left"):
        aggregate(sweep, wandb=None)
    assert {p.name: p.read_bytes() for p in paths} == before
    assert not list(sweep.glob(".summary*")) and not list(sweep.glob(".star_vs_sum*"))
    monkeypatch.undo()
    # each file alone, too (aggregate stops at the first failure)
    from experiments.analysis import tables
    from experiments.analysis.figures import plot
    summary = summarize(load_jobs(sweep))
    for write, path in ((lambda p: tables.write_csv(load_jobs(sweep), summary, p), paths[0]),
                        (lambda p: tables.write_markdown(load_jobs(sweep), summary, p, str(sweep)), paths[1]),
                        (lambda p: plot(summary, p), paths[2])):
        monkeypatch.setattr(os, "fsync", full_disk)
        with pytest.raises(StarbenchError):
            write(path)
        monkeypatch.undo()
        assert path.read_bytes() == before[path.name]


def test_summary_names_the_machines_and_warns_on_pairs_across_two(sweep):
    """Records with provenance name their CPU; a pair across two CPU models is a warning in summary.md."""
    for job in sweep.glob("op=*"):
        path = job / "metrics.json"
        record = json.loads(path.read_text())
        cross = record["op"] == "star" and record["width"] == 32 and record["seed"] == 0
        record["provenance"] = {"cpu": "Intel(R) Xeon(R) Processor" if cross else "AMD EPYC"}
        path.write_text(json.dumps(record))
    aggregate(sweep, wandb=None)
    md = (sweep / "summary.md").read_text()
    assert "## Machines (the CPU model of each run)" in md
    assert "| 32 | star | AMD EPYC (2), Intel Xeon (1) | **1 of 3** |" in md   # the failed seed 3 counts nowhere
    assert "**Warning:** star − sum: 1 of 6 pairs (width 32: 1 of 3) ran on two CPU models" in md


def test_committed_results_summarised_from_several_dirs(tmp_path):
    """aggregate_dirs: the jobs of several dirs, only some kept, into another dir; a bad key is an error."""
    from experiments.analysis import aggregate_dirs
    a, b = tmp_path / "a", tmp_path / "b"
    for seed in range(3):
        write_job(a, op="max", seed=seed, width=16, top1=81.0 + seed)
        for width in (16, 32):
            for op in ("sum", "star"):
                write_job(b, op=op, seed=seed, width=width, top1=80.0 + seed + (op == "star"))
    paths = aggregate_dirs([a, b], tmp_path / "out", only={"width": ["16"]})
    md = paths[1].read_text()
    assert f"Source: `{a}, {b} (width = 16)`" in md and "jobs: 9 completed" in md and "| all | max |" in md
    with pytest.raises(StarbenchError, match="widht"):
        aggregate_dirs([a], tmp_path / "out", only={"widht": ["16"]})
