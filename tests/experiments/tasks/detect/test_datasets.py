"""Detection data sets checked before training (``experiments.tasks.detect.datasets``)."""
import json
from pathlib import Path

import pytest

import experiments.detect  # noqa: F401  (before ultralytics: it sets ultralytics' settings dir)
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
