"""conf/experiment/op_zoo.yaml and its try-out: the zoo's ops in one op key under the protocol, every job's model
at star's parameter count."""
import pytest
import torch

from experiments.train.models import build_model
from starnet.ops import check_op
from tests.conf import test_presets as presets
from tests.conftest import compose_cfg

ZOO = ["star", "sum", "max", "gate", "concat", "bilinear", "swiglu"]


def test_op_zoo_sweeps_the_zoo_under_the_protocol():
    presets.test_protocol_presets_follow_the_protocol("op_zoo")  # data, budget, recipe, launcher, >= 5 seeds
    cfg = presets.compose_full("experiment=op_zoo")
    params = presets.sweep_params(cfg)
    assert params["op"] == ZOO and all(check_op(op) == op for op in ZOO)
    assert params["width"] == ["8", "16", "32"] and cfg.depth == 12 and cfg.model.name == "demonet"
    assert list(params) == ["width", "seed", "op"]  # amendment 5: a session's jobs end as whole widths and seeds
    assert params["seed"] == presets.sweep_params(presets.compose_full("experiment=fig1_width"))["seed"]  # part 3
    assert "op_zoo" in str(cfg.hydra.sweep.dir) and str(cfg.hydra.mode) == "RunMode.MULTIRUN"


def test_the_smoke_preset_is_a_small_op_zoo():
    full, smoke = presets.compose_full("experiment=op_zoo"), presets.compose_full("experiment=op_zoo_smoke")
    params = presets.sweep_params(smoke)
    assert "op_zoo_smoke" in str(smoke.hydra.sweep.dir)
    assert params["op"] == ZOO and len(params["seed"]) == 2 and len(params["width"]) <= 2
    assert smoke.data.train_size <= 2000 and smoke.trainer.epochs == 1
    assert smoke.model.name == full.model.name and smoke.data.name == full.data.name


@pytest.mark.parametrize("width", ["8", "32"])
def test_every_job_builds_at_stars_parameter_count(width):
    def model(op):
        cfg = presets.compose_full("experiment=op_zoo", f"op={op}", f"width={width}", "seed=0", "data.root=/nonexistent")
        return build_model(cfg, cfg.data.in_chans, cfg.data.num_classes), cfg

    star = sum(p.numel() for p in model("star")[0].parameters())
    for op in ZOO:
        net, cfg = model(op)
        assert abs(sum(p.numel() for p in net.parameters()) - star) <= 0.01 * star, op
        with torch.no_grad():
            out = net.eval()(torch.zeros(1, cfg.data.in_chans, cfg.data.image_size, cfg.data.image_size))
        assert out.shape == (1, cfg.data.num_classes)


def test_star_and_sum_in_the_zoo_are_the_width_sweeps_jobs():
    """The preset's comment lets a zoo sweep reuse fig1_width's star and sum jobs: only if they compute the same."""
    from experiments.records import config_hash
    for op, width in (("star", 8), ("sum", 32)):
        job = ("logger=none", f"op={op}", f"width={width}", "seed=1")
        assert config_hash(compose_cfg("experiment=op_zoo", *job)) == config_hash(compose_cfg("experiment=fig1_width", *job))
