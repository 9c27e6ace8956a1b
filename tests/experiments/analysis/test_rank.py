"""Effective rank and energy counts (``experiments.analysis.rank``) on matrices whose spectrum is known."""
import math

import pytest
import torch

from experiments.analysis.rank import effective_rank, energy_count, rank_stats, spectrum


def with_spectrum(singular_values, n=200, seed=0):
    """An (n, d) matrix U diag(s) V^T with orthonormal U, V: its singular values are exactly ``s``."""
    g = torch.Generator().manual_seed(seed)
    s = torch.as_tensor(singular_values, dtype=torch.float64)
    d = len(s) + 3
    u, _ = torch.linalg.qr(torch.randn(n, len(s), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, len(s), generator=g, dtype=torch.float64))
    return u @ torch.diag(s) @ v.T


@pytest.mark.parametrize("r", [1, 3, 10])
def test_rank_r_with_equal_singular_values(r):
    x = with_spectrum([2.5] * r)
    st = rank_stats(x, center=False)
    assert st.effective_rank == pytest.approx(r, rel=1e-9)
    assert st.numerical_rank == r and st.energy_99 == r and st.energy_90 == math.ceil(0.9 * r)
    assert (st.n, st.dim) == (200, r + 3)


def test_low_rank_product_of_random_factors():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 4, generator=g, dtype=torch.float64) @ torch.randn(4, 64, generator=g, dtype=torch.float64)
    st = rank_stats(x, center=False)
    assert st.numerical_rank == 4 and 1 < st.effective_rank <= 4 and st.energy_99 <= 4


def test_known_entropy_and_energy():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    p = s / s.sum()
    assert effective_rank(s) == pytest.approx(math.exp(-(p * p.log()).sum().item()))
    # energies 16, 4, 1, 1 of 22: 72.7%, 90.9%, 95.5%, 100%
    assert energy_count(s, 0.90) == 2 and energy_count(s, 0.95) == 3 and energy_count(s, 0.99) == 4
    x = with_spectrum(s.tolist())
    assert rank_stats(x, center=False).effective_rank == pytest.approx(effective_rank(s), rel=1e-9)


def test_centering_removes_a_shared_offset():
    column = with_spectrum([1.0], n=50)[:, :1]   # one direction of variation, the same in every column
    x = 3.0 + column @ torch.ones(1, 8, dtype=torch.float64)
    assert rank_stats(torch.ones(50, 8) * 3.0, center=True).effective_rank == 0.0   # a constant: no variation
    assert rank_stats(torch.ones(50, 8) * 3.0, center=False).effective_rank == pytest.approx(1.0)
    assert rank_stats(x, center=True).numerical_rank == 1


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(n, d\) matrix"):
        spectrum(torch.zeros(3, 4, 5))
    with pytest.raises(ValueError, match="energy level"):
        energy_count(torch.ones(3), 1.5)
    assert energy_count(torch.zeros(0), 0.9) == 0 and effective_rank(torch.zeros(0)) == 0.0
