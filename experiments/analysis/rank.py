"""How many dimensions a set of feature vectors spans: the math of the implicit-dimension probe
(``scripts/probe_dimension.py``).

For an (n, d) matrix of n feature vectors, with singular values s_1 >= ... >= s_k (k = min(n, d)):

- **effective rank** (Roy & Vetterli 2007): exp(H(p)), the entropy H of p_i = s_i / sum_j s_j. It is r for a
  matrix with r equal non-zero singular values and 1 for a rank-one matrix; in between it weighs each
  direction by its share of the singular-value mass, so it is a continuous "number of dimensions used";
- **energy counts**: the least number of singular values whose squares (the variance along each direction)
  reach a fraction q of the total, sum_{i<=m} s_i^2 >= q sum_i s_i^2 (q = 0.90 and 0.99 in the probe).

``spectrum(x, center=True)`` removes the column means first (the probe does: a constant offset shared by all
vectors is not a dimension of their variation). Everything is computed in float64.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import torch

ENERGY_LEVELS = (0.90, 0.99)
# Singular values below this fraction of the largest are numerical zeros (rounding of a low-rank product).
RTOL = 1e-10


@dataclass
class RankStats:
    n: int                       # vectors
    dim: int                     # their dimension
    effective_rank: float        # exp(entropy of the normalised singular values)
    energy_90: int               # singular values to reach 90% of the energy (sum of squares)
    energy_99: int
    numerical_rank: int          # singular values above RTOL of the largest

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


def spectrum(x: torch.Tensor, center: bool = True) -> torch.Tensor:
    """Singular values of the (n, d) matrix ``x`` (its column means removed when ``center``), descending,
    the numerical zeros dropped."""
    if x.dim() != 2:
        raise ValueError(f"spectrum needs an (n, d) matrix, got shape {tuple(x.shape)}")
    x = x.detach().to(torch.float64)
    if center:
        x = x - x.mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(x)
    if s.numel() == 0 or float(s[0]) == 0.0:
        return s[:0]
    return s[s > RTOL * s[0]]


def effective_rank(s: torch.Tensor) -> float:
    """exp(-sum p_i log p_i), p = s / sum(s), for singular values ``s`` (0 for none)."""
    s = s.to(torch.float64)
    s = s[s > 0]
    if s.numel() == 0:
        return 0.0
    p = s / s.sum()
    return float(torch.exp(-(p * p.log()).sum()))


def energy_count(s: torch.Tensor, level: float) -> int:
    """The least m with sum_{i<=m} s_i^2 >= level * sum_i s_i^2 (``s`` descending; 0 for none)."""
    if not 0 < level <= 1:
        raise ValueError(f"energy level must be in (0, 1], got {level}")
    e = s.to(torch.float64) ** 2
    if e.numel() == 0 or float(e.sum()) == 0.0:
        return 0
    cum = torch.cumsum(e, 0) / e.sum()
    # a tolerance so that exactly reaching the level (equal singular values) counts as reaching it
    return int(torch.searchsorted(cum, torch.tensor(level - 1e-12, dtype=torch.float64)).item()) + 1


def rank_stats(x: torch.Tensor, center: bool = True) -> RankStats:
    """Effective rank, 90%/99% energy counts and numerical rank of the (n, d) matrix ``x``."""
    s = spectrum(x, center)
    return RankStats(n=int(x.shape[0]), dim=int(x.shape[1]), effective_rank=effective_rank(s),
                     energy_90=energy_count(s, ENERGY_LEVELS[0]), energy_99=energy_count(s, ENERGY_LEVELS[1]),
                     numerical_rank=int(s.numel()))

