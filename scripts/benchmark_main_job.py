"""Check the main job's targets: `python run.py op=star width=48` with its defaults finishes within
5 minutes of wall time and reaches >= 89% Fashion-MNIST test top-1. Exit code 1 if a target is missed.

    python scripts/benchmark_main_job.py [extra overrides...]

Extra overrides are passed on to run.py; its run dir is a temp dir, removed at the end.
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_WALL_S = 300
MIN_TOP1 = 89.0


def error(msg: str) -> int:
    print(f"benchmark_main_job: error: {msg}", file=sys.stderr)
    return 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="extra run.py overrides, e.g. trainer.epochs=3")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="starbench_main_") as tmp:
        run_dir = Path(tmp)
        cmd = [sys.executable, "run.py", "op=star", "width=48", f"hydra.run.dir={run_dir}", *args.overrides]
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return error(f"run.py failed (exit {proc.returncode})")
        try:
            m = json.loads((run_dir / "metrics.json").read_text())
            top1, train_s, ips = m["top1"], m["train_time_s"], m["train_images_per_s"]
            params, flops = m["params"], m["flops"]
        except (OSError, ValueError, KeyError) as e:
            return error(f"no usable metrics.json from run.py ({type(e).__name__}: {e})")
    ok_time, ok_acc = wall <= MAX_WALL_S, top1 >= MIN_TOP1
    print(f"\nwall {wall:.0f} s (target <= {MAX_WALL_S}): {'ok' if ok_time else 'MISSED'}")
    print(f"test top-1 {top1:.2f}% (target >= {MIN_TOP1}): {'ok' if ok_acc else 'MISSED'}")
    print(f"train {train_s:.0f} s at {ips:.0f} img/s; {params} params, {flops / 1e6:.1f}M FLOPs")
    return 0 if ok_time and ok_acc else 1


if __name__ == "__main__":
    sys.exit(main())
