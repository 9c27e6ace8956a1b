"""The generated Fashion-MNIST detection set (``experiments.data.fashion_det``): labels match the drawings,
generation is deterministic and cached. Checked with ultralytics' own dataset reader (the ``detect`` extra)."""
import numpy as np
import pytest

pytest.importorskip("ultralytics")

from experiments.tasks.detect import env  # noqa: E402,F401  (before ultralytics: it sets ultralytics' settings dir)
from experiments.data import fashion_det  # noqa: E402
from experiments.tasks.detect import datasets  # noqa: E402
from tests.conftest import ROOT  # noqa: E402


SPEC = fashion_det.FashionDetSpec(train_size=10, val_size=6, image_size=64, min_objects=1, max_objects=4,
                                  min_scale=0.2, max_scale=0.5, seed=3)


@pytest.fixture(scope="module")
def fashion_set(tmp_path_factory):
    return fashion_det.ensure(SPEC, tmp_path_factory.mktemp("cache"), ROOT / "data" / "fashion_mnist")


def test_generated_labels_match_images(fashion_set):
    from PIL import Image
    root = fashion_set.parent
    items = fashion_det.load_items(ROOT / "data" / "fashion_mnist")
    for split, n in (("train", SPEC.train_size), ("val", SPEC.val_size)):
        files = sorted((root / "images" / split).glob("*.png"))
        assert len(files) == n
        for i, f in enumerate(files):
            img = np.asarray(Image.open(f))
            assert img.shape == (SPEC.image_size, SPEC.image_size, 3)
            rows = np.loadtxt(root / "labels" / split / f"{f.stem}.txt", ndmin=2)
            assert len(rows) >= 1
            cls, xc, yc, w, h = rows.T
            assert np.all((cls >= 0) & (cls < len(fashion_det.CLASSES)) & (cls == cls.round()))
            assert np.all((xc - w / 2 >= 0) & (xc + w / 2 <= 1) & (yc - h / 2 >= 0) & (yc + h / 2 <= 1))
            assert np.all((w > 0) & (h > 0))
            # The file is the drawing: redrawing image i gives the same pixels and boxes.
            again, boxes = fashion_det.draw_image(SPEC, *items[split], split, i)
            assert np.array_equal(again, img)
            assert np.allclose(np.loadtxt(fashion_det.yolo_lines(boxes, SPEC.image_size), ndmin=2), rows, atol=1e-6)
    stats = datasets.check_dataset(fashion_set)["stats"]
    assert stats["train"]["images"] == SPEC.train_size and stats["val"]["background"] == 0


def test_generated_set_is_deterministic_and_cached(fashion_set, tmp_path):
    again = fashion_det.generate(SPEC, tmp_path / SPEC.name, ROOT / "data" / "fashion_mnist")
    for f in (fashion_set.parent / "labels" / "train").glob("*.txt"):
        assert f.read_text() == (again.parent / "labels" / "train" / f.name).read_text()
    assert fashion_det.ensure(SPEC, fashion_set.parent.parent, ROOT) == fashion_set  # cached: no regeneration
    other = fashion_det.FashionDetSpec(**{**SPEC.__dict__, "seed": 4})
    assert other.name != SPEC.name


def test_documented_command_runs():
    """docs/detection.md: ``python -m experiments.data.fashion_det --help``."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "experiments.data.fashion_det", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Fashion-MNIST detection set" in proc.stdout
