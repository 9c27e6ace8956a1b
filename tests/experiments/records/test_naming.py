"""Names of sweeps and runs, and the config hash: the same in every process that derives them."""
from experiments.records import config_hash, stable_id, sweep_group
from tests.conftest import compose_cfg


def test_sweep_group_is_stable(tmp_path):
    d = tmp_path / "2026-01-02" / "03-04-05"
    d.mkdir(parents=True)
    assert sweep_group(d) == "2026-01-02_03-04-05"
    assert sweep_group(d / "x" / "..") == sweep_group(d)
    assert stable_id(d) == stable_id(d / "x" / "..") and len(stable_id(d)) == 16


def test_config_hash_ignores_where_and_how_fast():
    base = config_hash(compose_cfg("logger=none"))
    assert config_hash(compose_cfg("logger=none", "trainer.threads=1", "trainer.device=cpu")) == base
    assert config_hash(compose_cfg("logger=wandb")) == base
    assert config_hash(compose_cfg("logger=none", "seed=1")) != base
