"""Distribution distances on samples (numpy only; definitions in REFERENCE.md "Evaluation metrics").

* Fréchet distance ``‖μ_1 − μ_2‖² + Tr(Σ_1 + Σ_2 − 2(Σ_1 Σ_2)^½)`` between Gaussians fitted to two feature
  sets. scipy is not a base dependency, so the trace of the matrix square root is taken from eigenvalues:
  Σ_1 Σ_2 is similar to the symmetric PSD matrix S Σ_2 S with S = Σ_1^½, so Tr((Σ_1 Σ_2)^½) is the sum of
  the square roots of that matrix's eigenvalues (no complex round-off as with sqrtm).
* k-NN KL estimator (Pérez-Cruz 2008; Wang, Kulkarni & Verdú 2009) of KL(p‖q) from x ~ p (n) and y ~ q (m)
  in d dimensions: ``d/n Σ_i log(ν_k(i) / ρ_k(i)) + log(m / (n − 1))``, ρ_k(i) the distance from x_i to its
  k-th nearest other x, ν_k(i) to its k-th nearest y. sKL = KL(p‖q) + KL(q‖p).
* Aggregate posterior q(z) = 1/N Σ_n N(z; μ_n, diag σ_n²), the mixture of N encoder posteriors.
* Leakage curve (our definition; the paper's formula did not survive): for a prior-mass level α, τ_α is the
  α-quantile of log p(z) under z ~ p (so the prior puts mass α below τ_α), and leakage(α) is the share of
  aggregate-posterior samples with log p(z) < τ_α: the posterior mass in the prior's low-density region.
  A posterior that matches the prior gives leakage(α) = α; more means mass where the prior rarely samples.
"""

from __future__ import annotations

import numpy as np

from vaezoo.errors import UsageError

LOG_2PI = float(np.log(2 * np.pi))
CHUNK = 1024   # rows per block of pairwise computations (memory stays at CHUNK x N)


def gaussian_stats(features: np.ndarray, what: str = "features") -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of N x D features; fewer samples than D (a singular covariance) is refused."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise UsageError(f"{what} must be an N x D array, got shape {f.shape}")
    if f.shape[0] < f.shape[1] + 1:
        raise UsageError(f"{what}: {f.shape[0]} samples for {f.shape[1]} features; the Fréchet distance needs more "
                         f"samples than the feature size (ideally 10,000 or more)")
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_from_stats(mu1, cov1, mu2, cov2) -> float:
    s1 = _sqrt_psd(np.asarray(cov1, dtype=np.float64))
    m = s1 @ np.asarray(cov2, dtype=np.float64) @ s1
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two N x D feature sets."""
    return frechet_from_stats(*gaussian_stats(real, "real features"), *gaussian_stats(fake, "generated features"))


def _kth_distances(a: np.ndarray, b: np.ndarray, k: int, skip_self: bool) -> np.ndarray:
    """Distance from each row of ``a`` to its k-th nearest row of ``b`` (``skip_self``: a is b, ignore i = j)."""
    b2 = (b * b).sum(1)
    out = np.empty(len(a))
    for s in range(0, len(a), CHUNK):
        blk = a[s : s + CHUNK]
        d2 = (blk * blk).sum(1)[:, None] + b2[None, :] - 2 * blk @ b.T
        if skip_self:
            d2[np.arange(len(blk)), np.arange(s, s + len(blk))] = np.inf
        out[s : s + len(blk)] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.clip(out, 0, None))


def knn_kl(x: np.ndarray, y: np.ndarray, k: int = 1) -> float:
    """KL(p‖q) estimated from x ~ p and y ~ q (rows are points) by k-th nearest-neighbour distances."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise UsageError(f"k-NN KL needs two N x D sample sets of the same D, got {x.shape} and {y.shape}")
    if not 1 <= k < min(len(x), len(y)):
        raise UsageError(f"k-NN KL: k = {k} must be at least 1 and below the sample counts ({len(x)}, {len(y)})")
    n, m, d = len(x), len(y), x.shape[1]
    rho = _kth_distances(x, x, k, skip_self=True)
    nu = _kth_distances(x, y, k, skip_self=False)
    tiny = np.finfo(np.float64).tiny   # duplicated points: keep the logs finite
    return float(d * np.mean(np.log(np.maximum(nu, tiny)) - np.log(np.maximum(rho, tiny))) + np.log(m / (n - 1)))


def symmetric_kl(x: np.ndarray, y: np.ndarray, k: int = 1) -> float:
    return knn_kl(x, y, k) + knn_kl(y, x, k)


def std_normal_log_density(eps: np.ndarray) -> np.ndarray:
    """log N(eps; 0, I) per row; a row may be a code of several axes (DRAW's T x latent)."""
    eps = np.asarray(eps, dtype=np.float64).reshape(len(eps), -1)
    return -0.5 * ((eps * eps).sum(1) + eps.shape[1] * LOG_2PI)


def mixture_log_density(z: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """log q(z) of each row of ``z`` under the equal-weight mixture of N(μ_n, diag exp(logvar_n))."""
    z, mu, logvar = (np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (z, mu, logvar))
    inv = np.exp(-logvar)                                                   # N x D
    const = -0.5 * ((mu * mu * inv).sum(1) + logvar.sum(1) + mu.shape[1] * LOG_2PI)   # N
    out = np.empty(len(z))
    for s in range(0, len(z), CHUNK):
        blk = z[s : s + CHUNK]
        logp = const[None, :] - 0.5 * ((blk * blk) @ inv.T) + blk @ (mu * inv).T   # B x N
        top = logp.max(1, keepdims=True)
        out[s : s + len(blk)] = (top[:, 0] + np.log(np.exp(logp - top).sum(1))) - np.log(len(mu))
    return out


def leakage_curve(prior_logp_of_prior: np.ndarray, prior_logp_of_posterior: np.ndarray, levels) -> list[dict]:
    """[{level α, tau τ_α, leakage}] as the module docstring defines them."""
    out = []
    for a in levels:
        tau = float(np.quantile(prior_logp_of_prior, a))
        out.append({"level": float(a), "tau": tau, "leakage": float(np.mean(prior_logp_of_posterior < tau))})
    return out
