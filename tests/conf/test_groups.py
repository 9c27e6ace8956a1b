"""The paths/ and debug/ config groups: output roots shared by every preset, and `debug=fast`."""
import json

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments.entry import run_job
from experiments.records import config_hash
from tests.conftest import CONF, compose_cfg


def _with_hydra(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    # ${now:...} and ${hydra:...} resolve only inside a Hydra run: read the dirs up to them
    return {k: OmegaConf.to_container(cfg.hydra, resolve=False)[k]["dir"] for k in ("run", "sweep")}, cfg


def test_every_preset_sweeps_under_the_paths_root():
    for preset in sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")):
        dirs, _ = _with_hydra(f"experiment={preset}")
        assert dirs["sweep"].startswith("${paths.sweeps}/"), (preset, dirs["sweep"])
    dirs, cfg = _with_hydra("paths.root=/scratch/sb")
    assert dirs["run"].startswith("${paths.runs}/") and cfg.paths.runs == "/scratch/sb/runs"
    assert cfg.paths.sweeps == "/scratch/sb/sweeps"


def test_paths_do_not_change_what_a_job_computes():
    assert config_hash(compose_cfg("logger=none", "paths.root=/elsewhere")) == config_hash(compose_cfg("logger=none"))


def test_debug_fast_is_one_short_epoch_without_wandb(tmp_path):
    cfg = compose_cfg("debug=fast")
    assert (cfg.trainer.epochs, cfg.data.train_size, cfg.data.val_size, cfg.logger.name) == (1, 512, 256, "none")
    preset = compose_cfg("experiment=fig1_width", "debug=fast")  # debug wins over a preset
    assert (preset.trainer.epochs, preset.data.train_size) == (1, 512)
    dirs, _ = _with_hydra("debug=fast")
    assert dirs["run"].startswith("${paths.root}/debug/")
    record = run_job(compose_cfg("debug=fast", "data=synthetic", "width=8", "depth=2"), tmp_path / "run")
    assert record["status"] == "completed" and [r["epoch"] for r in record["history"]] == [1]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["wandb_dir"] is None


def test_help_starts_with_starbenchs_own_description():
    import subprocess
    import sys
    from tests.conftest import ROOT
    proc = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("starbench: does the star operation"), proc.stdout[:300]
    assert "== Configuration groups ==" in proc.stdout and "--hydra-help" in proc.stdout


def test_help_lists_only_the_groups_a_user_chooses_from():
    """The schema's groups, the protocol's shared settings and debug's per-task piece are internal: not listed."""
    import subprocess
    import sys
    from tests.conftest import ROOT
    proc = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    groups = proc.stdout.split("== Configuration groups ==")[1].split("== Config ==")[0]
    listed = [line.split(":")[0] for line in groups.splitlines() if ": " in line]
    assert listed == ["data", "debug", "experiment", "logger", "model", "paths", "task", "trainer"], groups
    assert "model: demonet, starnet" in groups and "debug: fast" in groups and "fig1_width_smoke" in groups
