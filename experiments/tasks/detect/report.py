"""Detection lines for a sweep's summary.md (``TASK.sweep_report``, handed to ``experiments.analysis.aggregate``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Sequence

from ...analysis.format import format_mean_std

COLUMNS = (("map50_95", "mAP50-95 (%)", 2), ("map50", "mAP50 (%)", 2), ("precision", "P (%)", 1),
           ("recall", "R (%)", 1), ("params", "params (M)", 3), ("gflops", "GFLOPs", 2),
           ("train_time_s", "train time (s)", 0))


def _cell(values: List[float], digits: int, scale: float = 1.0) -> str:
    return format_mean_std([v * scale for v in values], digits)


def sweep_report(sweep_dir: Path, jobs: Sequence[Any]) -> List[str]:
    done = [j for j in jobs if j.status == "completed"]
    groups = {}
    for j in done:
        r = j.record
        key = (r.get("variant"), str(r.get("op")), r.get("data"), r.get("imgsz"), r.get("epochs"))
        groups.setdefault(key, []).append(r)
    lines = ["", "## Detection (mean ± std over seeds)", "",
             "| backbone | op | data | imgsz | epochs | runs | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|" + "---|" * (6 + len(COLUMNS))]
    for (variant, op, data, imgsz, epochs), records in sorted(groups.items(), key=lambda kv: str(kv[0])):
        cells = [_cell([r[k] for r in records if isinstance(r.get(k), (int, float))], d,
                       1e-6 if k == "params" else 1.0) for k, _, d in COLUMNS]
        lines.append(f"| StarNet-{variant} | {op} | {data} | {imgsz} | {epochs} | {len(records)} | "
                     + " | ".join(cells) + " |")
    lines += ["", "mAP on the val split of each run's best.pt (ultralytics' metric, in %); "
              "GFLOPs at the training image size."]
    return lines
