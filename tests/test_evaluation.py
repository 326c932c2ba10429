"""The evaluation suite: metrics with known answers (two Gaussians), the FID-LeNet classifier, and
`vaezoo evaluate --metrics ...` / `vaezoo sample --region` run as a user would."""

from __future__ import annotations

import numpy as np
import pytest

from vaezoo.errors import UsageError
from vaezoo.evaluation import metrics as M


def _gauss_kl(mu0, var0, mu1, var1) -> float:
    """KL(N(mu0, diag var0) || N(mu1, diag var1)), closed form."""
    return float(0.5 * np.sum(var0 / var1 + (mu1 - mu0) ** 2 / var1 - 1 + np.log(var1 / var0)))


# ---------------------------------------------------------------- Fréchet distance
def test_frechet_matches_the_closed_form_for_diagonal_gaussians():
    a, b, m = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25]), np.array([1.0, -2.0, 0.5])
    want = m @ m + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)   # 5.25 + 4 + 1 + 0
    assert M.frechet_from_stats(np.zeros(3), np.diag(a), m, np.diag(b)) == pytest.approx(want, abs=1e-9)
    assert M.frechet_from_stats(m, np.diag(a), m, np.diag(a)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_matches_scipy_sqrtm_for_full_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    c1, c2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    want = (mu1 - mu2) @ (mu1 - mu2) + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert M.frechet_from_stats(mu1, c1, mu2, c2) == pytest.approx(want, rel=1e-7)


def test_frechet_on_samples_converges_and_refuses_too_few():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20000, 3))
    y = rng.standard_normal((20000, 3)) * 2.0 + np.array([1.0, 0.0, 0.0])
    assert M.frechet_distance(x, y) == pytest.approx(1.0 + 3 * (2 - 1) ** 2, rel=0.05)
    with pytest.raises(UsageError, match="more samples than the feature size"):
        M.frechet_distance(x[:5], y[:5, :][:, :3].repeat(4, axis=1))


# ---------------------------------------------------------------- k-NN KL and sKL
def test_knn_kl_matches_the_closed_form_of_two_gaussians():
    rng = np.random.default_rng(2)
    mu1, var1 = np.array([1.0, 0.0]), np.array([2.0, 0.5])
    x = rng.standard_normal((5000, 2))
    y = mu1 + rng.standard_normal((5000, 2)) * np.sqrt(var1)
    kl_pq, kl_qp = _gauss_kl(np.zeros(2), np.ones(2), mu1, var1), _gauss_kl(mu1, var1, np.zeros(2), np.ones(2))
    assert M.knn_kl(x, y) == pytest.approx(kl_pq, abs=0.1)
    assert M.knn_kl(y, x, k=5) == pytest.approx(kl_qp, abs=0.1)
    same = rng.standard_normal((5000, 2))
    assert abs(M.symmetric_kl(x, same)) < 0.1   # the 1-NN estimator's spread at n = 5,000 is a few hundredths


def test_knn_kl_refuses_bad_shapes_and_k():
    with pytest.raises(UsageError):
        M.knn_kl(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(UsageError):
        M.knn_kl(np.zeros((10, 2)), np.zeros((10, 2)), k=10)


# ---------------------------------------------------------------- aggregate posterior and leakage
def test_mixture_log_density_is_the_gaussian_mixture():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((7, 3))
    mu, logvar = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)) * 0.3

    def logpdf(m, lv):
        return -0.5 * np.sum((z - m) ** 2 / np.exp(lv) + lv + np.log(2 * np.pi), axis=1)

    want = np.log(0.5 * np.exp(logpdf(mu[0], logvar[0])) + 0.5 * np.exp(logpdf(mu[1], logvar[1])))
    np.testing.assert_allclose(M.mixture_log_density(z, mu, logvar), want, rtol=1e-10)
    np.testing.assert_allclose(M.mixture_log_density(z, mu[:1], logvar[:1]), logpdf(mu[0], logvar[0]), rtol=1e-10)


def test_leakage_is_the_level_when_the_posterior_is_the_prior_and_more_when_it_leaks():
    rng = np.random.default_rng(4)
    prior = M.std_normal_log_density(rng.standard_normal((20000, 2)))
    same = M.std_normal_log_density(rng.standard_normal((20000, 2)))
    wide = M.std_normal_log_density(3 * rng.standard_normal((20000, 2)))
    levels = [0.05, 0.25, 0.5]
    for row, a in zip(M.leakage_curve(prior, same, levels), levels):
        assert row["leakage"] == pytest.approx(a, abs=0.02)
    # N(0, 9 I) puts exp(-r^2 / 18) of its mass beyond the prior's radius r with exp(-r^2 / 2) = a
    for row, a in zip(M.leakage_curve(prior, wide, levels), levels):
        assert row["leakage"] == pytest.approx(a ** (1 / 9), abs=0.02)

