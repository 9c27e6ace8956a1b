"""Batch-1 inference latency of StarNet/DemoNet (star and sum) and timm's StarNet, in one table with the
paper's Table 6 columns (params, FLOPs, latency): PyTorch eager (NCHW and channels_last), PyTorch
reparameterized, optionally torch.compile'd (ours: the reparameterized form; timm's: its model), and ONNX
Runtime (ours: `scripts/export_onnx.py`'s deploy form; timm's: its model as it is) with ORT's default
session options and with `session.intra_op.allow_spinning=0` ("ORT no spin").

All models and modes run interleaved in this one process (round robin, `--rounds` rounds of `--iters`
calls each), so a noisy neighbour slows every side alike; a side's time is its best round (`--stat best`)
or its median round. The ratios compare like with like, each side's fastest mode of a kind: PyTorch
(eager or reparameterized, not compiled) vs timm's eager PyTorch, compiled vs compiled, ONNX Runtime vs
timm's model in ONNX Runtime (the same session options on both sides), and best vs best (the fastest
mode of any kind on each side). The star rows carry timm's weights (same state dict), so "max err" is
every mode's largest |logit - timm's eager logit| over timm's largest logit; the other rows' is against
their own eager NCHW output. `--tried` adds graph-level ONNX Runtime alternatives (ours with f1/f2 merged
into one conv; both with a fixed batch dimension; both without ORT's NCHWc layout transformation), which
count as ORT modes in the ratios. `--ort-profile` adds ORT's profile (per op type and per StarNet layer
role) of our and timm's ONNX models.

    python scripts/benchmark_latency.py --compile                # S1 star, S1 sum, timm starnet_s1
    python scripts/benchmark_latency.py --variants s050,s1,s4 --demonet --threads 2 --json out.json
    python scripts/benchmark_latency.py --variants s1 --ort-profile   # where ORT's time goes
    python scripts/benchmark_latency.py --variants s1 --tried \
        --modes "ORT,ORT no spin,ORT merged f1+f2,ORT static batch,ORT extended"
    python scripts/benchmark_latency.py --device cuda            # GPU: eager and reparameterized only
"""
import argparse
import copy
import re
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from demonet import DemoNet
from experiments.tools.export import export_onnx, ort_profile, ort_session
from experiments.train.models import count_flops, count_params
from starnet import VARIANTS, create_starnet, reparameterize
from experiments.tools.cli import check_device, non_negative_int, positive_int
from experiments.train.timing import interleaved, write_json

# --tried: graph-level alternatives for ONNX Runtime (docs/performance.md): ours with f1|f2 merged into one
# conv; both with a fixed batch dimension; both at ORT_ENABLE_EXTENDED (no NCHWc layout transformation)
TRIED = ("ORT merged f1+f2", "ORT static batch", "ORT extended")
MODES = ("eager NCHW", "eager CL", "reparam NCHW", "reparam CL", "compiled CL", "ORT", "ORT no spin", *TRIED)
# The kinds the ratios compare like with like (a side's fastest mode of the kind); "best" is any mode.
KINDS = {"PyTorch": ("eager NCHW", "eager CL", "reparam NCHW", "reparam CL"), "compiled": ("compiled CL",),
         "ORT": ("ORT", "ORT no spin", *TRIED), "best": MODES}


def candidates(args):
    """(name, model, input shape, ours?, StarNet variant or None). With timm, the star StarNet gets timm's
    weights (the same state dict), so both compute the same function."""
    shape = (3, args.size, args.size)
    out = []
    for variant in args.variants.split(","):
        theirs = None
        if args.timm:
            import timm
            theirs = timm.create_model(f"starnet_{variant}")
        for op in ("star", "sum"):
            model = create_starnet(variant, op=op)
            if op == "star" and theirs is not None:
                model.load_state_dict(theirs.state_dict())
            out.append((f"StarNet-{variant.upper()} {op}", model, shape, True, variant))
        if theirs is not None:
            out.append((f"timm starnet_{variant}", theirs, shape, False, variant))
    if args.demonet:
        for op in ("star", "sum"):
            out.append((f"DemoNet-w192-d12 {op}", DemoNet(192, 12, op=op, patch_size=16), shape, True, None))
    return out


