"""StarNet-YOLOv8 (star and sum) vs stock YOLOv8n: parameters, GFLOPs, CPU latency per image, mAP.

    # after `python run.py -m experiment=detect_op` (its sweep dir holds the StarNet runs):
    python scripts/benchmark_detect.py --sweep outputs/sweeps/<date>/<time> experiment=detect_op

Trailing arguments are run.py overrides: they fix the data set and the pinned training recipe, which
the stock YOLOv8n (ultralytics' own yolov8.yaml, scale n, from scratch) is trained with too, on the
same generated set, for each ``--yolo-seeds`` seed (comma-separated, e.g. ``--yolo-seeds 0,1,2``;
``--yolo-seeds ""`` skips it). mAP is each run's best.pt on the val split with the same val settings.
Latency: batch 1, conv+BN fused, median of ``--iters`` forwards at each ``--latency-sizes`` size
(comma-separated, e.g. ``--latency-sizes 320,640``).
Writes ``<out>/benchmark.json`` and ``<out>/benchmark.md``; the default ``--out`` is the committed
docs/results/detect_op, which a run overwrites (pass another ``--out`` for a trial run).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]

from experiments.tasks.detect.env import set_threads  # first: it makes ultralytics offline before it loads
import torch
from experiments.tasks.detect.model import backbone_of, detector_config
from experiments.tasks.detect.train import evaluate, load_yolo, train_args, ultralytics_device
from experiments.analysis.format import format_mean_std
from experiments.tools.cli import positive_int
from experiments.train.timing import interleaved
from experiments.records import read_metrics
from ultralytics.nn.tasks import DetectionModel, yaml_model_load
from ultralytics.utils.torch_utils import get_flops


def compose(overrides: List[str]):
    from hydra import compose as hcompose, initialize_config_dir
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hcompose("config", overrides=["task=detect", *overrides])


@torch.inference_mode()
def latency_ms(models: Dict[str, torch.nn.Module], imgsz: int, iters: int) -> Dict[str, Dict[str, float]]:
    """Per-image forward time of each model, round-robin (so a busy machine slows all models alike)."""
    x = torch.rand(1, 3, imgsz, imgsz)
    timed = interleaved({name: (lambda m=model: m(x)) for name, model in models.items()}, rounds=iters, warmup=3)
    times = {name: [t * 1000 for t in v] for name, v in timed.times.items()}
    return {name: {"median": statistics.median(v), "min": min(v)} for name, v in times.items()}


def inference_model(model_cfg: dict, nc: int) -> DetectionModel:
    model = DetectionModel(model_cfg, ch=3, nc=nc, verbose=False).eval()
    model.fuse(verbose=False)  # ultralytics' Conv+BN (neck, head; all of YOLOv8n)
    bb = backbone_of(model)
    if bb is not None:
        bb.fuse()  # StarNet's ConvBN: ultralytics' fuse() does not know them
    return model


def train_stock_yolov8n(cfg, data_yaml: Path, run_dir: Path, seed: int) -> Dict:
    """Stock YOLOv8n from scratch with the StarNet runs' recipe (same train_args)."""
    done = read_metrics(run_dir)
    if done and done.get("status") == "completed":
        return done
    t = cfg.task
    cfg.seed = seed
    threads = set_threads(t.threads)
    device = ultralytics_device(t.device)
    model = load_yolo("yolov8n.yaml", threads)  # ultralytics' own YAML, no download
    start = time.time()
    model.train(**train_args(cfg, data_yaml, run_dir, device))
    record = {"status": "completed", "model": "yolov8n", "seed": seed, "train_time_s": round(time.time() - start, 1),
              "best_checkpoint": str(run_dir / "yolo" / "weights" / "best.pt"),
              **evaluate(run_dir / "yolo" / "weights" / "best.pt", data_yaml, t.imgsz, t.val_batch, device, threads,
                         save_dir=run_dir / "val")}
    (run_dir / "metrics.json").write_text(json.dumps(record, indent=2))
    return record


