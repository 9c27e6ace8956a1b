"""A sweep's jobs as ``Job``s: each dir with a ``metrics.json`` or a saved Hydra config, and its knobs
(the flat config, the keys that do not change a result left out)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from ..errors import StarbenchError
from ..records import LOCK_FILE, METRICS_FILE, NON_RESULT_KEYS, holder

# Where a job has no saved config (hand-written records), its knobs come from the record.
RUNNING_ELSEWHERE = "running elsewhere"  # another live process owns the job's dir (records.RunDirLock)

RECORD_KNOBS = {"op": "op", "seed": "seed", "model": "model.name", "variant": "model.variant", "act": "model.act",
                "width": "width", "depth": "depth", "data": "data.name", "epochs": "trainer.epochs"}


@dataclass
class Job:
    name: str                     # the job's sub-dir in the sweep (or its W&B run name)
    status: str                   # completed | failed | interrupted | running | running elsewhere | missing
    error: Optional[str]
    knobs: Dict[str, Any]         # flat config: "width" -> 48, "model.act" -> "gelu", ...
    record: Dict[str, Any]        # metrics.json, or the W&B run summary
    run_dir: Optional[Path] = None
    config: Optional[Dict[str, Any]] = None  # the whole config it ran with (.hydra/config.yaml, or W&B's), if known

    def get(self, key: str) -> Any:
        return self.knobs.get(key)

    def metric(self, name: str) -> Optional[float]:
        value = self.record.get(name)
        return float(value) if self.status == "completed" and isinstance(value, (int, float)) else None


def _hashable(value: Any) -> Any:
    """Lists become tuples (dicts inside them JSON text), so that values can be grouped on."""
    if isinstance(value, (list, tuple)):
        return tuple(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for v in value)
    return value


def flatten(node: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested dict -> {"a.b": leaf}."""
    out: Dict[str, Any] = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = _hashable(v)
    return out


def _is_noise(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in (*NON_RESULT_KEYS, "hydra"))


def knobs_of(record: Dict[str, Any], config: Optional[Dict[str, Any]] = None,
             overrides: Sequence[str] = ()) -> Dict[str, Any]:
    """A job's flat knobs: its saved config when there is one, else its record and overrides."""
    if config is not None:
        knobs = flatten(config)
    else:
        knobs = {key: _hashable(record[name]) for name, key in RECORD_KNOBS.items() if name in record}
        for item in overrides:
            key, sep, value = item.lstrip("+~").partition("=")
            if sep:
                knobs[key] = _hashable(_yaml_value(value))
    return {k: v for k, v in knobs.items() if not _is_noise(k)}


def _yaml_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def read_yaml(path: Path) -> Any:
    """A YAML file's content; None when it is missing or not YAML."""
    try:
        return yaml.safe_load(path.read_text()) if path.exists() else None
    except yaml.YAMLError:
        return None


def load_jobs(sweep_dir) -> List[Job]:
    """Every job under ``sweep_dir``: a dir with a metrics.json or a saved Hydra config."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise StarbenchError(f"sweep dir {sweep_dir} does not exist")
    dirs = {p.parent for p in sweep_dir.rglob(METRICS_FILE)}
    dirs |= {p.parent for p in sweep_dir.rglob(".hydra") if p.is_dir()}
    dirs |= {p.parent for p in sweep_dir.rglob(LOCK_FILE) if holder(p.parent)}  # started elsewhere, no record yet
    jobs = []
    for d in sorted(dirs):
        if "wandb" in d.relative_to(sweep_dir).parts:
            continue
        record = _read_json(d / METRICS_FILE)
        if record is None:
            record = {}
            status, error = "missing", ("metrics.json is not a readable record: move it aside to rerun the job"
                                        if (d / METRICS_FILE).exists() else
                                        "no metrics.json: not started yet, or died before writing it")
        else:
            status, error = record.get("status", "missing"), record.get("error")
        if status in ("running", "missing"):  # a live owner, or a process that died without a word?
            owner = holder(d)
            if owner:
                status, error = RUNNING_ELSEWHERE, f"running elsewhere: {owner}"
            elif status == "running":
                error = "stopped without a record (killed, or its machine went down); relaunch to resume"
        config = read_yaml(d / ".hydra" / "config.yaml")
        knobs = knobs_of(record, config, read_yaml(d / ".hydra" / "overrides.yaml") or ())
        name = str(d.relative_to(sweep_dir)) if d != sweep_dir else d.name
        jobs.append(Job(name, status, error, knobs, record, d, config if isinstance(config, dict) else None))
    return jobs


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):  # ValueError: not JSON, or not text
        return None
    return record if isinstance(record, dict) else None
