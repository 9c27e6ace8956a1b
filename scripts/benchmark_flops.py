"""Achieved FLOP/s of small-model training (DemoNet on Fashion-MNIST-shaped batches) as a fraction of this
machine's fp32 matmul peak, and where the rest of the time goes (torch profiler, top ops).

    python scripts/benchmark_flops.py --width 64 --depth 12 --batch 128 --threads 2 [--compile] [--fast-dwconv]

FLOPs of a training step are counted by torch's FlopCounterMode over forward + backward (2 per
multiply-add; the optimizer is not counted; depthwise conv backward corrected: experiments/train/timing.py
training_flops). The peak is the best of a few large fp32 matmuls.
"""
import argparse
import statistics

import torch

from demonet import DemoNet
from starnet import accelerate
from starnet.ops import FUSION_OPS, get_op
from experiments.tools.cli import positive_int
from experiments.train.timing import interleaved, training_flops


MATMUL = 2048  # the peak is measured on fp32 MATMUL^3 products, best of 10 per round


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=positive_int, default=64)
    ap.add_argument("--depth", type=positive_int, default=12)
    ap.add_argument("--patch-size", type=positive_int, default=7)
    ap.add_argument("--batch", type=positive_int, default=128)
    ap.add_argument("--op", default="star", help="fusion op, from: " + ", ".join(sorted(FUSION_OPS)))
    ap.add_argument("--threads", type=positive_int, default=torch.get_num_threads())
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--fast-dwconv", action="store_true", help="trainer.fast_dwconv=true: C++ depthwise weight gradient")
    ap.add_argument("--compile-branches", action="store_true",
                    help="trainer.compile_branches=true: each block's op(act(x1), x2) as one compiled kernel")
    ap.add_argument("--fused-block", action="store_true",
                    help="trainer.fused_block=true: DemoNet's whole block as one C++ kernel")
    ap.add_argument("--steps", type=positive_int, default=20)
    ap.add_argument("--rounds", type=positive_int, default=5)
    args = ap.parse_args()
    try:
        get_op(args.op)
    except ValueError as e:
        ap.error(f"argument --op: {e}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = DemoNet(args.width, args.depth, op=args.op, num_classes=10, in_chans=1, patch_size=args.patch_size)
    x, y = torch.randn(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
    flops = training_flops(model, x, y)  # before accelerate(): the counter sees ATen ops, not a C++ kernel's
    accelerate(model, fast_dwconv=args.fast_dwconv, compile_branches=args.compile_branches,
               fused_block=args.fused_block)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    forward = torch.compile(model) if args.compile else model

    def step():
        loss = torch.nn.functional.cross_entropy(forward(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    a, b = torch.randn(MATMUL, MATMUL), torch.randn(MATMUL, MATMUL)
    # Peak and model in the same rounds, so a noisy neighbour hits both.
    timed = interleaved({"peak": lambda: a @ b, "step": step}, rounds=args.rounds, warmup={"peak": 1, "step": 3},
                        best_of={"peak": 10, "step": args.steps})
    peak_flops = statistics.median([2 * MATMUL ** 3 / t for t in timed.times["peak"]])
    step_s = timed.median("step")
    achieved = flops / step_s
    print(f"DemoNet w{args.width} d{args.depth} {args.op}, batch {args.batch}, patch {args.patch_size}, "
          f"{args.threads} threads, compile={args.compile}, fast_dwconv={args.fast_dwconv}, "
          f"compile_branches={args.compile_branches}, fused_block={args.fused_block}, torch {torch.__version__}")
    print(f"step: {flops / 1e9:.2f} GFLOP (fwd+bwd) in {step_s * 1e3:.1f} ms (best of {args.steps}, median of "
          f"{args.rounds} rounds) = {achieved / 1e9:.1f} GFLOP/s; {args.batch / step_s:.0f} img/s")
    print(f"fp32 matmul peak (2048^3): {peak_flops / 1e9:.1f} GFLOP/s -> {100 * achieved / peak_flops:.1f}% of peak")

    from torch.profiler import profile
    with profile() as prof:
        for _ in range(args.steps):
            step()
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    print("\nwhere a step's time goes (self CPU time, top ops):")
    for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]:
        print(f"  {100 * e.self_cpu_time_total / total:5.1f}%  {e.key}  ({e.count // args.steps} calls/step)")


if __name__ == "__main__":
    main()
