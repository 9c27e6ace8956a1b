"""Task ``moons``: the paper's 2-D toy (sec. 3.4, Fig. 2), star vs sum beside two SVMs.

As the official ``2D_visual`` code: ``make_moons(n=100, noise=0.4, random_state=0)``; the 2-D
DemoNet (``PointDemoNet``: width 100, depth 4, ReLU — set by ``experiment=moons``); SGD lr 0.1
momentum 0.9 wd 2e-4, cosine (per epoch) to 0.005, batch 32 with the last partial batch dropped,
30 epochs, label smoothing 0.1, grad-norm clip 1 (paper Table 11). Accuracy is measured on the
100 training points, in eval mode, after each epoch (the repo reports it so); ``top1`` is the
last epoch's, ``best_top1`` the best. The SVM baselines (poly degree 4 / coef0 4 / gamma 'scale',
rbf gamma 4) are fitted on the same points. The model is tiny, so a run takes about a second
and is simply redone rather than resumed.

Each run saves its decision function on the plotting grid (``boundary.npz``); at the end of a
sweep ``sweep_report`` draws sum, star and both SVMs side by side (``moons_boundaries.png``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from demonet.model import PointDemoNet

from ..records import Tracker
from ..train.device import seed_everything
from .base import TaskSpec

BOUNDARY_FILE, FIGURE_FILE = "boundary.npz", "moons_boundaries.png"
# The official plotting range, x in [-2, 3) and y in [-2, 2.5), at step 0.04 (the repo: 0.02) so
# that scoring the grid takes a fraction of a second on one core.
GRID = (np.arange(-2.0, 3.0, 0.04), np.arange(-2.0, 2.5, 0.04))


def make_data(task: DictConfig) -> Tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons
    x, y = make_moons(n_samples=task.samples, noise=task.noise, random_state=task.data_seed)
    return x.astype(np.float32), y.astype(np.int64)


def grid_points() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    xx, yy = np.meshgrid(*GRID)
    return xx, yy, np.c_[xx.ravel(), yy.ravel()].astype(np.float32)


def svms(task: DictConfig) -> Dict[str, Any]:
    """The paper's two SVM baselines (Fig. 2 bottom), unfitted."""
    from sklearn import svm
    return {"poly": svm.SVC(kernel="poly", degree=task.svm_poly.degree, coef0=task.svm_poly.coef0,
                            gamma=task.svm_poly.gamma),
            "rbf": svm.SVC(kernel="rbf", gamma=float(task.svm_rbf.gamma))}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return 100.0 * (model(x).argmax(1) == y).sum().item() / len(y)  # exact: 96.0, not 95.99999


def run(cfg: DictConfig, run_dir: Path) -> Dict[str, Any]:
    task = cfg.task
    torch.set_num_threads(1)  # a 100-point problem: threads only add overhead
    seed_everything(cfg.seed)
    x_np, y_np = make_data(task)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    model = PointDemoNet(width=cfg.width, depth=cfg.depth, op=cfg.op, act=cfg.model.act)
    info = {"task": "moons", "model": "demonet", "variant": None, "op": cfg.op, "act": cfg.model.act,
            "width": cfg.width, "depth": cfg.depth, "data": "moons", "seed": cfg.seed, "epochs": task.epochs,
            "train_size": len(y), "params": sum(p.numel() for p in model.parameters())}
    with Tracker(cfg, run_dir, info) as tracker:
        optimizer = torch.optim.SGD(model.parameters(), lr=task.lr, momentum=task.momentum,
                                    weight_decay=task.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=task.epochs, eta_min=task.min_lr)
        criterion = nn.CrossEntropyLoss(label_smoothing=task.label_smoothing)
        generator = torch.Generator().manual_seed(cfg.seed)
        steps = len(y) // task.batch_size  # drop_last
        best, start = 0.0, time.perf_counter()
        for epoch in range(1, task.epochs + 1):
            model.train()
            order = torch.randperm(len(y), generator=generator)
            losses = []
            for i in range(steps):
                idx = order[i * task.batch_size:(i + 1) * task.batch_size]
                loss = criterion(model(x[idx]), y[idx])
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), task.clip_grad)
                optimizer.step()
                losses.append(loss.item())
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            top1 = accuracy(model, x, y)
            best = max(best, top1)
            tracker.log_epoch({"epoch": epoch, "train_loss": float(np.mean(losses)), "top1": top1, "lr": lr})
        train_time = time.perf_counter() - start

        _, _, grid = grid_points()
        with torch.no_grad():
            prob = model(torch.from_numpy(grid)).softmax(1)[:, 1].numpy()
        np.savez_compressed(Path(run_dir) / BOUNDARY_FILE, prob=prob.astype(np.float16))
        baselines = {f"svm_{name}_top1": 100.0 * clf.fit(x_np, y_np).score(x_np, y_np)
                     for name, clf in svms(task).items()}
        # model/data/epochs also go to the W&B summary, so scripts/compare.py can name the sweep
        return tracker.finish({"top1": top1, "best_top1": best, **baselines, "train_time_s": train_time,
                               "model": "demonet", "data": "moons", "epochs": task.epochs})


