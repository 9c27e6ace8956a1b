"""A sweep and W&B. ``log_to_wandb``: its summary run. The rest reads a sweep's runs back from W&B, as
``Job``s, so that ``scripts/compare.py`` builds the summary from what the dashboard shows: the W&B API for
online projects, or the ``.wandb`` files that every run (offline or online) leaves in its local ``wandb/`` dir.
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import struct
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..errors import StarbenchError
from ..records import say_wandb_mode, sweep_group, wandb_mode
from .format import format_significant, format_value
from .jobs import Job, knobs_of
from .pooled import as_dict as pooled_fields
from .stats import mean_std
from .summary import Summary
from .wandb_charts import gap_charts

STATES = {"finished": "completed", "failed": "failed", "crashed": "failed", "killed": "failed",
          "running": "running"}


def _job(name: str, config: Dict[str, Any], summary: Dict[str, Any], status: str,
         history: Sequence[Dict[str, Any]] = ()) -> Job:
    """A run read back from W&B as the ``Job`` its run dir gives: its config, and its summary with the per-epoch
    rows it logged as metrics.json's ``history`` (the trained-regime check reads the last epoch's gain there)."""
    config = {k: v for k, v in config.items() if not k.startswith("_")}  # _wandb: W&B's own
    summary = {k: v for k, v in summary.items() if not k.startswith("_")}
    if "history" not in summary:
        summary["history"] = epoch_rows(history)
    return Job(name, status, summary.get("error") if status != "completed" else None,
               knobs_of(summary, config), summary, config=config)


def epoch_rows(history: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """W&B history rows as metrics.json's: W&B's own keys (``_step``, ``_runtime``) left out, one row per epoch in
    epoch order, a resumed run's redone epoch by its newest row (as ``records.Tracker.log_epoch`` keeps it)."""
    by_epoch: Dict[Any, Dict[str, Any]] = {}
    for row in history:
        row = {k: v for k, v in row.items() if not k.startswith("_")}
        if isinstance(row.get("epoch"), (int, float)):
            by_epoch[row["epoch"]] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


def jobs_from_api(path: str, group: str) -> List[Job]:
    """Runs of ``group`` in project ``path`` ("entity/project"), the summary run left out."""
    import wandb
    runs = wandb.Api().runs(path, filters={"group": group})
    jobs = [_job(r.name, dict(r.config), dict(r.summary._json_dict), STATES.get(r.state, r.state),
                 list(r.scan_history())) for r in runs if r.job_type != "summary"]
    if not jobs:
        raise StarbenchError(f"no runs in group '{group}' of W&B project '{path}'")
    return jobs


# ----------------------------------------------------------------- local .wandb files

BLOCK, HEADER = 32768, 7  # LevelDB log blocks after a 7-byte ":W&B" file header


def _records(path: Path):
    """The protobuf records of one ``run-<id>.wandb`` file (LevelDB log format)."""
    from wandb.proto import wandb_internal_pb2 as pb
    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise StarbenchError(f"{path} is not a W&B run file")
    pos, chunks = HEADER, b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:  # zero padding
            continue
        chunks = chunk if kind in (1, 2) else chunks + chunk  # 1 full, 2 first, 3 middle, 4 last
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(chunks)
            yield record


def _apply(target: Dict[str, Any], update) -> None:
    keys = list(update.nested_key) or [update.key]
    node = target
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = json.loads(update.value_json)


def read_run_file(path: Path) -> Optional[Dict[str, Any]]:
    """{"id", "name", "group", "job_type", "config", "summary", "history", "exit_code"} of one run file."""
    run: Dict[str, Any] = {"config": {}, "summary": {}, "history": [], "exit_code": None}
    user_set = set()  # summary keys set by the run itself win over values W&B derives from history
    for record in _records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, name=r.display_name, group=r.run_group, job_type=r.job_type)
            for u in r.config.update:
                _apply(run["config"], u)
        elif kind == "config":
            for u in record.config.update:
                _apply(run["config"], u)
        elif kind == "summary":
            for u in record.summary.update:
                if u.key:
                    user_set.add(u.key)
                if u.key or (u.nested_key and u.nested_key[0] not in user_set):
                    _apply(run["summary"], u)
        elif kind == "history":
            row: Dict[str, Any] = {}
            for item in record.history.item:
                _apply(row, item)
            run["history"].append(row)
        elif kind == "exit":
            run["exit_code"] = record.exit.exit_code
    return run if "id" in run else None


def _started(path: Path) -> str:
    """The start time in a run dir's name ((offline-)run-YYYYMMDD_HHMMSS-<id>)."""
    found = re.search(r"\d{8}_\d{6}", path.parent.name)
    return found.group(0) if found else ""


