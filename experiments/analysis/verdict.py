"""The numbers of the reproduction's pages, computed from the committed per-job records (docs/results/<preset>/runs):
the verdict table, each preset's table and the other tables of docs/reproduction.md and the results pages, and every
statistic the prose around them may quote.

A generated block of a markdown file sits between two comment lines::

    <!-- generated: NAME (python scripts/docs_tables.py) -->
    ...
    <!-- end generated: NAME -->

``render(text, results)`` rewrites the inside of every block whose NAME is in ``BLOCKS`` (``scripts/docs_tables.py``
writes the pages, ``--check`` fails on a page whose blocks are stale). Prose is not generated; ``known_intervals``
lists every interval the records give (each preset's rows, pooled tests, trends, changes, reruns, the declared and
the undeclared contrasts, the probe), and tests/scripts/test_docs_tables.py fails on an interval quoted on a page that
is none of them.

A new verdict row is a ``Claim`` appended to ``CLAIMS``: its text, the paper's number and a ``measure`` that returns
the row's cells and its headline statistic. Holm's correction runs over every row of the table, so a row added
changes the other rows' adjusted p-values, as it should. A new preset is a ``Source`` in ``SOURCES`` and, for its
table, a block in ``BLOCKS``.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ..errors import StarbenchError
from ..records import atomic_write_text
from .format import format_mean_std
from .jobs import Job, load_jobs
from .levels import gaps_by_level, trend_of
from .machines import machine_of, machine_report
from .pooled import Pooled, bonferroni
from .probe import PROBE_FILE, summarize_probes
from .reruns import compare_reruns
from .stats import LEVEL, Gap, gap_p_value, holm, mean_std, p_value, paired_diffs, paired_gap, t_interval, trend
from .summary import Row, Summary, summarize
from .sweep import keep_only, sweep_baseline
from .tables import markdown_table

ALPHA = 1 - LEVEL
BEGIN = re.compile(r"^<!-- generated: (?P<name>[\w:.-]+)(?: \(.*\))? -->$")
END = "<!-- end generated: {name} -->"
COMMAND = "python scripts/docs_tables.py"


@dataclass(frozen=True)
class Source:
    """Where a preset's records are, under the results root: run dirs (``only`` some of their jobs, by knob), or a
    committed summary.csv where the records were not kept (moons)."""
    dirs: Tuple[str, ...] = ()
    only: Optional[Mapping[str, Sequence[Any]]] = None
    csv: Optional[str] = None
    baseline_dir: Optional[str] = None   # the results dir whose linear_baseline.json holds the sweep's baseline


SOURCES: Dict[str, Source] = {
    "fig1_width": Source(("fig1_width/runs",), baseline_dir="fig1_width"),
    "table3_depth": Source(("table3_depth/runs",), baseline_dir="table3_depth"),
    "no_act": Source(("no_act/runs",), baseline_dir="no_act"),
    "starnet_op": Source(("starnet_op/runs",), baseline_dir="starnet_op"),
    "moons": Source(csv="moons/summary.csv"),
    "budget_curve": Source(("budget_curve/runs",), baseline_dir="budget_curve"),
    "budget_curve_55k": Source(("budget_curve_55k/runs",), baseline_dir="budget_curve_55k"),
    # the zoo's 90 jobs with the 36 star and sum jobs it shares with fig1_width (the same config hashes)
    "op_zoo": Source(("op_zoo/runs", "fig1_width/runs"), only={"width": (8, 16, 32)}, baseline_dir="op_zoo"),
    "fig1_width_rerun": Source(("fig1_width_rerun/runs",)),
    # the zoo's ops with star and sum from the rerun on the zoo's machine type (seeds 0-2): pairs on one CPU model
    "op_zoo_one_cpu": Source(("op_zoo/runs", "fig1_width_rerun/runs"), only={"width": (8, 16, 32)}),
}


def jobs_from_csv(path: Path) -> List[Job]:
    """The per-job rows of a committed summary.csv as completed ``Job``s (op, seed and the metrics)."""
    jobs = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            record: Dict[str, Any] = {"status": row["status"]}
            for key in ("top1", "best_top1"):
                if row.get(key):
                    record[key] = float(row[key])
            knobs = {"op": row["op"], "seed": int(row["seed"])}
            jobs.append(Job(row["job"], row["status"], row.get("error") or None, knobs, record))
    return jobs


class Results:
    """The committed records under a results root (docs/results), each preset's jobs and summaries read once."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._jobs: Dict[str, List[Job]] = {}
        self._summaries: Dict[Tuple[str, Optional[str]], Summary] = {}

    def jobs(self, name: str) -> List[Job]:
        if name not in self._jobs:
            source = SOURCES[name]
            if source.csv:
                jobs = jobs_from_csv(self.root / source.csv)
            else:
                jobs = keep_only([j for d in source.dirs for j in load_jobs(self.root / d)],
                                 {k: [str(v) for v in vs] for k, vs in (source.only or {}).items()})
            if not jobs:
                raise StarbenchError(f"no records for {name} under {self.root}")
            self._jobs[name] = jobs
        return self._jobs[name]

    def summary(self, name: str, reference: Optional[str] = None) -> Summary:
        """The preset's summary against ``reference`` (sum by default), with its committed linear baseline."""
        key = (name, reference)
        if key not in self._summaries:
            jobs = self.jobs(name)
            summary = summarize(jobs, reference=reference)
            base = SOURCES[name].baseline_dir
            if base is not None and (self.root / base / "linear_baseline.json").exists():
                summary.baseline = sweep_baseline(jobs, self.root / base)  # the committed value, never a refit
            self._summaries[key] = summary
        return self._summaries[key]


