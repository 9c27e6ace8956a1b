"""An equal tuning budget per op: expected best validation accuracy against the number of tuning trials.

A *tuning sweep* trains every op on the same trials (the same values of the tuned knobs, ``TUNABLE``) in every
cell (the sweep's other axes, e.g. width), each trial scored on a validation split. "Op A beats op B" after tuning
depends on how much tuning each got: Dodge et al. (2019, "Show Your Work", EMNLP) report, per method, the expected
best validation score among n trials drawn at random from the search space, for n = 1 .. N. Their estimator treats
the N observed trials as the search distribution (draws with replacement); Tang et al. (2020, arXiv 2004.13705) give
the unbiased version without replacement. Both are here; the figure draws Dodge's with its spread (the SD of the
best of n draws). Curves that cross mean the comparison's sign depends on the tuning budget.

The per-trial pairing (every op trains the same trial) also gives the mean paired gap over the search space.
"""
from __future__ import annotations

import csv
import io
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..records.files import atomic_write, atomic_write_text
from .format import value_order
from .jobs import Job
from .stats import LEVEL, Gap, t_interval
from .summary import BASE_OP, PAIR_KEYS, TEST_OP, TUNABLE, metric_label, per_op_values, varied_knobs

MD_FILE, CSV_FILE, FIG_FILE = "tuning.md", "tuning.csv", "expected_best.png"


def expected_max(values: Sequence[float], n: int) -> Tuple[float, float]:
    """Dodge et al.'s expected maximum of ``n`` draws with replacement from ``values`` (the observed trials as the
    search distribution), and the SD of that maximum: with v sorted ascending, P(max = v_i) = (i/N)^n − ((i−1)/N)^n."""
    v = sorted(values)
    big_n = len(v)
    if big_n == 0 or n < 1:
        raise ValueError("expected_max needs at least one value and n >= 1")
    probs = [(i / big_n) ** n - ((i - 1) / big_n) ** n for i in range(1, big_n + 1)]
    mean = sum(p * x for p, x in zip(probs, v))
    var = sum(p * x * x for p, x in zip(probs, v)) - mean * mean
    return mean, math.sqrt(max(var, 0.0))


def expected_max_unbiased(values: Sequence[float], n: int) -> float:
    """Tang et al.'s unbiased expected maximum of ``n`` draws without replacement from the ``N`` observed trials:
    sum_i v_i C(i−1, n−1) / C(N, n), v sorted ascending (n <= N)."""
    v = sorted(values)
    big_n = len(v)
    if not 1 <= n <= big_n:
        raise ValueError(f"n must be in 1..{big_n}, got {n}")
    total = math.comb(big_n, n)
    return sum(x * math.comb(i - 1, n - 1) for i, x in enumerate(v, start=1)) / total


def crossings(a: Sequence[float], b: Sequence[float]) -> List[int]:
    """The trial counts n (1-based) at which the sign of a − b changes from the previous n (ties carry no sign)."""
    out, previous = [], 0
    for n, (x, y) in enumerate(zip(a, b), start=1):
        sign = (x > y) - (x < y)
        if sign and previous and sign != previous:
            out.append(n)
        previous = sign or previous
    return out


@dataclass
class OpTrials:
    """One op in one cell: trial (the tuned knobs' values) -> the metric (mean over the trial's seeds)."""
    op: Any
    scores: Dict[Tuple[Any, ...], float]

    @property
    def n(self) -> int:
        return len(self.scores)

    def curve(self) -> List[Tuple[float, float]]:
        """Dodge's (expected best, its SD) for n = 1 .. N trials."""
        return [expected_max(list(self.scores.values()), n) for n in range(1, self.n + 1)]

    def curve_unbiased(self) -> List[float]:
        return [expected_max_unbiased(list(self.scores.values()), n) for n in range(1, self.n + 1)]

    def best(self) -> Tuple[Tuple[Any, ...], float]:
        """The selection rule: the highest score; ties go to the trial that sorts first (the smaller values)."""
        return max(sorted(self.scores.items(), key=lambda kv: _sort_key(kv[0])), key=lambda kv: kv[1])


@dataclass
class TuningCell:
    key: Tuple[Any, ...]                       # values of the cell axes (e.g. (8,) for width 8)
    by_op: Dict[Any, OpTrials] = field(default_factory=dict)


@dataclass
class Tuning:
    metric: str
    metric_label: str
    tuned: List[str]         # the tuned knobs, e.g. trainer.lr, trainer.weight_decay
    axes: List[str]          # the cell axes
    cells: List[TuningCell]
    reference: Any = BASE_OP
    ops: List[Any] = field(default_factory=list)   # every op, the reference last

    def edges(self, trial: Tuple[Any, ...]) -> List[str]:
        """The tuned knobs at which ``trial`` sits at the edge of the values tried (a best trial there may mean the
        search space was too narrow)."""
        out = []
        for i, knob in enumerate(self.tuned):
            tried = sorted({t[i] for c in self.cells for o in c.by_op.values() for t in o.scores}, key=_sort_key)
            if len(tried) > 1 and trial[i] in (tried[0], tried[-1]):
                out.append(f"{knob} at the {'lowest' if trial[i] == tried[0] else 'highest'} value tried")
        return out


