"""The end-of-multirun summary (``experiments.hydra_callbacks.SweepSummary``) takes the reference op from its
config: ``+hydra.callbacks.sweep_summary.reference=OP`` on the command line. ``Preflight`` refuses a multirun
with a bad swept value before its first job."""
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from experiments.hydra_callbacks import check_sweep, sweep_choices
from tests.conftest import CONF, ROOT, TINY
from tests.experiments.analysis.test_many_ops import RESULTS, write_job


def test_reference_from_the_command_line(tmp_path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["+hydra.callbacks.sweep_summary.reference=max"], return_hydra_config=True)
    callback = instantiate(cfg.hydra.callbacks.sweep_summary)
    assert callback.reference == "max"
    sweep = tmp_path / "zoo"
    for width, ops in RESULTS.items():
        for op, accs in ops.items():
            for seed, acc in enumerate(accs):
                write_job(sweep, op=op, seed=seed, width=width, top1=acc)
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}, "logger": {"name": "none"}}))
    md = (sweep / "summary.md").read_text()
    assert md.startswith("# Star, sum vs max:") and "| 8 | max (reference) |" in md


def test_sweep_choices_come_from_the_preset_and_the_command_line():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=op_zoo"], return_hydra_config=True)
    choices = sweep_choices(cfg)
    assert choices["width"] == ["width=8", "width=16", "width=32"] and len(choices["seed"]) == 6
    assert choices["op"] == [f"op={op}" for op in ("star", "sum", "max", "gate", "concat", "bilinear", "swiglu")]
    with open_dict(cfg):  # what `python run.py -m experiment=op_zoo op=star,sum width=8 seed=range(2)` passes
        cfg.hydra.overrides.task = ["experiment=op_zoo", "op=star,sum", "width=8", "seed=range(2)"]
    choices = sweep_choices(cfg)  # the command line wins over the preset's sweeps
    assert (choices["op"], choices["width"], choices["seed"]) == (["op=star", "op=sum"], ["width=8"],
                                                                  ["seed=0", "seed=1"])


@pytest.mark.parametrize("sweep,message", [
    ("op=star,mul", "op=mul (swept): unknown op 'mul'"),
    ("width=8,-1", "width=-1 (swept): width must be a positive integer"),
    ("model.act=gelu,foo", "model.act=foo (swept): unknown activation 'foo'"),
    ("model=demonet,starnett", "model=starnett (swept): unknown model 'starnett'; valid: demonet, starnet"),
    ("seed=0,-1", "seed=-1 (swept): seed must be an integer from 0 to 2**32 - 1"),
])
def test_a_bad_swept_value_stops_the_multirun_before_its_first_job(tmp_path, sweep, message):
    """A typo in the last value of a sweep used to fail only once every job before it had trained."""
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "run.py", "-m", *TINY, *sweep.split(), f"hydra.sweep.dir={sweep_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("starbench: error:")]
    assert proc.returncode == 1 and len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not sweep_dir.exists()  # no job ran, nothing was written


def compose_sweep(*overrides):
    """The config a multirun's callbacks get for `python run.py -m OVERRIDES` (sweeps not yet expanded)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plain = [o for o in overrides if "," not in o.split("=", 1)[1]]
        cfg = compose("config", overrides=plain, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.overrides.task = list(overrides)
        HydraConfig.instance().set_config(cfg)
        check_sweep(cfg)  # inside: Hydra's config loader composes the jobs


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_preset_passes_the_sweep_check(preset):
    compose_sweep(f"experiment={preset}", *(["data.root=/x"] if preset.endswith("_paper") else []))


@pytest.mark.parametrize("overrides", [
    ("data=imagenet", "data.root=/a,/b"),                      # the sweep's own config is no job: not checked as one
    ("task=detect", "data=yolo", "data.yaml=/a.yaml,/b.yaml"),  # a key whose default is ??? (missing)
    ("experiment=starnet_op_smoke,starnet_op", "model.variant=s050,s1"),  # keys of the swept group's model
    ("op='star','sum'",),                                        # quoted values
    ("depth=[1,1,4,1],[2,2,8,2]", "model=starnet"),              # list values
])
def test_valid_sweeps_pass_the_sweep_check(overrides):
    compose_sweep(*overrides)
