"""The offline detection set: Fashion-MNIST items on textured backgrounds, in YOLO format.

Each image holds several items (real photos of 10 kinds of clothing) at different scales and
tints, placed with little overlap on a background of coloured multi-scale noise and stripes.
Train images use Fashion-MNIST's train split, val images its test split, so no item is in both.
Every image is drawn from its own RNG stream ``(seed, split, index)``: the set is a pure function of
its settings, generated once and cached in a folder named after them.

    <cache_dir>/<name>/data.yaml, images/{train,val}/*.png, labels/{train,val}/*.txt
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import StarbenchError

log = logging.getLogger("starbench")

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
GENERATOR_VERSION = 1  # bump when the drawing below changes, so old caches are not reused
SPLITS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class FashionDetSpec:
    train_size: int = 1500
    val_size: int = 300
    image_size: int = 160
    min_objects: int = 1
    max_objects: int = 6
    min_scale: float = 0.15   # item side / image side
    max_scale: float = 0.5
    seed: int = 0

    def check(self) -> "FashionDetSpec":
        for name in ("train_size", "val_size", "image_size", "min_objects", "max_objects"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise StarbenchError(f"data.{name} must be a positive integer, got {v!r}")
        if self.min_objects > self.max_objects:
            raise StarbenchError(f"data.objects: min {self.min_objects} > max {self.max_objects}")
        if not 0 < self.min_scale <= self.max_scale <= 1:
            raise StarbenchError(f"data.scale must satisfy 0 < min <= max <= 1, got "
                                 f"[{self.min_scale}, {self.max_scale}]")
        if self.image_size < 32 or round(self.min_scale * self.image_size) < 8:
            raise StarbenchError(f"data.image_size={self.image_size} with min scale {self.min_scale} makes "
                                 "items under 8 px; raise either")
        return self

    @property
    def name(self) -> str:
        digest = hashlib.sha1(json.dumps([GENERATOR_VERSION, asdict(self)]).encode()).hexdigest()[:8]
        return f"n{self.train_size}-{self.val_size}_{self.image_size}px_seed{self.seed}_{digest}"


def load_items(root: Path) -> dict:
    """Fashion-MNIST images and labels per split (uint8 (N, 28, 28), int64 (N,))."""
    from .small import DEBIAN_FASHION_MNIST, FASHION_FILES, find_fashion_mnist, is_default_root, read_idx
    found = find_fashion_mnist(Path(root).expanduser())
    if found is None:
        where = f"{root} or {DEBIAN_FASHION_MNIST}" if is_default_root(root) else str(root)
        raise StarbenchError(f"Fashion-MNIST idx files not found in {where}; "
                             "install `dataset-fashion-mnist` (Debian) or set data.root to a folder holding them")

    def idx(stem: str) -> np.ndarray:
        path = next(p for p in (found / stem, found / f"{stem}.gz") if p.is_file())
        return read_idx(path)

    splits = {"train": FASHION_FILES["train"], "val": FASHION_FILES["val"]}
    return {s: (idx(images), idx(labels).astype(np.int64)) for s, (images, labels) in splits.items()}


def _resize(a: np.ndarray, size: int) -> np.ndarray:
    """(h, w, c) float32 -> (size, size, c), bilinear."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Coloured noise at two scales, optional stripes, fine grain: (size, size, 3) float32."""
    img = np.broadcast_to(rng.uniform(40, 215, 3), (size, size, 3)).astype(np.float32)
    for cells, amp in ((3, 55.0), (12, 25.0)):
        img = img + amp * _resize(rng.normal(0, 1, (cells, cells, 3)), size)
    if rng.random() < 0.6:
        theta, period = rng.uniform(0, np.pi), rng.uniform(6, 30)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        wave = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
        img = img + rng.uniform(10, 35) * wave[..., None] * rng.uniform(-1, 1, 3).astype(np.float32)
    return img + rng.normal(0, 5, img.shape).astype(np.float32)


def _overlaps(box: Tuple[float, ...], boxes: Sequence[Tuple[float, ...]], limit: float = 0.3) -> bool:
    """True if ``box`` covers more than ``limit`` of itself or of an earlier box."""
    x0, y0, x1, y1 = box
    for a0, b0, a1, b1 in boxes:
        inter = max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
        if inter > limit * min((x1 - x0) * (y1 - y0), (a1 - a0) * (b1 - b0)):
            return True
    return False


