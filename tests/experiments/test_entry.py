"""End to end through experiments.entry.run_job (in process) and run.py (subprocess, for exit codes)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY, load_run_py
from experiments.entry import run_job
from experiments.errors import StarbenchError
from experiments.train.trainer import Trainer

SCHEMA = {"status", "error", "model", "op", "width", "depth", "seed", "data", "epochs", "top1", "top5", "best_top1",
          "params", "flops", "train_time_s", "train_images_per_s", "wandb_dir"}


def test_tiny_run_writes_completed_metrics_and_offline_wandb_run(tiny_cfg, tmp_path):
    record = run_job(tiny_cfg("logger=wandb"), tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert SCHEMA <= set(saved)
    assert saved["status"] == "completed" and saved["error"] is None
    assert saved["epochs"] == 2 and len(saved["history"]) == 2
    assert 0 <= saved["top1"] <= 100 and saved["best_top1"] >= saved["top1"]
    assert saved["params"] > 0 and saved["flops"] > 0
    assert saved["top1"] > 50  # synthetic data is learnable: 4 classes, chance is 25%
    wandb_run = Path(saved["wandb_dir"])  # the directory `wandb sync` takes
    assert wandb_run.name.startswith("offline-run-") and list(wandb_run.glob("*.wandb")), "no offline W&B run"
    assert (tmp_path / "last.pt").exists()


def test_same_command_twice_gives_same_metrics(tiny_cfg, tmp_path):
    # Bit for bit for a given thread count (docs/reproduction.md): threads=auto may pick another on a busy machine.
    a = run_job(tiny_cfg("op=sum", "trainer.threads=1"), tmp_path / "a")
    b = run_job(tiny_cfg("op=sum", "trainer.threads=1"), tmp_path / "b")
    assert [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    assert a["top1"] == b["top1"]


def test_completed_run_is_not_rerun(tiny_cfg, tmp_path):
    first = run_job(tiny_cfg(), tmp_path)
    again = run_job(tiny_cfg(), tmp_path)
    assert again["train_time_s"] == first["train_time_s"]
    with pytest.raises(StarbenchError, match="completed run of another configuration"):
        run_job(tiny_cfg("op=sum"), tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "completed"  # left intact


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\udcff"])
def test_an_unreadable_record_is_refused_not_rewritten(tiny_cfg, tmp_path, content):
    """A completed run whose metrics.json was damaged used to be rewritten as completed with an empty history."""
    run_job(tiny_cfg("trainer.epochs=1"), tmp_path)
    (tmp_path / "metrics.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    before = (tmp_path / "metrics.json").read_bytes(), (tmp_path / "last.pt").read_bytes()
    with pytest.raises(StarbenchError, match=r"metrics.json is not a readable run record \(.*\); it is left as it is: "
                       r"move it aside \(mv .*metrics.json .*metrics.json.bad\) to rerun this job from its checkpoint"):
        run_job(tiny_cfg("trainer.epochs=1"), tmp_path)
    assert ((tmp_path / "metrics.json").read_bytes(), (tmp_path / "last.pt").read_bytes()) == before
    (tmp_path / "metrics.json").rename(tmp_path / "metrics.json.bad")  # as the message says: the run resumes
    assert run_job(tiny_cfg("trainer.epochs=1"), tmp_path)["status"] == "completed"


def test_run_from_before_the_fast_paths_joined_the_hash_still_counts_as_done(tiny_cfg, tmp_path):
    """A record whose hash came from an older hashing (the CPU fast-path switches in it, at their old default off)
    is the same computation when its saved .hydra/config.yaml hashes like the current config."""
    from omegaconf import OmegaConf
    first = run_job(tiny_cfg(), tmp_path)
    record = json.loads((tmp_path / "metrics.json").read_text())
    (tmp_path / "metrics.json").write_text(json.dumps({**record, "config_hash": "0ld0ld0ld0ld"}))
    old = OmegaConf.to_container(tiny_cfg(), resolve=True)
    for key in ("fast_paths", "fused_block"):
        old["trainer"].pop(key)
    old["trainer"].update(fast_dwconv=False, compile_branches=False, fused_mlp=False, fast_batchnorm=False)
    (tmp_path / ".hydra").mkdir(exist_ok=True)
    (tmp_path / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(old))
    assert run_job(tiny_cfg("trainer.fast_paths=false"), tmp_path)["train_time_s"] == first["train_time_s"]
    with pytest.raises(StarbenchError, match="completed run of another configuration"):
        run_job(tiny_cfg("op=sum"), tmp_path)
    (tmp_path / ".hydra" / "config.yaml").write_text("{not: [yaml")  # unreadable: not the same run
    with pytest.raises(StarbenchError, match="completed run of another configuration"):
        run_job(tiny_cfg(), tmp_path)


def test_resume_after_interruption_matches_uninterrupted_run(tiny_cfg, tmp_path, monkeypatch):
    # one thread on both sides: threads=auto may pick another count for the second run on a busy machine
    overrides = ("trainer.epochs=3", "model.drop_path=0.1", "trainer.threads=1")
    straight = run_job(tiny_cfg(*overrides), tmp_path / "straight")

    real_epoch = Trainer.train_epoch

    def crash_in_third_epoch(self):
        if self.epoch == 2:
            raise KeyboardInterrupt  # stands in for a kill after two checkpointed epochs
        return real_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_job(tiny_cfg(*overrides), tmp_path / "resumed")
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(Trainer, "train_epoch", real_epoch)
    with pytest.raises(StarbenchError, match="unfinished run of another configuration"):  # not resumed
        run_job(tiny_cfg(*overrides, "trainer.lr=0.1"), tmp_path / "resumed")
    resumed = run_job(tiny_cfg(*overrides), tmp_path / "resumed")
    assert resumed["status"] == "completed"
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    assert [r["train_loss"] for r in resumed["history"]] == [r["train_loss"] for r in straight["history"]]
    assert resumed["top1"] == straight["top1"]


def run_cli(tmp_path, *overrides):
    proc = subprocess.run([sys.executable, "run.py", *overrides, f"hydra.run.dir={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    return proc


def assert_clean_failure(proc, run_dir, message):
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("starbench: error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    metrics = Path(run_dir) / "metrics.json"
    if metrics.exists():
        assert json.loads(metrics.read_text())["status"] == "failed"


@pytest.mark.parametrize("override,message", [
    ("op=mul", "unknown op 'mul'; valid ops: concat, gate, max, star, sum; presets"),
    ("width=0", "width must be a positive integer"),
    ("depth=0", "depth must be a positive integer"),
    ("model=starnet model.variant=s9 depth=null", "unknown StarNet variant 's9'"),
    ("model=starnet depth=[1,1,1]", "StarNet has 4 stages: depth needs one block count per stage"),
    ("op=[sum,star]", "DemoNet takes one op for all its blocks (e.g. op=star or op=sum), got ['sum', 'star']"),
    ("op=os:path", "op 'os:path': 'path' in module 'os' is not callable"),
    ("model.act=foo", "unknown activation 'foo'"),
    ("trainer.device=meta", "trainer.device=meta: starbench runs on cpu or cuda"),
    ("trainer.optimizer=adamx", "unknown trainer.optimizer 'adamx'"),
    ("trainer.lr=-1", "trainer.lr must be a number > 0, got -1.0"),
    ("trainer.amp=no", "trainer.amp must be auto, true or false, got 'no'"),
    ("trainer.lr=nan", "trainer.lr must be a number > 0, got nan"),
    ("seed=-1", "seed must be an integer from 0 to 2**32 - 1 (numpy's range), got -1"),
    ("trainer.label_smoothing=2", "trainer.label_smoothing must be a number from 0 to below 1, got 2.0"),
    ("depth=[1,2]", "DemoNet's depth is one number (its blocks), got [1, 2]; a list of per-stage block counts is"),
    ("trainer.weight_decay=-1", "trainer.weight_decay must be a number >= 0, got -1.0"),
    ("trainer.warmup_epochs=5", "trainer.warmup_epochs=5 is longer than the run (trainer.epochs=2): its peak lr"),
    ("model.patch_size=5", "model.patch_size=5 does not divide the 16-pixel images: DemoNet's stem would drop"),
])
def test_bad_model_arguments_fail_with_one_line_before_any_run_dir(tmp_path, override, message):
    run_dir = tmp_path / "run"
    proc = run_cli(run_dir, *TINY, *override.split())
    assert_clean_failure(proc, run_dir, message)
    assert not run_dir.exists()  # refused by the Preflight callback, before Hydra creates the dir or its run.log


@pytest.mark.parametrize("override,message", [
    ("trainer.epochs=0", "trainer.epochs must be a positive integer"),
    ("trainer.batch_size=0", "trainer.batch_size must be a positive integer"),
    ("data.train_size=0", "data.train_size must be a positive integer"),
    ("trainer.warmup_epochs=-1", "trainer.warmup_epochs must be a number >= 0"),
    ("trainer.device=tpu", "unknown trainer.device 'tpu'"),
    ("data=imagenet", "data=imagenet needs data.root="),
])
def test_bad_settings_fail_before_training(tiny_cfg, tmp_path, override, message):
    with pytest.raises((StarbenchError, ValueError), match=message):
        run_job(tiny_cfg(override), tmp_path / "run")
    assert not (tmp_path / "run" / "error.log").exists()  # bad input, not a bug: no traceback file


def test_unknown_key_is_an_error_before_anything_is_written(tiny_cfg, tmp_path):
    for key in ("+widht=8", "+trainer.epoch=3"):  # as a preset or the command line could add it
        with pytest.raises(StarbenchError, match="unknown config key (widht|trainer.epoch)"):
            run_job(tiny_cfg(key), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_missing_dataset(tmp_path):
    proc = run_cli(tmp_path / "run", *TINY, "data=cifar10", f"data.root={tmp_path}/nothing", "data.download=false")
    assert_clean_failure(proc, tmp_path / "run", "cifar10 not found")
    # found only once the run started: its log says how it ended
    assert "end: error: cifar10 not found" in (tmp_path / "run" / "run.log").read_text()
    assert not (tmp_path / "nothing").exists()  # no empty data folder left behind


def test_missing_fashion_mnist_explains_how_to_get_it(tiny_cfg, tmp_path, monkeypatch):
    import experiments.data.small as data
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setattr(data, "DEFAULT_FASHION_ROOT", tmp_path / "none")  # the default root: Debian's looked in
    cfg = tiny_cfg("data=fashion_mnist", f"data.root={tmp_path}/none", "data.download=false")
    with pytest.raises(StarbenchError, match="apt-get install dataset-fashion-mnist"):
        run_job(cfg, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"


def test_a_data_root_the_user_gave_must_exist(tiny_cfg, tmp_path):
    from experiments.data.small import DEFAULT_FASHION_ROOT
    from tests.conftest import compose_cfg
    assert compose_cfg().data.root == str(DEFAULT_FASHION_ROOT)  # the one root with a fallback is conf's
    cfg = tiny_cfg("data=fashion_mnist", f"data.root={tmp_path}/nonexistent", "data.download=false")
    with pytest.raises(StarbenchError, match=f"data.root {tmp_path}/nonexistent does not exist .*only for the default"):
        run_job(cfg, tmp_path / "run")
    assert not (tmp_path / "nonexistent").exists()


def test_a_data_root_the_user_gave_is_refused_before_anything_is_created(tmp_path):
    """With data.download=true (the default) too: no run dir, no empty dataset folder, no download attempt."""
    run_dir, root = tmp_path / "run", tmp_path / "nonexistent" / "fm"
    proc = run_cli(run_dir, *TINY, "data=fashion_mnist", f"data.root={root}")
    assert_clean_failure(proc, run_dir, f"data.root {root} does not exist")
    assert "create it (mkdir) to download Fashion-MNIST into it, or leave data.root at its default" in proc.stderr
    assert not run_dir.exists() and not (tmp_path / "nonexistent").exists()
    assert "download" not in proc.stderr.lower().replace("to download fashion-mnist", "")


def test_a_failed_download_into_a_given_root_names_what_to_do(tiny_cfg, tmp_path, monkeypatch):
    """An existing data.root without the files, and no network: one line naming the files and the default root's
    fallback; not Debian's package, which a given root never reads."""
    import torchvision.datasets
    def offline(root, download):
        print("Downloading http://... Failed to download (trying next):")  # torchvision's mirrors: not shown
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://..., got:\nno network")
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    (tmp_path / "fm").mkdir()
    with pytest.raises(StarbenchError, match=r"not found in data.root .*fm and could not be downloaded \(Error "
                       r"downloading train-images-idx3-ubyte.gz: Tried http://..., got: no network\); put its idx "
                       r"files there .*or leave data.root at its default"):
        run_job(tiny_cfg("data=fashion_mnist", f"data.root={tmp_path}/fm"), tmp_path / "run")