# ---- text --------------------------------------------------------------------------------------------------------

def typeset(text: str) -> str:
    """A minus sign, not a hyphen, before a number (dates and names keep theirs)."""
    return re.sub(r"(?<![\w.\-/])-(?=\d)", "−", text)


def num(x: float, sign: bool = True, digits: int = 2) -> str:
    return typeset(f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}")


def interval(mean: Optional[float], lo: Optional[float], hi: Optional[float], sign: bool = True,
             digits: int = 2) -> str:
    """"+0.07 [−0.05, +0.19]"."""
    if mean is None:
        return "–"
    if lo is None:
        return num(mean, sign, digits)
    return f"{num(mean, sign, digits)} [{num(lo, sign, digits)}, {num(hi, sign, digits)}]"


def gap_text(g: Any, bold: bool = False) -> str:
    text = interval(g.mean, g.lo, g.hi)
    return f"**{text}**" if bold else text


def significant(g: Any) -> bool:
    return g.lo is not None and (g.lo > 0 or g.hi < 0)


def half_width(g: Any) -> Optional[float]:
    return None if g.lo is None else (g.hi - g.lo) / 2


def p_text(p: Optional[float]) -> str:
    if p is None:
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}".replace("e-0", "e-")


def pooled_p(p: Pooled) -> Optional[float]:
    return None if p.mean is None else p_value(p.mean, p.lo, p.hi, p.df)


def levels_text(levels: Sequence[Any]) -> str:
    return f"{levels[0]}–{levels[-1]}" if len(levels) > 1 else str(levels[0])


