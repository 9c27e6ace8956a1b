"""Make ultralytics offline, quiet and project-local. Import this module before ``ultralytics``.

ultralytics decides on import where its settings live (``YOLO_CONFIG_DIR``, else ``~/.config``) and
writes a settings file there; it checks for network, may pip-install missing packages, sends
analytics, and downloads ``Arial.ttf`` on every dataset check unless the font is in its settings dir.
It also pins torch to ``cpu_count - 1`` threads, i.e. one thread on a 2-core machine, and patches
``PIL.Image.open`` for the whole process.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import torch

from ...records import atomic_write

log = logging.getLogger("starbench")

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG_DIR = PROJECT_ROOT / "outputs" / ".ultralytics"

# ultralytics' own integrations: we log to W&B ourselves (experiments/tasks/detect/yolo_callbacks.py).
QUIET_SETTINGS = {"sync": False, "clearml": False, "comet": False, "dvc": False, "mlflow": False,
                  "raytune": False, "tensorboard": False, "wandb": False, "vscode_msg": False,
                  "openvino_msg": False}

_user_config_dir = "YOLO_CONFIG_DIR" in os.environ
if "ultralytics" in sys.modules:
    log.warning("ultralytics was imported before experiments.tasks.detect: its settings stay where it put them")
# setdefault: a user who exported these on purpose keeps them.
os.environ.setdefault("YOLO_CONFIG_DIR", str(DEFAULT_CONFIG_DIR))
os.environ.setdefault("YOLO_OFFLINE", "1")        # no DNS probe, no analytics, no sentry
os.environ.setdefault("YOLO_AUTOINSTALL", "0")    # never pip-install at run time
Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)

import ultralytics  # noqa: E402  (must follow the environment above)
from ultralytics.utils import SETTINGS, USER_CONFIG_DIR  # noqa: E402


def _quiet_settings() -> None:
    if _user_config_dir or Path(SETTINGS.file).parent != DEFAULT_CONFIG_DIR / "Ultralytics":
        # Someone else's settings file: change this process only, never their file.
        dict.update(SETTINGS, QUIET_SETTINGS)
        return
    wanted = {**QUIET_SETTINGS,
              "datasets_dir": str(PROJECT_ROOT / "data" / "datasets"),
              "weights_dir": str(PROJECT_ROOT / "data" / "weights"),
              "runs_dir": str(PROJECT_ROOT / "outputs" / "ultralytics")}
    if any(SETTINGS.get(k) != v for k, v in wanted.items()):
        SETTINGS.update(wanted)


def _local_fonts() -> None:
    """Put a font where ``check_font`` looks first, so it never downloads Arial.ttf.

    DejaVu Sans ships with matplotlib (an ultralytics dependency); it only labels plots."""
    import matplotlib
    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        dst = Path(USER_CONFIG_DIR) / name
        if not dst.exists() and src.exists():
            atomic_write(dst, lambda f: f.write(src.read_bytes()))


def _unpatch_pil() -> None:
    """Undo ultralytics' process-wide ``PIL.Image.open`` patch: on an unreadable image it would
    pip-install pi-heif (or, with autoinstall off, raise ModuleNotFoundError instead of PIL's own
    UnidentifiedImageError, which breaks the ImageNet loader's skipping of broken files)."""
    from PIL import Image
    from ultralytics.utils import patches
    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is getattr(patches, "image_open", None):
        Image.open = original


_quiet_settings()
_local_fonts()
_unpatch_pil()


def cpu_threads() -> int:
    """The cores this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS/Windows
        return os.cpu_count() or 1


def set_threads(n: int | None) -> int:
    """torch intra-op threads; ``None`` = every usable core (ultralytics would leave one idle)."""
    n = cpu_threads() if n is None else int(n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def thread_callbacks(n: int | None) -> dict:
    """ultralytics callbacks that undo its ``select_device`` thread reset (train, val, predict)."""
    def fix(_):
        set_threads(n)
    return {event: fix for event in ("on_pretrain_routine_start", "on_train_start", "on_val_start",
                                     "on_predict_start")}


__all__ = ["ultralytics", "SETTINGS", "PROJECT_ROOT", "set_threads", "thread_callbacks", "cpu_threads"]
