"""The training loop of a classification run, top to bottom: AdamW + warmup/cosine (timm), label smoothing, grad
clipping, optional EMA/mixup/cutmix (timm), AMP on CUDA, a checkpoint each epoch and exact resume from it, and a stop
signal (SIGTERM, Ctrl-C) that finishes the step, checkpoints and exits.

``Trainer(tcfg, model, data, machine, tracker, identity).fit()``: ``machine`` is what
``experiments.train.fast_paths.prepare_device`` settled (device, DDP, memory format, autocast, threads, optimizer
step); ``tracker`` writes the run's metrics.json and owns its dir, where ``last.pt`` is kept."""
from __future__ import annotations

import logging
import math
import random
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from starnet.kernels import said_while_slow

from .device import DistInfo, all_reduce_sum
from .fast_paths import Machine
from .stopping import STOP
from ..errors import Interrupted, StarbenchError
from ..records import Tracker, atomic_write

log = logging.getLogger("starbench")

CHECKPOINT = "last.pt"
PROGRESS_S = 15.0  # an epoch trained without a terminal (no progress bar) logs its progress this often


class Trainer:
    """One classification run's training: ``fit()`` resumes from ``last.pt`` if there is one, then trains and
    evaluates epoch by epoch (``train_epoch``: the step loop), checkpointing after each epoch."""

    def __init__(self, tcfg: DictConfig, model: nn.Module, data, machine: Machine, tracker: Tracker,
                 identity: Dict[str, Any]):
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy
        from timm.optim import create_optimizer_v2
        from timm.scheduler import CosineLRScheduler
        from timm.utils import ModelEmaV3

        self.cfg, self.model, self.data, self.tracker, self.identity = tcfg, model, data, tracker, identity
        self.device, self.dist, self.channels_last = machine.device, machine.dist, machine.channels_last
        self.autocast, self.threads = machine.autocast, machine.threads
        self.run_dir = tracker.run_dir
        self.forward_model = model  # what the training step calls: the DDP wrapper when distributed
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.forward_model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if tcfg.compile:  # fused elementwise kernels; checkpoints keep the plain model's keys
            self.forward_model = torch.compile(self.forward_model)
        self.optimizer = create_optimizer_v2(model, opt=tcfg.optimizer, lr=peak_lr(tcfg),
                                             weight_decay=tcfg.weight_decay, betas=tuple(tcfg.betas),
                                             **machine.optimizer_options)
        steps = data.steps_per_epoch
        if steps < 1:
            raise StarbenchError(f"no training batches: {data.num_train} images with batch size {tcfg.batch_size}")
        self.scheduler = CosineLRScheduler(
            self.optimizer, t_initial=tcfg.epochs * steps, lr_min=tcfg.min_lr, warmup_lr_init=tcfg.warmup_lr,
            warmup_t=int(tcfg.warmup_epochs * steps), t_in_epochs=False)
        self.mixup = None
        if tcfg.mixup or tcfg.cutmix:
            self.mixup = Mixup(mixup_alpha=tcfg.mixup, cutmix_alpha=tcfg.cutmix,
                               label_smoothing=tcfg.label_smoothing, num_classes=data.num_classes)
            self.criterion = SoftTargetCrossEntropy()
        else:
            self.criterion = nn.CrossEntropyLoss(label_smoothing=tcfg.label_smoothing)
        self.ema = ModelEmaV3(model, decay=tcfg.ema_decay) if tcfg.ema else None
        self.epoch = 0             # epochs completed
        self.step_in_epoch = 0     # batches of the current epoch already trained (mid-epoch checkpoint)
        self.epoch_loss_sum = 0.0  # sum of those batches' losses
        self.best_top1 = 0.0
        self.train_time = 0.0
        self.train_images = 0
        self.stepped = False       # whether this process has trained a step (its first compiles what it runs)
        self.catching = False      # whether stop signals reach this trainer (while fit runs, in the main thread)
        self.any_rank_stopped = False  # under DDP: some rank got a stop signal (``_agree_across_ranks``)

    # -- the run ------------------------------------------------------------------------------------
    def fit(self) -> Dict[str, Any]:
        self.maybe_resume()
        # SLURM sends SIGTERM before a time limit or preemption, a user Ctrl-C (SIGINT): finish the step,
        # checkpoint, exit. A signal while the job set up stops it after its first step.
        with STOP.caught_while_training() as catching:
            self.catching = catching
            return self._fit()

    def _fit(self) -> Dict[str, Any]:
        metrics: Dict[str, float] = {}
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            images_before, time_before = self.train_images, self.train_time
            train_loss = self.train_epoch()
            metrics = self.validate()
            self.epoch += 1
            self.best_top1 = max(self.best_top1, metrics["top1"])
            ips = (self.train_images - images_before) / max(self.train_time - time_before, 1e-9)
            row = {"epoch": self.epoch, "train_loss": train_loss, **metrics,
                   "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": ips,
                   "epoch_time_s": time.perf_counter() - t0}
            (log.info if self.dist.is_main else log.debug)(
                "epoch %d/%d  loss %.4f  val top1 %.2f  top5 %.2f  lr %.2e  %.0f img/s",
                self.epoch, self.cfg.epochs, train_loss, metrics["top1"], metrics["top5"], row["lr"], ips)
            if self.cfg.checkpoint:
                self.save()
            self.tracker.log_epoch(row)
        if not metrics:  # resumed a run whose training had finished: evaluate the saved weights
            metrics = self.validate()
        result = {"top1": metrics["top1"], "top5": metrics["top5"], "best_top1": self.best_top1,
                  "epoch": self.epoch, "train_time_s": self.train_time,
                  "train_images_per_s": self.train_images / max(self.train_time, 1e-9)}
        if self.threads is not None:
            result["threads"] = self.threads
        if hasattr(self.data, "corrupt_images"):
            result["corrupt_images"] = self.data.corrupt_images
        return result

    def validate(self) -> Dict[str, float]:
        """``evaluate`` the EMA weights when kept, else the model's."""
        eval_model = self.ema.module if self.ema is not None else self.model
        return evaluate(eval_model, self.data, self.device, self.autocast, self.channels_last, self.dist)

    # -- one epoch ----------------------------------------------------------------------------------
    def train_epoch(self) -> float:
        """Train the rest of the current epoch (all of it, unless resumed mid-epoch); its mean training loss."""
        self.model.train()
        steps = self.data.steps_per_epoch
        first = self.step_in_epoch  # > 0 when resuming mid-epoch
        bar = tqdm(self.data.train_batches(self.epoch, first), total=steps, initial=first, leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", dynamic_ncols=True, disable=None)
        start = time.perf_counter()
        next_report = start + PROGRESS_S  # without a terminal (no bar): a log line as often, for a long epoch
        with self._first_step_watch() as first_step:
            for i, (x, y) in enumerate(bar, start=first):
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                if self.mixup is not None:
                    x, y = self.mixup(x, y)
                with self.autocast:
                    loss = self.criterion(self.forward_model(x), y)
                loss_value = self._agree_across_ranks(loss.item())
                if not math.isfinite(loss_value):
                    raise StarbenchError(f"training loss is {loss_value} at epoch {self.epoch + 1} step {i + 1}; "
                                         "lower trainer.lr?")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.cfg.clip_grad:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad)
                self.optimizer.step()
                first_step.close()  # ends the first step's watch (and says how long it took, if it was slow)
                self.stepped = True
                step = self.epoch * steps + i + 1
                self.scheduler.step_update(step)
                if self.ema is not None:
                    self.ema.update(self.model, step=step)
                self.epoch_loss_sum += loss_value
                self.step_in_epoch = i + 1
                self.train_images += len(x) * self.dist.world_size
                if i % 20 == 0 and bar.disable is False:
                    bar.set_postfix(loss=f"{loss_value:.3f}")
                elif bar.disable and time.perf_counter() >= next_report and self.dist.is_main:
                    log.info("epoch %d/%d: step %d of %d, loss %.4f", self.epoch + 1, self.cfg.epochs, i + 1,
                             steps, loss_value)
                    next_report = time.perf_counter() + PROGRESS_S
                if self._should_stop():
                    self._checkpoint_and_stop(i + 1, start)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.train_time += time.perf_counter() - start
        mean_loss = all_reduce_sum([self.epoch_loss_sum], self.device, self.dist)[0] / (steps * self.dist.world_size)
        self.step_in_epoch, self.epoch_loss_sum = 0, 0.0
        return mean_loss

    def _first_step_watch(self) -> ExitStack:
        """The process's first step compiles what it runs: said while it takes long (closed after that step)."""
        watch = ExitStack()
        if not self.stepped:
            watch.enter_context(said_while_slow(
                "the first training step compiles what it runs (torch.compile of the blocks' branch merges; C++ "
                "kernels on their first use on this machine)", "first training step: %.0f s so far",
                "first training step done in %.0f s", log))
        return watch

    # -- stopping -----------------------------------------------------------------------------------
    def _should_stop(self) -> bool:
        """Whether to stop after the current step: this process got a stop signal (while ``fit`` catches them), or
        another DDP rank did."""
        return (self.catching and STOP.should_stop()) or self.any_rank_stopped

    def _agree_across_ranks(self, loss_value: float) -> float:
        """Under DDP, every rank learns whether any rank's loss is not finite (it then reads as NaN here) or any
        rank got a stop signal, so that all stop at the same step and no rank waits forever in the next one."""
        if not self.dist.enabled:
            return loss_value
        bad, stop = all_reduce_sum([not math.isfinite(loss_value), self._should_stop()],
                                   self.device, self.dist)
        self.any_rank_stopped = self.any_rank_stopped or bool(stop)
        return float("nan") if bad else loss_value

    def _checkpoint_and_stop(self, steps_done: int, start: float) -> None:
        """After the step a stop signal arrived in: checkpoint (mid-epoch, so a rerun resumes from here) and raise
        ``Interrupted``, whose exit code is 128 + the signal number (SIGTERM's where another rank was stopped)."""
        sig = (STOP.received() if self.catching else None) or signal.SIGTERM
        self.train_time += time.perf_counter() - start
        if self.cfg.checkpoint:
            self.save()
            then = "checkpoint saved, rerun the same command to resume"
        else:
            then = "no checkpoint (trainer.checkpoint=false): a rerun starts afresh"
        raise Interrupted(f"stopped by {sig.name} at epoch {self.epoch + 1} step {steps_done}; {then}",
                          128 + int(sig))

    # -- checkpointing ------------------------------------------------------------------------------
    def save(self) -> None:
        if not self.dist.is_main:  # one writer; every rank holds the same weights
            return
        state = {"identity": self.identity, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                 "epoch_loss_sum": self.epoch_loss_sum, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "ema": self.ema.state_dict() if self.ema else None, "rng": _rng_state(),
                 "best_top1": self.best_top1, "train_time": self.train_time, "train_images": self.train_images,
                 "threads": self.threads}
        # atomic: a kill or a full disk mid-save leaves the previous checkpoint, and no temp file
        atomic_write(self.run_dir / CHECKPOINT, lambda f: torch.save(state, f))

    def maybe_resume(self) -> None:
        path = self.run_dir / CHECKPOINT
        if not (self.cfg.checkpoint and path.exists()):
            return
        ckpt = load_checkpoint(path, self.identity)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.ema is not None and ckpt["ema"] is not None:
            self.ema.load_state_dict(ckpt["ema"])
        _set_rng_state(ckpt["rng"])
        self.epoch, self.best_top1 = ckpt["epoch"], ckpt["best_top1"]
        self.step_in_epoch, self.epoch_loss_sum = ckpt["step_in_epoch"], ckpt["epoch_loss_sum"]
        self.train_time, self.train_images = ckpt["train_time"], ckpt["train_images"]
        # the numbering of "stopped by SIGINT at epoch E step S": epoch E (from 1) with S of its steps done
        log.info("resumed from %s at epoch %d step %d", path, self.epoch + 1, self.step_in_epoch)


