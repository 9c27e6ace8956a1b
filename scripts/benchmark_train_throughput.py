"""StarNet training throughput: starbench's StarNet (as `run.py model=starnet` trains it, with and
without its opt-in CPU switches) vs timm's `starnet_*` in NCHW (its default) and channels_last. All sides
run in this one process, interleaved, so a noisy neighbour slows them alike; the ratios are what to compare.

    python scripts/benchmark_train_throughput.py --variant s1 --threads 2 --repeats 20 --sides all_switches

Sides (--sides, comma-separated; the two timm sides always run, as the reference):
  starbench       channels_last, default switches
  fast_dwconv     + trainer.fast_dwconv (C++ depthwise weight gradient)
  branches        + trainer.fast_dwconv + trainer.compile_branches
  fused_mlp       + trainer.fast_dwconv + trainer.compile_branches + trainer.fused_mlp
  all_switches    + the three above + trainer.fast_batchnorm
  compiled        trainer.compile=true (whole-model torch.compile; about a minute of compiling first)
Fewer sides give steadier numbers: each extra model adds memory churn between the timed steps.
"""
import argparse
import statistics

import torch

from experiments.tools.cli import positive_int
from experiments.train.timing import interleaved, quartiles
from starnet import VARIANTS, accelerate, create_starnet


def step_fn(model, channels_last, batch, size, compile_=False, fast_dwconv=False, compile_branches=False,
            fused_mlp=False, fast_batchnorm=False):
    model.train()
    accelerate(model, fast_dwconv=fast_dwconv, compile_branches=compile_branches, fused_mlp=fused_mlp,
               fast_batchnorm=fast_batchnorm)  # this side's model only
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)

    forward = torch.compile(model) if compile_ else model  # as trainer.compile=true does

    def step():
        loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


SIDES = {  # starbench sides: step_fn switches
    "starbench": {},
    "fast_dwconv": {"fast_dwconv": True},
    "branches": {"fast_dwconv": True, "compile_branches": True},
    "fused_mlp": {"fast_dwconv": True, "compile_branches": True, "fused_mlp": True},
    "all_switches": {"fast_dwconv": True, "compile_branches": True, "fused_mlp": True, "fast_batchnorm": True},
    "compiled": {"compile_": True},
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="s1", choices=list(VARIANTS))
    ap.add_argument("--batch", type=positive_int, default=32)
    ap.add_argument("--size", type=positive_int, default=224)
    ap.add_argument("--threads", type=positive_int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=positive_int, default=7, help="timed rounds (each side one step per round; >= 2)")
    ap.add_argument("--sides", default="starbench", help="comma-separated, from: " + ", ".join(SIDES))
    ap.add_argument("--keep-denormals", action="store_true", help="do not flush denormals to zero")
    args = ap.parse_args()
    if args.repeats < 2:
        ap.error(f"--repeats must be >= 2 (the per-round quartiles need two rounds), got {args.repeats}")
    names = [n.strip() for n in args.sides.split(",") if n.strip()]
    unknown = [n for n in names if n not in SIDES]
    if unknown:
        ap.error(f"unknown side(s) {', '.join(unknown)}; valid: {', '.join(SIDES)}")
    import timm
    torch.set_num_threads(args.threads)
    # As the trainer does (trainer.flush_denormal). Process-wide, so every side gets it: the ratios
    # compare models, layouts and kernels, not denormal handling.
    torch.set_flush_denormal(not args.keep_denormals)
    torch.manual_seed(0)
    timm_model = lambda: timm.create_model(f"starnet_{args.variant}")  # noqa: E731
    sides = {"timm default (NCHW)": step_fn(timm_model(), False, args.batch, args.size),
             "timm channels_last": step_fn(timm_model(), True, args.batch, args.size)}
    for name in names:
        label = "starbench" if name == "starbench" else f"starbench + {name}"
        sides[label] = step_fn(create_starnet(args.variant), True, args.batch, args.size, **SIDES[name])
    # Warm-up: allocator, oneDNN primitive cache. Alternate the order: the side after another pays for its memory churn.
    times = interleaved(sides, rounds=args.repeats, warmup=2, alternate=True).times
    base = statistics.median(times["timm default (NCHW)"])
    base_cl = statistics.median(times["timm channels_last"])
    print(f"StarNet-{args.variant} train step, batch {args.batch}, {args.size}px, {args.threads} threads, "
          f"torch {torch.__version__}, timm {timm.__version__}; median of {args.repeats}")
    print(f"{'':42s} {'s/step':>8s} {'img/s':>8s} {'vs timm default':>16s} {'vs timm CL':>11s} "
          f"{'per round vs CL: median [q1, q3]':>34s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        # Each round's own ratio: a slow spell of the machine hits both sides of a round alike.
        q1, q2, q3 = quartiles([c / t for c, t in zip(times["timm channels_last"], ts)])
        print(f"{name:42s} {med:8.3f} {args.batch / med:8.1f} {base / med:15.2f}x {base_cl / med:10.2f}x "
              f"{q2:19.2f}x [{q1:.2f}, {q3:.2f}]")

if __name__ == "__main__":
    main()
