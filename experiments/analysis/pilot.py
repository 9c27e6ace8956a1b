"""docs/protocol.md's pilot rules, applied to a finished pilot sweep (``scripts/protocol_pilot.py``).

Budget rule (accuracy only, ops pooled): the smallest budget at which, at every pilot width, the mean
validation top-1 over both ops and all seeds is within ``PLATEAU_POINTS`` (0.5) of the best budget's mean, and every run
beats the linear baseline by ``regime.BASELINE_MARGIN`` (2 points, the trained-regime check's margin). Seed rule: s =
the pooled standard deviation of the paired gaps (star - sum by seed) at that budget over the pilot widths; n = the
smallest n with t(0.975, n - 1) * s / sqrt(n) <= 0.5, clamped to [5, 10].

Headroom criterion (amendment 7: does a task leave room for an effect?), ops and seeds pooled at the pilot's one
budget: the widest width's mean beats the linear baseline by at least 10 points, it beats the narrowest width's mean
by at least 5, and every run beats the baseline by 2; the seed rule as above, clamped to [6, 8].
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import StarbenchError
from ..records import atomic_write_text
from .baseline import linear_baseline
from .jobs import load_jobs
from .regime import BASELINE_MARGIN
from .stats import pooled_sd, t_quantile

PLATEAU_POINTS = 0.5
TARGET_HALF_WIDTH = 0.5
MIN_SEEDS, MAX_SEEDS = 5, 10
HEADROOM_POINTS, CAPACITY_POINTS = 10.0, 5.0   # amendment 7
HEADROOM_SEEDS = (6, 8)                         # amendment 7: the protocol's 6 at least, 8 at most (its cost cap)


def half_width(s: float, n: int) -> float:
    """The 95% t half-width of a mean of ``n`` values of standard deviation ``s``."""
    return t_quantile(0.975, n - 1) * s / math.sqrt(n)


def seeds_needed(s: float, target: float = TARGET_HALF_WIDTH, lo: int = MIN_SEEDS, hi: int = MAX_SEEDS) -> int:
    """The smallest n in [lo, hi] whose 95% t half-width t(0.975, n-1) s / sqrt(n) is <= target (hi if none)."""
    for n in range(max(lo, 2), hi + 1):
        if half_width(s, n) <= target:
            return n
    return hi


def read_pilot(sweep_dir: Path) -> Tuple[Dict[Tuple[Any, ...], float], Optional[Dict[str, Any]]]:
    """(width, epochs, op, seed) -> validation top-1 of every completed job, and the data config they ran with."""
    runs, data_cfg = {}, None
    for job in load_jobs(sweep_dir):
        if job.status != "completed":
            continue
        record = job.record
        runs[(record["width"], record["epochs"], record["op"], record["seed"])] = record["top1"]
        if data_cfg is None and job.config is not None:
            data_cfg = job.config["data"]
    return runs, data_cfg


def apply_rules(runs, baseline: float):
    widths = sorted({k[0] for k in runs})
    # Only budgets run at every width count (a ladder still being extended is judged on its complete part).
    budgets = sorted(b for b in {k[1] for k in runs} if all(any(k[:2] == (w, b) for k in runs) for w in widths))
    incomplete = sorted({k[1] for k in runs} - set(budgets))
    means = {(w, b): float(np.mean([v for k, v in runs.items() if k[0] == w and k[1] == b]))
             for w in widths for b in budgets}
    lowest = {(w, b): min(v for k, v in runs.items() if k[0] == w and k[1] == b) for w in widths for b in budgets}
    best = {w: max(means[(w, b)] for b in budgets) for w in widths}
    chosen, plateaued = budgets[-1], False
    for b in budgets:
        if all(best[w] - means[(w, b)] <= PLATEAU_POINTS and lowest[(w, b)] >= baseline + BASELINE_MARGIN
               for w in widths):
            chosen, plateaued = b, True
            break
    gaps = {w: [runs[(w, chosen, "star", s)] - runs[(w, chosen, "sum", s)]
                for s in sorted({k[3] for k in runs})
                if (w, chosen, "star", s) in runs and (w, chosen, "sum", s) in runs] for w in widths}
    s, df = pooled_sd(list(gaps.values()))
    s = s if df else float("nan")
    n = seeds_needed(s) if df else MAX_SEEDS
    return {"widths": widths, "budgets": budgets, "incomplete_budgets": incomplete, "baseline": baseline,
            "mean_top1": {f"w{w}_e{b}": means[(w, b)] for w in widths for b in budgets},
            "min_top1": {f"w{w}_e{b}": lowest[(w, b)] for w in widths for b in budgets},
            "chosen_epochs": chosen, "plateaued": plateaued,
            "paired_gaps_at_chosen": {f"w{w}": g for w, g in gaps.items()},
            "pooled_gap_sd": s, "gap_sd_df": df, "seeds": n,
            "half_width_at_seeds": half_width(s, n) if df else None}


def apply_headroom_rule(runs, baseline: float):
    """Amendment 7's criterion on a pilot of one budget at two or more widths (ops and seeds pooled)."""
    widths = sorted({k[0] for k in runs})
    narrow, wide = widths[0], widths[-1]
    means = {w: float(np.mean([v for k, v in runs.items() if k[0] == w])) for w in widths}
    lowest = min(runs.values())
    checks = {f"widest (w{wide}) mean >= baseline + {HEADROOM_POINTS:g}": means[wide] - baseline >= HEADROOM_POINTS,
              f"widest - narrowest (w{narrow}) mean >= {CAPACITY_POINTS:g}": means[wide] - means[narrow] >= CAPACITY_POINTS,
              f"every run >= baseline + {BASELINE_MARGIN:g}": lowest >= baseline + BASELINE_MARGIN}
    seeds = sorted({k[3] for k in runs})
    gaps = {w: [runs[k + ("star", s)] - runs[k + ("sum", s)] for k in {key[:2] for key in runs if key[0] == w}
                for s in seeds if k + ("star", s) in runs and k + ("sum", s) in runs] for w in widths}
    s, df = pooled_sd(list(gaps.values()))
    n = seeds_needed(s, lo=HEADROOM_SEEDS[0], hi=HEADROOM_SEEDS[1]) if df else HEADROOM_SEEDS[1]
    return {"widths": widths, "baseline": baseline, "mean_top1": {f"w{w}": means[w] for w in widths},
            "min_top1": lowest, "headroom": means[wide] - baseline, "capacity": means[wide] - means[narrow],
            "checks": checks, "qualifies": all(checks.values()),
            "paired_gaps": {f"w{w}": g for w, g in gaps.items()}, "pooled_gap_sd": s if df else None,
            "gap_sd_df": df, "seeds": n,
            "half_width_at_seeds": half_width(s, n) if df else None}


