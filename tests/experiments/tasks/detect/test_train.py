"""task=detect end to end: bad settings refused, a short training run through the entry point, its metrics, and its
checkpoint reloaded in a fresh process, offline.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from experiments.tasks.detect import env  # before ultralytics: it sets ultralytics' settings dir
from experiments.tasks.detect import train as det
from experiments.errors import StarbenchError
from experiments.records import config_hash
from experiments.tasks.detect.model import detector_config
from tests.conftest import ROOT, compose_cfg
from tests.experiments.tasks.detect.helpers import NO_NETWORK, S050, TINY, no_network


def test_unknown_variant_is_a_clear_error(tmp_path):
    with pytest.raises(StarbenchError, match="unknown StarNet variant 's9'"):
        detector_config("s9", "star")
    with pytest.raises(StarbenchError, match="unknown StarNet variant"):
        det.run(compose_cfg(*TINY, "model.variant=s9"), tmp_path)


def test_detect_needs_starnet_and_detection_data(tmp_path):
    with pytest.raises(StarbenchError, match="model=starnet"):
        det.run(compose_cfg(*TINY, "model=demonet"), tmp_path)
    with pytest.raises(StarbenchError, match="data=fashion_det"):
        det.run(compose_cfg("task=detect", S050, "logger=none", "data=fashion_mnist"), tmp_path)


def test_imgsz_must_be_a_multiple_of_the_stride(tmp_path):
    for bad in (80, 65, 0):
        with pytest.raises(StarbenchError, match=f"task.imgsz must be a positive multiple of 32 .*got {bad}$"):
            det.run(compose_cfg(*TINY, S050, f"task.imgsz={bad}"), tmp_path)
    assert not (tmp_path / "metrics.json").exists()  # refused before any data, model or record


def test_corrupt_resume_checkpoint_is_a_clear_error(tmp_path):
    cfg = compose_cfg(*TINY, S050, f"data.cache_dir={tmp_path / 'cache'}")
    run_dir = tmp_path / "run"
    last = run_dir / "yolo" / "weights" / "last.pt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"not a checkpoint" * 10)
    (run_dir / "metrics.json").write_text(json.dumps({"status": "running", "config_hash": config_hash(cfg),
                                                       "history": [{"epoch": 1, "map50": 0.0}]}))
    with pytest.raises(StarbenchError) as err:
        det.run(cfg, run_dir)
    assert str(err.value).startswith(f"checkpoint {last.resolve()} is corrupt or unreadable (")
    assert str(err.value).endswith("); delete it to start this run afresh")
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run (op=sum) through the entry point, with the network blocked."""
    from experiments.entry import run_job
    base = tmp_path_factory.mktemp("detect")
    cfg = compose_cfg(*TINY, S050, "op=sum", f"data.cache_dir={base / 'cache'}")
    with no_network() as attempts:
        record = run_job(cfg, base / "run")
    return record, list(attempts), base


def test_short_training_writes_detection_metrics(trained):
    record, attempts, base = trained
    assert attempts == []  # no font download, no analytics, no DNS probe
    saved = json.loads((base / "run" / "metrics.json").read_text())
    assert saved["status"] == "completed" and saved["task"] == "detect" and saved["op"] == "sum"
    for key in ("map50", "map50_95", "precision", "recall"):
        assert isinstance(saved[key], float) and 0.0 <= saved[key] <= 100.0  # percent
    assert saved["params"] > 0 and saved["gflops"] > 0 and saved["flops"] > 0 and saved["train_time_s"] > 0
    assert saved["top1"] is None and Path(saved["best_checkpoint"]).is_file()
    assert [r["epoch"] for r in saved["history"]] == [1]
    assert {"train_box_loss", "train_cls_loss", "map50", "map50_95", "train_time_s"} <= set(saved["history"][0])
    # ultralytics' select_device() would leave one thread on a 2-core machine
    assert torch.get_num_threads() == env.cpu_threads()
    assert (Path(env.SETTINGS.file).parent / "Arial.ttf").is_file()
    assert env.SETTINGS["sync"] is False


