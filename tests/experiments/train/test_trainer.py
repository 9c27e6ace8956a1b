import copy

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from PIL import Image

from demonet import DemoNet
from experiments.entry import run_job
from experiments.train.trainer import load_checkpoint


def test_ema_mixup_cutmix_drop_path_run(tiny_cfg, tmp_path):
    record = run_job(tiny_cfg("trainer.ema=true", "trainer.ema_decay=0.9", "trainer.mixup=0.8",
                              "trainer.cutmix=1.0", "model.drop_path=0.1", "trainer.epochs=1"), tmp_path)
    assert record["status"] == "completed"
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["ema"] is not None and load_checkpoint(tmp_path / "last.pt", ckpt["identity"])["epoch"] == 1


def test_starnet_trains_channels_last(tiny_cfg, tmp_path):
    record = run_job(tiny_cfg("model=starnet", "model.variant=s050", "width=8", "depth=[1,1,1,1]",
                              "trainer.epochs=1"), tmp_path)
    assert record["status"] == "completed" and record["model"] == "starnet" and record["depth"] == [1, 1, 1, 1]


@pytest.mark.parametrize("workers", [0, 2])
def test_imagenet_folder_pipeline(tiny_cfg, tmp_path, workers):
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 8), ("val", 4)):
        for cls, color in (("a", 40), ("b", 220)):
            (tmp_path / "in" / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = (color + torch.randint(-20, 20, (40, 40, 3), generator=g)).clamp(0, 255).byte().numpy()
                Image.fromarray(pixels).save(tmp_path / "in" / split / cls / f"{i}.jpg")
    (tmp_path / "in" / "train" / "a" / "broken.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    cfg = tiny_cfg("data=imagenet", f"data.root={tmp_path}/in", "data.num_classes=2", "data.image_size=32",
                   "data.patch_size=8", f"data.workers={workers}", "trainer.batch_size=4", "trainer.epochs=1")
    record = run_job(cfg, tmp_path / "run")
    assert record["status"] == "completed" and record["train_size"] == 17
    assert record["corrupt_images"] >= 1  # skipped and counted, not a crash


def test_wrong_class_count_in_imagenet_folder(tiny_cfg, tmp_path):
    for split in ("train", "val"):
        (tmp_path / "in" / split / "a").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "in" / split / "a" / "0.jpg")
    from experiments.errors import StarbenchError
    with pytest.raises(StarbenchError, match="has 1 classes but data.num_classes=1000"):
        run_job(tiny_cfg("data=imagenet", f"data.root={tmp_path}/in", "data.workers=0"), tmp_path / "run")


@pytest.mark.parametrize("op", ["star", "sum"])
def test_compiled_training_step_matches_eager(op):
    """trainer.compile=true fuses the elementwise work; the math must stay the same (float tolerance)."""
    from starnet import create_starnet
    torch.manual_seed(0)
    eager = create_starnet("s050", op=op, num_classes=10).train().to(memory_format=torch.channels_last)
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model)
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (4,))
    losses = []
    for model, fn in ((eager, eager), (compiled_model, compiled)):
        loss = nn.functional.cross_entropy(fn(x), y, label_smoothing=0.1)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for a, b in zip(eager.parameters(), compiled_model.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6)
    for a, b in zip(eager.buffers(), compiled_model.buffers()):  # BatchNorm running statistics
        torch.testing.assert_close(b, a.to(b.dtype), rtol=1e-4, atol=1e-6)


def test_fused_and_multi_tensor_optimizer_steps_are_the_loops_math():
    from timm.optim import create_optimizer_v2
    steps = []
    for kind in ({}, {"foreach": True}, {"fused": True}):  # {}: torch's default on CPU, the per-parameter loop
        torch.manual_seed(0)
        model = DemoNet(8, 2, num_classes=10, in_chans=1, patch_size=4)
        opt = create_optimizer_v2(model, opt="adamw", lr=4e-3, weight_decay=0.05, **kind)
        assert all(opt.defaults[k] is v for k, v in kind.items())
        x, y = torch.randn(4, 1, 28, 28), torch.randint(0, 10, (4,))
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        steps.append([p.detach().clone() for p in model.parameters()])
    for other in steps[1:]:
        for a, b in zip(steps[0], other):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_trainer_builds_the_fused_optimizer_on_cpu(tiny_cfg, tmp_path, monkeypatch):
    import timm.optim
    seen = []
    real = timm.optim.create_optimizer_v2  # the trainer imports it when it builds its optimizer
    monkeypatch.setattr(timm.optim, "create_optimizer_v2", lambda *a, **kw: seen.append(kw) or real(*a, **kw))
    assert run_job(tiny_cfg("trainer.epochs=1"), tmp_path / "fast")["status"] == "completed"
    assert run_job(tiny_cfg("trainer.epochs=1", "trainer.fast_paths=false"), tmp_path / "plain")["status"] == "completed"
    assert seen[0].get("fused") is True and "fused" not in seen[-1] and "foreach" not in seen[-1]


def test_the_threads_probe_and_the_first_step_say_so_when_they_take_long(tiny_cfg, tmp_path, monkeypatch, caplog):
    """Both compile what the model runs on a first run (minutes for StarNet): said, with their progress, never in
    silence. Here every phase counts as long."""
    from starnet.kernels import _build
    monkeypatch.setattr(_build, "SLOW_BUILD_S", 0.0)
    monkeypatch.setattr(_build, "PROGRESS_S", 600.0)
    with caplog.at_level("INFO", logger="starbench"):
        run_job(tiny_cfg("trainer.threads=auto"), tmp_path / "auto")
    lines = [r.getMessage() for r in caplog.records if r.name == "starbench"]
    assert any(line.startswith("trainer.threads=auto: timing training steps of this model with 1 thread") for line in lines)
    assert any(line.startswith("trainer.threads: timed in ") for line in lines)
    assert any(line.startswith("the first training step compiles what it runs") for line in lines)
    assert any(line.startswith("first training step done in ") for line in lines)
    assert sum(line.startswith("the first training step") for line in lines) == 1  # the first step only


def test_an_epoch_without_a_terminal_logs_its_progress(tiny_cfg, tmp_path, monkeypatch, caplog):
    """tqdm's bar shows only on a terminal: a long epoch piped to a file (or run.log) says how far it is."""
    from experiments.train import trainer
    monkeypatch.setattr(trainer, "PROGRESS_S", 0.0)
    with caplog.at_level("INFO", logger="starbench"):
        run_job(tiny_cfg("trainer.epochs=1", "trainer.threads=1"), tmp_path)  # pytest's capture: no terminal
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch 1/1: step ")]
    assert steps[0].startswith("epoch 1/1: step 1 of 4, loss ") and len(steps) == 4  # 256 images, batch 64


def test_saved_threads_reads_the_checkpoint_and_leaves_a_bad_one_to_the_resume(tmp_path):
    from experiments.train.trainer import CHECKPOINT, saved_threads
    assert saved_threads(tmp_path) is None  # no checkpoint: a fresh run
    torch.save({"model": {}, "threads": 3}, tmp_path / CHECKPOINT)
    assert saved_threads(tmp_path) == 3
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")  # the resume says it is corrupt, in one line
    assert saved_threads(tmp_path) is None