def test_the_console_names_the_run_dir_and_where_wandb_keeps_an_offline_run(tmp_path):
    """What the README's first command shows before it trains: where its files go, and W&B's mode."""
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "run.py", *TINY, "logger=wandb", f"hydra.run.dir={run_dir}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert f"run dir: {run_dir}" in out
    wandb_dir = json.loads((run_dir / "metrics.json").read_text())["wandb_dir"]
    assert f"W&B offline: files in {wandb_dir}; upload them later with: wandb sync {wandb_dir}" in out
    assert out.index("run dir:") < out.index("W&B offline") < out.index("epoch 1/")
    assert "URL not available" not in out


def test_imagenet_folder_without_images(tmp_path):
    for split in ("train/cat", "val/cat"):
        (tmp_path / "in1k" / split).mkdir(parents=True)
    proc = run_cli(tmp_path / "run", "data=imagenet", f"data.root={tmp_path}/in1k", "logger=none", "width=8",
                   "depth=1")
    assert_clean_failure(proc, tmp_path / "run", "no images found")


def test_checkpoint_from_another_model(tiny_cfg, tmp_path):
    run_job(tiny_cfg("trainer.epochs=1"), tmp_path)
    (tmp_path / "metrics.json").unlink()  # an unfinished run of width 8 ...
    proc = run_cli(tmp_path, *TINY, "width=16")  # ... resumed as width 16
    assert_clean_failure(proc, tmp_path, "belongs to another model")


