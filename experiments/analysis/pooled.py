"""Pooled star-vs-sum statistics over every (row, seed) pair of a sweep (docs/protocol.md, "pooled test").

A per-row paired t interval answers "at this width?"; the questions a sweep is run for are "at every
width?" and "how sure are we?". Over all pairs (a row is a stratum: width, depth, ...):

- the mean gap (test − base) with a stratified 95% t interval (each stratum's variance weighted by its
  share of the pairs, Welch–Satterthwaite degrees of freedom), so that differences between the rows'
  means are not counted as noise;
- wins / ties / losses of the test op;
- the probability of improvement P(test > base) (ties count half), as Bouthillier et al. (2021) define it
  for paired runs, with a percentile bootstrap CI that resamples pairs within each stratum;
- the relative error-rate reduction (err_base − err_test) / err_base, with the same bootstrap;
- the Wilcoxon signed-rank test over all pairs (scipy), a check that needs no normality.

Significance needs at least 3 pairs and a non-degenerate spread; otherwise it is None ("n/a").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

LEVEL = 0.95
N_BOOT = 10_000
BOOT_SEED = 0

Pairs = Mapping[Hashable, Tuple[Mapping[Hashable, float], Mapping[Hashable, float]]]  # stratum -> (base, test)


@dataclass
class Pooled:
    n_pairs: int
    n_strata: int
    mean: Optional[float] = None          # mean gap over all pairs (points)
    lo: Optional[float] = None            # stratified t interval of the mean gap
    hi: Optional[float] = None
    df: Optional[float] = None
    wins: int = 0
    ties: int = 0
    losses: int = 0
    p_improve: Optional[float] = None     # P(test > base), ties half
    p_improve_lo: Optional[float] = None
    p_improve_hi: Optional[float] = None
    rel_err: Optional[float] = None       # (err_base - err_test) / err_base, from mean errors
    rel_err_lo: Optional[float] = None
    rel_err_hi: Optional[float] = None
    wilcoxon_p: Optional[float] = None
    reason: Optional[str] = None          # why significance is n/a

    @property
    def significant(self) -> Optional[bool]:
        if self.lo is None or self.reason:
            return None
        return self.lo > 0 or self.hi < 0


def pair_up(pairs: Pairs) -> Dict[Hashable, List[Tuple[float, float]]]:
    """stratum -> [(base, test)] over the seeds both ops have, in seed order."""
    out = {}
    for stratum, (base, test) in pairs.items():
        both = [(base[s], test[s]) for s in sorted(base, key=str) if s in test]
        if both:
            out[stratum] = both
    return out


def stratified_t(gaps_by_stratum: Sequence[np.ndarray], level: float = LEVEL) -> Tuple[float, Optional[float], Optional[float]]:
    """Mean over all pairs, weighted by stratum size, and its stratified t half-width and df.
    Strata with one pair carry no variance estimate: the interval is undefined then."""
    from scipy.stats import t
    n = sum(len(g) for g in gaps_by_stratum)
    mean = float(sum(g.sum() for g in gaps_by_stratum) / n)
    if any(len(g) < 2 for g in gaps_by_stratum):
        return mean, None, None
    terms = [(len(g) / n) ** 2 * g.var(ddof=1) / len(g) for g in gaps_by_stratum]
    var = sum(terms)
    if var <= 0:
        return mean, 0.0, None
    df = var ** 2 / sum(term ** 2 / (len(g) - 1) for term, g in zip(terms, gaps_by_stratum))
    return mean, float(t.ppf(0.5 + level / 2, df)) * math.sqrt(var), float(df)


def p_improvement(base: np.ndarray, test: np.ndarray) -> float:
    return float(np.mean((test > base) + 0.5 * (test == base)))


def rel_error_reduction(base: np.ndarray, test: np.ndarray) -> Optional[float]:
    err_base, err_test = np.mean(100.0 - base), np.mean(100.0 - test)
    return None if err_base <= 0 else float((err_base - err_test) / err_base)


def stratified_bootstrap(strata: Sequence[np.ndarray], stat, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                         level: float = LEVEL) -> Tuple[Optional[float], Optional[float]]:
    """Percentile CI of ``stat(base, test)``, resampling (base, test) pairs with replacement within each
    stratum (so every resample has each row's number of pairs). Fixed seed: the same CI every time."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        picked = [s[rng.integers(0, len(s), len(s))] for s in strata]
        both = np.concatenate(picked)
        value = stat(both[:, 0], both[:, 1])
        if value is not None:
            draws.append(value)
    if not draws:
        return None, None
    alpha = (1 - level) / 2
    return float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))


