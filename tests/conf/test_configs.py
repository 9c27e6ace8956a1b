import pytest
import torch

from tests.conftest import CONF, compose_cfg
from experiments.train.models import build_model, model_identity

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONF / "trainer").glob("*.yaml"))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("data", DATA)
def test_model_and_data_compose_and_instantiate(model, data):
    cfg = compose_cfg(f"model={model}", f"data={data}")
    d = cfg.data
    if d.get("num_classes") is None:  # detection data: no classifier to build
        pytest.skip("not a classification dataset")
    net = build_model(cfg, d.in_chans, d.num_classes)
    with torch.no_grad():
        out = net.eval()(torch.zeros(1, d.in_chans, d.image_size, d.image_size))
    assert out.shape == (1, d.num_classes)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_trainer_recipes_compose(trainer):
    cfg = compose_cfg(f"trainer={trainer}")
    assert cfg.trainer.epochs > 0 and cfg.trainer.lr > 0


def test_paper_recipes_hold_the_paper_values():
    demo = compose_cfg("trainer=paper_demonet").trainer   # Table 10
    assert (demo.lr, demo.weight_decay, demo.batch_size, demo.epochs, demo.ema_decay) == (4e-3, 0.05, 2048, 300,
                                                                                       0.9998)
    star = compose_cfg("trainer=paper_starnet").trainer   # Table 12
    assert (star.lr, star.weight_decay, star.cutmix, star.ema) == (3e-3, 0.025, 0.2, False)


def test_top_level_knobs_reach_the_model():
    cfg = compose_cfg("op=sum", "width=24", "depth=3")
    assert model_identity(cfg) == {"model": "demonet", "variant": None, "op": "sum", "act": "gelu",
                                   "width": 24, "depth": 3}
    s1 = compose_cfg("model=starnet", "model.variant=s1", "op=sum")
    assert model_identity(s1)["width"] == 24 and model_identity(s1)["depth"] == [2, 2, 8, 3]
    custom = compose_cfg("model=starnet", "width=16", "depth=[1,1,2,1]")
    net = build_model(custom, 3, 10)
    assert [info["num_chs"] for info in net.feature_info] == [16, 32, 64, 128] and [len(s) - 1 for s in net.stages] == [1, 1, 2, 1]


def test_starnet_rejects_scalar_depth():
    with pytest.raises(ValueError, match="one block count per stage"):
        build_model(compose_cfg("model=starnet", "depth=12"), 3, 10)
