"""Names of sweeps and runs in W&B: the same in every process that derives them."""
from experiments.records import stable_id, sweep_group


def test_sweep_group_is_stable(tmp_path):
    d = tmp_path / "2026-01-02" / "03-04-05"
    d.mkdir(parents=True)
    assert sweep_group(d) == "2026-01-02_03-04-05"
    assert sweep_group(d / "x" / "..") == sweep_group(d)
    assert stable_id(d) == stable_id(d / "x" / "..") and len(stable_id(d)) == 16
