"""Export a StarNet or DemoNet (star or sum) to ONNX, reparameterized, and check it with ONNX Runtime.

    python scripts/export_onnx.py --run-dir outputs/runs/2026-11-28/12-00-00_demonet_star -o demonet.onnx
    python scripts/export_onnx.py --model starnet --variant s1 --op sum -o starnet_s1_sum.onnx
    python scripts/export_onnx.py --model demonet --width 192 --depth 12 --op star --size 224 -o demonet.onnx

A trained run exports its checkpoint (EMA weights if it kept an EMA); otherwise the architecture is
built with random weights (for latency work). Exit 1 if ONNX Runtime's outputs differ from PyTorch's
by more than --tol (relative to the largest logit). A run that did not complete (interrupted, failed) is
refused unless --allow-unfinished (then a warning names its status and epochs).
"""
import argparse
import logging
import sys


from demonet import DemoNet
from experiments.errors import StarbenchError
from experiments.tools.export import check_onnx, export_onnx, model_from_run
from starnet import create_starnet


def build(args):
    if args.run_dir:
        return model_from_run(args.run_dir, allow_unfinished=args.allow_unfinished)
    shape = (args.in_chans, args.size, args.size)
    act = {"act": args.act} if args.act else {}  # not given: the model's own default
    if args.model == "starnet":
        return create_starnet(args.variant, op=args.op, num_classes=args.num_classes, in_chans=args.in_chans,
                              **act), shape
    return DemoNet(width=args.width, depth=args.depth, op=args.op, num_classes=args.num_classes,
                   in_chans=args.in_chans, patch_size=args.patch_size, **act), shape


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", help="a classification run dir (its last.pt and .hydra/config.yaml)")
    ap.add_argument("--allow-unfinished", action="store_true", help="export a run that did not complete (its "
                    "checkpoint is from an epoch before the last; refused without this flag)")
    ap.add_argument("--model", choices=["starnet", "demonet"], default="starnet")
    ap.add_argument("--variant", default="s1")
    ap.add_argument("--op", default="star")
    ap.add_argument("--act", default=None, help="activation (default: the model's own, relu6 for StarNet, "
                    "gelu for DemoNet; ignored with --run-dir)")
    ap.add_argument("--width", type=int, default=192)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--patch-size", type=int, default=16)
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--in-chans", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--no-reparam", action="store_true", help="export the training form as it is")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    logging.basicConfig(format="export_onnx: warning: %(message)s", level=logging.WARNING)
    try:
        model, shape = build(args)
        path = export_onnx(model, args.output, shape, reparam=not args.no_reparam)
        err = check_onnx(path, model, shape)
    except (StarbenchError, ValueError, OSError) as e:
        print(f"export_onnx: error: {e}", file=sys.stderr)
        return 1
    ok = err <= args.tol
    print(f"wrote {path} (input {shape}, reparameterized: {not args.no_reparam}); ONNX Runtime vs PyTorch: "
          f"max relative error {err:.1e} ({'ok' if ok else f'ABOVE tolerance {args.tol}'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