def pooled(pairs: Pairs, level: float = LEVEL, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> Pooled:
    """The pooled analysis of every paired (base, test) value in ``pairs`` (metric in percent)."""
    by_stratum = pair_up(pairs)
    strata = [np.asarray(v, dtype=float) for v in by_stratum.values()]
    n = sum(len(s) for s in strata)
    result = Pooled(n_pairs=n, n_strata=len(strata))
    if n == 0:
        result.reason = "no paired runs"
        return result
    both = np.concatenate(strata)
    gaps = both[:, 1] - both[:, 0]
    result.wins, result.ties, result.losses = int((gaps > 0).sum()), int((gaps == 0).sum()), int((gaps < 0).sum())
    result.p_improve = p_improvement(both[:, 0], both[:, 1])
    result.rel_err = rel_error_reduction(both[:, 0], both[:, 1])
    mean, half, df = stratified_t([s[:, 1] - s[:, 0] for s in strata], level)
    result.mean, result.df = mean, df
    if n < 3:
        result.reason = f"{n} pair{'s' if n != 1 else ''} (needs >= 3)"
    elif half is None:
        result.reason = "a row with a single pair has no spread estimate"
    elif half == 0 or df is None:
        result.reason = "every row's paired gaps are identical (no spread)"
    if half is not None:
        result.lo, result.hi = mean - half, mean + half
    if n >= 2:
        result.p_improve_lo, result.p_improve_hi = stratified_bootstrap(strata, p_improvement, n_boot, seed, level)
        result.rel_err_lo, result.rel_err_hi = stratified_bootstrap(strata, rel_error_reduction, n_boot, seed, level)
    if n >= 3 and np.any(gaps != 0):
        from scipy.stats import wilcoxon
        result.wilcoxon_p = float(wilcoxon(gaps).pvalue)
    return result


def as_dict(p: Pooled) -> Dict[str, Any]:
    """Flat fields for summary.csv / W&B."""
    return {"pooled_pairs": p.n_pairs, "pooled_gap": p.mean, "pooled_gap_lo": p.lo, "pooled_gap_hi": p.hi,
            "pooled_wins": p.wins, "pooled_ties": p.ties, "pooled_losses": p.losses,
            "p_improve": p.p_improve, "p_improve_lo": p.p_improve_lo, "p_improve_hi": p.p_improve_hi,
            "rel_err_reduction": p.rel_err, "rel_err_reduction_lo": p.rel_err_lo,
            "rel_err_reduction_hi": p.rel_err_hi, "wilcoxon_p": p.wilcoxon_p,
            "pooled_significant": p.significant}


def signed_percent(fraction: Optional[float]) -> str:
    """A fraction as a signed percentage: one decimal, or as many more (up to three) as a value needs not to read as
    0.0 (a reduction of -0.04% printed "-0.0%", and its interval "[-0.1%, -0.0%]")."""
    if fraction is None:
        return "–"
    value = 100 * fraction
    if value == 0:
        return "0.0%"
    decimals = next((d for d in (1, 2, 3) if round(abs(value), d) != 0), None)
    return f"{value:+.{decimals}f}%" if decimals is not None else f"{value:+.1e}%"


def markdown(p: Pooled, base: str, test: str, level: float = LEVEL) -> List[str]:
    """The pooled section of summary.md."""
    def num(x, fmt="{:+.2f}"):
        return "–" if x is None else fmt.format(x)

    sig = {None: f"n/a ({p.reason})" if p.reason else "n/a", True: "yes", False: "no"}[p.significant]
    ci = f"[{num(p.lo)}, {num(p.hi)}]" if p.lo is not None else "–"
    return [
        f"## Pooled over all {p.n_pairs} pairs ({p.n_strata} row{'s' if p.n_strata != 1 else ''})", "",
        "| statistic | value |", "|---|---|",
        f"| mean gap {test} − {base} (points) [{level:.0%} stratified t CI] | {num(p.mean)} {ci} |",
        f"| significant (CI excludes 0) | {sig} |",
        f"| {test} wins / ties / losses | {p.wins} / {p.ties} / {p.losses} |",
        f"| P({test} > {base}) [{level:.0%} stratified bootstrap CI] | {num(p.p_improve, '{:.2f}')} "
        f"[{num(p.p_improve_lo, '{:.2f}')}, {num(p.p_improve_hi, '{:.2f}')}] |",
        f"| relative error-rate reduction [{level:.0%} bootstrap CI] | {signed_percent(p.rel_err)} "
        f"[{signed_percent(p.rel_err_lo)}, {signed_percent(p.rel_err_hi)}] |",
        f"| Wilcoxon signed-rank p (all pairs) | {num(p.wilcoxon_p, '{:.3g}')} |", "",
        f"Pooled: every ({', '.join(['row', 'seed'])}) pair counts once. The mean gap's interval weights each row's "
        "variance by its share of the pairs (Welch–Satterthwaite df), so differences between rows are not noise; "
        f"the bootstrap resamples pairs within rows ({N_BOOT:,} draws, seed {BOOT_SEED}). Ties count half in "
        f"P({test} > {base}).",
    ]


def bonferroni(p: Pooled, comparisons: int, level: float = LEVEL) -> Tuple[Optional[float], Optional[float]]:
    """The mean gap's interval at the Bonferroni level 1 − (1 − level) / comparisons: ``p``'s stratified t interval
    widened by the ratio of the two t quantiles (same standard error, same df); (None, None) without an interval."""
    if p.lo is None or p.df is None or p.reason:
        return None, None
    from .stats import t_quantile
    alpha = 1 - level
    half = (p.hi - p.lo) / 2 * t_quantile(1 - alpha / (2 * comparisons), p.df) / t_quantile(1 - alpha / 2, p.df)
    return p.mean - half, p.mean + half


def markdown_many(results: Mapping[Any, Pooled], base: str, level: float = LEVEL) -> List[str]:
    """The pooled section of summary.md for several ops, each against ``base``: one line per op, with the mean gap's
    interval also at the Bonferroni level for that many comparisons (docs/protocol.md, amendment 5)."""
    def num(x, fmt="{:+.2f}"):
        return "–" if x is None else fmt.format(x)

    k = max(len(results), 1)
    bonf_level = 1 - (1 - level) / k
    lines = [f"## Pooled over all (row, seed) pairs, each op against {base}", "",
             f"| op | pairs (rows) | mean gap op − {base} (points) [{level:.0%} stratified t CI] | significant "
             f"| [{bonf_level:.2%} CI] (Bonferroni, {k} comparisons) | significant (Bonferroni) "
             f"| wins / ties / losses | P(op > {base}) [{level:.0%} stratified bootstrap CI] "
             f"| relative error-rate reduction [{level:.0%} bootstrap CI] | Wilcoxon signed-rank p |",
             "|---|---:|---:|:---:|---:|:---:|---:|---:|---:|---:|"]
    for op, p in results.items():
        sig = {None: f"n/a ({p.reason})" if p.reason else "n/a", True: "yes", False: "no"}[p.significant]
        ci = f" [{num(p.lo)}, {num(p.hi)}]" if p.lo is not None else ""
        b_lo, b_hi = bonferroni(p, k, level)
        b_ci = "–" if b_lo is None else f"[{num(b_lo)}, {num(b_hi)}]"
        b_sig = "n/a" if b_lo is None else ("yes" if b_lo > 0 or b_hi < 0 else "no")
        lines.append(f"| {op} | {p.n_pairs} ({p.n_strata}) | {num(p.mean)}{ci} | {sig} | {b_ci} | {b_sig} "
                     f"| {p.wins} / {p.ties} / {p.losses} "
                     f"| {num(p.p_improve, '{:.2f}')} "
                     f"[{num(p.p_improve_lo, '{:.2f}')}, {num(p.p_improve_hi, '{:.2f}')}] "
                     f"| {signed_percent(p.rel_err)} [{signed_percent(p.rel_err_lo)}, {signed_percent(p.rel_err_hi)}] "
                     f"| {num(p.wilcoxon_p, '{:.3g}')} |")
    lines += ["", f"Pooled: for each op, every (row, seed) pair with {base} counts once. The mean gap's interval "
              "weights each row's variance by its share of the pairs (Welch–Satterthwaite df), so differences "
              f"between rows are not noise; the bootstrap resamples pairs within rows ({N_BOOT:,} draws, seed "
              f"{BOOT_SEED}). Ties count half in P(op > {base}). Each line is its own test at {level:.0%}; the "
              f"Bonferroni columns correct for the {k} comparisons with {base} (level 1 − {1 - level:.2f}/{k})."]
    return lines
