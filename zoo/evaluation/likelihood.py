"""Importance-sampled NLL through a pipeline's graphs (numpy, no torch): the estimator of
vaezoo.models.metrics, -log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x) with z_k ~ q(z|x), p(z) through the flow with
its log-det (regions.log_prior). The decoder's raw output is read from the backend (Bernoulli logits, or the
mean of a fixed-σ Gaussian); the noise is numpy's, from the seed.
"""

from __future__ import annotations

import math

import numpy as np

from vaezoo.errors import UsageError
from vaezoo.evaluation.metrics import LOG_2PI
from vaezoo.evaluation.regions import log_prior

ROWS = 20_000   # decoded codes per graph call (memory: ROWS x data size floats)


def log_px(kind: str, sigma: float | None, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """log p(x | decoder output) summed over the data dims, float64."""
    x, out = x.reshape(len(x), -1).astype(np.float64), out.reshape(len(out), -1).astype(np.float64)
    if kind == "bernoulli":   # x * l - softplus(l), stable
        return (x * out - np.maximum(out, 0) - np.log1p(np.exp(-np.abs(out)))).sum(1)
    return (-0.5 * ((x - out) ** 2 / sigma**2 + math.log(sigma**2) + LOG_2PI)).sum(1)


def check_nll(pipe) -> None:
    kind = pipe.config["recipe"]["model"]["likelihood"]
    if pipe.conditional:
        raise UsageError(f"nll through the graphs needs an unconditional model; {pipe.id}'s bound sums over the classes "
                         "(its training-time NLL is in metrics.json)")
    if kind not in ("bernoulli", "gaussian"):
        raise UsageError(f"nll through the graphs supports Bernoulli and fixed-sigma Gaussian likelihoods, not {kind!r}")


def importance_nll(pipe, x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(N,) -log p(x) estimates with k importance samples each."""
    check_nll(pipe)
    model = pipe.config["recipe"]["model"]
    kind, sigma = model["likelihood"], (float(model["sigma"]) if model["likelihood"] == "gaussian" else None)
    rng = np.random.default_rng(seed)
    mu, logvar = pipe.encode(x)
    mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
    per = max(1, ROWS // k)
    out = np.empty(len(x))
    for s in range(0, len(x), per):
        m, lv, xb = mu[s : s + per], logvar[s : s + per], x[s : s + per]
        b, d = m.shape
        e = rng.standard_normal((b, k, d))
        z = (m[:, None] + np.exp(0.5 * lv)[:, None] * e).reshape(b * k, d)
        log_q = (-0.5 * (e**2 + lv[:, None] + LOG_2PI)).sum(2).reshape(-1)
        (dec,) = pipe.backend.run("decoder", z.astype(np.float32))
        xr = np.repeat(xb, k, axis=0)
        log_w = (log_px(kind, sigma, xr, dec) + log_prior(pipe, z.astype(np.float32)) - log_q).reshape(b, k)
        top = log_w.max(1, keepdims=True)
        out[s : s + b] = -(top[:, 0] + np.log(np.exp(log_w - top).mean(1)))
    return out
