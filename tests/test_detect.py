"""task=detect: StarNet-YOLOv8 built, trained, evaluated and reloaded through ultralytics, offline.

Needs the `detect` extra (ultralytics); skipped without it. About 30 s on 2 CPU cores.
"""
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, compose_cfg

if importlib.util.find_spec("ultralytics") is None:
    pytest.skip("ultralytics not installed (pip install -e .[detect])", allow_module_level=True)

import experiments.detect as det  # noqa: E402  (before ultralytics: it sets ultralytics' settings dir)
from experiments.detect import datasets, env, fashion_det  # noqa: E402
from experiments.detect.model import TAPS, backbone_of, detector_config, write_config  # noqa: E402
from experiments.errors import StarbenchError  # noqa: E402
from starnet import VARIANTS  # noqa: E402
from ultralytics.nn.tasks import DetectionModel  # noqa: E402

TINY = ("task=detect", "logger=none", "task.epochs=1", "task.imgsz=64", "task.batch=8",
        "task.val_batch=8", "data.train_size=24", "data.val_size=12", "data.image_size=64", "data.objects=[1,3]",
        "data.scale=[0.25,0.6]")
S050 = "model.variant=s050"

# Run in a fresh interpreter before anything else: any connection to a non-local host fails and is reported.
NO_NETWORK = textwrap.dedent("""
    import socket
    ATTEMPTS = []
    _connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo
    def _local(host):
        return host in (None, "", "localhost", "127.0.0.1", "::1")
    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None) or _local(address[0]):
            return _connect(self, address)
        ATTEMPTS.append(str(address))
        raise OSError("network blocked by the test")
    def getaddrinfo(host, *args, **kwargs):
        if _local(host):
            return _getaddrinfo(host, *args, **kwargs)
        ATTEMPTS.append(str(host))
        raise socket.gaierror("network blocked by the test")
    socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
""")


@contextlib.contextmanager
def no_network():
    """Block (and record) connections to non-local hosts in this process."""
    scope = {}
    exec(NO_NETWORK, scope)
    try:
        yield scope["ATTEMPTS"]
    finally:
        socket.socket.connect, socket.getaddrinfo = scope["_connect"], scope["_getaddrinfo"]


def test_network_guard_blocks():
    with no_network() as attempts:
        with pytest.raises(OSError):
            urllib.request.urlopen("http://example.com", timeout=2)
    assert attempts


def test_pil_open_is_pillows_own():
    from PIL import Image
    from ultralytics.utils import patches
    assert Image.open is patches._image_open  # ultralytics' HEIF patch would pip-install on a broken image


# --- model -------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_detector_builds_for_each_variant_and_op(variant):
    params, strides = {}, {}
    for op in ("star", "sum"):
        model = DetectionModel(detector_config(variant, op, nc=10), ch=3, nc=10, verbose=False)
        bb = backbone_of(model)
        assert bb.op == op and bb.strides == [8, 16, 32]
        assert [ch for ch in bb.channels] == [bb.body.stage_channels[i] for i in TAPS]
        params[op] = sum(p.numel() for p in model.parameters())
        strides[op] = model.stride.tolist()
        with torch.no_grad():
            feats = bb(torch.zeros(1, 3, 64, 64))
        assert [f.shape[-1] for f in feats] == [8, 4, 2]
    assert strides["star"] == strides["sum"] == [8.0, 16.0, 32.0]
    assert params["star"] == params["sum"]  # the fair comparison: the op is the only difference


def test_backbone_fuse_keeps_outputs():
    model = DetectionModel(detector_config("s050", "star", nc=10), ch=3, nc=10, verbose=False).eval()
    bb = backbone_of(model)
    for m in bb.modules():  # non-trivial BatchNorm statistics, so folding them is tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = bb(x)
        after = bb.fuse()(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bb.modules())
    assert all(torch.allclose(a, b, atol=1e-4, rtol=1e-4) for a, b in zip(before, after))


def test_generated_yaml_works_in_plain_ultralytics(tmp_path):
    from ultralytics import YOLO
    path = write_config(tmp_path / "starnet_s050_sum_yolov8n.yaml", detector_config("s050", "sum", nc=3))
    model = YOLO(str(path))
    assert backbone_of(model.model).op == "sum" and model.model.yaml["nc"] == 3
    assert model.model.yaml["backbone"][0][3][:2] == ["s050", "sum"]  # what a checkpoint records
    with pytest.raises(StarbenchError, match="scale from the file name"):
        write_config(tmp_path / "plain.yaml", detector_config("s050", "sum", nc=3, scale="s"))


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
    from experiments import tracking
    cfg = compose_cfg(*TINY, S050, f"data.cache_dir={tmp_path / 'cache'}")
    run_dir = tmp_path / "run"
    last = run_dir / "yolo" / "weights" / "last.pt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"not a checkpoint" * 10)
    (run_dir / "metrics.json").write_text(json.dumps({"status": "running", "config_hash": tracking.config_hash(cfg),
                                                       "history": [{"epoch": 1, "map50": 0.0}]}))
    with pytest.raises(StarbenchError) as err:
        det.run(cfg, run_dir)
    assert str(err.value).startswith(f"checkpoint {last.resolve()} is corrupt or unreadable (")
    assert str(err.value).endswith("); delete it to start this run afresh")
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"


def test_resumed_train_time_adds_the_kept_epochs():
    from experiments.detect.callbacks import previous_train_time
    history = [{"epoch": 1, "epoch_time_s": 2.0, "train_time_s": 2.5}, {"epoch": 2, "epoch_time_s": 3.0,
                                                                        "train_time_s": 5.5},
               {"epoch": 3, "epoch_time_s": 1.0, "train_time_s": 6.5}]
    assert previous_train_time(history, 0) == 0.0  # fresh run
    assert previous_train_time(history, 2) == 5.5  # epoch 3 is redone: its time is not counted
    assert previous_train_time([{k: v for k, v in r.items() if k != "train_time_s"} for r in history], 2) == 5.0


# --- data --------------------------------------------------------------------------------------

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


# --- training, metrics, reload -----------------------------------------------------------------

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
        import experiments.detect as det
        from experiments.detect.model import backbone_of
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
