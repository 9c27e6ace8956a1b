"""The training loop: AdamW + warmup/cosine (timm), label smoothing, grad clipping, optional
EMA/mixup/cutmix (timm), AMP on CUDA, a checkpoint each epoch and exact resume from it."""
from __future__ import annotations

import logging
import math
import random
import signal
import threading
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn
from tqdm import tqdm

from starnet.kernels import said_while_slow

from .distributed import DistInfo, all_reduce_sum
from . import stop_signals
from .fast_paths import optimizer_fast_path
from .threads import AUTO, choose_threads, describe, max_threads, training_step
from ..errors import Interrupted, StarbenchError
from ..records import Tracker, atomic_write

log = logging.getLogger("starbench")

CHECKPOINT = "last.pt"
PROGRESS_S = 15.0  # an epoch trained without a terminal (no progress bar) logs its progress this often


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


class Trainer:
    def __init__(self, tcfg: DictConfig, model: nn.Module, data, device: torch.device, run_dir: Path,
                 tracker: Tracker, identity: Dict[str, Any], seed: int, channels_last: bool,
                 dist_info: DistInfo = DistInfo(), input_shape: Optional[Tuple[int, int, int]] = None):
        from timm.data import Mixup
        from timm.loss import SoftTargetCrossEntropy
        from timm.optim import create_optimizer_v2
        from timm.scheduler import CosineLRScheduler
        from timm.utils import ModelEmaV3

        self.cfg, self.data, self.device = tcfg, data, device
        self.run_dir, self.tracker, self.identity, self.seed = Path(run_dir), tracker, identity, seed
        self.channels_last, self.dist = channels_last, dist_info
        self.input_shape = input_shape  # (C, H, W): what trainer.threads=auto's probe feeds the model
        self.threads: Optional[int] = None  # torch threads of this CPU run (set in fit; None on GPU)
        self.saved_threads: Optional[int] = None  # the count a resumed run's checkpoint was trained with
        if dist_info.enabled and tcfg.sync_bn:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        self.forward_model = self.model  # what the training step calls: the DDP wrapper when distributed
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel
            self.forward_model = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if tcfg.compile:  # fused elementwise kernels; checkpoints keep the plain model's keys
            self.forward_model = torch.compile(self.forward_model)
        self.optimizer = create_optimizer_v2(self.model, opt=tcfg.optimizer, lr=self.peak_lr(tcfg),
                                             weight_decay=tcfg.weight_decay, betas=tuple(tcfg.betas),
                                             **optimizer_fast_path(tcfg, device))
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
        self.ema = ModelEmaV3(self.model, decay=tcfg.ema_decay) if tcfg.ema else None
        amp = tcfg.amp
        use_amp = device.type == "cuda" if amp == "auto" else bool(amp)
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp else nullcontext()
        self.epoch = 0             # epochs completed
        self.step_in_epoch = 0     # batches of the current epoch already trained (mid-epoch checkpoint)
        self.epoch_loss_sum = 0.0  # sum of those batches' losses
        self.stop_signal = None    # set by SIGTERM or Ctrl-C: checkpoint after the current step, then exit
        self.best_top1 = 0.0
        self.train_time = 0.0
        self.train_images = 0
        self.stepped = False       # whether this process has trained a step (its first compiles what it runs)

    @staticmethod
    def peak_lr(tcfg: DictConfig) -> float:
        """``lr`` as given, or scaled linearly with the global batch when ``lr_base_batch`` is set
        (the paper: lr 4e-3 for a global batch of 2048)."""
        return tcfg.lr * tcfg.batch_size / tcfg.lr_base_batch if tcfg.lr_base_batch else tcfg.lr

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
        self.saved_threads = ckpt.get("threads")  # None in checkpoints from before trainer.threads=auto
        # the numbering of "stopped by SIGINT at epoch E step S": epoch E (from 1) with S of its steps done
        log.info("resumed from %s at epoch %d step %d", path, self.epoch + 1, self.step_in_epoch)

    # -- the loop -----------------------------------------------------------------------------------
    def train_epoch(self) -> float:
        self.model.train()
        steps = self.data.steps_per_epoch
        first = self.step_in_epoch  # > 0 when resuming mid-epoch
        bar = tqdm(self.data.train_batches(self.epoch, first), total=steps, initial=first, leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", dynamic_ncols=True, disable=None)
        start = time.perf_counter()
        first_step = ExitStack()  # the process's first step compiles what it runs: said while it takes long
        if not self.stepped:
            first_step.enter_context(said_while_slow(
                "the first training step compiles what it runs (torch.compile of the blocks' branch merges; C++ "
                "kernels on their first use on this machine)", "first training step: %.0f s so far",
                "first training step done in %.0f s", log))
        with first_step:
            return self._train_batches(bar, first, steps, start, first_step)

    def _train_batches(self, bar, first: int, steps: int, start: float, first_step: ExitStack) -> float:
        next_report = start + PROGRESS_S  # without a terminal (no bar): a log line as often, for a long epoch
        for i, (x, y) in enumerate(bar, start=first):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.mixup is not None:
                x, y = self.mixup(x, y)
            with self.autocast:
                loss = self.criterion(self.forward_model(x), y)
            loss_value = loss.item()
            if self.dist.enabled:  # agree across ranks on NaN and SIGTERM, so no rank waits forever
                bad, stop = all_reduce_sum([not math.isfinite(loss_value), self.stop_signal is not None],
                                           self.device, self.dist)
                loss_value = float("nan") if bad else loss_value
                self.stop_signal = self.stop_signal or (signal.SIGTERM if stop else None)
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
                log.info("epoch %d/%d: step %d of %d, loss %.4f", self.epoch + 1, self.cfg.epochs, i + 1, steps,
                         loss_value)
                next_report = time.perf_counter() + PROGRESS_S
            if self.stop_signal is not None:
                self.train_time += time.perf_counter() - start
                if self.cfg.checkpoint:
                    self.save()
                    then = "checkpoint saved, rerun the same command to resume"
                else:
                    then = "no checkpoint (trainer.checkpoint=false): a rerun starts afresh"
                raise Interrupted(f"stopped by {self.stop_signal.name} at epoch {self.epoch + 1} step {i + 1}; "
                                  f"{then}", 128 + int(self.stop_signal))
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.train_time += time.perf_counter() - start
        mean_loss = all_reduce_sum([self.epoch_loss_sum], self.device, self.dist)[0] / (steps * self.dist.world_size)
        self.step_in_epoch, self.epoch_loss_sum = 0, 0.0
        return mean_loss

    def _on_stop_signal(self, signum, frame) -> None:
        stop_signals.note(signal.Signals(signum))
        self.stop_signal = stop_signals.received()
        if signum == signal.SIGINT:  # a second Ctrl-C stops at once
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def set_threads(self) -> None:
        """torch's intra-op threads for a CPU run, from ``trainer.threads`` (``experiments/train/threads.py``):
        ``auto`` probes the machine as it is now, unless this run resumed from a checkpoint, whose count
        it keeps (its remaining steps then compute as an uninterrupted run's would)."""
        if self.device.type != "cpu":
            return
        setting = self.cfg.threads
        if setting == AUTO and self.saved_threads is not None:
            threads, how = self.saved_threads, f"{self.saved_threads} (the resumed checkpoint's)"
        else:
            if setting == AUTO and self.input_shape is None:
                raise StarbenchError("trainer.threads=auto needs the run's input shape to probe; set trainer.threads")
            batch = max(1, self.cfg.batch_size // self.dist.world_size)
            with said_while_slow(f"trainer.threads={setting}: timing training steps of this model with 1 thread and "
                                 f"with all {max_threads()} cores (its first step also compiles what the model runs)",
                                 "trainer.threads: still timing (%.0f s)", "trainer.threads: timed in %.0f s", log):
                threads, times = choose_threads(setting, lambda: training_step(
                    self.model, batch, self.input_shape, self.data.num_classes, self.channels_last, self.autocast))
            how = describe(threads, times)
        torch.set_num_threads(threads)
        self.threads = threads
        (log.info if self.dist.is_main else log.debug)("trainer.threads=%s: %s", setting, how)

    def fit(self) -> Dict[str, Any]:
        self.maybe_resume()
        self.set_threads()
        # SLURM sends SIGTERM before a time limit or preemption, a user Ctrl-C (SIGINT): finish the step,
        # checkpoint, exit.
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            return self._fit()
        previous = {sig: signal.signal(sig, self._on_stop_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        self.stop_signal = stop_signals.received()  # a signal while the job set up: stop after the first step
        if self.stop_signal == signal.SIGINT:  # then a Ctrl-C now is the second
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return self._fit()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _fit(self) -> Dict[str, Any]:
        metrics: Dict[str, float] = {}
        while self.epoch < self.cfg.epochs:
            t0 = time.perf_counter()
            images_before, time_before = self.train_images, self.train_time
            train_loss = self.train_epoch()
            eval_model = self.ema.module if self.ema is not None else self.model
            metrics = evaluate(eval_model, self.data, self.device, self.autocast, self.channels_last, self.dist)
            self.epoch += 1
            self.best_top1 = max(self.best_top1, metrics["top1"])
            ips = (self.train_images - images_before) / max(self.train_time - time_before, 1e-9)
            row = {"epoch": self.epoch, "train_loss": train_loss, **metrics,
                   "lr": self.optimizer.param_groups[0]["lr"], "images_per_s": ips,
                   "epoch_time_s": time.perf_counter() - t0}
            (log.info if self.dist.is_main else log.debug)("epoch %d/%d  loss %.4f  val top1 %.2f  top5 %.2f  lr %.2e  %.0f img/s",
                     self.epoch, self.cfg.epochs, train_loss, metrics["top1"], metrics["top5"], row["lr"], ips)
            if self.cfg.checkpoint:
                self.save()
            self.tracker.log_epoch(row)
        if not metrics:  # resumed a run whose training had finished: evaluate the saved weights
            eval_model = self.ema.module if self.ema is not None else self.model
            metrics = evaluate(eval_model, self.data, self.device, self.autocast, self.channels_last, self.dist)
        result = {"top1": metrics["top1"], "top5": metrics["top5"], "best_top1": self.best_top1,
                  "epoch": self.epoch, "train_time_s": self.train_time,
                  "train_images_per_s": self.train_images / max(self.train_time, 1e-9)}
        if self.threads is not None:
            result["threads"] = self.threads
        if hasattr(self.data, "corrupt_images"):
            result["corrupt_images"] = self.data.corrupt_images
        return result