def jobs_from_local(root) -> List[Job]:
    """Every run under ``root`` (e.g. a sweep dir) from its ``wandb/*/run-*.wandb`` files; a resumed
    run has several files with one id, read in time order."""
    root = Path(root)
    if not root.is_dir():
        raise StarbenchError(f"{root} does not exist")
    runs: Dict[str, Dict[str, Any]] = {}
    for path in sorted(root.rglob("run-*.wandb"), key=_started):
        run = read_run_file(path)
        if run is None or run.get("job_type") == "summary":
            continue
        previous = runs.get(run["id"])
        if previous:  # resumed: later files add to what earlier ones logged
            previous["config"].update(run["config"])
            previous["summary"].update(run["summary"])
            previous["history"] += run["history"]
            previous["exit_code"] = run["exit_code"]
        else:
            runs[run["id"]] = run
    if not runs:
        raise StarbenchError(f"no W&B run files (wandb/*/run-*.wandb) under {root}")
    status = {None: "running", 0: "completed"}
    return [_job(r["name"] or r["id"], r["config"], r["summary"], status.get(r["exit_code"], "failed"), r["history"])
            for r in sorted(runs.values(), key=lambda r: r["name"] or r["id"])]


def log_to_wandb(sweep_dir: Path, jobs: Sequence[Job], summary: Summary, paths: Sequence[Path], logger) -> None:
    """One run named "summary" (job_type summary) in the sweep's group: both tables, the figure and native
    W&B charts of each op's gap against the reference (star − sum) over the swept axis (``wandb_charts.gap_charts``).
    With several compared ops the per-row table has one line per (row, op) and the pooled fields are suffixed
    with the op, as in summary.csv.
    Its id comes from the sweep dir, so re-aggregating updates it instead of adding another."""
    import wandb
    run_id = "summary-" + hashlib.sha1(str(sweep_dir.resolve()).encode()).hexdigest()[:12]
    caveat = summary.caveat  # on the run's page (its notes) and in its summary, as first in summary.md
    mode = logger.get("mode") or wandb_mode()
    run = wandb.init(project=logger.get("project") or "starbench", entity=logger.get("entity"),
                     group=sweep_group(sweep_dir), name="summary", job_type="summary", id=run_id,
                     notes=caveat.text.replace("**", "") if caveat else None,
                     resume="allow", dir=str(sweep_dir), mode=mode,
                     config={"sweep_dir": str(sweep_dir), "metric": summary.metric, "axes": summary.axes},
                     settings=wandb.Settings(console="off", silent=True, x_disable_stats=True),
                     reinit="finish_previous")
    with paths[0].open() as f:
        rows = list(csv.reader(f))
    base, test = summary.reference, summary.ops[0]
    if summary.multi:
        heads = [*(summary.axes or ["runs"]), "op", f"{base}_mean", f"{base}_std", "mean", "std",
                 "gap", "gap_lo", "gap_hi", "seeds", "significant"]
    else:
        heads = [*(summary.axes or ["runs"]), f"{base}_mean", f"{base}_std", f"{test}_mean",
                 f"{test}_std", "gap", "gap_lo", "gap_hi", "seeds", "significant"]
    table = []
    for row in summary.rows:
        for op in summary.ops:
            gap = row.gap_of(op)
            table.append([*([format_value(v) for v in row.key] or ["all"]), *([str(op)] if summary.multi else []),
                          *mean_std(row.values(base)), *mean_std(row.values(op)), gap.mean, gap.lo, gap.hi, gap.n,
                          format_significant(gap)])
    run.log({"summary/star_vs_sum": wandb.Table(columns=heads, data=table),
             "summary/jobs": wandb.Table(columns=rows[0], data=rows[1:]),
             "summary/figure": wandb.Image(str(paths[2])), **gap_charts(summary)})
    run.summary["summary/caveat"] = caveat.text.replace("**", "") if caveat else ""
    run.summary["summary/jobs_completed"] = sum(j.status == "completed" for j in jobs)
    run.summary["summary/jobs_total"] = len(jobs)
    for op in summary.ops:  # the pooled test, as in summary.md
        for key, value in pooled_fields(summary.pooled_of(op)).items():
            run.summary[f"summary/{key}_{op}" if summary.multi else f"summary/{key}"] = value
    if summary.multi:
        run.summary["summary/reference_op"] = summary.reference
    if summary.baseline is not None:
        run.summary["summary/linear_baseline"] = summary.baseline
    say_wandb_mode(mode, Path(run.dir).parent if run.dir else sweep_dir / "wandb", run)
    run.finish()
