"""DemoNet training-step time per width, the fast default against the plain path and the older switches.

    python scripts/benchmark_demonet_step.py --threads 1 [--widths 8,16,32,64] [--patch2-widths 16] [--ops star]
                                             [--acts gelu] [--json out.json]

For each (width, patch, op, act), four sides of one training step (forward, label-smoothed cross entropy,
backward, grad-norm clip, AdamW; batch 128 on 28x28 one-channel images, depth 12) run interleaved in this one
process, so that a busy machine slows them alike; the ratios are what to compare:
  plain    trainer.fast_paths=false: PyTorch's own ops (the default before the fast paths)
  dw_cb    fast_dwconv + compile_branches (the fastest DemoNet switches before the fused block)
  default  what the trainer now does by default on CPU: fused_block with all other switches on, AdamW's
           fused step, and trainer.reuse_freed_memory (the step's memory reused, not faulted in)
  plain+reuse  the plain path with reuse_freed_memory alone: how much of the gain the allocator setting is
  default@REV  with --kernel-rev REV: the default with DemoNet's block kernel as starnet/kernels/demo_block.py was
           at git revision REV (built beside this checkout's): the speed-up of a kernel change, and whether the
           two trained the same weights bit for bit (same steps on the same data: printed per row)
The setting is process-wide: it is switched on before each turn of the sides that have it, off before the others'.
Printed per row: the median of the rounds' best step times, the default's ratios to plain and dw_cb (and the ratios
of each side's fastest round, steadier when neighbours come and go), GFLOP/s (the plain model's
FLOPs, experiments/train/timing.py training_flops), and each side's warm-up (its first steps, compiling
included; a C++ kernel built before is loaded from torch's cache).
"""
import argparse
import ast
import subprocess
import sys
import time
from pathlib import Path

import torch

from demonet import DemoNet
from experiments.tools.cli import positive_int
from experiments.train.allocator import reuse_freed_memory
from experiments.train.timing import interleaved, training_flops, write_json
from starnet import accelerate
from starnet.kernels import _build, demo_block

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_SWITCHES = {"fast_dwconv": True, "compile_branches": True, "fused_mlp": True, "fast_batchnorm": True,
                    "fused_block": True}
# side -> (accelerate()'s switches, AdamW's options, reuse_freed_memory); the default's optimizer as
# experiments/train/fast_paths.py optimizer_fast_path gives it on CPU
SIDES = {
    "plain": ({}, {}, False),
    "dw_cb": ({"fast_dwconv": True, "compile_branches": True}, {}, False),
    "default": (DEFAULT_SWITCHES, {"fused": True}, True),
    "plain+reuse": ({}, {}, True),
}


def kernel_at(rev: str):
    """``extension(zoo=False)`` for DemoNet's block kernel at git revision ``rev`` (its C++ in starnet/kernels/csrc/,
    or in demo_block.py's strings before that), built beside this checkout's (its zoo build: where that revision has
    one; else None, and the side runs plain)."""
    try:
        shown = subprocess.run(["git", "show", f"{rev}:starnet/kernels/demo_block.py"], cwd=ROOT, capture_output=True,
                               text=True)
    except OSError as err:  # no git on the PATH
        sys.exit(f"error: --kernel-rev needs git: {err}")
    if shown.returncode:
        sys.exit(f"error: --kernel-rev {rev}: {shown.stderr.strip().splitlines()[-1]}")
    sha = subprocess.run(["git", "rev-parse", "--short=10", rev], cwd=ROOT, capture_output=True, text=True).stdout
    name = f"starbench_demo_block_at_{sha.strip()}"

    def show(path: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True)

    def string(path: str, text: str, constant: str) -> str:  # a module-level string constant of a file at rev
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [constant]:
                return ast.literal_eval(node.value)
        sys.exit(f"error: --kernel-rev {rev}: {path} has no {constant}, nor starnet/kernels/csrc/demo_block.cpp")
    if show("starnet/kernels/csrc/demo_block.cpp").returncode == 0:  # as _build.source reads this checkout's csrc/
        source = _build.source("demo_block.cpp", lambda filename: show(f"starnet/kernels/csrc/{filename}").stdout)
    else:  # a revision from before csrc/: the C++ in strings of demo_block.py and _build.py
        build_py = "starnet/kernels/_build.py"
        source = (string(build_py, show(build_py).stdout, "ACTIVATIONS_CPP")
                  + string("starnet/kernels/demo_block.py", shown.stdout, "_SOURCE"))

    def extension(zoo: bool = False):
        return demo_block.build_block(name, source, zoo) if not zoo or "STARBENCH_ZOO" in source else None
    return extension


def int_list(text: str):
    return [positive_int(v) for v in text.split(",") if v]


