"""Detection data sets checked before training (``experiments.tasks.detect.datasets``)."""
import json
from pathlib import Path

import pytest

from experiments.tasks.detect import env  # noqa: F401  (before ultralytics: it sets ultralytics' settings dir)
from experiments.errors import StarbenchError
from experiments.tasks.detect import datasets


def _tiny_yolo_set(root: Path, labels: dict, names=("a", "b"), nc=None) -> Path:
    from PIL import Image
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for name, text in labels.items():
            Image.new("RGB", (32, 32)).save(root / "images" / split / f"{name}.png")
            if text is not None:
                (root / "labels" / split / f"{name}.txt").write_text(text)
    extra = f"nc: {nc}\n" if nc is not None else ""
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\n{extra}"
                                    f"names: {json.dumps(list(names))}\n")
    return root / "data.yaml"


def test_bad_datasets_are_clear_errors(tmp_path):
    with pytest.raises(StarbenchError, match="data YAML not found"):
        datasets.check_dataset(tmp_path / "missing.yaml")
    good = _tiny_yolo_set(tmp_path / "good", {"x": "1 0.5 0.5 0.2 0.2\n"})
    assert datasets.check_dataset(good)["nc"] == 2
    with pytest.raises(StarbenchError, match="must match"):  # nc disagrees with names
        datasets.check_dataset(_tiny_yolo_set(tmp_path / "nc", {"x": "0 0.5 0.5 0.2 0.2\n"}, nc=3))
    with pytest.raises(StarbenchError, match="class 2 is out of range for nc=2"):
        datasets.check_dataset(_tiny_yolo_set(tmp_path / "cls", {"x": "2 0.5 0.5 0.2 0.2\n"}))
    unlabeled = _tiny_yolo_set(tmp_path / "bg", {"x": "0 0.5 0.5 0.2 0.2\n", "y": None})
    with pytest.raises(StarbenchError, match="1 of 2 train images have no labels"):
        datasets.check_dataset(unlabeled)
    assert datasets.check_dataset(unlabeled, allow_background=True)["stats"]["train"]["background"] == 1
    missing_val = _tiny_yolo_set(tmp_path / "noval", {"x": "0 0.5 0.5 0.2 0.2\n"})
    import shutil
    shutil.rmtree(tmp_path / "noval" / "images" / "val")
    with pytest.raises(StarbenchError, match="images not found"):  # and nothing is downloaded
        datasets.check_dataset(missing_val)


def test_a_subset_is_fixed_listed_and_checked_alone(tmp_path):
    """data=yolo's train_size / val_size: a fixed random subset of each split (the same on every call, in listed
    order, all images if there are fewer), written as image lists with a dataset YAML ultralytics parses."""
    from ultralytics.data.utils import check_det_dataset
    labels = {f"i{k}": "0 0.5 0.5 0.2 0.2\n" for k in range(6)}
    labels["i5"] = "7 0.5 0.5 0.2 0.2\n"  # a bad label: only checked when the subset draws it
    y = _tiny_yolo_set(tmp_path / "set", labels)
    with pytest.raises(StarbenchError, match="class 7 is out of range"):
        datasets.check_dataset(y)
    picks = [datasets.subset([Path(f"i{k}.png") for k in range(6)], 3) for _ in range(2)]
    assert picks[0] == picks[1] and len(picks[0]) == 3 and picks[0] == sorted(picks[0])
    assert datasets.subset([Path("a.png")], 5) == [Path("a.png")] and datasets.subset([Path("a.png")], None)
    size = next(n for n in range(1, 6) if Path("i5.png") not in datasets.subset(
        [Path(f"i{k}.png") for k in range(6)], n))
    data = datasets.check_dataset(y, sizes={"train": size, "val": size}, subset_dir=tmp_path / "run" / "data_subset")
    assert data["stats"]["train"]["images"] == data["stats"]["val"]["images"] == size
    sub = data["yaml"]
    assert sub == tmp_path / "run" / "data_subset" / "data.yaml"
    train_list = (sub.parent / "train.txt").read_text().splitlines()
    assert len(train_list) == size and all(Path(p).is_absolute() and Path(p).is_file() for p in train_list)
    parsed = check_det_dataset(str(sub), autodownload=False)  # what ultralytics trains on
    assert parsed["nc"] == 2 and datasets.list_images(parsed["train"]) == [Path(p) for p in train_list]
    assert "download" not in yaml_of(sub)
    whole = datasets.check_dataset(_tiny_yolo_set(tmp_path / "ok", {"a": "0 0.5 0.5 0.2 0.2\n"}),
                                   sizes={"train": None, "val": None})  # no sizes: the YAML as given
    assert whole["yaml"] == tmp_path / "ok" / "data.yaml"


def yaml_of(path):
    import yaml
    return yaml.safe_load(Path(path).read_text())


def test_debug_fast_composes_with_yolo_data():
    """`python run.py debug=fast task=detect data=yolo data.yaml=...` failed on `unknown config key
    data.train_size`: data=yolo now takes train_size / val_size (null = all)."""
    from tests.conftest import compose_cfg
    cfg = compose_cfg("task=detect", "debug=fast", "data=yolo", "data.yaml=/x/coco.yaml")
    assert (cfg.data.train_size, cfg.data.val_size, cfg.task.epochs) == (512, 256, 1)
    cfg = compose_cfg("task=detect", "data=yolo", "data.yaml=/x/coco.yaml")
    assert (cfg.data.train_size, cfg.data.val_size) == (None, None)


def test_yolo_data_without_task_detect_is_a_one_line_error(tmp_path):
    """`python run.py debug=fast data=yolo ...` (no task=detect) says what to add instead of failing on a key
    classification data have and detection data lack."""
    from experiments.entry import run_job
    from tests.conftest import compose_cfg
    cfg = compose_cfg("debug=fast", "data=yolo", "data.yaml=/x/coco.yaml")
    with pytest.raises(StarbenchError, match=r"data=yolo is detection data: add task=detect \(e\.g\. python run\.py "
                                             r"task=detect data=yolo data\.yaml=/path/to/data\.yaml\)"):
        run_job(cfg, tmp_path / "run")


def test_yolo_runs_recorded_before_the_subset_keys_keep_their_hash():
    """data=yolo's new train_size / val_size at null compute what runs without the keys computed: the config
    hash leaves them out, so a relaunched sweep still finds those runs done; a size changes the hash."""
    from omegaconf import OmegaConf

    from experiments.records import config_hash
    from tests.conftest import compose_cfg
    cfg = compose_cfg("task=detect", "data=yolo", "data.yaml=/x/coco.yaml")
    old = OmegaConf.to_container(cfg)
    del old["data"]["train_size"], old["data"]["val_size"]  # the config as composed before the keys existed
    assert config_hash(cfg) == config_hash(OmegaConf.create(old))
    assert config_hash(compose_cfg("task=detect", "data=yolo", "data.yaml=/x/coco.yaml", "data.train_size=512")) \
        != config_hash(cfg)
