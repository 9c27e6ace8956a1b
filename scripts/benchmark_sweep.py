"""Wall time of one whole DemoNet width sweep, the plain path ("before") against the current defaults ("after").

    python scripts/benchmark_sweep.py [--widths 8,16,32,64] [--ops star,sum] [--seeds 0,1] [--train-size 2048]
                                      [--repeats 2] [--jobs N] [--data auto] [--json sweep.json]

Each side is one sweep launched the way users launch one, as a subprocess of this checkout:

    python run.py -m width=8,16,32,64 op=star,sum seed=0,1 depth=12 model.patch_size=4 trainer.epochs=1
        trainer.batch_size=128 trainer.threads=1 data.train_size=2048 data.val_size=1000 logger=none
        hydra/launcher=joblib hydra.launcher.n_jobs=<cores> hydra.sweep.dir=<temp dir> trainer.fast_paths=...

  before  trainer.fast_paths=false: PyTorch's plain ops and its default optimizer loop (the state before the CPU
          fast paths existed: every switch off)
  after   the current defaults (trainer.fast_paths=true, every verified fast path on)

The protocol's DemoNet miniature (depth 12, patch 4 = 7x7 tokens on 28x28 Fashion-MNIST, one thread per job, one
job per core) with a fixed small recipe (1 epoch on a fixed subset, AdamW, batch 128); Fashion-MNIST if it is on
disk (nothing is downloaded), else learnable synthetic 28x28 one-channel images of 10 classes (--data). Wall time
is the whole command: process start, data, training, evaluation, the sweep summary.

First one untimed warm-up sweep per side (a single width-8 job: builds or loads the C++ kernels and warms the
file cache, so that a first run on a machine does not land in round 1); then --repeats rounds, the two sides in
alternating order, each into a fresh temp dir (a reused one would skip finished jobs). Reported: each side's best
and median wall time, the ratio of the bests (like with like on a noisy machine) and of each round's pair, and
per job the training throughput from its metrics.json (best over rounds). Temp dirs are removed at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from experiments.records import METRICS_FILE, atomic_write_text
from experiments.tools.cli import non_negative_int, positive_int

ROOT = Path(__file__).resolve().parents[1]

SIDES = {"before": ["trainer.fast_paths=false"], "after": []}
OPS = ("star", "sum")
DATA = ("auto", "fashion_mnist", "synthetic")


def int_list(parse):
    def parse_list(text: str) -> List[int]:
        values = [parse(v) for v in text.split(",") if v.strip()]
        if not values:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got '{text}'")
        return values
    return parse_list


def op_list(text: str) -> List[str]:
    ops = [v for v in text.split(",") if v]
    bad = [v for v in ops if v not in OPS]
    if bad or not ops:
        raise argparse.ArgumentTypeError(f"unknown op(s) {', '.join(bad) or '(none)'}; valid: {', '.join(OPS)}")
    return ops


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fashion_mnist_on_disk() -> bool:
    from experiments.data.small import find_fashion_mnist
    return find_fashion_mnist(ROOT / "data" / "fashion_mnist") is not None


def data_overrides(data: str, train_size: int, val_size: int) -> List[str]:
    if data == "fashion_mnist":
        return ["data=fashion_mnist", "data.download=false", f"data.train_size={train_size}",
                f"data.val_size={val_size}"]
    return ["data=synthetic", "data.image_size=28", "data.in_chans=1", "data.num_classes=10",
            f"data.train_size={train_size}", f"data.val_size={val_size}"]


def sweep_command(a, widths, ops, seeds, side: str, sweep_dir: Path) -> List[str]:
    return [sys.executable, "run.py", "-m", f"width={','.join(map(str, widths))}", f"op={','.join(ops)}",
            f"seed={','.join(map(str, seeds))}", f"depth={a.depth}", f"model.patch_size={a.patch}",
            "trainer.epochs=1", f"trainer.batch_size={a.batch}", "trainer.threads=1",
            *data_overrides(a.data, a.train_size, a.val_size), "logger=none", "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={a.jobs}", f"hydra.sweep.dir={sweep_dir}", f"paths.root={sweep_dir.parent}",
            *SIDES[side]]


class SweepFailed(Exception):
    pass


def run_sweep(cmd: List[str], sweep_dir: Path, log_path: Path) -> Dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    start, start_epoch = time.perf_counter(), time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    jobs, last_job = [], 0.0
    for path in sorted(sweep_dir.glob(f"*/{METRICS_FILE}")):
        try:
            rec = json.loads(path.read_text())
        except ValueError:
            continue
        last_job = max(last_job, path.stat().st_mtime - start_epoch)
        jobs.append({k: rec.get(k) for k in ("width", "op", "seed", "status", "top1", "train_images_per_s",
                                             "train_time_s")})
    failed = [j for j in jobs if j["status"] != "completed"]
    if proc.returncode != 0 or failed:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise SweepFailed(f"the sweep failed (exit {proc.returncode}, {len(failed)} failed job(s)); "
                          f"last lines of its output:\n{tail}")
    # until the last job's metrics.json: the rest is the sweep summary (its linear baseline fit) and exit
    return {"wall_s": wall, "jobs_done_s": last_job, "jobs": jobs}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmark_sweep.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int_list(positive_int), default=[8, 16, 32, 64])
    ap.add_argument("--ops", type=op_list, default=list(OPS), help="comma-separated: star,sum")
    ap.add_argument("--seeds", type=int_list(non_negative_int), default=[0, 1])
    ap.add_argument("--depth", type=positive_int, default=12)
    ap.add_argument("--patch", type=positive_int, default=4, help="DemoNet patch size (4: 7x7 tokens)")
    ap.add_argument("--batch", type=positive_int, default=128)
    ap.add_argument("--train-size", type=positive_int, default=2048, help="training images (a fixed subset)")
    ap.add_argument("--val-size", type=positive_int, default=1000, help="test images evaluated after the epoch")
    ap.add_argument("--repeats", type=positive_int, default=2, help="timed rounds (each runs both sides)")
    ap.add_argument("--jobs", type=positive_int, default=usable_cores(), help="parallel jobs (default: usable cores)")
    ap.add_argument("--data", choices=DATA, default="auto",
                    help="auto: Fashion-MNIST if on disk, else synthetic; nothing is downloaded")
    ap.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up sweep of each side")
    ap.add_argument("--keep", action="store_true", help="keep the temp sweep dirs (their path is printed)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here (atomically)")
    a = ap.parse_args(argv)
    if a.json is not None and not a.json.parent.is_dir():
        ap.error(f"argument --json: directory {a.json.parent} does not exist")
    on_disk = fashion_mnist_on_disk()
    if a.data == "fashion_mnist" and not on_disk:
        ap.error("argument --data: Fashion-MNIST is not on disk (data/fashion_mnist or "
                 "/usr/share/datasets/fashion-mnist); use --data synthetic")
    if a.data == "auto":
        a.data = "fashion_mnist" if on_disk else "synthetic"
    if (28 // a.patch) < 1 or 28 % a.patch:
        ap.error(f"argument --patch: 28x28 images need a patch size dividing 28, got {a.patch}")

    n_jobs = len(a.widths) * len(a.ops) * len(a.seeds)
    tmp = Path(tempfile.mkdtemp(prefix="starbench_sweep_bench_"))
    print(f"{n_jobs} jobs per sweep (widths {a.widths}, ops {a.ops}, seeds {a.seeds}; depth {a.depth}, patch "
          f"{a.patch} = {28 // a.patch}x{28 // a.patch} tokens, 1 epoch of {a.train_size} {a.data} images, batch "
          f"{a.batch}, {a.val_size} test images), {a.jobs} at a time, 1 thread each; {a.repeats} round(s)", flush=True)
    counter = iter(range(1_000_000))

    def one(side, widths, seeds, ops):
        sweep_dir = tmp / f"{next(counter):02d}_{side}"
        cmd = sweep_command(a, widths, ops, seeds, side, sweep_dir)
        return run_sweep(cmd, sweep_dir, tmp / f"{sweep_dir.name}.log")

    results: Dict[str, List[Dict]] = {s: [] for s in SIDES}
    warmup: Dict[str, float] = {}
    try:
        if not a.no_warmup:
            for side in SIDES:
                warmup[side] = one(side, [min(a.widths)], [a.seeds[0]], [a.ops[0]])["wall_s"]
                print(f"warm-up {side}: {warmup[side]:.1f} s (one job, untimed)", flush=True)
        for r in range(a.repeats):
            order = list(SIDES) if r % 2 == 0 else list(SIDES)[::-1]
            for side in order:
                res = one(side, a.widths, a.seeds, a.ops)
                results[side].append(res)
                print(f"round {r + 1}/{a.repeats} {side}: {res['wall_s']:.1f} s ({len(res['jobs'])} jobs)", flush=True)
    except SweepFailed as e:
        print(f"benchmark_sweep.py: error: {e}", file=sys.stderr)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        return 1
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if a.keep:
            print(f"sweep dirs kept in {tmp}")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)

    walls = {s: [res["wall_s"] for res in rs] for s, rs in results.items()}
    best = {s: min(w) for s, w in walls.items()}
    median = {s: statistics.median(w) for s, w in walls.items()}
    per_round = [b / f for b, f in zip(walls["before"], walls["after"])]
    done = {s: [res["jobs_done_s"] for res in rs] for s, rs in results.items()}
    train_s = {s: [sum(j["train_time_s"] or 0 for j in res["jobs"]) for res in rs] for s, rs in results.items()}
    print(f"\n{'side':<8} {'best wall s':>12} {'median s':>9} {'rounds (s)':<24} {'last job done s':>16} "
          f"{'job train s (sum)':>18}")
    for s in SIDES:
        rounds = ", ".join(f"{w:.1f}" for w in walls[s])
        print(f"{s:<8} {best[s]:12.1f} {median[s]:9.1f} {rounds:<24} {min(done[s]):16.1f} {min(train_s[s]):18.1f}")
    ratio = best["before"] / best["after"]
    ratio_done = min(done["before"]) / min(done["after"])
    per_round_done = [b / f for b, f in zip(done["before"], done["after"])]
    print(f"\nafter vs before, whole command: best/best {ratio:.2f}x faster, per round "
          f"{', '.join(f'{x:.2f}x' for x in per_round)}")
    print(f"until the last job (without the sweep summary): best/best {ratio_done:.2f}x, per round "
          f"{', '.join(f'{x:.2f}x' for x in per_round_done)}")

    ips: Dict[str, Dict[str, float]] = {s: {} for s in SIDES}
    for s, rs in results.items():
        for res in rs:
            for j in res["jobs"]:
                key = f"w{j['width']} {j['op']} s{j['seed']}"
                if j["train_images_per_s"] is not None:
                    ips[s][key] = max(ips[s].get(key, 0.0), float(j["train_images_per_s"]))
    keys = sorted(ips["before"], key=lambda k: (int(k.split()[0][1:]), k))
    if keys:
        print(f"\n{'job':<16} {'img/s before':>13} {'img/s after':>12} {'after/before':>13}   (training only, best round)")
        for k in keys:
            b, f = ips["before"].get(k), ips["after"].get(k)
            ratio_k = f"{f / b:12.2f}x" if b and f else f"{'-':>13}"
            print(f"{k:<16} {b or 0:13.0f} {f or 0:12.0f} {ratio_k}")

    if a.json is not None:
        payload = {"settings": {"widths": a.widths, "ops": a.ops, "seeds": a.seeds, "depth": a.depth,
                                "patch": a.patch, "batch": a.batch, "train_size": a.train_size,
                                "val_size": a.val_size, "epochs": 1, "data": a.data, "jobs": a.jobs,
                                "threads_per_job": 1, "repeats": a.repeats, "jobs_per_sweep": n_jobs},
                   "sides": {s: " ".join(SIDES[s]) or "(defaults)" for s in SIDES},
                   "command": " ".join(sweep_command(a, a.widths, a.ops, a.seeds, "after", Path("<tmp>/<sweep>"))[1:]),
                   "warmup_s": warmup, "wall_s": walls, "best_wall_s": best, "median_wall_s": median,
                   "speedup_best": ratio, "speedup_per_round": per_round, "jobs_done_s": done,
                   "speedup_jobs_done_best": ratio_done,
                   "speedup_jobs_done_per_round": per_round_done, "job_train_s": train_s,
                   "train_images_per_s": ips,
                   "machine": {"cores": usable_cores(), "loadavg": list(os.getloadavg()),
                               "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}}
        atomic_write_text(a.json, json.dumps(payload, indent=1) + "\n")
        print(f"\nwrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