def draw_image(spec: FashionDetSpec, items: np.ndarray, labels: np.ndarray, split: str,
               index: int) -> Tuple[np.ndarray, List[Tuple[int, float, float, float, float]]]:
    """One image (uint8 HxWx3 RGB) and its boxes ``(class, x0, y0, x1, y1)`` in pixels."""
    rng = np.random.default_rng([spec.seed, SPLITS[split], index])
    size = spec.image_size
    img = background(rng, size)
    bg_mean = img.mean((0, 1))
    boxes: List[Tuple[float, ...]] = []
    out = []
    for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
        k = int(rng.integers(len(labels)))
        item = items[k].astype(np.float32) / 255.0
        rows, cols = np.nonzero(item > 0.05)
        if len(rows) == 0:
            continue
        side = int(round(rng.uniform(spec.min_scale, spec.max_scale) * size))
        f = side / item.shape[0]
        for _try in range(20):
            x, y = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
            box = (x + cols.min() * f, y + rows.min() * f, x + (cols.max() + 1) * f, y + (rows.max() + 1) * f)
            if not _overlaps(box, boxes):
                break
        else:
            continue  # crowded: skip this item
        # A tint far from the background, shaded by the item's own intensities (its texture).
        for _c in range(10):
            tint = rng.uniform(0, 255, 3).astype(np.float32)
            if np.abs(tint - bg_mean).sum() > 150:
                break
        gray = _resize(item[..., None], side)[..., 0].clip(0, 1)
        alpha = np.clip(gray * 2.0, 0, 1)[..., None]
        fg = tint * (0.45 + 0.55 * gray[..., None])
        patch = img[y:y + side, x:x + side]
        img[y:y + side, x:x + side] = patch * (1 - alpha) + fg * alpha
        boxes.append(box)
        out.append((int(labels[k]),) + tuple(float(v) for v in box))
    if not out:  # every item was skipped (cannot happen with min_objects >= 1 and an empty canvas)
        raise RuntimeError(f"fashion_det: image {split}/{index} has no objects")
    return np.clip(img, 0, 255).round().astype(np.uint8), out


def yolo_lines(boxes, size: int) -> List[str]:
    return [f"{c} {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} {(x1 - x0) / size:.6f} "
            f"{(y1 - y0) / size:.6f}" for c, x0, y0, x1, y1 in boxes]


def generate(spec: FashionDetSpec, out_dir: Path, root: Path) -> Path:
    """Write the set into ``out_dir`` (via a temp dir, so a crash never leaves half a set)."""
    from PIL import Image
    spec.check()
    data = load_items(root)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    sizes = {"train": spec.train_size, "val": spec.val_size}
    try:  # a full disk or a kill mid-way removes the half-written set
        for split, n in sizes.items():
            items, labels = data[split]
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            for i in range(n):
                img, boxes = draw_image(spec, items, labels, split, i)
                Image.fromarray(img).save(tmp / "images" / split / f"{i:06d}.png", compress_level=1)
                (tmp / "labels" / split / f"{i:06d}.txt").write_text("\n".join(yolo_lines(boxes, spec.image_size))
                                                                       + "\n")
        # No `path:` key: ultralytics then resolves train/val next to this file, so the folder can move.
        (tmp / "data.yaml").write_text(
            f"# Fashion-MNIST detection set {spec.name} (experiments/data/fashion_det.py)\n"
            f"# spec: {json.dumps(asdict(spec))}\n"
            "train: images/train\nval: images/val\n"
            f"nc: {len(CLASSES)}\nnames: {json.dumps(CLASSES)}\n")
        (tmp / "spec.json").write_text(json.dumps({"version": GENERATOR_VERSION, **asdict(spec)}, indent=2))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, out_dir)
    except OSError:  # another process finished the same set first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "data.yaml"


def ensure(spec: FashionDetSpec, cache_dir: Path, root: Path) -> Path:
    """The set's data.yaml, generating it on first use."""
    out_dir = Path(cache_dir) / spec.check().name
    if (out_dir / "data.yaml").is_file():
        return out_dir / "data.yaml"
    log.info("generating Fashion-MNIST detection set %s in %s", spec.name, out_dir.parent)
    return generate(spec, out_dir, root)


def spec_from_cfg(dcfg) -> FashionDetSpec:
    objects, scale = list(dcfg.objects), list(dcfg.scale)
    if len(objects) != 2 or len(scale) != 2:
        raise StarbenchError(f"data.objects and data.scale are [min, max] pairs, got {objects} and {scale}")
    return FashionDetSpec(train_size=dcfg.train_size, val_size=dcfg.val_size, image_size=dcfg.image_size,
                          min_objects=objects[0], max_objects=objects[1], min_scale=float(scale[0]),
                          max_scale=float(scale[1]), seed=dcfg.seed)


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse
    p = argparse.ArgumentParser(description="Generate the Fashion-MNIST detection set.")
    p.add_argument("--out", default="data/fashion_det")
    p.add_argument("--root", default="data/fashion_mnist", help="folder with the Fashion-MNIST idx files")
    p.add_argument("--train-size", type=int, default=1500)
    p.add_argument("--val-size", type=int, default=300)
    p.add_argument("--image-size", type=int, default=160)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    spec = FashionDetSpec(train_size=a.train_size, val_size=a.val_size, image_size=a.image_size, seed=a.seed)
    print(ensure(spec, Path(a.out), Path(a.root)))


if __name__ == "__main__":
    main()
