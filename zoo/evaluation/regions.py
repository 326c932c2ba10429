"""Low-posterior (LP) and high-posterior (HP) samples (REFERENCE.md "Evaluation"; the dpVAE paper's
probe of the prior's holes), through any backend's pipeline (numpy in and out).

* The aggregate posterior q(z) is the mixture of the encoder posteriors N(μ_n, diag σ_n²) of the training
  digits (:func:`vaezoo.evaluation.metrics.mixture_log_density`), in the representation space z, where
  those posteriors are Gaussian.
* LP: ``pool`` x n prior draws (eps ~ N(0, I) from ``seed``, z = prior_inverse(eps)); the n with the lowest
  log q(z) are decoded. They show what the generator makes where the prior samples but the encoder never
  put a digit.
* HP: ``pool`` x n aggregate-posterior draws (a training posterior picked uniformly, then z ~ N(μ, σ²));
  the n with the lowest prior density log p(z) (through the flow for dp models) are decoded.
"""

from __future__ import annotations

import numpy as np

from vaezoo.errors import UsageError
from vaezoo.evaluation.metrics import mixture_log_density, std_normal_log_density
from vaezoo.runtime.pipeline import BATCH

REGIONS = ("lp", "hp")


def check_unconditional(pipe, what: str) -> None:
    if pipe.conditional:
        raise UsageError(f"{what} needs an unconditional model; {pipe.id} decodes (z, y), and its aggregate posterior "
                         "depends on the class")


def dataset_images(pipe, split: str, data_dir=None) -> tuple[np.ndarray, str]:
    """(every example of a split of the model's own dataset as float32 inputs, "name:split (N examples)");
    ``data_dir`` as vaezoo.data.load_dataset's (None: $VAEZOO_DATA, else the default cache)."""
    from vaezoo.data import load_dataset

    name = pipe.config["recipe"]["data"]["name"]
    ds = load_dataset(name, split, data_dir=data_dir)
    return ds.float_batch(slice(None)), f"{name}:{ds.split} ({len(ds)} examples)"


def encode_all(pipe, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar) of q(z|x) for every row of ``x`` (images in [0, 1]), BATCH rows at a time."""
    parts = [pipe.encode(x[s : s + BATCH]) for s in range(0, len(x), BATCH)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def in_batches(fn, z: np.ndarray) -> np.ndarray:
    return np.concatenate([fn(z[s : s + BATCH]) for s in range(0, len(z), BATCH)])


def log_prior(pipe, z: np.ndarray) -> np.ndarray:
    """log p(z) per row, float64: log N(prior_forward(z); 0, I) + its log-det (the flow's density in z)."""
    eps, logdet = pipe.backend.run("prior_forward", pipe.check_latents(z))
    return std_normal_log_density(eps) + logdet.astype(np.float64).reshape(-1)


def posterior_draws(mu: np.ndarray, logvar: np.ndarray, n: int, rng) -> np.ndarray:
    """n draws from the mixture: a posterior picked uniformly, then z ~ N(mu, exp(logvar))."""
    pick = rng.integers(len(mu), size=n)
    return (mu[pick] + np.exp(0.5 * logvar[pick]) * rng.standard_normal((n, *mu.shape[1:]))).astype(np.float32)


def region_latents(pipe, region: str, n: int, seed: int, pool: int, mu: np.ndarray, logvar: np.ndarray):
    """(z of the n kept draws, {"kept": n, "drawn": pool * n, "score": what was ranked}) for LP or HP."""
    check_unconditional(pipe, f"--region {region}")
    if region not in REGIONS:
        raise UsageError(f"--region must be one of {', '.join(REGIONS)}, not {region!r}")
    if pool < 1:
        raise UsageError("--pool must be at least 1")
    total = pool * n
    if region == "lp":
        eps = pipe.noise(total, seed)
        z = in_batches(pipe.from_generation, eps)
        score = mixture_log_density(z, mu, logvar)
        what = "log q(z), the aggregate posterior of the training digits"
    else:
        z = posterior_draws(mu, logvar, total, np.random.default_rng(seed))
        score = in_batches(lambda b: log_prior(pipe, b), z)
        what = "log p(z), the prior's density"
    keep = np.argsort(score, kind="stable")[:n]
    return z[keep].astype(np.float32), {"kept": n, "drawn": total, "ranked_by": what,
                                        "score_max_kept": float(score[keep].max()), "score_median_all": float(np.median(score))}


def region_images(pipe, region: str, n: int, seed: int, pool: int, data_dir=None) -> tuple[np.ndarray, dict]:
    """n LP or HP samples, the aggregate posterior taken over the training split of the model's dataset."""
    check_unconditional(pipe, f"--region {region}")
    mu, logvar = encode_all(pipe, dataset_images(pipe, "train", data_dir)[0])
    z, info = region_latents(pipe, region, n, seed, pool, mu, logvar)
    return in_batches(pipe.decode, z), {**info, "posteriors": len(mu)}