def extended_session(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def tried_modes(model, ours, path, tmp, threads, feeds):
    shape = tuple(feeds["images"].shape[1:])
    fns = {}
    if ours and hasattr(model, "stages"):  # StarNet: its deploy form with the branch convs merged
        merged = export_onnx(reparameterize(copy.deepcopy(model)), Path(tmp) / f"{id(model)}.merged.onnx", shape,
                             reparam=False)
        fns["ORT merged f1+f2"] = lambda s=ort_session(merged, threads): s.run(None, feeds)[0]
    static = export_onnx(model, Path(tmp) / f"{id(model)}.static.onnx", shape, reparam=ours, dynamic_batch=False)
    fns["ORT static batch"] = lambda s=ort_session(static, threads): s.run(None, feeds)[0]
    fns["ORT extended"] = lambda s=extended_session(path, threads): s.run(None, feeds)[0]
    return fns


def modes_for(model, x, ours, device, tmp, threads, compile_, tried=False):
    """(mode name -> zero-argument callable that runs one batch-1 inference, ONNX file or None)."""
    model = model.eval().to(device)
    x = x.to(device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    cl = lambda m: copy.deepcopy(m).to(memory_format=torch.channels_last)  # noqa: E731
    fns = {"eager NCHW": (lambda m=model: m(x)), "eager CL": (lambda m=cl(model): m(x_cl))}
    rp = reparameterize(copy.deepcopy(model)) if ours else None
    if ours:
        fns.update({"reparam NCHW": (lambda m=rp: m(x)), "reparam CL": (lambda m=cl(rp): m(x_cl))})
    if compile_:  # ours: the reparameterized form; timm's: its model
        fns["compiled CL"] = lambda m=torch.compile(cl(rp if ours else model)): m(x_cl)
    path = None
    if device.type == "cpu":  # ours: export_onnx's deploy form; timm's: its model as it is
        feeds = {"images": x.numpy()}
        path = export_onnx(model, Path(tmp) / f"{id(model)}.onnx", tuple(x.shape[1:]), reparam=ours)
        fns["ORT"] = lambda s=ort_session(path, threads): s.run(None, feeds)[0]
        fns["ORT no spin"] = lambda s=ort_session(path, threads, spinning=False): s.run(None, feeds)[0]
        if tried:
            fns.update(tried_modes(model, ours, path, tmp, threads, feeds))
    return fns, path


def layer_role(node: str) -> str:
    """A StarNet ONNX node's role, from its name (ours and timm's export the same module names)."""
    for part in ("dwconv2", "dwconv", "f1", "f2", "/g/", "Mul", "stem"):
        if part in node:
            return {"/g/": "g", "Mul": "star op (Mul)"}.get(part, part)
    if "act/Clip" in node:  # ORT names a Conv fused with its Clip after the Clip
        return "f1"
    if re.search(r"stages\.\d+\.0/(conv/)?Conv", node):  # a stage's first layer (ours: folded into one Conv)
        return "downsample"
    return "head and other"


def rel_err(out, ref) -> float:
    out = torch.as_tensor(np.asarray(out)) if not isinstance(out, torch.Tensor) else out
    return ((out.float().cpu() - ref).abs().max() / ref.abs().max()).item()


def ratio(mine, theirs, kind):
    a = [mine[m] for m in KINDS[kind] if m in mine]
    b = [theirs[m] for m in KINDS[kind] if m in theirs]
    return min(b) / min(a) if a and b else None


def per_round(mine, theirs, kind):
    """Median [q1, q3] over rounds of the ratio of the two sides' fastest mode of ``kind`` in that round: on a
    noisy machine steadier than the ratio of best rounds, which may come from different moments."""
    a = [mine[m] for m in KINDS[kind] if m in mine]
    b = [theirs[m] for m in KINDS[kind] if m in theirs]
    if not a or not b:
        return None
    ratios = [min(col_b) / min(col_a) for col_a, col_b in zip(zip(*a), zip(*b))]
    if len(ratios) < 2:
        return [ratios[0]] * 3
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return [statistics.median(ratios), q1, q3]


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
    ap.add_argument("--stat", choices=("best", "median"), default="best",
                    help="a side's time: its best round (default; the least disturbed by other load) or its median")
    ap.add_argument("--compile", action="store_true", help="add torch.compile in channels_last (about 30 s of "
                    "compiling per model)")
    ap.add_argument("--ort-profile", type=positive_int, nargs="?", const=50, default=0, metavar="CALLS",
                    help="after timing, profile each StarNet's ONNX model in ORT over CALLS calls (default 50)")
    ap.add_argument("--tried", action="store_true", help="add the graph-level ONNX Runtime alternatives: "
                    + ", ".join(TRIED))
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated, from: " + ", ".join(MODES)
                    + " (e.g. 'ORT,ORT no spin' for many cheap rounds of ONNX Runtime alone)")
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not wanted or any(m not in MODES for m in wanted):
        ap.error(f"argument --modes: unknown mode(s) {', '.join(m for m in wanted if m not in MODES) or '(none given)'}"
                 f"; valid: {', '.join(MODES)}")
    if "compiled CL" in wanted and not args.compile and args.modes != ",".join(MODES):
        ap.error("argument --modes: 'compiled CL' needs --compile")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        ap.error(f"argument --variants: unknown variant(s) {', '.join(unknown) or '(none given)'}; "
                 f"valid: {', '.join(VARIANTS)}")
    args.variants = ",".join(variants)
    device = check_device(ap, args.device)
    if args.ort_profile and device.type != "cpu":
        ap.error("argument --ort-profile: ONNX Runtime runs on the CPU here (--device cpu)")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    x = torch.randn(1, 3, args.size, args.size)

    rows, sides, onnx_files = [], {}, {}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        timm_out = {}
        models = candidates(args)
        for name, model, shape, ours, variant in models:  # timm's eager output: the star rows' reference
            if not ours:
                timm_out[variant] = model.eval()(x).float()
        for name, model, shape, ours, variant in models:
            row = {"model": name, "variant": variant, "ours": ours, "params_m": count_params(model) / 1e6,
                   "flops_m": count_flops(model, shape) / 1e6, "ms": {}, "max_err": 0.0}
            rows.append(row)
            fns, onnx_files[len(rows) - 1] = modes_for(model, x, ours, device, tmp, args.threads, args.compile,
                                                       args.tried)
            same = ours and name.endswith(" star") and variant in timm_out
            ref = timm_out[variant] if same else model.eval().to(device)(x.to(device)).float().cpu()
            row["err_vs"] = "timm eager" if same else "own eager NCHW"
            for mode, fn in fns.items():
                if mode not in wanted:
                    continue
                sides[(len(rows) - 1, mode)] = fn
                row["max_err"] = max(row["max_err"], rel_err(fn(), ref))
        timed = interleaved({f"{i} {mode}": fn for (i, mode), fn in sides.items()}, rounds=args.rounds,
                            warmup=args.warmup, iters=args.iters, sync=sync)
        for i, mode in sides:
            values = timed.times[f"{i} {mode}"]
            rows[i]["ms"][mode] = (min(values) if args.stat == "best" else timed.median(f"{i} {mode}")) * 1e3
            rows[i].setdefault("rounds_ms", {})[mode] = [v * 1e3 for v in values]  # per-round ratios from the JSON
        profiles = {}
        if args.ort_profile:
            feeds = {"images": x.numpy()}
            for i, r in enumerate(rows):
                if r["variant"] is not None and onnx_files.get(i):
                    profiles[r["model"]] = {
                        spin: ort_profile(onnx_files[i], feeds, args.threads, spinning=spin == "ORT",
                                          calls=args.ort_profile, group=layer_role)
                        for spin in ("ORT", "ORT no spin")}

    theirs = {r["variant"]: r["ms"] for r in rows if not r["ours"]}
    modes = [m for m in MODES if any(m in r["ms"] for r in rows)]
    kinds = [k for k in KINDS if any(m in r["ms"] for r in rows for m in KINDS[k])]
    print(f"batch 1, {args.size} px, {device.type}, {args.threads} threads, torch {torch.__version__}; "
          f"{args.stat} of {args.rounds} interleaved rounds x {args.iters} calls, ms per call")
    print("| model | params (M) | FLOPs (M) | " + " | ".join(modes) + " | max err | "
          + " | ".join(f"{k} vs timm {k}" for k in kinds) + " |")
    print("|---|---:|---:|" + "---:|" * (len(modes) + 1 + len(kinds)))
    for r in rows:
        ref = theirs.get(r["variant"]) if r["ours"] else None
        r["vs_timm"] = {k: ratio(r["ms"], ref, k) for k in kinds} if ref else {}
        theirs_rounds = next((t["rounds_ms"] for t in rows if not t["ours"] and t["variant"] == r["variant"]), None)
        r["vs_timm_per_round"] = ({k: per_round(r["rounds_ms"], theirs_rounds, k) for k in kinds}
                                  if ref and theirs_rounds else {})
        cells = " | ".join(f"{r['ms'][m]:.2f}" if m in r["ms"] else "–" for m in modes)
        ratios = " | ".join(f"{r['vs_timm'][k]:.2f}x" if r["vs_timm"].get(k) else "–" for k in kinds)
        print(f"| {r['model']} | {r['params_m']:.2f} | {r['flops_m']:.0f} | {cells} | {r['max_err']:.0e} | {ratios} |")
    for r in rows:
        if r.get("vs_timm_per_round"):
            print(f"per round, {r['model']}: " + ", ".join(
                f"{k} vs timm {k} {v[0]:.2f}x [q1 {v[1]:.2f}, q3 {v[2]:.2f}]"
                for k, v in r["vs_timm_per_round"].items() if v))
    for model, by_spin in profiles.items():
        for spin, prof in by_spin.items():
            total = sum(prof["kernel_us"].values())
            print(f"\nORT profile, {model}, {spin}: {prof['run_us'] / 1e3:.2f} ms per call (mean of "
                  f"{args.ort_profile}, profiler on); graph ORT runs: "
                  + ", ".join(f"{n} {op}" for op, n in prof["nodes"].items()))
            print("  per op type: " + ", ".join(f"{op} {us / 1e3:.2f} ms ({us / total:.0%})"
                                               for op, us in prof["kernel_us"].items()))
            print("  per layer:   " + ", ".join(f"{g} {us / 1e3:.2f} ms ({us / total:.0%})"
                                               for g, us in prof["group_us"].items()))
    write_json(args.json, {"threads": args.threads, "device": device.type, "size": args.size, "stat": args.stat,
                           "torch": torch.__version__, "rows": rows, "ort_profiles": profiles}, indent=1)


if __name__ == "__main__":
    main()