# -- what the loop uses: the lr, evaluation, the random state and checkpoint files ---------------------------
def peak_lr(tcfg: DictConfig) -> float:
    """``lr`` as given, or scaled linearly with the global batch when ``lr_base_batch`` is set
    (the paper: lr 4e-3 for a global batch of 2048)."""
    return tcfg.lr * tcfg.batch_size / tcfg.lr_base_batch if tcfg.lr_base_batch else tcfg.lr


@torch.no_grad()
def evaluate(model: nn.Module, data, device: torch.device, autocast, channels_last: bool,
             dist_info: DistInfo = DistInfo()) -> Dict[str, float]:
    model.eval()
    correct1 = correct5 = total = 0
    loss_sum = torch.zeros((), device=device)
    for x, y in data.val_batches():
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            logits = model(x).float()
        loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum")
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hit = top == y[:, None]
        correct1 += hit[:, 0].sum().item()
        correct5 += hit.any(dim=1).sum().item()
        total += len(y)
    correct1, correct5, total, loss = all_reduce_sum([correct1, correct5, total, loss_sum.item()], device, dist_info)
    return {"top1": 100.0 * correct1 / total, "top5": 100.0 * correct5 / total, "val_loss": loss / total}


def _rng_state() -> Dict[str, Any]:
    # Plain tensors/lists only, so the checkpoint loads with weights_only=True.
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "numpy": [torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    keys, pos = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path, identity: Dict[str, Any]) -> Dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise StarbenchError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}); "
                             "delete it to start this run afresh") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise StarbenchError(f"checkpoint {path} is not a starbench checkpoint")
    saved = ckpt.get("identity")
    if saved != identity:
        saved = saved if isinstance(saved, dict) else {}
        diff = {k: (saved.get(k), identity.get(k)) for k in {**saved, **identity} if saved.get(k) != identity.get(k)}
        raise StarbenchError(f"checkpoint {path} belongs to another model (saved vs now: {diff}); "
                             "use another run dir or delete it")
    return ckpt


def saved_threads(run_dir: Path) -> Optional[int]:
    """The thread count the checkpoint in ``run_dir`` was trained with, which a resumed run keeps (None: no
    checkpoint, one from before trainer.threads=auto, or an unreadable one, which the trainer's resume reports)."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        return None
    try:  # mmap: the weights are not read
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return ckpt.get("threads") if isinstance(ckpt, dict) else None