def step_fn(width, depth, patch, op, act, batch, switches, optimizer=None):
    torch.manual_seed(0)
    model = accelerate(DemoNet(width, depth, op=op, act=act, num_classes=10, in_chans=1, patch_size=patch).train(),
                       **switches)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, **(optimizer or {}))
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step():  # as experiments/train/trainer.py's train_epoch
        loss = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model, x, y, step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int_list, default=[8, 16, 32, 64], help="widths at patch 4 (7x7 tokens)")
    ap.add_argument("--patch2-widths", type=int_list, default=[16], help="widths at patch 2 (14x14 tokens)")
    ap.add_argument("--ops", default="star", help="comma-separated: star,sum")
    ap.add_argument("--acts", default="gelu", help="comma-separated: gelu,none")
    ap.add_argument("--depth", type=positive_int, default=12)
    ap.add_argument("--batch", type=positive_int, default=128)
    ap.add_argument("--threads", type=positive_int, default=1)
    ap.add_argument("--rounds", type=positive_int, default=5)
    ap.add_argument("--best-of", type=positive_int, default=5)
    ap.add_argument("--kernel-rev", default=None, help="also time the default with the block kernel at this git "
                    "revision (e.g. HEAD before a kernel change)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sides = dict(SIDES)
    kernels = {name: demo_block.extension for name in sides}
    if args.kernel_rev:
        rev_side = f"default@{args.kernel_rev}"
        sides[rev_side] = SIDES["default"]
        kernels = dict(kernels, **{rev_side: kernel_at(args.kernel_rev)})
    print(f"DemoNet d{args.depth}, batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}; "
          f"median of {args.rounds} rounds, best of {args.best_of} steps each")
    print(f"{'width':>5} {'patch':>5} {'op':>4} {'act':>4} | {'plain ms':>8} {'dw_cb ms':>8} {'default ms':>10} | "
          f"{'vs plain':>8} {'vs dw_cb':>8} | fastest rounds' | GFLOP/s plain/dw_cb/default | "
          "warm-up s plain/dw_cb/default | plain+reuse ms, vs plain"
          + (f" | default@{args.kernel_rev} ms, default vs it, same weights" if args.kernel_rev else ""))
    rows = []
    configs = [(w, 4) for w in args.widths] + [(w, 2) for w in args.patch2_widths]
    for width, patch in configs:
        for op in args.ops.split(","):
            for act in args.acts.split(","):
                steps, models, flops = {}, {}, None
                for name, (switches, optimizer, _) in sides.items():
                    models[name], x, y, steps[name] = step_fn(width, args.depth, patch, op, act, args.batch,
                                                              switches, optimizer)
                    if flops is None:  # on the plain model: the counter sees ATen ops, not a kernel's
                        flops = training_flops(models[name], x, y)

                def before_side(reuse, kernel):
                    reuse_freed_memory(reuse)
                    demo_block.extension = kernel  # looked up by the block's autograd function at each call
                start = time.perf_counter()
                before = {name: (lambda r=reuse, k=kernels[name]: before_side(r, k))
                          for name, (_, _, reuse) in sides.items()}
                t = interleaved(steps, rounds=args.rounds, warmup=3, best_of=args.best_of, alternate=True,
                                before=before)
                ms = {k: 1e3 * t.median(k) for k in steps}
                fastest = {k: 1e3 * min(t.times[k]) for k in steps}  # the least disturbed round, on a busy machine
                row = dict(width=width, patch=patch, op=op, act=act, gflop=flops / 1e9, ms=ms,
                           vs_plain=ms["plain"] / ms["default"], vs_dw_cb=ms["dw_cb"] / ms["default"],
                           fastest_ms=fastest,
                           fastest_vs_plain=fastest["plain"] / fastest["default"],
                           fastest_vs_dw_cb=fastest["dw_cb"] / fastest["default"],
                           reuse_vs_plain=ms["plain"] / ms["plain+reuse"],
                           gflops={k: flops / 1e6 / v for k, v in ms.items()}, warmup_s=t.warmup_s,
                           wall_s=time.perf_counter() - start)
                if args.kernel_rev:
                    row["vs_kernel_rev"] = ms[rev_side] / ms["default"]
                    row["same_weights_as_kernel_rev"] = all(
                        torch.equal(a, b) for a, b in zip(models["default"].state_dict().values(),
                                                          models[rev_side].state_dict().values()))
                rows.append(row)
                g, w = row["gflops"], row["warmup_s"]
                rev_cols = (f" | {ms[rev_side]:.1f}, {row['vs_kernel_rev']:.2f}x, "
                            f"{'yes' if row['same_weights_as_kernel_rev'] else 'NO'}" if args.kernel_rev else "")
                print(f"{width:>5} {patch:>5} {op:>4} {act:>4} | {ms['plain']:8.1f} {ms['dw_cb']:8.1f} "
                      f"{ms['default']:10.1f} | {row['vs_plain']:7.2f}x {row['vs_dw_cb']:7.2f}x | "
                      f"{row['fastest_vs_plain']:.2f}x {row['fastest_vs_dw_cb']:.2f}x | "
                      f"{g['plain']:.1f}/{g['dw_cb']:.1f}/{g['default']:.1f} | "
                      f"{w['plain']:.1f}/{w['dw_cb']:.1f}/{w['default']:.1f} | "
                      f"{ms['plain+reuse']:.1f}, {row['reuse_vs_plain']:.2f}x" + rev_cols, flush=True)
    reuse_freed_memory(False)
    demo_block.extension = kernels["default"]
    write_json(args.json, dict(args=vars(args), rows=rows))


if __name__ == "__main__":
    main()
