"""Run records: ``metrics.json`` and every file replaced atomically (``files``), the one owner of a run dir
(``lock``), the config hash of what a job computes (``hashing``), the W&B names of runs and sweeps (``naming``), the
code and machine a run ran on (``provenance``), and the live ``Tracker`` of a run (metrics.json + its W&B run)."""
from .files import METRICS_FILE, atomic_write, atomic_write_text, one_line, read_metrics, status_of, write_failure
from .hashing import NON_RESULT_KEYS, config_hash
from .lock import LOCK_FILE, RunDirBusy, RunDirLock, check_writable_dir, holder, storage_error
from .naming import current_sweep_group, stable_id, sweep_group
from .provenance import run_provenance
from .tracker import Tracker, say_wandb_mode, wandb_mode

__all__ = ["LOCK_FILE", "METRICS_FILE", "RunDirBusy", "RunDirLock", "check_writable_dir", "holder",
           "storage_error", "NON_RESULT_KEYS", "Tracker", "atomic_write", "atomic_write_text", "config_hash", "current_sweep_group",
           "one_line", "read_metrics", "run_provenance", "say_wandb_mode", "stable_id", "status_of", "sweep_group", "wandb_mode", "write_failure"]
