"""Smoke runs of the benchmark scripts at toy sizes: they must run end to end and print their tables
(the numbers themselves are recorded in docs/, from full-size runs)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def run_script(name, *args, check=True):
    proc = subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_train_throughput_prints_every_side():
    out = run_script("benchmark_train_throughput.py", "--variant", "s050", "--batch", 2, "--size", 32,
                     "--threads", 1, "--repeats", 2, "--sides", "starbench,fast_dwconv").stdout
    for side in ("timm default (NCHW)", "timm channels_last", "starbench ", "starbench + fast_dwconv"):
        assert side in out
    assert "per round vs CL" in out


def test_train_throughput_rejects_an_unknown_side():
    proc = run_script("benchmark_train_throughput.py", "--sides", "warp_drive", check=False)
    assert proc.returncode == 2 and "unknown side(s) warp_drive" in proc.stderr


def test_flops_reports_a_fraction_of_peak():
    out = run_script("benchmark_flops.py", "--width", 8, "--depth", 1, "--batch", 4, "--steps", 1, "--rounds", 1,
                     "--threads", 1).stdout
    assert "GFLOP (fwd+bwd)" in out and "of peak" in out


def test_latency_table_and_json(tmp_path):
    pytest.importorskip("onnxruntime")
    out = run_script("benchmark_latency.py", "--variants", "s050", "--size", 32, "--rounds", 1, "--iters", 1,
                     "--warmup", 1, "--threads", 1, "--json", tmp_path / "latency.json").stdout
    assert "StarNet-S050 star" in out and "timm starnet_s050" in out
    assert json.loads((tmp_path / "latency.json").read_text())


def test_gpu_script_runs_on_cpu(tmp_path):
    run_script("benchmark_gpu.py", "--device", "cpu", "--batch", 2, "--steps", 1, "--warmup", 1, "--no-compile",
               "--size", 64, "--json", tmp_path / "gpu.json")
    assert json.loads((tmp_path / "gpu.json").read_text())
