"""Training images/s on a GPU for StarNet-S1 and DemoNet-w192-d12 (224 px, ImageNet shapes) under the
settings the trainer offers: fp32, bf16 autocast (`trainer.amp`), + channels_last, + torch.compile
(`trainer.compile`). Prepared for a lent GPU machine; one run takes a few minutes. Each row is printed and
written to `--json` as soon as it is measured, and a setting that fails (out of memory, a compile error)
is recorded with its error instead of ending the run.

    python scripts/benchmark_gpu.py --json gpu.json                 # CUDA device 0
    python scripts/benchmark_gpu.py --device cpu --batch 8 --steps 2 --no-compile   # smoke test anywhere
"""
import argparse
from contextlib import nullcontext

import torch

from demonet import DemoNet
from starnet import create_starnet
from experiments.tools.cli import check_device, non_negative_int, positive_int
from experiments.records import one_line
from experiments.train.timing import interleaved, write_json

MODELS = {"StarNet-S1": lambda: create_starnet("s1"),
          "DemoNet-w192-d12": lambda: DemoNet(192, 12, patch_size=16)}


def measure(make, device, batch, size, amp, channels_last, compile_, steps, warmup):
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = make().to(device, memory_format=fmt).train()
    forward = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(forward(x), y, label_smoothing=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    timed = interleaved({"step": step}, rounds=steps, warmup=warmup, sync=sync)  # warm-up: torch.compile's too
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else None
    return batch / timed.median("step"), peak, timed.warmup_s["step"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=positive_int, default=256)
    ap.add_argument("--size", type=positive_int, default=224)
    ap.add_argument("--steps", type=positive_int, default=20)
    ap.add_argument("--warmup", type=non_negative_int, default=5)
    ap.add_argument("--no-compile", dest="compile", action="store_false")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = check_device(ap, args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = "cpu"
    settings = [("fp32", False, False, False), ("bf16", True, False, False), ("bf16 + CL", True, True, False)]
    if args.compile:
        settings.append(("bf16 + CL + compile", True, True, True))
    rows = []
    header = {"device": name, "torch": torch.__version__, "batch": args.batch, "size": args.size}
    print(f"{name}, torch {torch.__version__}, batch {args.batch}, {args.size} px, median of {args.steps} steps")
    print("| model | setting | img/s | peak GiB | warm-up s |\n|---|---|---:|---:|---:|")
    for model_name, make in MODELS.items():
        for label, amp, cl, comp in settings:
            row = {"model": model_name, "setting": label}
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            try:
                ips, peak, warmup_s = measure(make, device, args.batch, args.size, amp, cl, comp, args.steps,
                                              args.warmup)
                row.update(images_per_s=ips, peak_gib=peak, warmup_s=warmup_s)
                print(f"| {model_name} | {label} | {ips:.0f} | {'–' if peak is None else f'{peak:.1f}'} | "
                      f"{warmup_s:.1f} |", flush=True)
            except Exception as exc:  # noqa: BLE001  (record and go on: one failed setting is a result too)
                row["error"] = one_line(exc)
                print(f"| {model_name} | {label} | failed: {row['error']} | | |", flush=True)
            rows.append(row)
            if args.json:
                write_json(args.json, {**header, "rows": rows}, indent=1)


if __name__ == "__main__":
    main()