def test_corrupt_checkpoint(tiny_cfg, tmp_path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(StarbenchError, match="corrupt or unreadable"):
        run_job(tiny_cfg(), tmp_path)
    assert (tmp_path / "last.pt").read_bytes() == b"not a checkpoint"  # never silently replaced


def test_a_broken_preset_is_one_line(tmp_path):
    run = load_run_py()
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "good.yaml").write_text("# @package _global_\nwidth: 8\n")
    (tmp_path / "experiment" / "broken.yaml").write_text("# @package _global_\nwidth: [8\n")
    run.check_experiment(["-m", "experiment=good", "op=star"], tmp_path)  # fine: nothing raised
    run.check_experiment(["experiment=nope"], tmp_path)  # unknown: Hydra's to find, on its search path
    with pytest.raises(SystemExit, match=r"bad YAML in .*broken.yaml line 3"):
        run.check_experiment(["experiment=broken"], tmp_path)
    with pytest.raises(SystemExit, match=r"bad YAML in .*broken.yaml line 3"):  # on hydra.searchpath too
        run.check_experiment(["experiment=broken", f"hydra.searchpath=[file://{tmp_path}]"], tmp_path / "elsewhere")


def test_presets_on_hydras_search_path(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\nwidth: 8\ndata:\n  train_size: 64\n")
    search = f"hydra.searchpath=[file://{tmp_path}]"
    proc = subprocess.run([sys.executable, "run.py", "experiment=mine", search, "--cfg", "job"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "width: 8" in proc.stdout and "train_size: 64" in proc.stdout
    proc = subprocess.run([sys.executable, "run.py", "experiment=nope", search, "--cfg", "job"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("starbench: error: unknown experiment 'nope'; valid: ") and "\n" not in line, line
    assert "mine" in line and "fig1_width" in line  # the user's presets and starbench's
