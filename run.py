"""starbench: `python run.py op=star width=48`, or sweep: `python run.py -m op=star,sum width=16,32,64`."""
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from experiments.entry import run_job
from experiments.errors import Interrupted
from experiments.tracking import one_line


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig):
    hc = HydraConfig.get()
    try:
        record = run_job(cfg, hc.runtime.output_dir)
    except Exception as e:  # one line for the user; the run dir has the details
        print(f"starbench: error: {one_line(e)}", file=sys.stderr)
        if hc.mode == RunMode.MULTIRUN:
            return None  # the job is marked failed in its metrics.json; the sweep goes on
        sys.exit(143 if isinstance(e, Interrupted) else 1)  # 143: stopped by SIGTERM, resumable
    return record.get("best_top1")


if __name__ == "__main__":
    main()
