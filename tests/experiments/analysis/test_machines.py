"""Which CPU model ran each job (``experiments.analysis.machines``): a record's provenance, a results dir's
machines.json for records from before provenance, or unknown; and where a comparison pairs two CPU models."""
import json

from experiments.analysis.jobs import load_jobs
from experiments.analysis.machines import (MACHINES_FILE, UNKNOWN, cpu_model, machine_of, machine_report, markdown,
                                           warnings)
from experiments.analysis.summary import summarize


def write(root, op, seed, width, top1, cpu=None):
    job = root / f"op={op},seed={seed},width={width}"
    job.mkdir(parents=True)
    record = {"status": "completed", "task": "classify", "model": "demonet", "op": op, "seed": seed, "width": width,
              "depth": 12, "data": "fashion_mnist", "epochs": 4, "top1": top1}
    if cpu:
        record["provenance"] = {"cpu": cpu, "git_commit": "x"}
    (job / "metrics.json").write_text(json.dumps(record))


def test_cpu_names_are_compared_without_trademarks():
    assert cpu_model("Intel(R) Xeon(R) Processor") == cpu_model("Intel Xeon") == "Intel Xeon"
    assert cpu_model("AMD EPYC 7B13 64-Core Processor") == "AMD EPYC 7B13 64-Core"
    assert cpu_model(None) is None and cpu_model("") is None


def test_recorded_attributed_and_unknown(tmp_path):
    write(tmp_path, "sum", 0, 8, 80.0, cpu="AMD EPYC")
    write(tmp_path, "star", 0, 8, 81.0)
    jobs = {j.get("op"): j for j in load_jobs(tmp_path)}
    assert machine_of(jobs["sum"]).label == "AMD EPYC" and machine_of(jobs["sum"]).recorded
    assert machine_of(jobs["star"]).label == UNKNOWN
    other = tmp_path.parent / "attributed"
    write(other, "star", 0, 8, 81.0)
    (other / MACHINES_FILE).write_text(json.dumps({"cpu": "Intel(R) Xeon(R)", "source": "README.md"}))
    attributed = machine_of(load_jobs(other)[0])
    assert attributed.label == "Intel Xeon*" and not attributed.recorded and attributed.source == "README.md"


def test_pairs_on_two_cpu_models_and_rows_on_different_ones(tmp_path):
    for seed in range(3):
        write(tmp_path, "sum", seed, 8, 80.0 + seed, cpu="Intel Xeon")
        write(tmp_path, "star", seed, 8, 81.0 + seed, cpu="Intel Xeon")
        write(tmp_path, "sum", seed, 16, 82.0 + seed, cpu="AMD EPYC")
        write(tmp_path, "star", seed, 16, 83.0 + seed, cpu="AMD EPYC" if seed else "Intel Xeon")
    jobs = load_jobs(tmp_path)
    report = machine_report(jobs, summarize(jobs))
    assert report.pairs[((8,), "star")].two == 0 and report.pairs[((16,), "star")].two == 1
    assert report.total("star").n == 6 and report.total("star").two == 1
    assert report.rows_differ
    text = " ".join(warnings(report))
    assert "1 of 6 pairs (width 16: 1 of 3) ran on two CPU models" in text
    assert "Rows ran on different CPU models (8: Intel Xeon; 16: AMD EPYC + Intel Xeon)" in text
    md = "\n".join(markdown(report))
    assert "| 16 | star | AMD EPYC (2), Intel Xeon (1) | **1 of 3** |" in md and "**Warning:**" in md


def test_one_machine_says_so_and_unknown_is_not_the_same(tmp_path):
    for seed in range(2):
        write(tmp_path / "a", "sum", seed, 8, 80.0, cpu="AMD EPYC")
        write(tmp_path / "a", "star", seed, 8, 81.0, cpu="AMD EPYC")
        write(tmp_path / "b", "sum", seed, 8, 80.0)
        write(tmp_path / "b", "star", seed, 8, 81.0)
    jobs = load_jobs(tmp_path / "a")
    report = machine_report(jobs, summarize(jobs))
    assert not warnings(report) and "Every run: AMD EPYC." in markdown(report)
    jobs = load_jobs(tmp_path / "b")
    report = machine_report(jobs, summarize(jobs))
    assert report.total("star").unknown == 2 and report.total("star").two == 0
    assert "whether a pair's two runs share a CPU model is unknown" in markdown(report)[-1]
