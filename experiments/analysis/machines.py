"""Which CPU model ran each job, and where a comparison pairs runs from two CPU models.

Float rounding differs between CPU models (their kernels take other instruction paths), so the same job run on
another CPU lands about a seed's spread from its record (docs/reproduction.md, "Determinism"). A paired gap whose two
runs ran on two CPU models carries any machine effect into the gap, and a pooled test or trend over rows that ran on
different CPU models compares across them: summary.md and the figure say where either happens.

A job's CPU is its record's ``provenance.cpu``. Records written before that field existed have none: a results dir
may name their machine in ``machines.json`` beside the job dirs (``{"cpu": "Intel Xeon", "source": "the page that
says so"}``); such a CPU is *attributed*, and marked so wherever it is shown. Without either it is unknown, and a pair
with an unknown side is counted apart: neither the same CPU nor two.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .format import format_value
from .jobs import Job
from .summary import Summary, row_label

MACHINES_FILE = "machines.json"
ATTRIBUTED_MARK = "*"
UNKNOWN = "not recorded"


def cpu_model(name: Optional[str]) -> Optional[str]:
    """A CPU's model name without the trademark and filler words, so that /proc/cpuinfo's "Intel(R) Xeon(R)
    Processor" and a page's "Intel Xeon" are the same model."""
    if not name:
        return None
    text = re.sub(r"\((R|TM|tm|r)\)", " ", str(name))
    text = re.sub(r"\b(Processor|CPU)\b", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text or None


@lru_cache(maxsize=None)
def _attribution(runs_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """(cpu, source) from ``runs_dir/machines.json``, or (None, None)."""
    try:
        data = json.loads((Path(runs_dir) / MACHINES_FILE).read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    return cpu_model(data.get("cpu")), data.get("source")


@dataclass(frozen=True)
class Machine:
    cpu: Optional[str]       # the normalised model name; None: unknown
    recorded: bool = False   # from the record's provenance (False: attributed by machines.json, or unknown)
    source: Optional[str] = None  # where an attributed CPU comes from

    @property
    def label(self) -> str:
        if self.cpu is None:
            return UNKNOWN
        return self.cpu if self.recorded else self.cpu + ATTRIBUTED_MARK


def machine_of(job: Job) -> Machine:
    """The job's CPU: its provenance, else its results dir's ``machines.json``, else unknown."""
    recorded = cpu_model((job.record.get("provenance") or {}).get("cpu"))
    if recorded:
        return Machine(recorded, True)
    if job.run_dir is not None:
        cpu, source = _attribution(str(Path(job.run_dir).parent))
        if cpu:
            return Machine(cpu, False, source)
    return Machine(None)


@dataclass
class PairCount:
    n: int = 0         # pairs of the op with the reference
    two: int = 0       # whose runs ran on two CPU models
    unknown: int = 0   # with at least one run of unknown CPU


@dataclass
class MachineReport:
    """The CPUs of a summary's runs: per (row, op), and per compared op and row, how its pairs with the reference
    split."""
    summary: Summary
    cells: Dict[Tuple[Any, Any], Dict[str, int]] = field(default_factory=dict)   # (row key, op) -> label -> runs
    pairs: Dict[Tuple[Any, Any], PairCount] = field(default_factory=dict)        # (row key, op) -> pair counts
    sources: List[str] = field(default_factory=list)                             # of attributed CPUs

    def labels(self) -> List[str]:
        return sorted({label for counts in self.cells.values() for label in counts})

    def total(self, op: Any) -> PairCount:
        out = PairCount()
        for (_, o), c in self.pairs.items():
            if o == op:
                out.n, out.two, out.unknown = out.n + c.n, out.two + c.two, out.unknown + c.unknown
        return out

    def op_cpus(self, op: Any) -> List[str]:
        """The CPU labels of ``op``'s runs, over all rows."""
        return sorted({label for (_, o), counts in self.cells.items() if o == op for label in counts})

    def row_cpus(self) -> Dict[Any, Tuple[str, ...]]:
        """row key -> the CPU labels of all its runs."""
        out: Dict[Any, set] = {}
        for (key, _), counts in self.cells.items():
            out.setdefault(key, set()).update(counts)
        return {key: tuple(sorted(v)) for key, v in out.items()}

    @property
    def rows_differ(self) -> bool:
        """Rows ran on different sets of CPU models (a pooled test or trend then compares across machines)."""
        known = {cpus for cpus in self.row_cpus().values() if UNKNOWN not in cpus}
        return len(known) > 1

    def flagged(self, op: Any) -> Dict[Any, PairCount]:
        """row key -> pair counts, for the rows where ``op`` has pairs on two CPU models."""
        return {key: c for (key, o), c in self.pairs.items() if o == op and c.two}


def machine_report(jobs: Sequence[Job], summary: Summary) -> MachineReport:
    """Every completed job with the summary's metric, by the summary's rows and ops; pairs by seed as the gaps."""
    report = MachineReport(summary)
    machine: Dict[Tuple[Any, Any, Any], Machine] = {}
    for job in jobs:
        if job.metric(summary.metric) is None:
            continue
        m = machine_of(job)
        key = tuple(job.get(a) for a in summary.axes)
        op = job.get("op")
        op = tuple(op) if isinstance(op, list) else op
        machine[(key, op, job.get("seed"))] = m
        counts = report.cells.setdefault((key, op), {})
        counts[m.label] = counts.get(m.label, 0) + 1
        if m.source and m.source not in report.sources:
            report.sources.append(m.source)
    for row in summary.rows:
        for op in summary.ops:
            count = PairCount()
            for seed in row.by_op.get(summary.reference, {}):
                a, b = machine.get((row.key, summary.reference, seed)), machine.get((row.key, op, seed))
                if a is None or b is None:
                    continue
                count.n += 1
                if a.cpu is None or b.cpu is None:
                    count.unknown += 1
                elif a.cpu != b.cpu:
                    count.two += 1
            if count.n:
                report.pairs[(row.key, op)] = count
    return report


def _cpus_text(counts: Dict[str, int]) -> str:
    return ", ".join(f"{label} ({n})" for label, n in sorted(counts.items()))


def _row_name(report: MachineReport, key: Any) -> str:
    row = next((r for r in report.summary.rows if r.key == key), None)
    if row is None or not report.summary.axes:
        return "all runs"
    return (f"{report.summary.axes[0]} {format_value(key[0])}" if len(report.summary.axes) == 1
            else row_label(report.summary, row))


def warnings(report: MachineReport) -> List[str]:
    """One sentence per problem: pairs on two CPU models (per op), pairs with an unknown side, rows on different
    CPU models. Empty when every pair shares one known CPU model and every row the same ones."""
    s = report.summary
    out = []
    crossed: Dict[str, List[str]] = {}   # the same sentence for several ops: said once, naming them all
    unknown: Dict[str, List[str]] = {}
    for op in s.ops:
        total = report.total(op)
        flagged = report.flagged(op)
        if flagged:
            everywhere = total.two == total.n
            where = "every pair" if everywhere else "; ".join(
                f"{_row_name(report, key)}: {c.two} of {c.n}" for key, c in flagged.items())
            crossed.setdefault(f"{total.two} of {total.n} pairs ({where})", []).append(op)
        if total.unknown:
            unknown.setdefault(f"{total.unknown} of {total.n} pairs", []).append(format_value(op))
    for what, ops in crossed.items():
        by_cpus: Dict[str, List[str]] = {}
        for op in [s.reference, *ops]:
            by_cpus.setdefault(", ".join(report.op_cpus(op)), []).append(format_value(op))
        cpus = "; ".join(f"{', '.join(names)}: {labels}" for labels, names in by_cpus.items())
        out.append(f"{', '.join(map(format_value, ops))} − {s.reference}: {what} ran on two CPU models"
                   f"{' each' if len(ops) > 1 else ''} ({cpus}).")
    for what, ops in unknown.items():
        out.append(f"{', '.join(ops)} − {s.reference}: {what}{' each' if len(ops) > 1 else ''} have a run whose CPU "
                   "is not recorded; whether they share a CPU model is unknown.")
    if report.rows_differ:
        by: Dict[Tuple[str, ...], List[str]] = {}
        cpus_of = report.row_cpus()
        for key, cpus in ((r.key, cpus_of[r.key]) for r in s.rows if r.key in cpus_of):
            by.setdefault(cpus, []).append(format_value(key[0]) if len(s.axes) == 1 else _row_name(report, key))
        groups = "; ".join(f"{', '.join(rows)}: {' + '.join(cpus)}" for cpus, rows in by.items())
        out.append(f"Rows ran on different CPU models ({groups}), so a statistic over rows (pooled test, trend) "
                   "compares runs across machines.")
    return out


def markdown(report: MachineReport) -> List[str]:
    """The "Machines" section of summary.md."""
    s = report.summary
    labels = report.labels()
    lines = ["", "## Machines (the CPU model of each run)", ""]
    attributed = any(label.endswith(ATTRIBUTED_MARK) for label in labels)
    if labels == [UNKNOWN]:
        return lines + ["No record names its CPU (every one predates `provenance`) and no page does (no "
                        f"`{MACHINES_FILE}`): whether a pair's two runs share a CPU model is unknown."]
    if len(labels) == 1:
        lines.append(f"Every run: {labels[0]}.")
    else:
        heads = s.axes or ["runs"]
        ref = s.reference
        lines += [f"| {' | '.join(heads)} | op | CPU (runs) | pairs with {ref} on two CPU models |",
                  "|" + "---|" * len(heads) + "---|---|---|"]
        for row in s.rows:
            keys = " | ".join([format_value(v) for v in row.key] or ["all"])
            for op in [ref, *s.ops, *sorted((o for o in row.by_op if o != ref and o not in s.ops), key=str)]:
                counts = report.cells.get((row.key, op))
                if not counts:
                    continue
                c = report.pairs.get((row.key, op))
                pairs = "" if c is None else (f"**{c.two} of {c.n}**" if c.two else f"0 of {c.n}") + (
                    f" ({c.unknown} unknown)" if c.unknown else "")
                lines.append(f"| {keys} | {format_value(op)} | {_cpus_text(counts)} | {pairs} |")
    lines.append("")
    notes = []
    if attributed:
        notes.append(f"{ATTRIBUTED_MARK}: not in the record (it predates `provenance`); named by the results dir's "
                     f"`{MACHINES_FILE}`" + (f" ({'; '.join(report.sources)})" if report.sources else "") + ".")
    if UNKNOWN in labels:
        notes.append(f"{UNKNOWN}: the record predates `provenance` and no page names its machine.")
    found = warnings(report)
    if found:
        notes.append("**Warning:** " + " ".join(found) + " Float rounding differs between CPU models: a job rerun on "
                     "another CPU lands about a seed's spread from its record (docs/reproduction.md, Determinism).")
    else:
        known = " (as far as recorded or attributed)" if attributed else ""
        notes.append(f"Every pair's two runs share a CPU model{known}.")
    return lines + [" ".join(notes)]
