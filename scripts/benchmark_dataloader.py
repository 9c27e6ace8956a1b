"""Throughput of the ImageNet-style input pipeline (JPEG decode + the paper's training transforms:
RandomResizedCrop 224, flip, RandAugment, color jitter, random erasing) per DataLoader worker count.

    python scripts/benchmark_dataloader.py --images 512 --workers 0 1 2

Writes a folder of synthetic JPEGs (500x375, ImageNet's typical size) under a temp dir first (removed at the end).
"""
import argparse
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from PIL import Image

from experiments.data.imagenet import build_imagenet
from experiments.tools.cli import non_negative_int, positive_int


def make_folder(root: Path, n: int) -> None:
    g = torch.Generator().manual_seed(0)
    for split, count in (("train", n), ("val", 8)):
        for i in range(count):
            d = root / split / f"c{i % 4}"
            d.mkdir(parents=True, exist_ok=True)
            low = torch.randint(0, 256, (3, 24, 32), generator=g, dtype=torch.uint8).float()[None]
            img = torch.nn.functional.interpolate(low, size=(375, 500), mode="bilinear")[0]
            Image.fromarray(img.byte().permute(1, 2, 0).numpy()).save(d / f"{i}.jpg", quality=90)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=positive_int, default=512)
    ap.add_argument("--workers", type=non_negative_int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--batch", type=positive_int, default=64)
    args = ap.parse_args()
    # DataLoader workers run with one torch thread; give the in-process case (workers=0) the same, as
    # more threads for these tiny per-image ops only add contention on a small machine.
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="starbench_jpegs_") as tmp:  # removed at the end, even on errors
        root = Path(tmp)
        make_folder(root, args.images)
        dcfg = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "data" / "imagenet.yaml")
        dcfg.root, dcfg.num_classes, dcfg.reprob = str(root), 4, 0.25  # paper Table 10 transforms + erasing
        print(f"{args.images} JPEGs 500x375 -> 224 train transforms ({dcfg.auto_augment}, jitter {dcfg.color_jitter}, "
              f"erasing {dcfg.reprob}); torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(f"{'workers':>8s} {'images/s':>10s} {'per worker':>11s}")
        for workers in args.workers:
            dcfg.workers = workers
            tcfg = OmegaConf.create({"batch_size": args.batch, "eval_batch_size": args.batch})
            data = build_imagenet(dcfg, tcfg, seed=0)
            batches = data.train_batches(epoch=0)
            next(batches)  # start-up (worker spawn) is not throughput
            n, t = 0, time.perf_counter()
            for x, _ in batches:
                n += len(x)
            rate = n / (time.perf_counter() - t)
            print(f"{workers:8d} {rate:10.1f} {rate / max(workers, 1):11.1f}")


if __name__ == "__main__":
    main()
