"""The trained-regime check (docs/protocol.md, "a trained regime"): a model must beat the linear baseline clearly and
have plateaued. Which completed runs do, the caveat a sweep whose runs do not opens with (``Summary.caveat``), and
its section of summary.md."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .format import as_key, format_value, value_order
from .jobs import Job

# docs/protocol.md, "a trained regime": a model must beat the linear baseline clearly and have plateaued.
BASELINE_MARGIN = 2.0
PLATEAU_GAIN = 0.3
FLAGGED_SHOWN = 12  # flagged runs named in summary.md; the rest are counted


def last_epoch_gain(job: Job, metric: str) -> Optional[float]:
    """The metric's change over the run's last epoch (from metrics.json's history), if it has two epochs."""
    history = [row.get(metric) for row in job.record.get("history") or [] if isinstance(row, dict)]
    history = [v for v in history if isinstance(v, (int, float))]
    return history[-1] - history[-2] if len(history) >= 2 else None


@dataclass
class Regime:
    """The trained-regime check (docs/protocol.md): which completed runs beat the linear baseline by
    ``BASELINE_MARGIN`` and which still gained ``PLATEAU_GAIN`` or more in their last epoch. A run with fewer than two
    epochs of history has no last-epoch gain: its plateau is not checked (``unmeasured``), not counted as reached."""
    baseline: float
    done: List[Job]
    low: List[Job]
    rising: List[Job]
    unmeasured: List[Job]
    gains: Dict[str, Optional[float]]

    @property
    def under_trained(self) -> bool:
        return len(self.low) > len(self.done) / 2

    @property
    def flagged(self) -> List[Job]:
        return list({id(j): j for j in (*self.low, *self.rising)}.values())


def regime_of(jobs: Sequence[Job], metric: str, baseline: Optional[float]) -> Optional[Regime]:
    """The trained-regime check of ``jobs``' ``metric`` against the linear ``baseline`` (None without a baseline or a
    completed run)."""
    done = [j for j in jobs if j.metric(metric) is not None]
    if baseline is None or not done:
        return None
    gains = {j.name: last_epoch_gain(j, metric) for j in done}
    return Regime(baseline, done,
                  low=[j for j in done if j.metric(metric) < baseline + BASELINE_MARGIN],
                  rising=[j for j in done if gains[j.name] is not None and gains[j.name] >= PLATEAU_GAIN],
                  unmeasured=[j for j in done if gains[j.name] is None], gains=gains)


def regime_lines(regime: Optional[Regime], axes: Sequence[str], metric: str) -> List[str]:
    """The trained-regime check's section of summary.md: how many runs beat the baseline by the margin and plateaued,
    the flagged runs named by their ``axes``, op and seed."""
    if regime is None:
        return []
    done, gains = regime.done, regime.gains
    measured = len(done) - len(regime.unmeasured)
    lines = ["", "## Trained-regime check (docs/protocol.md)", "",
             f"- {len(done) - len(regime.low)} of {len(done)} runs beat the linear baseline ({regime.baseline:.2f}%) "
             f"by at least {BASELINE_MARGIN:g} points."]
    if measured:
        lines.append(f"- {measured - len(regime.rising)} of {measured} runs gained less than {PLATEAU_GAIN:g} "
                     "points in their last epoch.")
    if regime.unmeasured:
        n = len(regime.unmeasured)
        lines.append(f"- {n} of {len(done)} run{'s have' if n != 1 else ' has'} fewer than two epochs of history: "
                     "whether they plateaued is not measured.")

    def knobs(job: Job) -> List[Any]:  # by its knobs, the same whether read from run dirs or from W&B
        return [as_key(job.get(k)) for k in (*axes, "op", "seed")]

    def name(job: Job) -> str:
        return ", ".join(f"{k}={format_value(v)}" for k, v in zip((*axes, "op", "seed"), knobs(job)))

    flagged = sorted(regime.flagged, key=lambda j: [value_order(v) for v in knobs(j)])  # width 8 before 12
    if flagged:
        shown = [f"{name(j)} ({j.metric(metric):.2f}"
                 + (f", last epoch {gains[j.name]:+.2f}" if gains[j.name] is not None else "") + ")"
                 for j in flagged[:FLAGGED_SHOWN]]
        more = len(flagged) - len(shown)
        lines.append("- Flagged (kept in every table): " + "; ".join(shown)
                     + (f"; and {more} more (summary.csv: last_epoch_gain, linear_baseline)" if more else "") + ".")
    if regime.under_trained:
        lines.append(f"- **Most runs are below the baseline + {BASELINE_MARGIN:g}: under-trained, not evidence "
                     "about the ops.**")
    return lines

