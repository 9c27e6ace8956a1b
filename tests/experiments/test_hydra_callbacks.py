"""The end-of-multirun summary (``experiments.hydra_callbacks.SweepSummary``) takes the reference op from its
config: ``+hydra.callbacks.sweep_summary.reference=OP`` on the command line."""
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import CONF
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