def headroom_report(r) -> str:
    lines = [f"Linear baseline (validation split): {r['baseline']:.2f}%", "",
             "| width | mean validation top-1 (both ops, all seeds) |", "|---:|---:|"]
    lines += [f"| {w} | {r['mean_top1'][f'w{w}']:.2f} |" for w in r["widths"]]
    lines += ["", f"Headroom (widest mean − baseline): {r['headroom']:+.2f}; capacity (widest − narrowest): "
              f"{r['capacity']:+.2f}; lowest run {r['min_top1']:.2f}", ""]
    lines += [f"- {what}: {'yes' if ok else 'NO'}" for what, ok in r["checks"].items()]
    lines += ["", f"Qualifies: {'yes' if r['qualifies'] else 'NO'}"]
    if r["gap_sd_df"]:
        lines.append(f"Pooled SD of the paired gap: {r['pooled_gap_sd']:.3f} points ({r['gap_sd_df']} df) -> "
                     f"{r['seeds']} seeds (95% half-width {r['half_width_at_seeds']:.3f} points)")
    return "\n".join(lines)


def report(r) -> str:
    lines = [f"Linear baseline (validation split): {r['baseline']:.2f}%", "",
             "| width | " + " | ".join(f"{b} ep" for b in r["budgets"]) + " |",
             "|---:|" + "---:|" * len(r["budgets"])]
    for w in r["widths"]:
        cells = [f"{r['mean_top1'][f'w{w}_e{b}']:.2f} (min {r['min_top1'][f'w{w}_e{b}']:.2f})" for b in r["budgets"]]
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines += ["", "Cells: validation top-1 averaged over both ops and all seeds (lowest single run)."
              + (f" Not yet run at every width, so not judged: {', '.join(map(str, r['incomplete_budgets']))} epochs."
                 if r["incomplete_budgets"] else ""), "",
              f"Chosen budget: {r['chosen_epochs']} epochs" + ("" if r["plateaued"] else " (NOT plateaued: none qualified)"),
              "Paired gaps at that budget: " + "; ".join(f"{k}: {', '.join(f'{g:+.2f}' for g in v)}"
                                                        for k, v in r["paired_gaps_at_chosen"].items()),
              f"Pooled SD of the paired gap: {r['pooled_gap_sd']:.3f} points ({r['gap_sd_df']} df) -> "
              f"{r['seeds']} seeds (95% half-width {r['half_width_at_seeds']:.3f} points)"]
    return "\n".join(lines)


def protocol_pilot(sweep_dir: Path, headroom: bool = False, json_path: Optional[Path] = None) -> str:
    """The budget and seed rules (or, ``headroom``, amendment 7's criterion) on the pilot in ``sweep_dir``: the report
    to print; the numbers also as JSON to ``json_path``. A StarbenchError says why a dir cannot be judged."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise StarbenchError(f"{sweep_dir} {'is not a directory' if sweep_dir.exists() else 'does not exist'}")
    runs, data_cfg = read_pilot(sweep_dir)
    if not runs or data_cfg is None:
        raise StarbenchError(f"no completed pilot jobs in {sweep_dir}")
    if headroom and len({k[1] for k in runs}) != 1:
        raise StarbenchError("--headroom judges a pilot of one budget; this sweep has several")
    baseline = linear_baseline(data_cfg, cache_dir=sweep_dir)
    if headroom:
        result = apply_headroom_rule(runs, baseline)
        text = headroom_report(result)
    else:
        result = apply_rules(runs, baseline)
        text = report(result)
    if json_path:
        atomic_write_text(json_path, json.dumps(result, indent=1) + "\n")
    return text
