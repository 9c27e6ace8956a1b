"""trainer.threads on an idle and on a busy machine: the training step (forward, loss, backward, AdamW) of a
few DemoNets at 1 thread and at all cores, interleaved in this one process (best round each), first with the
machine as it is, then with ``--busy`` CPU-bound competitors started by this script (pure-Python busy loops,
one core each, standing in for another training job); and in each case what ``trainer.threads=auto``
(``experiments/train/threads.py``: a probe of the model's own step, as a run starts) picks, its time
against the best, and what its probe cost.

    python scripts/benchmark_threads.py                            # tiny-b4, tiny, main, w32p4; +1 busy
    python scripts/benchmark_threads.py --models main --busy 0 --json t.json

"As is" is an idle machine only where nothing else runs: the script prints the 1-minute load average at its
start (on a shared machine `nice` does not isolate it where the kernel groups processes by session,
/proc/sys/kernel/sched_autogroup_enabled = 1).
"""
import argparse
import subprocess
import sys
import time

import torch

from demonet import DemoNet
from experiments.tools.cli import non_negative_int, positive_int
from experiments.train.timing import interleaved, write_json
from experiments.train.threads import candidates, choose_threads, max_threads, training_step

# name -> (DemoNet kwargs, batch size): Fashion-MNIST-shaped (1 x 28 x 28, 10 classes)
MODELS = {
    "tiny-b4": (dict(width=8, depth=2, patch_size=7), 4),        # the new-user try-out at batch 4
    "tiny": (dict(width=8, depth=2, patch_size=7), 128),         # tests' TINY DemoNet at the default batch
    "main": (dict(width=48, depth=12, patch_size=7), 128),       # the main job (`python run.py`)
    "w32p4": (dict(width=32, depth=12, patch_size=4), 128),      # the protocol's DemoNet: 7x7 tokens
}
SHAPE, CLASSES = (1, 28, 28), 10
BUSY_LOOP = "while True: pass"


def train_step(kwargs, batch):
    """One full training step of a fresh model, as a zero-argument callable, and the model."""
    model = DemoNet(num_classes=CLASSES, in_chans=SHAPE[0], **kwargs).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *SHAPE, generator=gen)
    y = torch.randint(0, CLASSES, (batch,), generator=gen)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1).backward()
        opt.step()
    return step, model


def measure(names, counts, rounds, busy):
    """One condition: auto's choice per model (its probe), then every model x thread count interleaved."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        time.sleep(1.0 if busy else 0.0)  # let the competitors take their cores
        steps, auto = {}, {}
        for name in names:
            kwargs, batch = MODELS[name]
            steps[name], model = train_step(kwargs, batch)
            start = time.perf_counter()
            chosen, probe = choose_threads("auto", lambda: training_step(model, batch, SHAPE, CLASSES),
                                           most=max(counts))
            auto[name] = {"threads": chosen, "probe_ms": {n: t * 1e3 for n, t in probe.items()},
                          "probe_s": time.perf_counter() - start}

        def at(n, fn):
            def run():
                torch.set_num_threads(n)
                fn()
            return run
        sides = {f"{name} {n}": at(n, steps[name]) for name in names for n in counts}
        timed = interleaved(sides, rounds, warmup=2, iters=2, alternate=True)
        return {name: {"ms": {n: min(timed.times[f"{name} {n}"]) * 1e3 for n in counts}, **auto[name]}
                for name in names}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny-b4,tiny,main,w32p4", help="comma-separated, from: " + ", ".join(MODELS))
    ap.add_argument("--busy", type=non_negative_int, default=1,
                    help="CPU-bound competitors in the busy case (0: only the machine as it is)")
    ap.add_argument("--rounds", type=positive_int, default=10)
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        ap.error(f"argument --models: unknown model(s) {', '.join(unknown) or '(none given)'}; "
                 f"valid: {', '.join(MODELS)}")
    most = max_threads()
    if most < 2:
        ap.error(f"this process may use {most} core; the comparison needs at least 2 (unset OMP_NUM_THREADS?)")
    counts = candidates(most)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    conditions = {"as is": 0, **({f"+{args.busy} busy": args.busy} if args.busy else {})}
    results = {cond: measure(names, counts, args.rounds, busy) for cond, busy in conditions.items()}

    print(f"training step (forward, loss, backward, AdamW), ms, best of {args.rounds} interleaved rounds; {most} "
          f"usable cores, 1-min load average {load} at the start; torch {torch.__version__}")
    head = " | ".join(f"{n} thread{'s' if n > 1 else ''}" for n in counts)
    print(f"| model (batch) | machine | {head} | all vs 1 | auto picks | auto vs best | auto's probe (s) |")
    print("|---|---|" + "---:|" * (len(counts) + 4))
    for name in names:
        for cond, res in results.items():
            r = res[name]
            ms = r["ms"]
            best = min(ms.values())
            r["auto_vs_best"] = best / ms[r["threads"]]
            cells = " | ".join(f"{ms[n]:.2f}" for n in counts)
            print(f"| {name} ({MODELS[name][1]}) | {cond} | {cells} | {ms[1] / ms[most]:.2f}x | {r['threads']} | "
                  f"{r['auto_vs_best']:.2f}x | {r['probe_s']:.2f} |")
    write_json(args.json, {"cores": most, "load_at_start": float(load), "torch": torch.__version__,
                           "rounds": args.rounds, "models": {n: {"batch": MODELS[n][1], **MODELS[n][0]}
                                                             for n in names}, "results": results})


if __name__ == "__main__":
    main()
