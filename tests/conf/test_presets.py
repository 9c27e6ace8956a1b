"""Every experiment preset composes at both scales, sweeps star vs sum over seeds, and its first job
builds its model."""
import math

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import CONF, compose_cfg
from experiments.train.models import build_model

PRESETS = ("fig1_width", "table3_depth", "no_act", "starnet_op", "moons")
# The protocol presets (docs/protocol.md) and their try-out versions.
PROTOCOL = ("fig1_width", "table3_depth", "no_act", "starnet_op", "budget_curve", "budget_curve_55k")
PILOTS = ("budget_curve", "budget_curve_55k")  # on the validation split carved from the training set
SCALES = {"cpu": "{}", "paper": "{}_paper"}
ALL_FILES = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def compose_full(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def sweep_params(cfg):
    return {k: str(v).split(",") for k, v in cfg.hydra.sweeper.params.items()}


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_sweeps_star_vs_sum(preset, scale):
    name = SCALES[scale].format(preset)
    assert name in ALL_FILES, f"conf/experiment/{name}.yaml is missing"
    assert (CONF / "experiment" / f"{name}.yaml").read_text().startswith("# @package _global_")
    cfg = compose_full(f"experiment={name}")
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"  # `python run.py experiment=NAME` runs the sweep
    params = sweep_params(cfg)
    assert params["op"] == ["star", "sum"]
    assert len(params["seed"]) >= 3
    for key in params:  # a typo in a swept key would only fail when the sweep starts
        assert OmegaConf.select(cfg, key, default="<missing>") != "<missing>", key
    assert name in str(cfg.hydra.sweep.dir)
    if preset == "moons":
        assert cfg.task.name == "moons" and (cfg.width, cfg.depth, cfg.model.act) == (100, 4, "relu")
    elif scale == "paper":
        assert cfg.data.name == "imagenet" and cfg.trainer.epochs == 300 and cfg.trainer.batch_size == 2048
        assert cfg.trainer.lr == {"demonet": 4e-3, "starnet": 3e-3}[cfg.model.name]
    else:
        assert cfg.data.name == "fashion_mnist" and cfg.data.train_size and cfg.trainer.epochs <= 16


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "moons"])
def test_preset_first_job_builds_its_model(preset, scale):
    name = SCALES[scale].format(preset)
    first = [f"{k}={v[0]}" for k, v in sweep_params(compose_full(f"experiment={name}")).items()]
    cfg = compose_full(f"experiment={name}", *first, "data.root=/nonexistent")
    d = cfg.data
    net = build_model(cfg, d.in_chans, d.num_classes)
    with torch.no_grad():
        out = net.eval()(torch.zeros(1, d.in_chans, d.image_size, d.image_size))
    assert out.shape == (1, d.num_classes)


def test_paper_widths_and_depths():
    assert sweep_params(compose_full("experiment=fig1_width_paper"))["width"] == \
        [str(w) for w in range(96, 449, 32)]                      # Fig. 1 right
    assert sweep_params(compose_full("experiment=table3_depth_paper"))["depth"] == \
        [str(d) for d in range(10, 23, 2)]                        # Table 3
    assert compose_full("experiment=starnet_op_paper").model.variant == "s4"   # Table 7
    assert len(sweep_params(compose_full("experiment=fig1_width"))["width"]) >= 4


def test_table3_depths_depth_12_jobs_are_the_width_sweeps_width_16_jobs():
    """conf/experiment/table3_depth.yaml lets a depth sweep reuse fig1_width's width-16 jobs: only if they compute
    the same."""
    from experiments.records import config_hash
    assert compose_full("experiment=table3_depth").width == 16
    assert "12" in sweep_params(compose_full("experiment=table3_depth"))["depth"]
    for op, seed in (("star", 0), ("sum", 5)):
        job = ("logger=none", f"op={op}", f"seed={seed}")
        assert config_hash(compose_cfg("experiment=table3_depth", *job, "depth=12")) == \
            config_hash(compose_cfg("experiment=fig1_width", *job, "width=16"))


