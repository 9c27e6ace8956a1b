"""A ``Summary`` and its jobs -> ``summary.csv`` (one line per job, the sweep-level numbers repeated) and
``summary.md`` (the per-row table, the pooled test, and the sections of the analyses that apply: each op's own
setting, the change between two levels or the trend, the trained-regime check). A sweep of star and sum alone
writes the files it always wrote (star − sum); with more ops the per-row table has one line per (row, op) and the
pooled test one line per op."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from ..records.files import atomic_write_text
from .format import as_key, format_gap, format_mean_std, format_op, format_significant, format_value, value_order
from .jobs import Job
from .levels import trend_lines, two_level_lines
from .pooled import as_dict as pooled_fields
from .pooled import markdown as pooled_markdown
from .pooled import markdown_many as pooled_markdown_many
from .regime import last_epoch_gain, regime_lines
from .stats import LEVEL
from .summary import Summary, check_regime, op_settings, row_label

METRICS = ("epoch", "top1", "top5", "best_top1", "params", "flops", "train_time_s", "train_images_per_s")
# Record fields that name a run rather than measure it (so they are not extra metric columns).
IDENTITY = {"width", "depth", "seed", "epochs", "num_classes", "in_chans", "image_size", "train_size", "imgsz",
            "threads"}


def extra_metric_names(jobs: Sequence[Job]) -> List[str]:
    """Numeric record fields besides the standard metrics (e.g. the moons SVM accuracies)."""
    names = {k for j in jobs for k, v in j.record.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return sorted(names - set(METRICS) - IDENTITY)


def write_csv(jobs: Sequence[Job], summary: Summary, path: Path) -> None:
    metrics = [*METRICS, *extra_metric_names(jobs)]
    out = io.StringIO()
    writer = csv.writer(out)
    # The sweep-level numbers (baseline, pooled test) repeat on every row, so the file stays one table.
    sweep_level: Dict[str, Any] = {"linear_baseline": summary.baseline}
    if summary.multi:  # each op's pooled test against the reference, its fields suffixed with the op
        sweep_level["reference_op"] = summary.reference
        for op in summary.ops:
            sweep_level.update({f"{k}_{op}": v for k, v in pooled_fields(summary.pooled_of(op)).items()})
    else:
        sweep_level.update(pooled_fields(summary.pooled))
    writer.writerow(["job", "status", "error", *summary.varied, *metrics, "last_epoch_gain", *sweep_level])
    for job in jobs:
        gain = last_epoch_gain(job, summary.metric) if job.status == "completed" else None
        writer.writerow([job.name, job.status, job.error or "", *(format_value(job.get(k)) for k in summary.varied),
                         *(format_value(job.record.get(m)) for m in metrics), format_value(gain),
                         *(format_value(v) for v in sweep_level.values())])
    atomic_write_text(path, out.getvalue())


def markdown_table(summary: Summary) -> List[str]:
    heads = summary.axes or ["runs"]
    base, test = summary.reference, summary.ops[0]
    if summary.multi:
        return _long_table(summary, heads)
    lines = [f"| {' | '.join(heads)} | {base} | {test} | gap {test} − {base} [{LEVEL:.0%} CI] "
             f"| seeds | significant |",
             "|" + "---:|" * len(heads) + "---:|---:|---:|---:|:---:|"]
    for row in summary.rows:
        keys = [format_value(v) for v in row.key] or ["all"]
        gap = row.gap
        lines.append(f"| {' | '.join(keys)} | {format_mean_std(row.values(base))} | {format_mean_std(row.values(test))} "
                     f"| {format_gap(gap)} | {gap.n} | {format_significant(gap)} |")
    return lines


def _long_table(summary: Summary, heads: Sequence[str]) -> List[str]:
    """Several compared ops: one line per (row, op), the reference first, each other op with its gap."""
    ref = summary.reference
    lines = [f"| {' | '.join(heads)} | op | {summary.metric} | gap op − {ref} [{LEVEL:.0%} CI] "
             "| seeds | significant |",
             "|" + "---:|" * len(heads) + ":---|---:|---:|---:|:---:|"]
    for row in summary.rows:
        keys = " | ".join([format_value(v) for v in row.key] or ["all"])
        lines.append(f"| {keys} | {ref} (reference) | {format_mean_std(row.values(ref))} | | | |")
        for op in summary.ops:
            gap = row.gap_of(op)
            lines.append(f"| {keys} | {op} | {format_mean_std(row.values(op))} | {format_gap(gap)} | {gap.n} "
                         f"| {format_significant(gap)} |")
    return lines


def op_setting_lines(jobs: Sequence[Job], summary: Summary) -> List[str]:
    """Where each op ran at its own setting (its tuned lr, say): which, per row, since the gap compares op+setting."""
    settings = op_settings(jobs, summary.varied)
    if not settings:
        return []
    seen: Dict[Tuple[Any, ...], Tuple[Any, ...]] = {}
    for job in jobs:
        key = (*(job.get(a) for a in summary.axes), job.get("op"))
        seen.setdefault(key, tuple(job.get(k) for k in settings))
    heads = [*summary.axes, "op", *settings]
    lines = ["", "## Each op at its own setting", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for key in sorted(seen, key=lambda k: tuple(value_order(as_key(v)) for v in k)):
        lines.append("| " + " | ".join(format_value(v) for v in (*key, *seen[key])) + " |")
    lines += ["", "The gaps above compare each op at its own setting (e.g. its tuned learning rate), not at a shared one."]
    return lines


def write_markdown(jobs: Sequence[Job], summary: Summary, path: Path, source: str,
                   extra: Sequence[str] = ()) -> None:
    counts: Dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    by = " × ".join(summary.axes) or "all runs"
    base, test = summary.reference, summary.ops[0]
    gap_what = f"each op − {base}" if summary.multi else f"{test} − {base}"
    multiple = (f" Each op's interval and test stand alone: no correction for its being one of "
                f"{len(summary.ops)} comparisons with {base} (the pooled section gives Bonferroni intervals too)."
                if summary.multi else "")
    if summary.regime is None:
        check_regime(jobs, summary)
    caveat = summary.caveat
    lines = [f"# {summary.title}", "",
             f"Source: `{source}` · metric: `{summary.metric}` (%) · jobs: "
             + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), "",
             *([caveat.text, ""] if caveat else []),
             *([f"**{summary.reference_hint}**", ""] if summary.reference_hint else []),
             f"## By {by}", "", *markdown_table(summary), "",
             f"Cells: mean ± sample std over seeds. Gap: {gap_what} per seed (paired), its mean and "
             f"{LEVEL:.0%} t interval (n − 1 degrees of freedom); significant = the interval excludes 0, which needs "
             "at least 3 pairs and paired gaps that are not all equal: otherwise n/a, with the reason. "
             "Only completed jobs count." + multiple]
    if summary.baseline is not None:
        lines += ["", f"Linear baseline (softmax regression on the same training images, same evaluation images): "
                  f"**{summary.baseline:.2f}%**."]
    if summary.multi:
        results = {op: summary.pooled_of(op) for op in summary.ops}
        if any(p.n_pairs for p in results.values()):
            lines += ["", *pooled_markdown_many(results, base)]
    else:
        pooled_result = summary.pooled
        if pooled_result.n_pairs:
            lines += ["", *pooled_markdown(pooled_result, base, test)]
    for op in summary.ops:
        unpaired = [row_label(summary, r) for r in summary.rows
                    if r.gap_of(op).n < max(len(r.values(base)), len(r.values(op)))]
        if unpaired:
            lines += ["", f"Rows whose {base} and {op} runs are not all paired by seed (the gap uses "
                      f"the pairs only): {'; '.join(unpaired)}."]
    compared = (base, *summary.ops)
    others = [(r, op) for r in summary.rows for op in sorted(r.by_op, key=str) if op not in compared]
    if others:  # e.g. per-stage op lists: no paired gap, but their numbers belong in the report
        lines += ["", "## Other ops (not in the gap)", "",
                  f"| {', '.join(summary.axes) or 'runs'} | op | {summary.metric} | n |", "|---|---|---|---|"]
        lines += [f"| {row_label(summary, r)} | `{format_op(op)}` | {format_mean_std(r.values(op))} | {len(r.values(op))} |"
                  for r, op in others]
    lines += op_setting_lines(jobs, summary)
    lines += two_level_lines(summary)
    lines += trend_lines(summary)
    lines += regime_lines(summary.regime, summary.axes, summary.metric)
    lines += [*extra]
    bad = [j for j in jobs if j.status != "completed"]
    if bad:
        lines += ["", "## Jobs not completed", "", "| job | status | error |", "|---|---|---|"]
        lines += [f"| `{j.name}` | {j.status} | {(j.error or '').replace('|', '/')} |" for j in bad]
    atomic_write_text(path, "\n".join(lines) + "\n")

