"""One run's record while it runs: ``metrics.json`` (atomic, updated each epoch) and a W&B run.

W&B mode: ``WANDB_MODE`` if set; otherwise online when the user is logged in, else offline (no
prompt). Offline runs sit in ``<run_dir>/wandb/`` and upload later with ``wandb sync``.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict

from omegaconf import DictConfig, OmegaConf

from .files import METRICS_FILE, atomic_write_text, one_line, read_metrics, status_of
from .hashing import config_hash
from .naming import current_sweep_group, stable_id
from .provenance import run_provenance

log = logging.getLogger("starbench")


def wandb_mode() -> str:
    mode = os.environ.get("WANDB_MODE")
    if mode:
        return mode
    import wandb
    try:
        return "online" if wandb.login(prompt=False, verify=False) else "offline"
    except Exception:  # no credentials store, odd netrc, ...: never block a run on W&B
        return "offline"


def say_wandb_mode(mode: str, files: Any, run: Any = None) -> None:
    """The W&B mode of a run on the console, and where an offline run's files wait for ``wandb sync`` (an online
    run: its page; W&B warns when an offline run is asked for one)."""
    if mode == "offline":
        log.info("W&B offline: files in %s; upload them later with: wandb sync %s", files, files)
    elif mode == "disabled":
        log.info("W&B disabled (WANDB_MODE=disabled): nothing logged to W&B")
    else:
        log.info("W&B %s: %s", mode, getattr(run, "url", None) or files)


class Tracker:
    """One run's record. ``info`` holds the identity fields (model, op, width, ...)."""

    def __init__(self, cfg: DictConfig, run_dir: Path, info: Dict[str, Any], enabled: bool = True):
        self.enabled = enabled  # False on DDP ranks other than 0: one writer per run
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.record: Dict[str, Any] = {"status": "running", "error": None, **info,
                                       "config_hash": config_hash(cfg), "provenance": run_provenance(),
                                       "run_dir": str(self.run_dir), "wandb_dir": None, "history": []}
        previous = read_metrics(self.run_dir)
        if previous and previous.get("history") and previous.get("status") != "completed":
            self.record["history"] = previous["history"]  # resumed run: keep the epochs already done
        self.wandb = None
        if cfg.logger.name == "wandb" and enabled:
            self.wandb = self._open_wandb(cfg, info)
        self._write()

    def _open_wandb(self, cfg: DictConfig, info: Dict[str, Any]):
        import wandb
        lg = cfg.logger
        mode = lg.mode or wandb_mode()
        name = "-".join(str(p) for p in (info["model"], info["op"], f"w{info['width']}",
                                         f"d{info['depth']}", f"s{info['seed']}"))
        # All jobs of a multirun share one group, named from the sweep dir (the same in every process).
        group = lg.group or current_sweep_group() or f"{info['model']}-{info['data']}"
        # W&B refuses a tag over 64 characters (an op by import path can be longer): the tag is cut there, the run's
        # name and config keep the whole path.
        tags = [str(t)[:64] for t in (info["model"], info["op"], info["data"], *lg.tags)]
        # A stable id (from the run dir) lets a resumed run continue the same W&B run.
        run_id = lg.run_id or stable_id(self.run_dir)
        run = wandb.init(project=lg.project, entity=lg.entity, group=group, name=name, tags=tags,
                         dir=str(self.run_dir), mode=mode, id=run_id, resume="allow",
                         config=OmegaConf.to_container(cfg, resolve=True),
                         settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
                         reinit="finish_previous")
        self.record["wandb_dir"] = str(Path(run.dir).parent) if run.dir else None
        say_wandb_mode(mode, self.record["wandb_dir"], run)
        return run

    def update(self, **fields: Any) -> None:
        self.record.update(fields)
        self._write()

    def log_epoch(self, row: Dict[str, Any]) -> None:
        # A resumed run may redo an epoch it logged but did not checkpoint: keep the newest row.
        self.record["history"] = [r for r in self.record["history"] if r.get("epoch", 0) < row["epoch"]] + [row]
        self.record["epoch"] = row.get("epoch")
        if self.wandb is not None:
            self.wandb.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=row["epoch"])
        self._write()

    def finish(self, final: Dict[str, Any]) -> Dict[str, Any]:
        self.record.update(final, status="completed", error=None)
        self._write()
        if self.wandb is not None:
            for k, v in final.items():
                if isinstance(v, (int, float, str)):
                    self.wandb.summary[k] = v
            # which code and CPU ran it: a summary rebuilt from W&B says which pairs span two CPU models too
            self.wandb.summary["provenance"] = self.record.get("provenance")
            self.wandb.finish()
        return self.record

    def fail(self, error: str, status: str = "failed") -> Dict[str, Any]:
        self.record.update(status=status, error=error)
        self._write()
        if self.wandb is not None:
            self.wandb.summary["error"] = error
            self.wandb.finish(exit_code=1)
        return self.record

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and self.record["status"] == "running":
            self.fail(one_line(exc), status_of(exc))

    def _write(self) -> None:
        if not self.enabled:
            return
        atomic_write_text(self.run_dir / METRICS_FILE, json.dumps(self.record, indent=2, default=str))
