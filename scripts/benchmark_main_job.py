"""Check the main job's targets: `python run.py op=star width=48` with its defaults finishes within
5 minutes of wall time and reaches >= 89% Fashion-MNIST test top-1. Exit code 1 if a target is missed.

    python scripts/benchmark_main_job.py [extra overrides...]
"""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_WALL_S = 300
MIN_TOP1 = 89.0


def main() -> int:
    run_dir = Path(tempfile.mkdtemp(prefix="starbench_main_"))
    cmd = [sys.executable, "run.py", "op=star", "width=48", f"hydra.run.dir={run_dir}", *sys.argv[1:]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"main job failed (exit {proc.returncode})")
        return 1
    m = json.loads((run_dir / "metrics.json").read_text())
    ok_time, ok_acc = wall <= MAX_WALL_S, m["top1"] >= MIN_TOP1
    print(f"\nwall {wall:.0f} s (target <= {MAX_WALL_S}): {'ok' if ok_time else 'MISSED'}")
    print(f"test top-1 {m['top1']:.2f}% (target >= {MIN_TOP1}): {'ok' if ok_acc else 'MISSED'}")
    print(f"train {m['train_time_s']:.0f} s at {m['train_images_per_s']:.0f} img/s; {m['params']} params, "
          f"{m['flops'] / 1e6:.1f}M FLOPs; run dir {run_dir}")
    return 0 if ok_time and ok_acc else 1


if __name__ == "__main__":
    sys.exit(main())
