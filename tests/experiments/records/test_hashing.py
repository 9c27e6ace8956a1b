"""The config hash: what a job computes, the same in every process; the keys it leaves out, and how they relate to
the keys a job's dir name leaves out."""
import pytest
from omegaconf import OmegaConf

from experiments.records import NON_RESULT_KEYS, config_hash
from starnet.kernels.accelerate import SWITCHES
from tests.conftest import CONF, compose_cfg


def test_config_hash_ignores_where_and_how_fast():
    base = config_hash(compose_cfg("logger=none"))
    assert config_hash(compose_cfg("logger=none", "trainer.threads=1", "trainer.device=cpu")) == base
    assert config_hash(compose_cfg("logger=wandb")) == base
    assert config_hash(compose_cfg("logger=none", "seed=1")) != base


@pytest.mark.parametrize("key", ["fast_paths", *SWITCHES, "reuse_freed_memory"])
def test_every_fast_path_leaves_the_hash_as_it_is(key):
    """They compute PyTorch's math to float rounding: turning one off is the same job (each kernel switch is a field
    of KernelOptions, so a new one is left out of the hash without a second list)."""
    assert config_hash(compose_cfg(f"trainer.{key}=false")) == config_hash(compose_cfg())


def _under(key: str, keys) -> bool:
    return any(key == k or key.startswith(k + ".") for k in keys)


def test_a_job_dir_leaves_out_only_keys_that_change_no_result():
    """conf/hydra/starbench.yaml names a sweep job's dir by its overrides but ``exclude_keys``. A key left out there must
    change nothing the job computes (a NON_RESULT_KEY, or Hydra's own), else two different jobs would share a dir.
    The lists differ on purpose the other way: a non-result key may still name a dir (a timing sweep over
    trainer.fused_block=true,false keeps each side's record apart)."""
    hydra = OmegaConf.load(CONF / "hydra" / "starbench.yaml")
    excluded = list(hydra.job.config.override_dirname.exclude_keys)
    assert excluded and all(_under(key, NON_RESULT_KEYS) or key.startswith("hydra.") for key in excluded)
