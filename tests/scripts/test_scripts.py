"""Smoke runs of the benchmark scripts at toy sizes: they must run end to end and print their tables
(the numbers themselves are recorded in docs/, from full-size runs)."""
import importlib.util
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPTS = ROOT / "scripts"


def run_script(name, *args, check=True):
    proc = subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def load_script(name):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), SCRIPTS / name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
                     "--warmup", 1, "--threads", 1, "--ort-profile", 2, "--tried", "--json",
                     tmp_path / "latency.json").stdout
    assert "StarNet-S050 star" in out and "timm starnet_s050" in out
    assert "ORT vs timm ORT" in out and "best vs timm best" in out and "ORT profile, timm starnet_s050" in out
    payload = json.loads((tmp_path / "latency.json").read_text())
    rows = {r["model"]: r for r in payload["rows"]}
    for name in ("StarNet-S050 star", "timm starnet_s050"):  # both naming schemes map onto the layer roles
        roles = set(payload["ort_profiles"][name]["ORT no spin"]["group_us"])
        assert {"stem", "downsample", "dwconv", "f1", "f2", "star op (Mul)", "g", "dwconv2"} <= roles, roles
    star, timm_row = rows["StarNet-S050 star"], rows["timm starnet_s050"]
    # like with like: ORT over ORT, PyTorch over PyTorch, best over best
    ort = lambda row: min(v for k, v in row["ms"].items() if k.startswith("ORT"))  # noqa: E731
    assert "ORT merged f1+f2" in star["ms"] and "ORT merged f1+f2" not in timm_row["ms"]
    assert {"ORT static batch", "ORT extended"} <= set(timm_row["ms"])
    assert star["vs_timm"]["ORT"] == pytest.approx(ort(timm_row) / ort(star))
    median, q1, q3 = star["vs_timm_per_round"]["ORT"]  # one round here: all three are that round's ratio
    assert median == q1 == q3 > 0 and "per round, StarNet-S050 star: " in out
    assert star["vs_timm"]["best"] == pytest.approx(min(timm_row["ms"].values()) / min(star["ms"].values()))
    assert star["vs_timm"]["PyTorch"] == pytest.approx(
        min(timm_row["ms"]["eager NCHW"], timm_row["ms"]["eager CL"])
        / min(v for k, v in star["ms"].items() if not k.startswith("ORT")))
    # the star row has timm's weights: every mode, ORT included, computes timm's logits
    assert star["err_vs"] == "timm eager" and star["max_err"] < 1e-4 and rows["StarNet-S050 sum"]["max_err"] < 1e-4


def test_threads_benchmark_as_is_and_busy(tmp_path):
    import os
    env = {**os.environ, "OMP_NUM_THREADS": "2"}  # the comparison needs 2 cores' worth of threads
    proc = subprocess.run([sys.executable, str(SCRIPTS / "benchmark_threads.py"), "--models", "tiny-b4", "--rounds",
                           "1", "--json", str(tmp_path / "threads.json")], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| tiny-b4 (4) | as is |" in proc.stdout and "| tiny-b4 (4) | +1 busy |" in proc.stdout
    results = json.loads((tmp_path / "threads.json").read_text())["results"]
    for res in results.values():
        r = res["tiny-b4"]
        assert r["threads"] in (1, 2) and set(r["ms"]) == {"1", "2"}
        assert r["auto_vs_best"] == pytest.approx(min(r["ms"].values()) / r["ms"][str(r["threads"])])


def test_protocol_cost_times_each_model_once_and_sums_each_sweep():
    out = run_script("benchmark_protocol_cost.py", "--presets", "budget_curve_smoke,no_act_smoke", "--rounds", 1).stdout
    models = out.split("(step cost")[0].strip().splitlines()[1:]
    # budget_curve_smoke: width 8; no_act_smoke: width 16 with act gelu and none.
    assert len(models) == 3 and sum(line.rstrip().endswith("1.00x") for line in models) >= 1
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.endswith(tuple("0123456789"))
            and line.split()[0].endswith("_smoke")}
    assert rows["budget_curve_smoke"][1] == "8" and rows["no_act_smoke"][1] == "8"  # jobs per sweep
    assert all(float(r[-1]) >= 0 for r in rows.values())  # hours: 0.00 on a fast machine


def test_gpu_script_runs_on_cpu(tmp_path):
    run_script("benchmark_gpu.py", "--device", "cpu", "--batch", 2, "--steps", 1, "--warmup", 1, "--no-compile",
               "--size", 64, "--json", tmp_path / "gpu.json")
    assert json.loads((tmp_path / "gpu.json").read_text())


