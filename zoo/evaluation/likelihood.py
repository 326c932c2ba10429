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
CHUNK = 256     # decoder rows per log-likelihood step: its float32 temporaries stay in the CPU's cache


def log_px(kind: str, sigma: float | None, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """log p(x_i | out_ij) summed over the data dims, float64, for out's rows in groups of k = len(out) / len(x)
    per example (x_i is never copied k times). Elementwise in float32, in chunks, each sum accumulated in float64:
    the per-pixel terms are O(10) nats, so a row's rounding error stays near 1e-4 nats."""
    b = len(x)
    k = len(out) // b
    xs = x.reshape(b, -1).astype(np.float32, copy=False)
    outs = out.reshape(b, k, -1)
    res = np.empty((b, k))
    step = max(1, CHUNK // k)
    for s in range(0, b, step):
        xo, o = xs[s : s + step, None, :], outs[s : s + step].astype(np.float32, copy=False)
        if kind == "bernoulli":   # x * l - softplus(l), stable
            t = np.abs(o)
            np.negative(t, out=t)
            np.exp(t, out=t)
            np.log1p(t, out=t)
            t += np.maximum(o, 0)
            t = xo * o - t
            res[s : s + step] = t.sum(2, dtype=np.float64)
        else:
            d = (xo - o) ** 2
            res[s : s + step] = -0.5 * (d.sum(2, dtype=np.float64) / sigma**2 + d.shape[2] * (math.log(sigma**2) + LOG_2PI))
    return res.reshape(-1)


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
    code = mu.shape[1:]   # (latent,), or (T, latent) for DRAW: the proposal is Gaussian over the flattened code
    mu, logvar = mu.reshape(len(x), -1).astype(np.float64), logvar.reshape(len(x), -1).astype(np.float64)
    per = max(1, ROWS // k)
    out = np.empty(len(x))
    for s in range(0, len(x), per):
        m, lv, xb = mu[s : s + per], logvar[s : s + per], x[s : s + per]
        b, d = m.shape
        e = rng.standard_normal((b, k, d))
        z = (m[:, None] + np.exp(0.5 * lv)[:, None] * e).reshape(b * k, *code)
        log_q = (-0.5 * (e**2 + lv[:, None] + LOG_2PI)).sum(2).reshape(-1)
        (dec,) = pipe.backend.run("decoder", z.astype(np.float32))
        log_w = (log_px(kind, sigma, xb, dec) + log_prior(pipe, z.astype(np.float32)) - log_q).reshape(b, k)
        top = log_w.max(1, keepdims=True)
        out[s : s + b] = -(top[:, 0] + np.log(np.exp(log_w - top).mean(1)))
    return out
