"""scripts/tune_select.py: a tuning sweep's best trial per op and width becomes a test-set preset that composes."""
import importlib.util
import json
import shutil

import yaml
from hydra import compose, initialize_config_dir

from tests.conftest import CONF, ROOT

spec = importlib.util.spec_from_file_location("tune_select", ROOT / "scripts" / "tune_select.py")
tune_select = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tune_select)


def fake_tuning_sweep(root):
    """widths 8 and 32 x lr 1e-3, 4e-3 x op: star is best at the small lr at width 8, sum at the large one."""
    for width in (8, 32):
        for lr in (1e-3, 4e-3):
            for op in ("star", "sum"):
                job = root / f"op={op},trainer.lr={lr},width={width}"
                (job / ".hydra").mkdir(parents=True)
                cfg = {"op": op, "seed": 0, "width": width, "depth": 12, "model": {"name": "demonet"},
                       "data": {"name": "fashion_mnist", "val_from": "train"}, "trainer": {"lr": lr},
                       "task": {"name": "classify"}}
                (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
                top1 = 85.0 + (lr == 1e-3) * (op == "star") + (lr == 4e-3) * (op == "sum") * 2 + width / 100
                (job / "metrics.json").write_text(json.dumps({"status": "completed", "task": "classify", "op": op,
                                                              "seed": 0, "width": width, "top1": top1}))
    return root


def test_selection_writes_each_ops_best_trial_as_a_preset_that_composes(tmp_path):
    sweep = fake_tuning_sweep(tmp_path / "sweep")
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    assert tune_select.main([str(sweep), "--conf", str(conf), "--name", "tuned_test", "--seeds", "3"]) == 0
    options = sorted(p.stem for p in (conf / "tuned").glob("*.yaml"))
    assert options == ["w32_star", "w32_sum", "w8_star", "w8_sum"]
    star8 = yaml.safe_load((conf / "tuned" / "w8_star.yaml").read_text())
    assert star8 == {"op": "star", "width": 8, "depth": 12, "trainer": {"lr": 1e-3}}
    assert yaml.safe_load((conf / "tuned" / "w8_sum.yaml").read_text())["trainer"]["lr"] == 4e-3
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose("config", overrides=["experiment=tuned_test", "+tuned=w8_star", "seed=2"],
                      return_hydra_config=True)
        assert (cfg.op, cfg.width, cfg.trainer.lr, cfg.data.val_from) == ("star", 8, 1e-3, "test")  # the test set
        params = cfg.hydra.sweeper.params
        assert list(params) == ["seed", "+tuned"] and str(params.seed) == "0,1,2"


def test_a_sweep_that_tuned_nothing_is_refused(tmp_path, capsys):
    sweep = fake_tuning_sweep(tmp_path / "sweep")
    for job in sweep.glob("*trainer.lr=0.004*"):
        shutil.rmtree(job)
    assert tune_select.main([str(sweep), "--conf", str(tmp_path / "conf")]) == 1
    assert "is not a tuning sweep" in capsys.readouterr().err


def test_an_unfinished_sweep_is_refused_before_anything_is_written(tmp_path, capsys):
    """The rule picks from the whole grid: a trial missing for one op (a stopped sweep), or a job not completed."""
    sweep = fake_tuning_sweep(tmp_path / "sweep")
    shutil.rmtree(sweep / "op=sum,trainer.lr=0.004,width=32")
    assert tune_select.main([str(sweep), "--conf", str(tmp_path / "conf")]) == 1
    err = capsys.readouterr().err
    assert "incomplete" in err and "sum at width=32: 1 missing" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "conf").exists()
    shutil.rmtree(sweep / "op=sum,trainer.lr=0.001,width=32")  # an op with no trial at all in a cell
    assert tune_select.main([str(sweep), "--conf", str(tmp_path / "conf")]) == 1
    assert "sum at width=32: 2 missing" in capsys.readouterr().err
    running = sweep / "op=star,trainer.lr=0.004,width=32" / "metrics.json"
    running.write_text(json.dumps({**json.loads(running.read_text()), "status": "running"}))
    assert tune_select.main([str(sweep), "--conf", str(tmp_path / "conf")]) == 1
    assert "1 of 6 jobs are not completed" in capsys.readouterr().err and not (tmp_path / "conf").exists()
