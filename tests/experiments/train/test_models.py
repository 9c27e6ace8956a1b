"""experiments/train/models.py: the pipeline builds its models through timm's registry, the same models (and
initialisation, given the seed) as the direct constructors it used before."""
import pytest
import torch

from demonet import DemoNet
from experiments.train.models import build_model
from starnet import create_starnet
from tests.conftest import compose_cfg

CASES = {
    "demonet": (["width=16", "depth=2", "op=sum", "model.drop_path=0.1"],
                lambda cfg: DemoNet(width=16, depth=2, op="sum", act="gelu", num_classes=10, in_chans=1,
                                    patch_size=cfg.data.patch_size,
                                    drop_path=0.1, layer_scale=1e-6)),
    "starnet": (["model=starnet", "model.variant=s050", "op=[sum,sum,star,star]", "model.drop_path=0.1"],
                lambda cfg: create_starnet("s050", op=["sum", "sum", "star", "star"], num_classes=10, in_chans=1,
                                       drop_path=0.1)),
    "starnet_timm_init": (["model=starnet", "model.variant=s1", "width=8", "depth=[1,1,2,1]", "model.init=timm"],
                          lambda cfg: create_starnet("s1", num_classes=10, in_chans=1, width=8, depths=[1, 1, 2, 1],
                                                 init="timm")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_build_model_through_timm_is_bitwise_the_direct_build(case):
    overrides, direct = CASES[case]
    cfg = compose_cfg(*overrides)
    torch.manual_seed(3)
    built = build_model(cfg, in_chans=1, num_classes=10)
    torch.manual_seed(3)
    ref = direct(cfg)
    assert built.pretrained_cfg["architecture"].startswith("starbench_")  # it came through timm
    assert type(built) is type(ref) and repr(built) == repr(ref)
    a, b = built.state_dict(), ref.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_variant_keeps_its_error():
    with pytest.raises(ValueError, match="unknown StarNet variant 'nope'"):
        build_model(compose_cfg("model=starnet", "model.variant=nope"), in_chans=3, num_classes=10)


def test_counts_print_with_sensible_units():
    from experiments.train.models import human_count
    assert [human_count(n) for n in (512, 2848, 4_520_000, 1_030_000_000)] == ["512", "2.85k", "4.52M", "1.03G"]