# ---------------------------------------------------------------- sweep figure

def _pick_pair(jobs: Sequence[Any]) -> Tuple[Any, Dict[str, Any]]:
    """The lowest seed with both a completed sum and star run that saved a boundary."""
    by_seed: Dict[Any, Dict[str, Any]] = {}
    for job in jobs:
        if job.status == "completed" and job.run_dir and (job.run_dir / BOUNDARY_FILE).exists():
            by_seed.setdefault(job.get("seed"), {})[job.get("op")] = job
    for seed in sorted(by_seed, key=lambda s: (s is None, s)):
        if {"sum", "star"} <= set(by_seed[seed]):
            return seed, by_seed[seed]
    return None, {}


def plot_boundaries(panels: Sequence[Tuple[str, np.ndarray]], x: np.ndarray, y: np.ndarray, path: Path,
                    title: str) -> None:
    """Decision boundaries side by side: each panel is (label, class-1 score on the grid)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    xx, yy, _ = grid_points()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.4), sharey=True)
    for ax, (label, score) in zip(np.atleast_1d(axes), panels):
        ax.contourf(xx, yy, score.reshape(xx.shape) > 0.5, levels=[-0.5, 0.5, 1.5],
                    colors=["#c6dbef", "#fdd0a2"], alpha=0.9)
        ax.contour(xx, yy, score.reshape(xx.shape), levels=[0.5], colors="k", linewidths=0.8)
        ax.scatter(x[:, 0], x[:, 1], c=np.where(y == 1, "#e6550d", "#3182bd"), s=10, edgecolors="k",
                   linewidths=0.3)
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _task_config(run_dir: Path) -> DictConfig:
    """The task config a run saw (its saved Hydra config), else this task's defaults."""
    saved = Path(run_dir) / ".hydra" / "config.yaml"
    if saved.exists():
        return OmegaConf.load(saved).task
    return OmegaConf.load(Path(__file__).resolve().parents[2] / "conf" / "task" / "moons.yaml")


def sweep_report(sweep_dir: Path, jobs: Sequence[Any]) -> List[str]:
    """``TASK.sweep_report`` (``experiments.analysis.aggregate`` calls it): the boundary figure and the SVM rows
    of summary.md."""
    lines = ["", "## SVM baselines (training accuracy, same 100 points)", ""]
    svm_acc = {name: next((j.record[f"svm_{name}_top1"] for j in jobs if f"svm_{name}_top1" in j.record), None)
               for name in ("poly", "rbf")}
    lines += [f"- SVM {name}: {acc:.1f}%" if acc is not None else f"- SVM {name}: –" for name, acc in svm_acc.items()]
    seed, pair = _pick_pair(jobs)
    if not pair:
        return lines + ["", "No seed has both a completed sum and star run: no boundary figure."]
    task = _task_config(pair["star"].run_dir)
    x, y = make_data(task)
    _, _, grid = grid_points()
    panels = []
    for op in ("sum", "star"):
        job = pair[op]
        prob = np.load(job.run_dir / BOUNDARY_FILE)["prob"].astype(np.float32)
        panels.append((f"DemoNet, {op}: {job.record['top1']:.0f}%", prob))
    for name, clf in svms(task).items():
        clf.fit(x, y)
        panels.append((f"SVM {name}: {100 * clf.score(x, y):.0f}%", (clf.decision_function(grid) > 0).astype(np.float32)))
    plot_boundaries(panels, x, y, Path(sweep_dir) / FIGURE_FILE,
                    f"make_moons(n={task.samples}, noise={task.noise}): decision boundaries, seed {seed} "
                    "(training accuracy)")
    return lines + ["", f"Decision boundaries (seed {seed}): `{FIGURE_FILE}`."]


TASK = TaskSpec("moons", run, sweep_report)
