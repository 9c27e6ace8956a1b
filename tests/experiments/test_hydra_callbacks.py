"""The end-of-multirun summary (``experiments.hydra_callbacks.SweepSummary``) takes the reference op from its
config: ``+hydra.callbacks.sweep_summary.reference=OP`` on the command line. ``Preflight`` refuses a multirun
with a bad swept value before its first job."""
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from experiments.hydra_callbacks import swept_values
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


def test_swept_values_come_from_the_preset_and_the_command_line():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=op_zoo"], return_hydra_config=True)
    assert swept_values(cfg) == {"width": [8, 16, 32], "seed": [0, 1, 2, 3, 4, 5],
                                 "op": ["star", "sum", "max", "gate", "concat", "bilinear", "swiglu"]}
    with open_dict(cfg):  # what `python run.py -m experiment=op_zoo op=star,sum width=8 seed=range(2)` passes
        cfg.hydra.overrides.task = ["experiment=op_zoo", "op=star,sum", "width=8", "seed=range(2)"]
    # the command line's sweeps replace the preset's; a plain value there (width=8) ends the preset's width sweep
    assert swept_values(cfg) == {"op": ["star", "sum"], "seed": [0, 1]}


@pytest.mark.parametrize("sweep,message", [
    ("op=star,mul", "op=mul (swept): unknown op 'mul'"),
    ("width=8,-1", "width=-1 (swept): width must be a positive integer"),
    ("model.act=gelu,foo", "model.act=foo (swept): unknown activation 'foo'"),
    ("model=demonet,starnett", "model=starnett (swept): no such option; valid: demonet, starnet"),
])
def test_a_bad_swept_value_stops_the_multirun_before_its_first_job(tmp_path, sweep, message):
    """A typo in the last value of a sweep used to fail only once every job before it had trained."""
    sweep_dir = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "run.py", "-m", *TINY, *sweep.split(), f"hydra.sweep.dir={sweep_dir}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("starbench: error:")]
    assert proc.returncode == 1 and len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not sweep_dir.exists()  # no job ran, nothing was written
