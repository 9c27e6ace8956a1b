"""The statistics of a star-vs-sum comparison: mean and sample std over seeds, and the paired gap with its
two-sided t confidence interval (the paper reports one run per point; a gap of a few tenths can be seed noise)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

LEVEL = 0.95


@dataclass
class Gap:
    n: int
    mean: Optional[float] = None
    lo: Optional[float] = None
    hi: Optional[float] = None

    @property
    def reason(self) -> Optional[str]:
        """Why significance is n/a (None when it is defined)."""
        if self.n < 3:
            return f"{self.n} pair{'s' if self.n != 1 else ''}"
        if self.lo is None or self.lo == self.hi:
            return "no spread"
        return None

    @property
    def significant(self) -> Optional[bool]:
        """The interval excludes 0; None with fewer than 3 pairs or identical paired gaps (a zero-width
        interval says nothing about the noise)."""
        return None if self.reason else (self.lo > 0 or self.hi < 0)


def mean_std(xs: Sequence[float]) -> Tuple[Optional[float], Optional[float]]:
    """Mean and sample standard deviation (None where undefined)."""
    if not xs:
        return None, None
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def pooled_sd(groups: Sequence[Sequence[float]]) -> Tuple[Optional[float], int]:
    """The pooled within-group SD, sqrt(sum (n_g − 1) s_g² / sum (n_g − 1)), and its degrees of freedom; groups of
    one value add nothing. (None, 0) when no group has two values."""
    ss, df = 0.0, 0
    for values in groups:
        if len(values) >= 2:
            mean = sum(values) / len(values)
            ss += sum((v - mean) ** 2 for v in values)
            df += len(values) - 1
    return (math.sqrt(ss / df) if df else None), df


def t_quantile(p: float, df: int) -> float:
    from scipy.stats import t  # scipy comes with scikit-learn
    return float(t.ppf(p, df))


def paired_diffs(base: Dict[Any, float], test: Dict[Any, float]) -> Dict[Any, float]:
    """test - base for each seed (key) both have, in base's order."""
    return {s: test[s] - base[s] for s in base if s in test}


def t_interval(values: Sequence[float], level: float = LEVEL) -> Gap:
    """Mean of ``values`` (one per seed) and its two-sided t interval, as a Gap."""
    mean, std = mean_std(list(values))
    if std is None:
        return Gap(len(values), mean)
    half = t_quantile(0.5 + level / 2, len(values) - 1) * std / math.sqrt(len(values))
    return Gap(len(values), mean, mean - half, mean + half)


def paired_gap(base: Dict[Any, float], test: Dict[Any, float], level: float = LEVEL) -> Gap:
    """test - base over the seeds both have: mean and a two-sided paired t interval."""
    return t_interval(list(paired_diffs(base, test).values()), level)


def per_seed_fits(gaps_at: Dict[float, Dict[Any, float]], min_points: int = 3) -> Dict[Any, Tuple[float, float]]:
    """``gaps_at[x][seed]``: a seed's paired gap at level x. For each seed with gaps at ``min_points`` or more
    levels, the least-squares line (slope, intercept) of its gaps on x (so the seeds stay the unit of replication)."""
    import numpy as np
    seeds = {seed: None for gaps in gaps_at.values() for seed in gaps}
    fits = {}
    for seed in seeds:
        points = [(x, gaps[seed]) for x, gaps in sorted(gaps_at.items()) if seed in gaps]
        if len(points) >= min_points:
            xs, ys = zip(*points)
            slope, intercept = np.polyfit(xs, ys, 1)
            fits[seed] = (float(slope), float(intercept))
    return fits


def per_seed_slopes(gaps_at: Dict[float, Dict[Any, float]], min_points: int = 3) -> Dict[Any, float]:
    """The slopes of ``per_seed_fits``."""
    return {seed: fit[0] for seed, fit in per_seed_fits(gaps_at, min_points).items()}


def trend(gaps_at: Dict[float, Dict[Any, float]], level: float = LEVEL) -> Gap:
    """How a paired gap changes per doubling of a positive level (``gaps_at[level][seed]``): each seed's
    least-squares slope of its gaps on log2(level), their mean and t interval over seeds (docs/protocol.md,
    amendment 4)."""
    return t_interval(list(per_seed_slopes({math.log2(x): gaps for x, gaps in gaps_at.items()}).values()), level)


def trend_band(gaps_at: Dict[float, Dict[Any, float]], levels: Sequence[float],
               level: float = LEVEL) -> List[Tuple[float, Optional[float], Optional[float]]]:
    """The fitted trend line of ``trend`` at each of ``levels``: every seed's own line evaluated there, their mean
    and t interval over seeds (the mean line's slope is ``trend``'s mean), for drawing it with its band."""
    fits = per_seed_fits({math.log2(x): gaps for x, gaps in gaps_at.items()})
    return [mean_ci([slope * math.log2(x) + intercept for slope, intercept in fits.values()], level)
            for x in levels]


def p_value(mean: float, lo: Optional[float], hi: Optional[float], df: Optional[float],
            level: float = LEVEL) -> Optional[float]:
    """The two-sided p of the t test of mean = 0 behind a symmetric t interval [lo, hi] at ``level`` with ``df``
    degrees of freedom (its standard error is the half-width over the t quantile); None without an interval."""
    if lo is None or hi is None or not df or hi <= lo:
        return None
    from scipy.stats import t
    se = (hi - lo) / 2 / t_quantile(0.5 + level / 2, df)
    return float(2 * t.sf(abs(mean) / se, df))


def gap_p_value(gap: Gap, level: float = LEVEL) -> Optional[float]:
    """``p_value`` of a ``t_interval`` (n − 1 degrees of freedom)."""
    return None if gap.mean is None else p_value(gap.mean, gap.lo, gap.hi, gap.n - 1, level)


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values, in the input's order: the k-th smallest p times (m − k + 1), made
    non-decreasing, capped at 1. A test is significant at family level alpha when its adjusted p <= alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def mean_ci(xs: Sequence[float], level: float = LEVEL) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    """Mean and its two-sided t interval over ``xs`` (lo/hi None for one value or no spread)."""
    g = t_interval(xs, level)
    return (g.mean, None, None) if g.lo is None or g.lo == g.hi else (g.mean, g.lo, g.hi)