def runs_text(values: Sequence[int]) -> str:
    """0, 1, 2, 3, 5 -> "0–3, 5"."""
    runs: List[List[int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def sign_runs(rows: Sequence[Row], op: Any, paper_sign: int) -> str:
    """"yes at 8–16, no at 24–48": the rows whose gap has the paper's sign, in runs of neighbouring levels."""
    marks = [(row.key[0], (row.gap_of(op).mean or 0) * paper_sign > 0) for row in rows]
    if all(m for _, m in marks):
        return "yes, every row"
    if not any(m for _, m in marks):
        return "no, every row"
    runs: List[Tuple[bool, List[Any]]] = []
    for level, mark in marks:
        if runs and runs[-1][0] == mark:
            runs[-1][1].append(level)
        else:
            runs.append((mark, [level]))
    return ", ".join(f"{'yes' if mark else 'no'} at {levels_text(levels)}" for mark, levels in runs)


def count_words(n: int) -> str:
    return {0: "no", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}.get(n, str(n))


def rows_text(summary: Summary, op: Any) -> str:
    """Every row's gap, the significant ones bold: "+0.37, +0.22, **+0.40**, −0.18"."""
    return ", ".join(f"**{num(r.gap_of(op).mean)}**" if significant(r.gap_of(op)) else num(r.gap_of(op).mean)
                     for r in summary.rows if r.gap_of(op).mean is not None)


def machines_text(results: Results, name: str, reference: Optional[str] = None) -> str:
    """The verdict's "pairs on one CPU model?" cell: yes, or how many pairs span two and where; and the rows' CPU
    models when they differ (a pooled test or trend then compares across machines)."""
    summary = results.summary(name, reference)
    report = machine_report(results.jobs(name), summary)
    if not report.cells or report.labels() == ["not recorded"]:
        return "not recorded"
    axis = summary.axes[0] if summary.axes else "row"
    parts = []
    for op in summary.ops:
        total = report.total(op)
        if total.two:
            where = ", ".join(f"{axis} {key[0]}" for key in report.flagged(op))
            parts.append(f"**no**: {total.two} of {total.n} pairs span two ({where})")
        elif total.unknown:
            parts.append(f"{total.unknown} of {total.n} pairs not recorded")
    text = "; ".join(parts) or "yes"
    if report.rows_differ and not parts:
        groups: Dict[Tuple[str, ...], List[str]] = {}
        cpus_of = report.row_cpus()
        for row in summary.rows:
            groups.setdefault(cpus_of.get(row.key, ()), []).append(str(row.key[0]))
        text += "; rows on different CPUs (" + "; ".join(
            f"{axis} {', '.join(levels)}: {' + '.join(cpus)}" for cpus, levels in groups.items()) + ")"
    return text


# ---- the verdict -------------------------------------------------------------------------------------------------

@dataclass
class Measured:
    """A verdict row's cells (markdown) and its headline statistic's p-value (for Holm)."""
    here: str
    same_sign: str
    significant: str
    power: str
    p: Optional[float]
    machines: str = ""


@dataclass
class Claim:
    claim: str
    paper: str
    measure: Callable[[Results], Measured]


def _pooled_rows(results: Results, name: str, axis_word: str, fixed: str, link: str, paper_sign: int = 1) -> Measured:
    s = results.summary(name)
    p = s.pooled
    levels = [r.key[0] for r in s.rows]
    row_gaps = [r.gap_of("star") for r in s.rows]
    sig_rows = sum(significant(g) for g in row_gaps)
    halves = [half_width(g) for g in row_gaps if g.lo is not None]
    here = (f"{axis_word} {levels_text(levels)}, {fixed}: pooled **{interval(p.mean, p.lo, p.hi)}** "
            f"({p.n_pairs} pairs, star wins {p.wins}); rows {rows_text(s, 'star')} ([results/{name}]({link}))")
    return Measured(
        here, sign_runs(s.rows, "star", paper_sign),
        f"{'yes' if significant(p) else 'no'} (pooled); {count_words(sig_rows)} row{'s' if sig_rows != 1 else ''} "
        f"of {count_words(len(row_gaps))}",
        f"±{half_width(p):.2f} pooled, ±{min(halves):.2f}–{max(halves):.2f} rows", pooled_p(p),
        machines_text(results, name))


def _trend_row(results: Results, name: str, axis: str, when: str, paper_sign: Optional[int]) -> Measured:
    s = results.summary(name)
    g = trend_of(s, "star")
    here = f"**{gap_text(g)} points per doubling of {axis}** ({g.n} seeds; amendment 4, {when})"
    if paper_sign is None:
        same = f"– (paper: no trend; here it {'shrinks' if g.mean < 0 else 'grows'}" + (
            ")" if significant(g) else ", not significantly)")
    else:
        same = "yes" if g.mean * paper_sign > 0 else "no"
    return Measured(here, same, "yes" if significant(g) else "no", f"±{half_width(g):.2f}", gap_p_value(g),
                    machines_text(results, name))


def width_pooled(results: Results) -> Measured:
    return _pooled_rows(results, "fig1_width", "widths", "d12", "results/fig1_width/summary.md")


def width_trend(results: Results) -> Measured:
    return _trend_row(results, "fig1_width", "width", "declared after widths 8–24 were committed, which leaned this "
                      "way: protocol, amendment 4's erratum", -1)


def depth_pooled(results: Results) -> Measured:
    return _pooled_rows(results, "table3_depth", "depths", "w16", "results/table3_depth/summary.md")


def depth_trend(results: Results) -> Measured:
    return _trend_row(results, "table3_depth", "depth", "no direction predicted", None)


def two_level_changes(summary: Summary, op: Any = "star") -> Tuple[Gap, Gap, Gap]:
    """(reference's change, op's change, the gap's change) from the first row to the second, paired by seed."""
    first, second = summary.rows
    ref = summary.reference
    change = lambda o: paired_gap(first.by_op.get(o, {}), second.by_op.get(o, {}))  # noqa: E731
    gaps = [paired_diffs(r.by_op.get(ref, {}), r.by_op.get(op, {})) for r in (first, second)]
    return change(ref), change(op), paired_gap(gaps[0], gaps[1])


def no_activation(results: Results) -> Measured:
    s = results.summary("no_act")
    sum_change, star_change, gap_change = two_level_changes(s)
    gelu, none = (r.gap_of("star") for r in s.rows)
    here = (f"w16 d12: sum **{gap_text(sum_change)}**, star {gap_text(star_change)}; sum loses more by "
            f"{gap_text(gap_change)} ({gap_change.n} seeds; star − sum {num(gelu.mean)} with GELU, {num(none.mean)} "
            "without; [results/no_act](results/no_act/summary.md))")
    return Measured(here, "yes (far smaller)" if gap_change.mean > 0 else "no",
                    "yes" if significant(gap_change) else "no", f"±{half_width(gap_change):.2f} (gap change)",
                    gap_p_value(gap_change), machines_text(results, "no_act"))


def starnet(results: Results) -> Measured:
    s = results.summary("starnet_op")
    g, p = s.rows[0].gap, s.pooled
    here = (f"S050: star − sum **{gap_text(g)}** ({g.n} seeds, star wins {p.wins}; "
            "[results/starnet_op](results/starnet_op/summary.md))")
    return Measured(here, "yes" if g.mean > 0 else "no", "yes" if significant(g) else "no",
                    f"±{half_width(g):.2f}", gap_p_value(g), machines_text(results, "starnet_op"))


def moons(results: Results) -> Measured:
    s = results.summary("moons")
    row, p = s.rows[0], s.pooled
    g = row.gap
    sum_mean, star_mean = mean_std(row.values("sum"))[0], mean_std(row.values("star"))[0]
    ties = f" ({count_words(p.ties)} tie{'s' if p.ties != 1 else ''})" if p.ties else ""
    here = (f"sum {sum_mean:.2f}, star {star_mean:.2f}: gap **{gap_text(g)}**, star wins {p.wins} of {p.n_pairs} "
            f"seeds{ties} ([results/moons](results/moons/summary.md))")
    return Measured(here, "yes" if g.mean > 0 else "no",
                    f"{'yes' if significant(g) else 'no'} (Wilcoxon p = {p_text(p.wilcoxon_p)})",
                    f"±{half_width(g):.2f} (target ±2.5)", gap_p_value(g), "not recorded")


CLAIMS: List[Claim] = [
    Claim("Star beats sum at every width (Table 2, Fig. 1)", "+3.6 to +6.5 at widths 96–288", width_pooled),
    Claim("The gap is largest at narrow widths", "6.5 at w96 → 3.6 at w288", width_trend),
    Claim("Star beats sum at every depth (Table 3)", "+4.0 to +6.5 at depths 10–22", depth_pooled),
    Claim("The gain does not shrink with depth (the paper's reading of Table 3)",
          "6.5, 5.5, 4.7, 4.1, 4.0, 5.8, 4.8 at d10–22 (no monotone trend)", depth_trend),
    Claim("Without activations sum collapses (Table 4)", "sum −33.8, star −1.2", no_activation),
    Claim("StarNet loses accuracy when star becomes sum (Table 7)", "S4 −3.1 (all-star 78.4, all-sum 75.3)", starnet),
    Claim("2-D toy: star fits a polynomial-like boundary, sum a near-linear one (Fig. 2)",
          "repo: sum ≈ 85%, star ≈ 95% (training accuracy)", moons),
]


def verdict_table(results: Results, claims: Sequence[Claim] = CLAIMS) -> List[str]:
    measured = [c.measure(results) for c in claims]
    ps = [m.p for m in measured]
    known = [p for p in ps if p is not None]
    adjusted = iter(holm(known))
    holm_of = [next(adjusted) if p is not None else None for p in ps]
    k = len(claims)
    lines = [f"| claim (paper) | paper | here, under the protocol | same sign? | significant (95%)? "
             f"| Holm over the {k} rows (p → adjusted) | power (95% CI half-width) | pairs on one CPU model? |",
             "|---|---|---|---|---|---|---|---|"]
    for c, m, adj in zip(claims, measured, holm_of):
        # bold: significant for its claim alone, not once the table is corrected as one family
        alone = m.p is not None and m.p <= ALPHA
        verdict = "yes" if adj is not None and adj <= ALPHA else ("**no**" if alone else "no")
        holm_cell = "–" if adj is None else f"{verdict} ({p_text(m.p)} → {p_text(adj)})"
        lines.append(f"| {c.claim} | {c.paper} | {m.here} | {m.same_sign} | {m.significant} | {holm_cell} "
                     f"| {m.power} | {m.machines} |")
    return lines


# ---- the other tables ----------------------------------------------------------------------------------------------

def preset_table(results: Results, name: str) -> List[str]:
    return [typeset(line) for line in markdown_table(results.summary(name))]


ZOO_MERGES = {"max": "`max(gelu(x1), x2)`", "swiglu": "`silu(x1) * x2`", "gate": "`gelu(x1) * sigmoid(x2)`",
              "star": "`gelu(x1) * x2`", "concat": "`g([gelu(x1), x2])`", "bilinear": "`x1 * x2`"}


def zoo_order(summary: Summary) -> List[Any]:
    return sorted(summary.ops, key=lambda op: -(summary.pooled_of(op).mean or 0.0))


def zoo_table(results: Results, name: str = "op_zoo") -> List[str]:
    """Amendment 5's result: each op against sum, pooled, with the Bonferroni interval, wins and the per-row gaps."""
    s = results.summary(name)
    k = len(s.ops)
    report = machine_report(results.jobs(name), s)
    widths = [r.key[0] for r in s.rows]
    lines = [f"| op | block merge | pooled gap op − sum [95% CI] | [{1 - ALPHA / k:.2%} CI] (Bonferroni, {k} "
             f"comparisons) | wins of {s.pooled.n_pairs} | {' / '.join(f'w{w}' for w in widths)} "
             "| pairs on two CPU models |",
             "|---|---|---:|---:|---:|---|---:|"]
    for op in zoo_order(s):
        p = s.pooled_of(op)
        lo, hi = bonferroni(p, k)
        strong = lo is not None and (lo > 0 or hi < 0)
        ties = f" ({count_words(p.ties)} tie{'s' if p.ties != 1 else ''})" if p.ties else ""
        total = report.total(op)
        lines.append(f"| {op} | {ZOO_MERGES.get(op, '')} | {gap_text(p, strong)} | "
                     f"{'**' if strong else ''}[{num(lo)}, {num(hi)}]{'**' if strong else ''} | {p.wins}{ties} "
                     f"| {' / '.join(num(r.gap_of(op).mean) for r in s.rows)} | {total.two} of {total.n} |")
    return lines


def zoo_one_cpu_table(results: Results) -> List[str]:
    """Each zoo op against sum on one CPU model (sum from the rerun on the zoo's machine type, seeds 0-2) beside the
    same seeds against the Intel Xeon sum records: how much of a gap the pairing across machines could carry."""
    amd = results.summary("op_zoo_one_cpu")
    intel = results.summary("op_zoo")
    seeds = sorted({s for r in amd.rows for s in r.by_op.get("sum", {})})
    lines = [f"| op | vs sum on AMD EPYC (seeds {runs_text(seeds)}) [95% CI] | vs sum on Intel Xeon, the same seeds "
             "[95% CI] | vs sum on Intel Xeon, all seeds (the result) |", "|---|---:|---:|---:|"]
    for op in zoo_order(intel):
        same = amd.pooled_of(op)
        subset = pooled_over(intel, op, seeds)
        lines.append(f"| {op} | {gap_text(same)} ({same.n_pairs} pairs) | {gap_text(subset)} ({subset.n_pairs} "
                     f"pairs) | {gap_text(intel.pooled_of(op))} ({intel.pooled_of(op).n_pairs} pairs) |")
    return lines


def pooled_over(summary: Summary, op: Any, seeds: Iterable[Any]) -> Pooled:
    """``op``'s pooled test against the reference over the given seeds only."""
    from .pooled import pooled
    keep = set(seeds)
    pairs = {r.key: ({s: v for s, v in r.by_op.get(summary.reference, {}).items() if s in keep},
                     {s: v for s, v in r.by_op.get(op, {}).items() if s in keep}) for r in summary.rows}
    return pooled(pairs)


UNDECLARED_REFERENCES = ("bilinear", "star")


def zoo_contrasts_table(results: Results) -> List[str]:
    """Contrasts amendment 5 did not declare (each op against the pure product and against star), for what the zoo
    says about multiplication; uncorrected 95% intervals, the pooled statistic of part 1."""
    heads = " | ".join(f"op − {ref} [95% CI] (wins)" for ref in UNDECLARED_REFERENCES)
    lines = [f"| op | {heads} |", "|---|" + "---:|" * len(UNDECLARED_REFERENCES)]
    ops = zoo_order(results.summary("op_zoo")) + ["sum"]
    for op in ops:
        cells = []
        for ref in UNDECLARED_REFERENCES:
            if op == ref:
                cells.append("–")
                continue
            p = results.summary("op_zoo", ref).pooled_of(op)
            cells.append(f"{gap_text(p, significant(p))} ({p.wins}/{p.n_pairs})")
        lines.append(f"| {op} | {' | '.join(cells)} |")
    return lines


def one_cpu_pairs(results: Results, name: str) -> Tuple[Summary, List[str]]:
    """A copy of the preset's summary without the pairs whose two runs ran on two CPU models (that seed dropped
    from both ops of that row), and what was dropped, in words."""
    summary = results.summary(name)
    machine = {(tuple(job.get(a) for a in summary.axes), job.get("op"), job.get("seed")): machine_of(job)
               for job in results.jobs(name)}
    rows, dropped = [], []
    for row in summary.rows:
        def one_cpu(seed: Any) -> bool:
            ref = machine.get((row.key, summary.reference, seed))
            return all(machine.get((row.key, op, seed)) is not None and ref is not None
                       and machine[(row.key, op, seed)].cpu == ref.cpu
                       for op in summary.ops if seed in row.by_op.get(op, {}))

        keep = {s for s in row.by_op.get(summary.reference, {}) if one_cpu(s)}
        gone = sorted(set(row.by_op.get(summary.reference, {})) - keep)
        if gone:
            dropped.append(f"{summary.axes[0]} {row.key[0]}, seed{'s' if len(gone) > 1 else ''} {runs_text(gone)}")
        rows.append(Row(row.key, {op: {s: v for s, v in seeds.items() if s in keep}
                                  for op, seeds in row.by_op.items()}))
    return summary.with_rows(rows), dropped


def without_levels(summary: Summary, levels: Sequence[Any]) -> Summary:
    rows = [r for r in summary.rows if r.key[0] not in levels]
    return summary.with_rows(rows)


def one_cpu_table(results: Results) -> List[str]:
    """The width and depth results as recorded and without what spans two CPU models: the width sweep's pairs
    across two (width 48, star seeds 0-3 on the Intel Xeon, sum on AMD EPYC), the depth sweep's one row on
    another CPU model than the rest (depth 12)."""
    lines = ["| statistic | as recorded | on one CPU model only | left out |", "|---|---:|---:|---|"]
    fig = results.summary("fig1_width")
    fig_one, dropped = one_cpu_pairs(results, "fig1_width")
    depth = results.summary("table3_depth")
    report = machine_report(results.jobs("table3_depth"), depth)
    cpus = report.row_cpus()
    common = max(set(cpus.values()), key=list(cpus.values()).count)
    odd = [r.key[0] for r in depth.rows if cpus.get(r.key) != common]
    depth_one = without_levels(depth, odd)
    where = "; ".join(dropped) + " (pairs on two CPU models)"
    cases = [("width: pooled star − sum", fig.pooled, fig_one.pooled, where),
             ("width: trend per doubling", trend_of(fig, "star"), trend_of(fig_one, "star"), where)]
    for row, row_one in zip(fig.rows, fig_one.rows):
        if row.gap.n != row_one.gap.n:
            cases.append((f"width {row.key[0]}: star − sum", row.gap, row_one.gap, where))
    if odd:
        rows_where = (f"depth {', '.join(map(str, odd))} ({' + '.join(cpus[(odd[0],)])}; "
                      f"the others {' + '.join(common)})")
        cases += [("depth: pooled star − sum", depth.pooled, depth_one.pooled, rows_where),
                  ("depth: trend per doubling", trend_of(depth, "star"), trend_of(depth_one, "star"), rows_where)]
    for what, a, b, left in cases:
        n = lambda g: getattr(g, "n_pairs", None) or g.n  # noqa: E731
        unit = "seeds" if "trend" in what else "pairs"
        lines.append(f"| {what} | {gap_text(a)} ({n(a)} {unit}) | {gap_text(b)} ({n(b)} {unit}) | {left} |")
    return lines


def rerun_pairs(results: Results) -> List[Tuple[Any, Any, float, float]]:
    """(width, seed, record's star − sum, rerun's star − sum) for every seed the rerun has both ops of."""
    records = {j.record.get("config_hash"): j for j in results.jobs("fig1_width") if j.status == "completed"}
    by: Dict[Tuple[Any, Any], Dict[str, Tuple[float, float]]] = {}
    for j in results.jobs("fig1_width_rerun"):
        rec = records.get(j.record.get("config_hash"))
        if j.status == "completed" and rec is not None:
            by.setdefault((j.get("width"), j.get("seed")), {})[j.get("op")] = (rec.metric("top1"), j.metric("top1"))
    out = []
    for (width, seed), ops in sorted(by.items()):
        if "star" in ops and "sum" in ops:
            out.append((width, seed, ops["star"][0] - ops["sum"][0], ops["star"][1] - ops["sum"][1]))
    return out


def rerun_table(results: Results) -> List[str]:
    lines = ["| width | seed | record star − sum | rerun star − sum | same sign |", "|---:|---:|---:|---:|:---:|"]
    for width, seed, record, rerun in rerun_pairs(results):
        same = "yes" if record * rerun > 0 else "**no**"
        lines.append(f"| {width} | {seed} | {num(record)} | {num(rerun)} | {same} |")
    return lines


def duplicate_jobs(results: Results) -> Tuple[List[Job], List[Job]]:
    """no_act's GELU jobs and the fig1_width jobs with the same config hashes (its width-16 row)."""
    na = [j for j in results.jobs("no_act") if j.get("model.act") == "gelu" and j.status == "completed"]
    hashes = {j.record.get("config_hash") for j in na}
    fig = [j for j in results.jobs("fig1_width") if j.record.get("config_hash") in hashes]
    return fig, na


def duplicate_table(results: Results) -> List[str]:
    """no_act's GELU row against fig1_width's width-16 row: the same configurations run twice, per op and for the
    gap, with the job-by-job difference (no_act − fig1_width) and its 95% t interval."""
    fig, na = duplicate_jobs(results)
    pair = {j.record.get("config_hash"): j for j in fig}
    lines = ["| | fig1_width, width 16 | no_act, gelu | no_act − fig1_width, job by job [95% CI] |",
             "|---|---:|---:|---:|"]
    values: Dict[str, Dict[str, Dict[Any, float]]] = {"fig": {}, "na": {}}
    for j in na:
        f = pair.get(j.record.get("config_hash"))
        if f is None:
            continue
        values["fig"].setdefault(j.get("op"), {})[j.get("seed")] = f.metric("top1")
        values["na"].setdefault(j.get("op"), {})[j.get("seed")] = j.metric("top1")
    for op in ("sum", "star"):
        a, b = values["fig"].get(op, {}), values["na"].get(op, {})
        lines.append(f"| {op} | {format_mean_std(list(a.values()))} | {format_mean_std(list(b.values()))} | {gap_text(paired_gap(a, b))} |")
    gaps = {k: paired_diffs(values[k].get("sum", {}), values[k].get("star", {})) for k in ("fig", "na")}
    lines.append(f"| star − sum | {gap_text(t_interval(list(gaps['fig'].values())))} "
                 f"| {gap_text(t_interval(list(gaps['na'].values())))} "
                 f"| {gap_text(paired_gap(gaps['fig'], gaps['na']))} |")
    report = compare_reruns(fig, na)
    lines.append(f"| all {len(report.pairs)} jobs | | | {gap_text(report.diff)} (SD {report.diff_sd:.2f}; seed-to-seed "
                 f"SD {report.seed_sd:.2f}) |")
    return lines


def probe_runs(results: Results, dirs: Sequence[str], only: Optional[Callable[[Path], bool]] = None) -> List[Dict]:
    """The probe results kept beside the records (each run dir's probe.json), for summarize_probes."""
    runs = []
    for d in dirs:
        for path in sorted((results.root / d).glob(f"*/{PROBE_FILE}")):
            if only is None or only(path.parent):
                runs.append(json.loads(path.read_text())["run"])
    return runs


PROBE_SETS = {
    "probe": (("fig1_width_rerun/runs", "fig1_width/runs"), None),
    "probe_zoo": (("op_zoo/runs", "fig1_width_rerun/runs"), None),
}


def probe_groups(results: Results, name: str) -> List[Dict[str, Any]]:
    dirs, only = PROBE_SETS[name]
    return summarize_probes(probe_runs(results, dirs, only))


def probe_table(results: Results) -> List[str]:
    """Star and sum's effective rank and last-block probe per width, with the seeds behind each."""
    groups = {(g["op"], g["width"]): g for g in probe_groups(results, "probe")}
    widths = sorted({w for _, w in groups})
    lines = ["| width | hidden (3d) | effective rank star (seeds) | sum (seeds) | star / sum | last-block linear "
             "probe star | sum |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for w in widths:
        star, sm = groups.get(("star", w)), groups.get(("sum", w))
        if not star or not sm:
            continue
        def er(g: Dict[str, Any]) -> str:
            rank = g["effective_rank"]
            return f"{interval(rank['mean'], rank['lo'], rank['hi'], False, 1)} ({len(g['seeds'])})"
        ratio = star["effective_rank"]["mean"] / sm["effective_rank"]["mean"]
        lines.append(f"| {w} | {3 * w} | {er(star)} | {er(sm)} | {ratio:.2f}x | "
                     f"{star['probe_top1_last_block']['mean']:.1f} | {sm['probe_top1_last_block']['mean']:.1f} |")
    return lines


BLOCKS: Dict[str, Callable[[Results], List[str]]] = {
    "verdict": verdict_table,
    "table:fig1_width": lambda r: preset_table(r, "fig1_width"),
    "table:table3_depth": lambda r: preset_table(r, "table3_depth"),
    "table:no_act": lambda r: preset_table(r, "no_act"),
    "table:starnet_op": lambda r: preset_table(r, "starnet_op"),
    "table:moons": lambda r: preset_table(r, "moons"),
    "table:budget_curve": lambda r: preset_table(r, "budget_curve"),
    "table:op_zoo": zoo_table,
    "table:op_zoo_one_cpu": zoo_one_cpu_table,
    "table:op_zoo_contrasts": zoo_contrasts_table,
    "table:reruns": rerun_table,
    "table:one_cpu": one_cpu_table,
    "table:duplicate": duplicate_table,
    "table:probe": probe_table,
}


# ---- blocks in pages -----------------------------------------------------------------------------------------------

def blocks_in(text: str) -> List[str]:
    return [m.group("name") for line in text.splitlines() for m in [BEGIN.match(line)] if m]


def render(text: str, results: Results, blocks: Mapping[str, Callable[[Results], List[str]]] = BLOCKS) -> str:
    """``text`` with every generated block's inside replaced by its lines; an unknown or unclosed block is an error."""
    lines = text.split("\n")
    out: List[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        m = BEGIN.match(line)
        i += 1
        if not m:
            continue
        name = m.group("name")
        if name not in blocks:
            raise StarbenchError(f"unknown generated block '{name}' (known: {', '.join(blocks)})")
        end = END.format(name=name)
        try:
            j = lines.index(end, i)
        except ValueError:
            raise StarbenchError(f"generated block '{name}' has no '{end}' line") from None
        out += blocks[name](results)
        out.append(end)
        i = j + 1
    return "\n".join(out)


# ---- every interval the records give, for checking the prose -------------------------------------------------------

Triple = Tuple[float, Optional[float], Optional[float]]


def _gap_triples(summary: Summary) -> Iterable[Triple]:
    for op in summary.ops:
        for r in summary.rows:
            g = r.gap_of(op)
            yield g.mean, g.lo, g.hi
        p = summary.pooled_of(op)
        yield p.mean, p.lo, p.hi
        yield p.p_improve, p.p_improve_lo, p.p_improve_hi
        if p.rel_err is not None and p.rel_err_lo is not None:
            yield 100 * p.rel_err, 100 * p.rel_err_lo, 100 * p.rel_err_hi
        for k in (len(summary.ops),):
            lo, hi = bonferroni(p, k)
            yield p.mean, lo, hi


def known_intervals(results: Results) -> List[Triple]:
    """(mean, lo, hi) of every statistic the records give that a page may quote."""
    out: List[Triple] = []
    for name in ("fig1_width", "table3_depth", "no_act", "starnet_op", "moons", "budget_curve", "budget_curve_55k",
                 "op_zoo", "op_zoo_one_cpu"):
        s = results.summary(name)
        out += list(_gap_triples(s))
        for r in s.rows:
            for op in r.by_op:
                values = list(r.by_op[op].values())
                g = t_interval(values)
                out.append((g.mean, g.lo, g.hi))
        if name in ("fig1_width", "table3_depth"):
            g = trend_of(s, "star")
            out.append((g.mean, g.lo, g.hi))
    for ref in UNDECLARED_REFERENCES:
        out += list(_gap_triples(results.summary("op_zoo", ref)))
    for op in results.summary("op_zoo").ops:
        p = pooled_over(results.summary("op_zoo"), op, (0, 1, 2))
        out.append((p.mean, p.lo, p.hi))
    out += [(g.mean, g.lo, g.hi) for g in two_level_changes(results.summary("no_act"))]
    fig_one, _ = one_cpu_pairs(results, "fig1_width")
    out += list(_gap_triples(fig_one)) + [tuple(getattr(trend_of(fig_one, "star"), k) for k in ("mean", "lo", "hi"))]
    fig = results.summary("fig1_width")
    for widths in ((8, 12, 16), (8, 12, 16, 24), (8, 12, 16, 24, 32)):  # amendment 4's trial, and its erratum
        gaps = {w: v for w, v in gaps_by_level(fig, "star").items() if w in widths}
        g = trend(gaps)
        out.append((g.mean, g.lo, g.hi))
    reruns = results.jobs("fig1_width_rerun")
    for widths in ((8, 16), (8, 16, 32)):   # amendment 5's declared measure, and with width 32
        report = compare_reruns(results.jobs("fig1_width"), [j for j in reruns if j.get("width") in widths])
        out.append((report.diff.mean, report.diff.lo, report.diff.hi))
    fig_dup, na_dup = duplicate_jobs(results)
    report = compare_reruns(fig_dup, na_dup)
    out.append((report.diff.mean, report.diff.lo, report.diff.hi))
    for make in BLOCKS.values():  # every interval a generated table prints is a statistic of the records
        for _, quote in quoted_intervals("\n".join(make(results))):
            m = QUOTED.match(quote)
            out.append(tuple(_value(m.group(k)) for k in ("mean", "lo", "hi")))
    # the pilot's probe: its sweep dir is not committed, its per-run results are (in the probe's own json)
    pilot = results.root / "probe_dimension" / "pilot" / "probe_dimension.json"
    pilot_groups = summarize_probes(json.loads(pilot.read_text())["runs"]) if pilot.exists() else []
    for g in [*pilot_groups, *(g for name in PROBE_SETS for g in probe_groups(results, name))]:
        for key in ("effective_rank", "energy_99", "probe_top1_last_block"):
            out.append((g[key]["mean"], g[key]["lo"], g[key]["hi"]))
    return [t for t in out if t[0] is not None]


QUOTED = re.compile(r"(?P<mean>[+−-]?\d+(?:\.\d+)?)(?P<pct>%?)\s+(?:points\s+)?\[(?P<lo>[+−-]?\d+(?:\.\d+)?)%?,\s*"
                    r"(?P<hi>[+−-]?\d+(?:\.\d+)?)%?\]")


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _value(text: str) -> float:
    return float(text.replace("−", "-"))


def quoted_intervals(text: str) -> List[Tuple[int, str]]:
    """(line number, the quoted "m [lo, hi]") of every interval in a page."""
    return [(i + 1, m.group(0)) for i, line in enumerate(text.splitlines()) for m in QUOTED.finditer(line)]


def matches(quote: str, known: Sequence[Triple]) -> bool:
    """Whether a quoted interval is one of ``known`` at the quote's precision; its sign may be dropped or flipped
    ("sum loses 0.55 [0.25, 0.85]" quotes −0.55 [−0.85, −0.25])."""
    m = QUOTED.match(quote)
    mean, lo, hi = (m.group(k) for k in ("mean", "lo", "hi"))
    digits = _decimals(mean)
    want = (_value(mean), _value(lo), _value(hi))
    for k_mean, k_lo, k_hi in known:
        if k_lo is None:
            continue
        for cand in ((k_mean, k_lo, k_hi), (-k_mean, -k_hi, -k_lo)):
            if all(round(c, digits) == round(w, digits) or f"{c:.{digits}f}" == f"{w:.{digits}f}"
                   for c, w in zip(cand, want)):
                return True
            if not any(s in quote for s in "+−-") and all(f"{abs(c):.{digits}f}" == f"{abs(w):.{digits}f}"
                                                         for c, w in zip(cand, want)):
                return True
    return False


def stale_quotes(text: str, known: Sequence[Triple]) -> List[Tuple[int, str]]:
    return [(line, q) for line, q in quoted_intervals(text) if not matches(q, known)]


__all__ = ["BLOCKS", "CLAIMS", "Claim", "Measured", "Results", "SOURCES", "Source", "known_intervals", "render",
           "stale_quotes", "verdict_table"]


def default_pages(root: Path) -> List[Path]:
    """The pages with generated blocks: docs/reproduction.md, README.md and every README.md under docs/results."""
    pages = [root / "docs" / "reproduction.md", root / "README.md",
             *sorted((root / "docs" / "results").rglob("README.md"))]
    return [p for p in pages if p.exists()]


def update_pages(pages: Sequence[Path], results_root: Path, check: bool = False) -> List[str]:
    """Rewrite every generated block of ``pages`` from the records under ``results_root`` (printing each page
    rewritten), or, ``check``, change nothing: the problems, one line each (a stale block, an interval quoted in the
    prose that no record gives)."""
    results = Results(results_root)
    problems: List[str] = []
    known = known_intervals(results) if check else []
    for page in pages:
        text = page.read_text()
        new = render(text, results) if blocks_in(text) else text
        if check:
            if new != text:
                problems.append(f"{page}: generated blocks are stale ({', '.join(blocks_in(text))}); run {COMMAND}")
            problems += [f"{page}:{line}: '{quote}' is no statistic of the records"
                         for line, quote in stale_quotes(new, known)]
        elif new != text:
            atomic_write_text(page, new)
            print(f"rewrote {page}")
    return problems