@pytest.mark.parametrize("preset", PROTOCOL)
def test_protocol_presets_follow_the_protocol(preset):
    cfg = compose_full(f"experiment={preset}")
    params = sweep_params(cfg)
    if cfg.model.name == "demonet":
        assert cfg.model.patch_size <= 4 and cfg.depth == 12 or "depth" in params  # >= 7x7 tokens
    pilot = preset in PILOTS
    # Amendment 2: 55,000 training images, except the 10k budget curve of part 1 and amendment 1.
    assert cfg.data.train_size == (10000 if preset == "budget_curve" else 55000)
    assert not cfg.data.augment and not cfg.trainer.ema
    steps_per_epoch = math.ceil(cfg.data.train_size / cfg.trainer.batch_size)
    assert int(cfg.trainer.warmup_epochs * steps_per_epoch) == 15  # the protocol's warm-up, in steps
    assert cfg.trainer.threads == 1 and cfg.hydra.launcher.n_jobs == -1
    assert (cfg.data.val_from == "train") == pilot  # only the pilots avoid the test set
    assert len(params["seed"]) >= (3 if pilot else 5)
    if preset == "fig1_width":
        assert len(params["width"]) >= 6
    if preset == "table3_depth":
        assert len(params["depth"]) >= 5
    if pilot:  # >= 4 budgets at two widths; the 10k budget curve spans >= 10x
        epochs = [int(e) for e in params["trainer.epochs"]]
        assert len(epochs) >= 4 and len(params["width"]) == 2
        assert max(epochs) / min(epochs) >= (10 if preset == "budget_curve" else 8)


@pytest.mark.parametrize("preset", PROTOCOL)
def test_smoke_presets_are_small_versions_of_the_protocol_presets(preset):
    full, smoke = compose_full(f"experiment={preset}"), compose_full(f"experiment={preset}_smoke")
    assert f"{preset}_smoke" in str(smoke.hydra.sweep.dir)
    assert smoke.model.name == full.model.name and smoke.data.name == full.data.name
    params = sweep_params(smoke)
    assert smoke.data.train_size <= 2000 and max(map(int, params.get("trainer.epochs", [smoke.trainer.epochs]))) <= 2
    assert len(params["seed"]) == 2 and params["op"] == ["star", "sum"]


def test_tuning_preset_gives_every_op_the_same_grid_around_the_shared_recipe_on_the_validation_split():
    cfg = compose_full("experiment=tune_width")
    protocol = compose_full("experiment=fig1_width")
    params = sweep_params(cfg)
    assert params["op"] == ["star", "sum"] and list(params)[-1] == "op"  # op innermost: a trial's pair side by side
    assert "seed" not in params and cfg.seed == 0
    lrs, wds = (sorted(map(float, params[k])) for k in ("trainer.lr", "trainer.weight_decay"))
    assert len(lrs) * len(wds) >= 12
    assert protocol.trainer.lr in lrs and protocol.trainer.weight_decay in wds  # the shared recipe is a trial
    assert all(b / a == pytest.approx(lrs[1] / lrs[0]) for a, b in zip(lrs, lrs[1:]))  # a log grid
    assert cfg.data.val_from == "train" and cfg.data.val_size == 5000  # the test set is not touched
    for key in ("trainer.epochs", "data.train_size", "depth", "model.patch_size", "trainer.warmup_epochs"):
        assert OmegaConf.select(cfg, key) == OmegaConf.select(protocol, key), key
    smoke = compose_full("experiment=tune_width_smoke")
    assert "tune_width_smoke" in str(smoke.hydra.sweep.dir) and smoke.data.train_size <= 2000
    assert smoke.trainer.epochs == 1 and sweep_params(smoke)["op"] == ["star", "sum"]


def test_pair_task_pilot_is_the_protocol_miniature_on_the_pair_task_at_the_ends_of_the_width_range():
    cfg, protocol = compose_full("experiment=pairs_pilot"), compose_full("experiment=fig1_width")
    params = sweep_params(cfg)
    assert cfg.data.name == "fashion_pairs" and cfg.data.num_classes == 100 and cfg.data.in_chans == 2
    assert cfg.data.val_from == "train" and cfg.data.val_size == 5000  # the test set is not touched
    assert params["width"] == ["8", "48"] and params["seed"] == ["0", "1", "2"] and list(params)[-1] == "op"
    for key in ("trainer.epochs", "data.train_size", "depth", "model.patch_size", "trainer.lr",
                "trainer.weight_decay", "trainer.warmup_epochs"):
        assert OmegaConf.select(cfg, key) == OmegaConf.select(protocol, key), key
    smoke = compose_full("experiment=pairs_pilot_smoke")
    assert smoke.data.name == "fashion_pairs" and smoke.data.train_size <= 2000 and smoke.trainer.epochs == 1
