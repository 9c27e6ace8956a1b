import math

import pytest

from experiments.analysis.jobs import Job
from experiments.analysis.reruns import compare_reruns, markdown, pooled_seed_sd


def job(name, op, seed, top1, history_top1=None, cpu=None, status="completed", config_hash=None):
    history = [{"epoch": 1, "top1": history_top1 if history_top1 is not None else top1 - 1, "train_loss": 0.5,
                "images_per_s": 1000.0 + seed}]  # a timing: differs between identical runs
    record = {"status": status, "top1": top1, "history": history, "config_hash": config_hash or f"{op}-{seed}"}
    if cpu:
        record["provenance"] = {"cpu": cpu}
    return Job(name, status, None, {"op": op, "seed": seed, "width": 8}, record)


def test_identical_and_drifting_reruns():
    records = [job(f"r{op}{s}", op, s, v) for op, vals in (("star", (88.0, 88.4, 87.6)), ("sum", (87.0, 87.3, 87.6)))
               for s, v in enumerate(vals)]
    reruns = [job("a", "star", 0, 88.0, cpu="AMD EPYC"),             # bit for bit
              job("b", "star", 1, 88.1, cpu="AMD EPYC"),             # drifted
              job("c", "sum", 0, 87.0, history_top1=86.5, cpu="AMD EPYC"),  # same final, another epoch 1
              job("d", "sum", 2, 87.9, status="interrupted"),        # not finished: not compared
              job("e", "sum", 9, 80.0, cpu="AMD EPYC")]              # no record
    report = compare_reruns(records, reruns)
    assert [(p.name, p.identical) for p in report.pairs] == [("a", True), ("b", False), ("c", False)]
    assert [round(p.diff, 6) for p in report.pairs] == [0.0, -0.3, 0.0]
    assert report.identical == 1 and report.unmatched == ["e"]
    diffs = [0.0, -0.3, 0.0]
    mean, sd = sum(diffs) / 3, math.sqrt(sum((d + 0.1) ** 2 for d in diffs) / 2)
    assert report.diff.mean == pytest.approx(mean) and report.diff_sd == pytest.approx(sd)
    assert report.diff.hi - report.diff.mean == pytest.approx(4.302653 * sd / math.sqrt(3), rel=1e-5)  # t(.975, 2)
    # both groups (star, sum at width 8) have 3 seeds with SD 0.4 and 0.3: pooled sqrt((2*.16 + 2*.09) / 4)
    assert report.seed_sd == pytest.approx(math.sqrt((0.16 + 0.09) / 2))
    assert report.cpus == ("not recorded", "AMD EPYC")
    md = "\n".join(markdown(report))
    assert "| b | 88.40 | 88.10 | -0.30 | no |" in md and "1 of 3 reruns repeat their record bit for bit" in md
    assert "No completed record for 1 rerun(s): e." in md


def test_seed_sd_needs_two_seeds_in_a_group():
    assert pooled_seed_sd([job("x", "star", 0, 88.0), job("y", "sum", 0, 87.0)], "top1") is None