@pytest.mark.parametrize("safe_load", ["0", "1"])  # 1: ultralytics' opt-in weights_only loading
def test_checkpoint_reloads_in_a_fresh_process(trained, tmp_path, safe_load):
    record, _, _ = trained
    script = NO_NETWORK + textwrap.dedent(f"""
        import json
        import torch
        from experiments.tasks.detect import train as det
        from experiments.tasks.detect.model import backbone_of
        m = det.evaluate({record['best_checkpoint']!r}, {record['data_yaml']!r}, {record['val_args']['imgsz']},
                         {record['val_args']['batch']}, save_dir={str(tmp_path / 'val')!r})
        model = det.load_yolo({record['best_checkpoint']!r}).model.float().eval()
        bb = backbone_of(model)
        fusions = sorted({{f.op for f in bb.modules() if type(f).__name__ == "Fusion"}})
        out = model(torch.linspace(0, 1, 3 * 64 * 64).reshape(1, 3, 64, 64))[0]
        print("RESULT", json.dumps({{**m, "op": bb.op, "fusions": fusions, "out": out.flatten()[:200].tolist(),
                                    "attempts": ATTEMPTS}}))
    """)
    home = tmp_path / "home"
    home.mkdir()
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "XDG_CONFIG"))}
    env_vars.update(HOME=str(home), PYTHONPATH=str(ROOT), ULTRALYTICS_SAFE_LOAD=safe_load)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env_vars, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.split("RESULT", 1)[1])
    assert got["attempts"] == []
    assert got["op"] == "sum" and got["fusions"] == ["sum"]
    for key in ("map50", "map50_95", "precision", "recall"):
        assert got[key] == record[key], key
    here = det.load_yolo(record["best_checkpoint"]).model.float().eval()
    with torch.no_grad():
        out = here(torch.linspace(0, 1, 3 * 64 * 64).reshape(1, 3, 64, 64))[0].flatten()[:200]
    assert torch.allclose(torch.tensor(got["out"]), out, atol=1e-5)  # the same function, not just the same mAP
    assert not (home / ".config" / "Ultralytics").exists()  # ultralytics wrote nothing into the user's home


def test_hydra_presets_compose():
    cfg = compose_cfg("task=detect")
    assert (cfg.task.name, cfg.model.name, cfg.data.name) == ("detect", "starnet", "fashion_det")
    assert cfg.task.optimizer != "auto" and cfg.task.patience == 0
    yolo = compose_cfg("task=detect", "data=yolo", "data.yaml=/x/coco.yaml")
    assert yolo.data.yaml == "/x/coco.yaml"
    from hydra import compose, initialize_config_dir
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        exp = compose("config", overrides=["experiment=detect_op"], return_hydra_config=True)
    assert exp.task.name == "detect" and exp.model.variant in ("s050", "s100")
    assert dict(exp.hydra.sweeper.params) == {"op": "star,sum", "seed": "0,1,2"}
    assert str(exp.hydra.mode) == "RunMode.MULTIRUN" and "detect_op" in str(exp.hydra.sweep.dir)  # no -m needed


def test_debug_fast_runs_on_a_yolo_dataset(tmp_path):
    """`python run.py debug=fast task=detect data=yolo data.yaml=...` (debug=fast sets data.train_size=512,
    val_size=256; this set has fewer, so all of them) trains and evaluates on the listed subset, offline."""
    from experiments.entry import run_job
    from tests.experiments.tasks.detect.test_datasets import _tiny_yolo_set
    y = _tiny_yolo_set(tmp_path / "set", {f"i{k}": "1 0.5 0.5 0.4 0.4\n" for k in range(4)})
    cfg = compose_cfg("task=detect", "debug=fast", "data=yolo", f"data.yaml={y}", S050, "task.imgsz=64",
                      "task.batch=4", "task.val_batch=4")
    assert (cfg.data.train_size, cfg.data.val_size, cfg.task.epochs) == (512, 256, 1)
    with no_network() as attempts:
        record = run_job(cfg, tmp_path / "run")
    assert list(attempts) == []
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["status"] == "completed" and saved["data"] == "data"
    assert saved["data_yaml"] == str((tmp_path / "run" / "data_subset" / "data.yaml").resolve())
    assert saved["data_stats"]["train"]["images"] == 4 and record["map50"] is not None