@pytest.mark.parametrize("name, args", [
    ("benchmark_latency.py", ["--variants", "s9"]),
    ("benchmark_flops.py", ["--op", "foo"]),
    ("benchmark_flops.py", ["--width", "0"]),
    ("benchmark_train_throughput.py", ["--repeats", "1"]),
    ("benchmark_protocol_cost.py", ["--presets", "fig9_width"]),
    ("benchmark_protocol_cost.py", ["--rounds", "0"]),
    ("benchmark_threads.py", ["--models", "huge"]),
    ("benchmark_threads.py", ["--rounds", "0"]),
])
def test_bad_input_is_a_one_line_error(name, args):
    proc = run_script(name, *args, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"{name}: error: ")


def test_gpu_script_without_cuda_is_a_one_line_error():
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    proc = run_script("benchmark_gpu.py", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("benchmark_gpu.py: error: argument --device: ")


@pytest.mark.parametrize("name, phrase", [("compare.py", "against the\nlocal summary"),
                                          ("aggregate.py", "Writes summary.csv"),
                                          ("benchmark_main_job.py", "usage: benchmark_main_job.py")])
def test_help_is_whole(name, phrase):
    proc = run_script(name, "--help")
    assert phrase in proc.stdout


def test_export_onnx_passes_act_to_starnet():
    import argparse

    import torch
    mod = load_script("export_onnx.py")
    base = dict(run_dir=None, variant="s050", op="star", width=8, depth=1, patch_size=4, num_classes=10,
                in_chans=3, size=32)
    acts = lambda m: {type(x) for x in m.modules()}  # noqa: E731
    starnet, _ = mod.build(argparse.Namespace(model="starnet", act="gelu", **base))
    assert torch.nn.GELU in acts(starnet) and torch.nn.ReLU6 not in acts(starnet)
    starnet, _ = mod.build(argparse.Namespace(model="starnet", act=None, **base))  # its own default: ReLU6
    assert torch.nn.ReLU6 in acts(starnet)
    demonet, _ = mod.build(argparse.Namespace(model="demonet", act=None, **base))  # its own default: GELU
    assert torch.nn.GELU in acts(demonet)


class _GradsScaled:
    """A block kernel whose backward returns twice the gradients: a kernel revision that trains other weights."""

    def __init__(self, ext):
        self.block_forward = ext.block_forward
        self._backward = ext.block_backward

    def block_backward(self, *args):
        return [2 * g for g in self._backward(*args)]


def test_demonet_step_kernel_rev_side_uses_that_kernel_and_compares_weights(monkeypatch, capsys, tmp_path):
    mod = load_script("benchmark_demonet_step.py")
    from starnet.kernels import demo_block
    plain = demo_block.extension
    for kernel, same in ((plain(), True), (_GradsScaled(plain()), False)):
        monkeypatch.setattr(mod, "kernel_at", lambda rev, k=kernel: lambda zoo=False: k)
        monkeypatch.setattr(sys, "argv", ["benchmark_demonet_step.py", "--widths", "8", "--patch2-widths", "",
                                          "--depth", "1", "--batch", "4", "--rounds", "1", "--best-of", "1",
                                          "--kernel-rev", "HEAD", "--json", str(tmp_path / "out.json")])
        mod.main()
        row, = json.loads((tmp_path / "out.json").read_text())["rows"]
        assert row["same_weights_as_kernel_rev"] is same and "default@HEAD" in row["ms"]
        assert demo_block.extension is plain  # the script puts the checkout's kernel back
    assert "same weights" in capsys.readouterr().out


def test_demonet_step_kernel_rev_builds_that_revisions_kernel():
    out = run_script("benchmark_demonet_step.py", "--widths", 8, "--patch2-widths", "", "--depth", 1, "--batch", 4,
                     "--rounds", 1, "--best-of", 1, "--kernel-rev", "HEAD").stdout
    assert out.rstrip().endswith("yes")  # HEAD's kernel trains the checkout's weights (the same or bit-identical)


def test_demonet_step_rejects_an_unknown_kernel_rev():
    proc = run_script("benchmark_demonet_step.py", "--kernel-rev", "no-such-rev", check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: --kernel-rev no-such-rev")


def test_demonet_step_prints_each_width_and_writes_json(tmp_path):
    out = run_script("benchmark_demonet_step.py", "--widths", 8, "--patch2-widths", 8, "--depth", 1, "--batch", 4,
                     "--rounds", 1, "--best-of", 1, "--ops", "star,sum", "--json", tmp_path / "out.json").stdout
    assert "vs plain" in out and "GFLOP/s" in out
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert [(r["width"], r["patch"], r["op"]) for r in rows] == [(8, 4, "star"), (8, 4, "sum"), (8, 2, "star"),
                                                                 (8, 2, "sum")]
    assert all(set(r["ms"]) == {"plain", "dw_cb", "default", "plain+reuse"} for r in rows)
    assert all(r["reuse_vs_plain"] == r["ms"]["plain"] / r["ms"]["plain+reuse"] for r in rows)


def test_compare_reruns_reports_pairs_and_rejects_dirs_without_any(tmp_path):
    def write(root, seed, top1, cpu=None):
        d = root / f"op=star,seed={seed}"
        d.mkdir(parents=True)
        record = {"status": "completed", "op": "star", "seed": seed, "top1": top1, "config_hash": f"h{seed}",
                  "history": [{"epoch": 1, "top1": top1, "train_loss": 0.5}]}
        if cpu:
            record["provenance"] = {"cpu": cpu}
        (d / "metrics.json").write_text(json.dumps(record))

    for seed, top1 in enumerate((88.0, 88.5, 87.5)):
        write(tmp_path / "records", seed, top1)
    write(tmp_path / "reruns", 0, 88.0, cpu="AMD EPYC")
    write(tmp_path / "reruns", 1, 88.2, cpu="AMD EPYC")
    out = tmp_path / "report.md"
    proc = run_script("compare_reruns.py", tmp_path / "records", tmp_path / "reruns", "--out", out)
    assert "1 of 2 reruns repeat their record bit for bit" in proc.stdout and out.read_text() == proc.stdout
    proc = run_script("compare_reruns.py", tmp_path / "records", tmp_path / "nowhere", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr


def test_seed_sweep_copies_completed_records_renamed_and_filtered(tmp_path):
    src = tmp_path / "runs"
    for name, status in (("experiment=a,op=star,width=8", "completed"), ("experiment=a,op=sum,width=8", "failed"),
                         ("experiment=a,op=star,width=48", "completed")):
        (src / name / ".hydra").mkdir(parents=True)
        (src / name / ".hydra" / "config.yaml").write_text("op: star\n")
        (src / name / "metrics.json").write_text(json.dumps({"status": status}))
        (src / name / "last.pt").write_bytes(b"not copied")
    dest = tmp_path / "sweep"
    out = run_script("seed_sweep.py", src, dest, "--rename", "experiment=a:experiment=b", "--only", "width=8,16").stdout
    assert "1 completed job(s) copied, 0 already there" in out
    assert [p.name for p in dest.iterdir()] == ["experiment=b,op=star,width=8"]
    job = dest / "experiment=b,op=star,width=8"
    assert sorted(p.name for p in job.iterdir()) == [".hydra", "metrics.json"]  # records only, no checkpoint
    again = run_script("seed_sweep.py", src, dest, "--rename", "experiment=a:experiment=b", "--only", "width=8").stdout
    assert "0 completed job(s) copied, 1 already there" in again
    proc = run_script("seed_sweep.py", src, dest, "--only", "width", check=False)
    assert proc.returncode == 1 and "--only takes KEY=V1,V2" in proc.stderr


def test_seed_sweep_refuses_what_would_copy_nothing(tmp_path):
    src = tmp_path / "runs"
    (src / "experiment=a,op=star,width=8").mkdir(parents=True)
    (src / "experiment=a,op=star,width=8" / "metrics.json").write_text(json.dumps({"status": "completed"}))
    (tmp_path / "empty").mkdir()
    (tmp_path / "afile").write_text("")
    for args, message in (((src, tmp_path / "d", "--only", "widht=8"), "--only widht=...: no job name in"),
                          ((src, tmp_path / "d", "--only", "width=16"), "keeps none of the 1 completed jobs"),
                          ((tmp_path / "empty", tmp_path / "d"), "holds no completed job"),
                          ((src, src), "is both the source and the dest"),
                          ((src, tmp_path / "afile" / "sub"), "seed_sweep: error:")):
        proc = run_script("seed_sweep.py", *args, check=False)
        assert proc.returncode == 1 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists() and sorted(p.name for p in (tmp_path / "afile").parent.iterdir()) == [
        "afile", "empty", "runs"]  # nothing written, no staging dir left


def test_aggregate_refuses_several_dirs_or_only_without_out(tmp_path):
    for args in ([tmp_path, tmp_path], [tmp_path, "--only", "width=8"], [tmp_path, "--out", tmp_path, "--only", "w"]):
        proc = run_script("aggregate.py", *args, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("aggregate: error: ")
