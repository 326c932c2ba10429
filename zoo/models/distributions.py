"""The distribution math every model shares, written once (torch).

* :class:`DiagGaussian`: q(z|x) = N(mu, diag(exp(logvar))): reparameterised samples, log-density,
  entropy, and the KL to a prior (closed form for N(0, I); entropy plus a one-sample Monte Carlo
  estimate through the prior's density for the decoupled prior's flow).
* :class:`Likelihood`: log p(x|decoder output) summed over the data dimensions, for ``bernoulli``
  (the decoder gives logits), ``gaussian`` (fixed sigma: the decoder gives the mean) and
  ``learned_gaussian`` (the mean, with a learned log-variance per dimension passed in).
* :func:`importance_nll`: -log p(x) ~= -log (1/K) sum_k w_k, the one importance-sampled NLL that every
  model's held-out metrics use; a model only says how it draws its log weights.

Convention: per-example values are summed over dimensions; nothing here averages over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)
LIKELIHOODS = ("bernoulli", "gaussian", "learned_gaussian")


def gaussian_log_density(z, mu, logvar):
    """Elementwise log N(z; mu, exp(logvar)) (not summed: callers sum the axes they need)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def std_normal_log_density(eps: torch.Tensor) -> torch.Tensor:
    """Per-example log N(eps; 0, I), summed over the last axis."""
    return -0.5 * (eps.pow(2) + LOG_2PI).sum(dim=-1)


@dataclass
class DiagGaussian:
    mu: torch.Tensor
    logvar: torch.Tensor

    def sample(self, k: int | None = None) -> torch.Tensor:
        """One reparameterised draw per row (B x D), or ``k`` per row (B x k x D)."""
        std = torch.exp(0.5 * self.logvar)
        if k is None:
            return self.mu + torch.randn_like(self.mu) * std
        b, d = self.mu.shape
        return self.mu.unsqueeze(1) + torch.randn(b, k, d, device=self.mu.device, dtype=self.mu.dtype) * std.unsqueeze(1)

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z), summed over the latent dims; z is B x D or B x k x D."""
        mu, logvar = (self.mu, self.logvar) if z.dim() == 2 else (self.mu.unsqueeze(1), self.logvar.unsqueeze(1))
        return gaussian_log_density(z, mu, logvar).sum(-1)

    def entropy(self) -> torch.Tensor:
        return 0.5 * (LOG_2PI + 1 + self.logvar).sum(1)

    def kl_standard_normal(self) -> torch.Tensor:
        """KL(q || N(0, I)) in closed form."""
        return 0.5 * (self.mu.pow(2) + self.logvar.exp() - 1 - self.logvar).sum(1)

    def kl(self, prior, z: torch.Tensor) -> torch.Tensor:
        """KL(q || prior): closed form for N(0, I); otherwise -H(q) - log p(z) at the sample ``z``
        (dpVAE: log p(z) through the flow, log-determinant included)."""
        if prior.is_standard:
            return self.kl_standard_normal()
        return -self.entropy() - prior.log_prob(z)


@dataclass(frozen=True)
class Likelihood:
    kind: str
    sigma: float | None = None   # the fixed sigma of "gaussian"

    def __post_init__(self):
        if self.kind not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.kind!r} ({', '.join(LIKELIHOODS)})")
        if self.kind == "gaussian" and not (self.sigma is not None and self.sigma > 0):
            raise ValueError(f"a gaussian likelihood needs model.sigma > 0, not {self.sigma!r}")

    @classmethod
    def from_recipe(cls, model_cfg: dict) -> "Likelihood":
        kind = model_cfg["likelihood"]
        return cls(kind, float(model_cfg["sigma"]) if kind == "gaussian" else None)

    @property
    def decoder_output(self) -> str:
        """What the decoder outputs: Bernoulli logits, or the mean of a Gaussian."""
        return "logits" if self.kind == "bernoulli" else "mean"

    def log_prob(self, x: torch.Tensor, out: torch.Tensor, logvar: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) log p(x | decoder output ``out``), summed over the data dims; ``logvar`` is the learned
        per-dimension log-variance of ``learned_gaussian``."""
        if self.kind == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        if self.kind == "gaussian":
            var = self.sigma**2
            return (-0.5 * ((x - out).pow(2) / var + math.log(2 * math.pi * var))).flatten(1).sum(1)
        return gaussian_log_density(x.flatten(1), out.flatten(1), logvar).sum(1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output -> the mean of p(x|z) (pixels in [0, 1] for Bernoulli images)."""
        return torch.sigmoid(out) if self.kind == "bernoulli" else out


@torch.no_grad()
def importance_nll(log_weights, x: torch.Tensor, k: int, draws_per_example: int | None = None,
                   budget: int = 8_000_000) -> torch.Tensor:
    """(B,) importance-sampled -log p(x) = -(logsumexp_s log w_s - log k).

    ``log_weights(xg, k)`` returns the (b, S) log weights log p(x, h_s) - log q(h_s | x) of a group of
    examples, with the k draws per enumerated value laid side by side (S = k for a VAE; S = K classes x k
    for M2, whose weights include log p(y)). Examples go in groups so that one decoder pass holds about
    ``budget`` output values; ``draws_per_example`` (default k) is S, used only to size the groups.
    """
    per_example = (draws_per_example or k) * max(1, x[0].numel())
    group = max(1, budget // per_example)
    out = [-(torch.logsumexp(log_weights(x[i : i + group], k), 1) - math.log(k)) for i in range(0, x.shape[0], group)]
    return torch.cat(out)
