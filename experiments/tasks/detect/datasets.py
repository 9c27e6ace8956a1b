"""Which detection data a run uses, and a check of it before ultralytics sees it.

ultralytics, given a dataset it cannot find, downloads it or runs the YAML's ``download:`` script;
given a label with a class out of range, it drops the image with a warning; an image without a
label file is a background image. Here the first is refused, and the other two end the run with a
one-line error (backgrounds can be allowed with ``data.allow_background=true``, e.g. for COCO).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from omegaconf import DictConfig

from . import env  # noqa: F401
from ...errors import StarbenchError
from ...records import atomic_write_text

YAML_SUFFIXES = (".yaml", ".yml")


def _abs(path: str) -> Path:
    """A config path relative to where the user launched the run (Hydra may have changed cwd)."""
    try:
        from hydra.utils import to_absolute_path
        return Path(to_absolute_path(str(Path(path).expanduser())))
    except Exception:  # hydra not initialised: plain cwd
        return Path(path).expanduser().resolve()


def resolve_data(dcfg: DictConfig) -> Tuple[Path, str]:
    """``(data.yaml path, data name for run identity)``: ``data.yaml`` if set, else the generated set."""
    yaml_path = dcfg.get("yaml")
    if yaml_path:
        return _abs(yaml_path), Path(str(yaml_path)).stem
    if dcfg.get("name") == "fashion_det":
        from ...data.fashion_det import ensure, spec_from_cfg
        return ensure(spec_from_cfg(dcfg), _abs(dcfg.cache_dir), _abs(dcfg.root)), "fashion_det"
    raise StarbenchError(f"task=detect needs detection data: data=fashion_det (generated here) or "
                         f"data.yaml=/path/to/dataset.yaml, not data={dcfg.get('name')}")


def list_images(source) -> List[Path]:
    """Image files of one split entry (a folder, a .txt list, or a list of those), as ultralytics reads them."""
    from ultralytics.data.utils import IMG_FORMATS
    out: List[Path] = []
    for s in source if isinstance(source, (list, tuple)) else [source]:
        p = Path(s)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*.*") if f.suffix[1:].lower() in IMG_FORMATS)
        elif p.is_file() and p.suffix == ".txt":
            for line in p.read_text().splitlines():
                line = line.strip()
                if line:
                    f = p.parent / line[2:] if line.startswith("./") else Path(line)
                    out.append(f if f.is_absolute() else p.parent / f)
        elif p.is_file():
            out.append(p)
        else:
            raise StarbenchError(f"dataset split '{s}' not found")
    return out


def check_labels(images: List[Path], nc: int, split: str, yaml_path: Path, allow_background: bool) -> Dict[str, int]:
    from ultralytics.data.utils import img2label_paths
    unlabeled, boxes = [], 0
    for img, lb in zip(images, img2label_paths([str(i) for i in images])):
        rows = [r.split() for r in Path(lb).read_text().splitlines() if r.strip()] if os.path.isfile(lb) else []
        if not rows:
            unlabeled.append((img, lb))
            continue
        for r in rows:
            try:
                cls, coords = float(r[0]), [float(v) for v in r[1:]]
            except ValueError:
                raise StarbenchError(f"{lb}: not a YOLO label line: {' '.join(r)!r}") from None
            if cls != int(cls) or not 0 <= cls < nc:
                raise StarbenchError(f"{lb}: class {r[0]} is out of range for nc={nc} in {yaml_path} "
                                     "(wrong class count?)")
            if len(coords) < 4 or len(coords) % 2 or any(not -0.01 <= v <= 1.01 for v in coords):
                raise StarbenchError(f"{lb}: expected 'class x y w h' with coordinates in [0, 1], got {' '.join(r)!r}")
            boxes += 1
    if unlabeled and not allow_background:
        img, lb = unlabeled[0]
        raise StarbenchError(f"{len(unlabeled)} of {len(images)} {split} images have no labels, e.g. {img} "
                             f"(no boxes in {lb}); set data.allow_background=true if they are background images")
    return {"images": len(images), "boxes": boxes, "background": len(unlabeled)}


def subset(images: List[Path], size) -> List[Path]:
    """A fixed random ``size`` of ``images`` (the same for every run seed, so seeds differ only in training noise;
    all of them if there are fewer), in their listed order. ``None``: all."""
    if size is None or size >= len(images):
        return images
    keep = sorted(random.Random(0).sample(range(len(images)), size))
    return [images[i] for i in keep]


def write_subset_yaml(data: Dict[str, Any], lists: Dict[str, List[Path]], out_dir: Path) -> Path:
    """A dataset YAML over image lists (``<out_dir>/train.txt``, ``val.txt``, absolute paths), with the parsed
    dataset's classes; its labels are the original ones (``images/`` -> ``labels/``). No ``download:`` key."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec: Dict[str, Any] = {"path": str(Path(data["path"]).resolve()), "nc": int(data["nc"]),
                            "names": {int(k): str(v) for k, v in dict(data["names"]).items()}}
    if "channels" in data:
        spec["channels"] = int(data["channels"])
    for split, images in lists.items():
        atomic_write_text(out_dir / f"{split}.txt", "".join(f"{Path(i).resolve()}\n" for i in images))
        spec[split] = str((out_dir / f"{split}.txt").resolve())
    path = out_dir / "data.yaml"
    atomic_write_text(path, yaml.safe_dump(spec, sort_keys=False))
    return path


def check_dataset(yaml_path: Path, allow_background: bool = False, sizes: Optional[Dict[str, Any]] = None,
                  subset_dir: Optional[Path] = None) -> Dict[str, Any]:
    """ultralytics' own parse of the YAML (no download), then our checks of every label file. ``sizes``
    (``{"train": n, "val": m}``, ``None`` = all): train and check only a fixed random subset of a split, listed in
    ``subset_dir`` with a dataset YAML over it, ``data["yaml"]`` (what ultralytics then trains on)."""
    from ultralytics.data.utils import check_det_dataset
    yaml_path = Path(yaml_path)
    if not yaml_path.is_file():
        raise StarbenchError(f"data YAML not found: {yaml_path}")
    if yaml_path.suffix.lower() not in YAML_SUFFIXES:
        raise StarbenchError(f"data.yaml must be an ultralytics dataset YAML (.yaml), got {yaml_path}")
    try:
        data = check_det_dataset(str(yaml_path), autodownload=False)
    except (FileNotFoundError, SyntaxError, TypeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StarbenchError(f"bad dataset {yaml_path}: {first}") from None
    sizes = {k: v for k, v in (sizes or {}).items() if v is not None}
    stats, lists = {}, {}
    for split in ("train", "val"):
        images = list_images(data[split])
        if not images:
            raise StarbenchError(f"{yaml_path}: the {split} split has no images ({data[split]})")
        lists[split] = images = subset(images, sizes.get(split))
        stats[split] = check_labels(images, data["nc"], split, yaml_path, allow_background)
    data["stats"] = stats
    data["yaml"] = yaml_path
    if sizes:
        if subset_dir is None:
            raise ValueError("check_dataset: sizes need a subset_dir")
        data["yaml"] = write_subset_yaml(data, lists, Path(subset_dir))
    return data
