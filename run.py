"""starbench: `python run.py op=star width=48`, or sweep: `python run.py -m op=star,sum width=16,32,64`."""
import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from experiments.entry import end_of_run, run_job
from experiments.errors import Interrupted
from experiments.records import RunDirBusy, one_line
from experiments.train import stopping

log = logging.getLogger("starbench")


# The SLURM launcher plugin is an optional extra: say which one is missing instead of Hydra's config error.
LAUNCHER_EXTRAS = {"slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
                   "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
                   "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm")}


def check_launcher(argv) -> None:
    import importlib.util
    for arg in argv:
        name = arg.split("=", 1)[1] if arg.startswith("hydra/launcher=") else None
        if name in LAUNCHER_EXTRAS and importlib.util.find_spec(LAUNCHER_EXTRAS[name][0]) is None:
            sys.exit(f"starbench: error: hydra/launcher={name} needs the '{LAUNCHER_EXTRAS[name][1]}' extra: "
                     f"pip install -e \".[{LAUNCHER_EXTRAS[name][1]}]\"")


def search_dirs(argv, conf_dir: Path) -> list:
    """conf/ and the local dirs of ``hydra.searchpath=[file:///my/conf,...]``, where presets are looked for."""
    dirs = [conf_dir]
    for arg in argv:
        if arg.startswith(("hydra.searchpath=", "+hydra.searchpath=", "++hydra.searchpath=")):
            entries = arg.split("=", 1)[1].strip("[]").split(",")
            dirs += [Path(e.strip().strip("'\"")[len("file://"):]) for e in entries if e.strip().strip("'\"").startswith("file://")]
    return dirs


def check_experiment(argv, conf_dir: Path = Path(__file__).resolve().parent / "conf") -> None:
    """``experiment=NAME[,NAME...]``: a preset with broken YAML is one line naming the file and line, not Hydra's
    report (presets are the files users edit). An unknown name is Hydra's to find (conf/ and hydra.searchpath);
    its error becomes one line in ``run_main``."""
    import yaml
    for arg in argv:
        if not arg.startswith("experiment="):
            continue
        for name in filter(None, arg.split("=", 1)[1].split(",")):
            for path in (d / "experiment" / f"{name}.yaml" for d in search_dirs(argv, conf_dir)):
                if not path.is_file():
                    continue
                try:
                    yaml.safe_load(path.read_text())
                except yaml.YAMLError as e:
                    mark = getattr(e, "problem_mark", None)
                    where = f" line {mark.line + 1}" if mark else ""
                    sys.exit(f"starbench: error: bad YAML in {path}{where}: {getattr(e, 'problem', None) or e}")
                break


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig):
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    if not stopping.job_may_start(multirun):  # the sweep was stopped: a job not yet started does not start
        return None
    job = (hc.job.override_dirname or Path(hc.runtime.output_dir).name) if multirun else None
    try:
        record = run_job(cfg, hc.runtime.output_dir)
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the training loop
        end_of_run("stopped by Ctrl-C; rerun the same command to resume", job)
        sys.exit(130)
    except RunDirBusy as e:  # another live process owns the dir: in a sweep that job is its, not ours
        if not multirun:
            end_of_run(f"error: {e}")
            sys.exit(1)
        end_of_run(f"{hc.job.override_dirname or e.run_dir.name}: running elsewhere ({e.holder}); skipped")
        return None
    except Exception as e:  # one line for the user; the run dir has the details
        end_of_run(one_line(e) if isinstance(e, Interrupted) else f"error: {one_line(e)}", job)
        if isinstance(e, Interrupted):  # stopped by a signal, resumable: the whole sweep stops too
            stopping.job_interrupted(e.exit_code, multirun)  # exits, except in a sweep's worker process
            return None
        if multirun:
            return None  # the job is marked failed in its metrics.json; the sweep goes on
        sys.exit(1)
    log.info("end: %s%s", record.get("status"), f" (job {job})" if job else "")
    return record.get("best_top1")


def run_main() -> None:
    """``main()`` with Hydra's composition errors (an unknown key or preset, a value of the wrong type) as one
    ``starbench: error:`` line naming the key and the valid keys nearby, not Hydra's multi-line report.
    ``HYDRA_FULL_ERROR=1`` set by the user keeps Hydra's full report."""
    from experiments.config import config_error_line
    user_wants_full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing: the error reaches us
    try:
        main()
    except Exception as e:
        line = None if user_wants_full else config_error_line(e)
        if line is None:
            raise
        sys.exit(f"starbench: error: {line}")


if __name__ == "__main__":
    check_launcher(sys.argv[1:])
    check_experiment(sys.argv[1:])
    run_main()