def int_list(text: str) -> List[int]:
    """argparse type: "64,320" -> [64, 320]; "" -> []."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, e.g. 64,320; got '{text}'") from None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep", type=Path, help="sweep dir of the StarNet runs (metrics.json per job)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "detect_op",
                   help="where benchmark.json/.md go (default: docs/results/detect_op, the committed results, "
                   "which a run OVERWRITES)")
    p.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark_detect", help="YOLOv8n run dirs")
    p.add_argument("--yolo-seeds", type=int_list, default=[0],
                   help="comma-separated seeds for stock YOLOv8n, e.g. 0,1,2 (default: 0; \"\": skip)")
    p.add_argument("--iters", type=positive_int, default=50, help="timed forwards per model and size")
    p.add_argument("--latency-sizes", type=int_list, default=None,
                   help="comma-separated image sizes, e.g. 320,640 (default: train imgsz and 640)")
    p.add_argument("overrides", nargs="*", help="run.py overrides, e.g. experiment=detect_op")
    a = p.parse_intermixed_args()  # overrides may come before and after the options
    if a.latency_sizes is not None and (not a.latency_sizes or min(a.latency_sizes) < 1):
        p.error("--latency-sizes needs positive sizes, e.g. 320,640")
    # Absolute: ultralytics puts a relative project dir under its own runs dir.
    a.work = a.work.expanduser().resolve()
    a.out = a.out.expanduser().resolve()
    a.sweep = a.sweep.expanduser().resolve() if a.sweep else None

    cfg = compose(a.overrides)
    from experiments.tasks.detect.datasets import check_dataset, resolve_data
    data_yaml, data_name = resolve_data(cfg.data)
    nc = check_dataset(data_yaml)["nc"]
    imgsz = int(cfg.task.imgsz)
    sizes = a.latency_sizes or sorted({imgsz, 640})
    threads = set_threads(cfg.task.threads)

    # Trained results: StarNet runs from the sweep, YOLOv8n trained here.
    results: Dict[str, List[dict]] = {}
    if a.sweep:
        for f in sorted(a.sweep.glob("**/metrics.json")):
            r = json.loads(f.read_text())
            if r.get("task") == "detect" and r.get("status") == "completed":
                results.setdefault(f"starnet_{r['variant']}-{r['op']}", []).append(r)
    for seed in a.yolo_seeds:
        results.setdefault("yolov8n", []).append(
            train_stock_yolov8n(compose(a.overrides), data_yaml, a.work / f"yolov8n_seed{seed}", seed))

    # Architecture numbers: the same for every seed.
    variant = cfg.model.variant
    archs = {f"starnet_{variant}-{op}": detector_config(variant, op, cfg.model.act, nc=nc, scale=cfg.task.scale)
             for op in ("star", "sum")}
    archs["yolov8n"] = yaml_model_load("yolov8n.yaml")
    rows, fused = [], {}
    for name, model_cfg in archs.items():
        model = DetectionModel(model_cfg, ch=3, nc=nc, verbose=False)
        row = {"model": name, "params": sum(p.numel() for p in model.parameters()),
               **{f"gflops@{s}": round(get_flops(model, s), 3) for s in sizes}}
        fused[name] = inference_model(model_cfg, nc)
        runs = results.get(name, [])
        for key in ("map50", "map50_95"):
            row[key] = [round(r[key], 4) for r in runs]
        row["seeds"] = [r.get("seed") for r in runs]
        row["train_time_s"] = [r.get("train_time_s") for r in runs]
        rows.append(row)
    for s in sizes:
        lat = latency_ms(fused, s, a.iters)
        for row in rows:
            row[f"latency_ms@{s}"] = round(lat[row["model"]]["median"], 2)
            row[f"latency_min_ms@{s}"] = round(lat[row["model"]]["min"], 2)

    a.out.mkdir(parents=True, exist_ok=True)
    meta = {"data": data_name, "data_yaml": str(data_yaml), "imgsz": imgsz, "sizes": sizes, "iters": a.iters,
            "threads": threads, "torch": torch.__version__, "ultralytics": __import__("ultralytics").__version__,
            "cpu": __import__("platform").processor() or __import__("platform").machine(),
            "overrides": a.overrides, "sweep": str(a.sweep) if a.sweep else None}
    (a.out / "benchmark.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    text = to_markdown(meta, rows)
    (a.out / "benchmark.md").write_text(text)
    print(text)


def to_markdown(meta: dict, rows: List[dict]) -> str:
    sizes, imgsz = meta["sizes"], meta["imgsz"]
    head = ["model", "params (M)", *[f"GFLOPs @{s}" for s in sizes], *[f"CPU ms/img @{s}" for s in sizes],
            f"mAP50-95 (%) @{imgsz}", "mAP50 (%)", "runs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["model"], f"{r['params'] / 1e6:.2f}",
                                        *[f"{r[f'gflops@{s}']:.2f}" for s in sizes],
                                        *[f"{r[f'latency_ms@{s}']:.1f}" for s in sizes],
                                        format_mean_std(r["map50_95"]), format_mean_std(r["map50"]), str(len(r["map50"]))]) + " |")
    note = (f"\nData: {meta['data']} ({Path(meta['data_yaml']).parent.name}); mAP on its val split at imgsz {imgsz}, "
            "mean ± std over runs (seeds). Latency: batch 1, conv+BN fused, median of "
            f"{meta['iters']} forwards per model (round-robin), {meta['threads']} CPU thread(s) ({meta['cpu']}), "
            f"torch {meta['torch']}, ultralytics {meta['ultralytics']}.\n")
    return "\n".join(lines) + "\n" + note


if __name__ == "__main__":
    main()