def _sort_key(value: Any) -> Any:
    """The tables' order of knob values (None, numbers, text), element by element for a trial's tuple."""
    return tuple(map(_sort_key, value)) if isinstance(value, tuple) else value_order(value)


def tuned_knobs(jobs: Sequence[Job]) -> Tuple[List[str], List[str]]:
    """(the tuned knobs, the cell axes) of a tuning sweep; ([], []) when the jobs are not one. A knob of ``TUNABLE``
    is tuned when it takes several values among the jobs of one op in one cell; knobs that only differ between ops
    (each op at its own tuned setting) are not tuned here."""
    done = [j for j in jobs if j.status == "completed"]
    varied = sorted(k for k in varied_knobs(done) if k not in PAIR_KEYS)
    axes = [k for k in varied if k not in TUNABLE]
    tuned = [knob for knob in varied if knob in TUNABLE
             and any(len(vs) > 1 for vs in per_op_values(done, knob, axes).values())]
    return (tuned, axes) if tuned else ([], [])


def summarize_tuning(jobs: Sequence[Job], metric: str, reference: Optional[Any] = None) -> Optional[Tuning]:
    """The tuning analysis of ``jobs``, or None when they are not a tuning sweep."""
    tuned, axes = tuned_knobs(jobs)
    if not tuned:
        return None
    per_trial: Dict[Tuple[Any, ...], Dict[Any, Dict[Tuple[Any, ...], List[float]]]] = {}
    for j in jobs:
        value = j.metric(metric)
        if value is None:
            continue
        cell = tuple(j.get(a) for a in axes)
        trial = tuple(j.get(k) for k in tuned)
        per_trial.setdefault(cell, {}).setdefault(j.get("op"), {}).setdefault(trial, []).append(value)
    cells = []
    for key in sorted(per_trial, key=_sort_key):
        cell = TuningCell(key)
        for op, trials in per_trial[key].items():
            cell.by_op[op] = OpTrials(op, {t: sum(v) / len(v) for t, v in trials.items()})
        cells.append(cell)
    ops = {op for c in cells for op in c.by_op}
    reference = reference if reference is not None else BASE_OP
    ordered = sorted((op for op in ops if op != reference), key=lambda op: (op != TEST_OP, str(op)))
    ordered += [reference] if reference in ops else []
    return Tuning(metric, metric_label(jobs, metric), tuned, axes, cells, reference, ordered)


def _cell_label(tuning: Tuning, cell: TuningCell) -> str:
    return ", ".join(f"{a} {v}" for a, v in zip(tuning.axes, cell.key)) or "every trial"


def _trial_text(tuning: Tuning, trial: Tuple[Any, ...]) -> str:
    return ", ".join(f"{k.split('.')[-1]} {v:g}" if isinstance(v, float) else f"{k.split('.')[-1]} {v}"
                     for k, v in zip(tuning.tuned, trial))


def paired_trial_gap(cell: TuningCell, op: Any, reference: Any) -> Gap:
    """op − reference over the trials both trained (the same settings for both): mean and t interval."""
    a, b = cell.by_op.get(op), cell.by_op.get(reference)
    if a is None or b is None:
        return Gap(0)
    return t_interval([a.scores[t] - b.scores[t] for t in a.scores if t in b.scores])


