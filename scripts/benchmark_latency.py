"""Batch-1 inference latency of StarNet/DemoNet (star and sum) and timm's StarNet, in one table with the
paper's Table 6 columns (params, FLOPs, latency): PyTorch eager (NCHW and channels_last), PyTorch
reparameterized (optionally torch.compile'd), and ONNX Runtime (`scripts/export_onnx.py`'s deploy form).

All models and modes run interleaved in this one process (round robin, `--rounds` rounds of `--iters`
calls each), so a noisy neighbour slows every side alike; the last column is the best mode's speed-up
over timm's model in its fastest eager layout.

    python scripts/benchmark_latency.py --compile                # S1 star, S1 sum, timm starnet_s1
    python scripts/benchmark_latency.py --variants s050,s1,s4 --demonet --threads 2 --json out.json
    python scripts/benchmark_latency.py --device cuda            # GPU: eager and reparameterized only
"""
import argparse
import copy
import tempfile
import warnings
from pathlib import Path

import torch

from demonet import DemoNet
from experiments.tools.export import export_onnx, ort_session
from experiments.train.models import count_flops, count_params
from starnet import VARIANTS, create_starnet, reparameterize
from experiments.tools.cli import check_device, non_negative_int, positive_int
from experiments.tools.timing import interleaved, write_json

MODES = ("eager NCHW", "eager CL", "reparam NCHW", "reparam CL", "reparam CL compiled", "ONNX Runtime")


def candidates(args):
    """(name, model, input shape, ours?, StarNet variant or None)"""
    shape = (3, args.size, args.size)
    out = []
    for variant in args.variants.split(","):
        for op in ("star", "sum"):
            out.append((f"StarNet-{variant.upper()} {op}", create_starnet(variant, op=op), shape, True, variant))
        if args.timm:
            import timm
            out.append((f"timm starnet_{variant}", timm.create_model(f"starnet_{variant}"), shape, False, variant))
    if args.demonet:
        for op in ("star", "sum"):
            out.append((f"DemoNet-w192-d12 {op}", DemoNet(192, 12, op=op, patch_size=16), shape, True, None))
    return out


def modes_for(model, shape, ours, device, tmp, threads, compile_):
    """mode name -> zero-argument callable that runs one batch-1 inference."""
    model = model.eval().to(device)
    x = torch.randn(1, *shape, device=device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    cl = lambda m: copy.deepcopy(m).to(memory_format=torch.channels_last)  # noqa: E731
    fns = {"eager NCHW": (lambda m=model: m(x)), "eager CL": (lambda m=cl(model): m(x_cl))}
    if ours:
        rp = reparameterize(copy.deepcopy(model))
        fns.update({"reparam NCHW": (lambda m=rp: m(x)), "reparam CL": (lambda m=cl(rp): m(x_cl))})
        if compile_:
            fns["reparam CL compiled"] = lambda m=torch.compile(cl(rp)): m(x_cl)
    if device.type == "cpu":  # ours: export_onnx's deploy form; timm's: its model as it is
        xn = x.numpy()
        path = export_onnx(model, Path(tmp) / f"{id(model)}.onnx", shape, reparam=ours)
        fns["ONNX Runtime"] = lambda s=ort_session(path, threads): s.run(None, {"images": xn})
    return fns


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="s1", help="comma-separated, from: " + ", ".join(VARIANTS))
    ap.add_argument("--demonet", action="store_true", help="add DemoNet width 192 depth 12 (paper sec. 3.4)")
    ap.add_argument("--no-timm", dest="timm", action="store_false")
    ap.add_argument("--size", type=positive_int, default=224)
    ap.add_argument("--threads", type=positive_int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=positive_int, default=15)
    ap.add_argument("--iters", type=positive_int, default=10)
    ap.add_argument("--warmup", type=non_negative_int, default=20)
    ap.add_argument("--compile", action="store_true", help="add torch.compile of the reparameterized model "
                    "(about 30 s of compiling per model)")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        ap.error(f"argument --variants: unknown variant(s) {', '.join(unknown) or '(none given)'}; "
                 f"valid: {', '.join(VARIANTS)}")
    args.variants = ",".join(variants)
    device = check_device(ap, args.device)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    rows, sides = [], {}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for name, model, shape, ours, variant in candidates(args):
            row = {"model": name, "variant": variant, "ours": ours, "params_m": count_params(model) / 1e6,
                   "flops_m": count_flops(model, shape) / 1e6, "ms": {}}
            rows.append(row)
            for mode, fn in modes_for(model, shape, ours, device, tmp, args.threads, args.compile).items():
                sides[(len(rows) - 1, mode)] = fn
        timed = interleaved({f"{i} {mode}": fn for (i, mode), fn in sides.items()}, rounds=args.rounds,
                            warmup=args.warmup, iters=args.iters, sync=sync)
        for i, mode in sides:
            rows[i]["ms"][mode] = timed.median(f"{i} {mode}") * 1e3

    timm_best = {r["variant"]: min(r["ms"][m] for m in ("eager NCHW", "eager CL")) for r in rows if not r["ours"]}
    modes = [m for m in MODES if any(m in r["ms"] for r in rows)]
    print(f"batch 1, {args.size} px, {device.type}, {args.threads} threads, torch {torch.__version__}; "
          f"median ms of {args.rounds} rounds x {args.iters} calls")
    print("| model | params (M) | FLOPs (M) | " + " | ".join(f"{m} (ms)" for m in modes) + " | best vs timm |")
    print("|---|---:|---:|" + "---:|" * len(modes) + "---:|")
    for r in rows:
        ref = timm_best.get(r["variant"])
        best = min(r["ms"].values())
        r["best_vs_timm"] = ref / best if ref else None
        cells = " | ".join(f"{r['ms'][m]:.2f}" if m in r["ms"] else "–" for m in modes)
        print(f"| {r['model']} | {r['params_m']:.2f} | {r['flops_m']:.0f} | {cells} | "
              f"{f'{ref / best:.2f}x' if ref else '–'} |")
    write_json(args.json, {"threads": args.threads, "device": device.type, "size": args.size,
                           "torch": torch.__version__, "rows": rows}, indent=1)


if __name__ == "__main__":
    main()
