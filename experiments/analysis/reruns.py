"""Reruns of finished jobs against their records: does a job's config fix its result?

A rerun is matched to its record by ``config_hash`` (the same job, whatever its dir is called). A pair is
**identical** when the final metric and every epoch's metric and training loss are equal: bit for bit, which is
what the same code, machine type and thread count give. Across machine types float rounding differs, a run
drifts from its record, and the question becomes whether that drift is noise or a bias a comparison across
machines would carry: the mean difference (rerun − record) with a 95% t interval, and the difference's spread
next to the seed-to-seed spread of the records (docs/protocol.md, amendment 5).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .jobs import Job
from .stats import Gap, mean_std, pooled_sd, t_interval

EPOCH_KEYS = ("train_loss",)  # besides the metric: what a bit-identical rerun repeats each epoch


@dataclass
class RerunPair:
    name: str                 # the rerun's job name
    record: float
    rerun: float
    identical: bool

    @property
    def diff(self) -> float:
        return self.rerun - self.record


@dataclass
class RerunReport:
    metric: str
    pairs: List[RerunPair] = field(default_factory=list)
    unmatched: List[str] = field(default_factory=list)   # completed reruns with no completed record
    diff: Optional[Gap] = None                           # mean (rerun − record) and its 95% t interval
    diff_sd: Optional[float] = None                      # sample SD of the differences
    seed_sd: Optional[float] = None                      # pooled seed-to-seed SD of the records (same groups)
    cpus: Tuple[str, str] = ("?", "?")                   # (records', reruns') CPUs, from their provenance

    @property
    def identical(self) -> int:
        return sum(p.identical for p in self.pairs)


def _epochs(job: Job, metric: str) -> List[Tuple[Any, ...]]:
    return [tuple(row.get(k) for k in ("epoch", metric, *EPOCH_KEYS)) for row in job.record.get("history") or []]


def _cpu(jobs: Sequence[Job]) -> str:
    cpus = sorted({str((j.record.get("provenance") or {}).get("cpu") or "not recorded") for j in jobs})
    return ", ".join(cpus) or "?"


def _group(job: Job) -> Tuple[Tuple[str, str], ...]:
    """What a job shares with its other seeds: its knobs but the seed."""
    return tuple(sorted((k, repr(v)) for k, v in job.knobs.items() if k != "seed"))


def pooled_seed_sd(jobs: Sequence[Job], metric: str) -> Optional[float]:
    """The pooled seed-to-seed SD over groups of completed jobs that differ only in their seed (stats.pooled_sd)."""
    groups: Dict[Any, List[float]] = {}
    for job in jobs:
        value = job.metric(metric)
        if value is not None:
            groups.setdefault(_group(job), []).append(value)
    return pooled_sd(list(groups.values()))[0]


def compare_reruns(records: Sequence[Job], reruns: Sequence[Job], metric: str = "top1") -> RerunReport:
    """Every completed rerun against the completed record of the same config hash."""
    by_hash = {j.record.get("config_hash"): j for j in records
               if j.status == "completed" and j.record.get("config_hash")}
    report = RerunReport(metric)
    matched_records = []
    for rerun in reruns:
        if rerun.status != "completed" or rerun.metric(metric) is None:
            continue
        record = by_hash.get(rerun.record.get("config_hash"))
        if record is None or record.metric(metric) is None:
            report.unmatched.append(rerun.name)
            continue
        matched_records.append(record)
        identical = record.metric(metric) == rerun.metric(metric) and _epochs(record, metric) == _epochs(rerun, metric)
        report.pairs.append(RerunPair(rerun.name, record.metric(metric), rerun.metric(metric), identical))
    if report.pairs:
        diffs = [p.diff for p in report.pairs]
        report.diff = t_interval(diffs)
        report.diff_sd = mean_std(diffs)[1]
        matched_groups = {_group(r) for r in matched_records}
        report.seed_sd = pooled_seed_sd([j for j in records if _group(j) in matched_groups], metric)
        report.cpus = (_cpu(matched_records), _cpu([r for r in reruns if r.status == "completed"]))
    return report


def markdown(report: RerunReport) -> List[str]:
    """A short report: the pairs, how many are identical, the drift and its interval next to the seed spread."""
    m = report.metric
    lines = [f"| job | record {m} | rerun {m} | rerun − record | bit for bit |", "|---|---:|---:|---:|:---:|"]
    for p in report.pairs:
        lines.append(f"| {p.name} | {p.record:.2f} | {p.rerun:.2f} | {p.diff:+.2f} | {'yes' if p.identical else 'no'} |")
    lines.append("")
    lines.append(f"Records' CPU: {report.cpus[0]}; reruns' CPU: {report.cpus[1]}.")
    lines.append(f"{report.identical} of {len(report.pairs)} reruns repeat their record bit for bit (final {m}, and "
                 f"every epoch's {m} and training loss).")
    d = report.diff
    if d is not None and d.lo is not None:
        lines.append(f"Mean rerun − record: {d.mean:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}] points (95% t interval, "
                     f"{d.n} jobs); SD of the differences {report.diff_sd:.2f}"
                     + (f", seed-to-seed SD of the records {report.seed_sd:.2f}" if report.seed_sd else "") + ".")
    if report.unmatched:
        lines.append(f"No completed record for {len(report.unmatched)} rerun(s): {', '.join(report.unmatched)}.")
    return lines