def markdown(tuning: Tuning) -> List[str]:
    label = tuning.metric_label
    ref = tuning.reference
    lines = ["## Equal tuning budget per op", "",
             f"Tuned: {', '.join(f'`{k}`' for k in tuning.tuned)}, the same trials for every op. Expected best "
             f"{label[0].lower()}{label[1:]} (%) of n trials drawn at random from the ones run (Dodge et al. 2019, "
             "with replacement; ± the SD of the best of n), with the unbiased estimate without replacement (Tang et "
             "al. 2020) at n = N in brackets.", ""]
    for cell in tuning.cells:
        ops = [op for op in tuning.ops if op in cell.by_op]
        big_n = max(cell.by_op[op].n for op in ops)
        shown = sorted({1, 2, 3, 5, big_n} | ({big_n // 2} if big_n > 6 else set()))
        shown = [n for n in shown if 1 <= n <= big_n]
        lines += [f"### {_cell_label(tuning, cell)}", "",
                  "| op | trials | " + " | ".join(f"n = {n}" for n in shown) + " | best trial | its score |",
                  "|---|---:|" + "---:|" * len(shown) + "---|---:|"]
        for op in ops:
            trials = cell.by_op[op]
            curve, unbiased = trials.curve(), trials.curve_unbiased()
            cols = []
            for n in shown:
                if n > trials.n:
                    cols.append("–")
                    continue
                mean, sd = curve[n - 1]
                cols.append(f"{mean:.2f} ± {sd:.2f}" + (f" [{unbiased[n - 1]:.2f}]" if n == trials.n else ""))
            best, score = trials.best()
            edge = tuning.edges(best)
            lines.append(f"| {op} | {trials.n} | {' | '.join(cols)} | {_trial_text(tuning, best)}"
                         + (f" ({'; '.join(edge)})" if edge else "") + f" | {score:.2f} |")
        lines.append("")
        for op in (o for o in ops if o != ref):
            if ref not in cell.by_op:
                break
            a = [m for m, _ in cell.by_op[op].curve()]
            b = [m for m, _ in cell.by_op[ref].curve()]
            cross = crossings(a, b)
            ahead = "ahead of" if a[-1] > b[-1] else ("behind" if a[-1] < b[-1] else "level with")
            gap = paired_trial_gap(cell, op, ref)
            gap_text = (f"{gap.mean:+.2f} [{gap.lo:+.2f}, {gap.hi:+.2f}]" if gap.lo is not None
                        else (f"{gap.mean:+.2f}" if gap.mean is not None else "–"))
            lines.append(f"- {op} vs {ref}: at n = {len(a)} trials {op} is {ahead} {ref} by {a[-1] - b[-1]:+.2f}; "
                         + (f"the curves cross at n = {', '.join(map(str, cross))}" if cross
                            else "the curves do not cross")
                         + f". Paired by trial ({gap.n} trials), {op} − {ref} averages {gap_text} "
                         f"({LEVEL:.0%} t CI) over the search space.")
        lines.append("")
    lines += ["Selection rule: each op's best trial is the one with the highest score (ties: the smaller tuned "
              "values); a best trial at the edge of a tuned range is marked, since a wider range might do better."]
    return lines


def write_csv(tuning: Tuning, path: Path) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*tuning.axes, "op", "n_trials", "n", "expected_best", "expected_best_sd",
                     "expected_best_unbiased", "best_trial", "best_score"])
    for cell in tuning.cells:
        for op in (o for o in tuning.ops if o in cell.by_op):
            trials = cell.by_op[op]
            best, score = trials.best()
            for n, ((mean, sd), unbiased) in enumerate(zip(trials.curve(), trials.curve_unbiased()), start=1):
                writer.writerow([*cell.key, op, trials.n, n, f"{mean:.4f}", f"{sd:.4f}", f"{unbiased:.4f}",
                                 _trial_text(tuning, best), f"{score:.4f}"])
    atomic_write_text(path, out.getvalue())


def plot(tuning: Tuning, path: Path, title: str = "") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator
    from .figures import OP_COLORS, OTHER_COLORS

    spare = iter(OTHER_COLORS)
    colors = {op: OP_COLORS.get(op) if isinstance(op, str) and op in OP_COLORS else next(spare, "0.4")
              for op in tuning.ops}
    cells = tuning.cells
    fig, axes = plt.subplots(1, len(cells), figsize=(max(7.0, 5.2 * len(cells)), 4.8), squeeze=False)
    label = tuning.metric_label
    for ax, cell in zip(axes[0], cells):
        for op in (o for o in tuning.ops if o in cell.by_op):
            trials = cell.by_op[op]
            curve = trials.curve()
            ns = list(range(1, trials.n + 1))
            mean = [m for m, _ in curve]
            sd = [s for _, s in curve]
            ax.plot(ns, mean, "-o", color=colors[op], markersize=3.5, linewidth=1.4,
                    label=f"{op} (N = {trials.n} trials)")
            ax.fill_between(ns, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                            color=colors[op], alpha=0.15, linewidth=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("tuning trials n (drawn from the N run)")
        ax.set_ylabel(f"expected best {label[0].lower()}{label[1:]} (%)")
        ax.set_title(_cell_label(tuning, cell), fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, title="line: expected best of n; band: ± 1 SD", title_fontsize=8, loc="lower right")
    width = int(11 * fig.get_figwidth())  # characters per line of the 10-point title that fit the figure
    fig.suptitle(textwrap.fill(f"{title or 'Tuning'}; tuned: {', '.join(tuning.tuned)}", width), fontsize=10)
    fig.text(0.5, 0.01, textwrap.fill("Dodge et al. (2019): the expected maximum of n trials drawn with replacement "
             "from the N trials each op ran (the same settings for every op).", int(1.3 * width)),
             ha="center", va="bottom", fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 0.92))
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=130))
    plt.close(fig)


def write_tuning(tuning: Tuning, out_dir: Path, title: str = "") -> List[Path]:
    """tuning.md, tuning.csv and expected_best.png into ``out_dir``."""
    out_dir = Path(out_dir)
    paths = [out_dir / MD_FILE, out_dir / CSV_FILE, out_dir / FIG_FILE]
    heading = f"# {title}" if title else "# Tuning"
    atomic_write_text(paths[0], "\n".join([heading, "", *markdown(tuning)]) + "\n")
    write_csv(tuning, paths[1])
    plot(tuning, paths[2], title)
    return paths
