"""Held-out evaluation: negative ELBO, importance-sampled NLL, KL and reconstruction (nats).

NLL(x) ~= -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x), K >= 1000. For dp models
p(z) is evaluated through the flow with its log-det.
"""

from __future__ import annotations

import math

import torch

from vaezoo.models import gaussian_logpdf


@torch.no_grad()
def importance_nll(model, x: torch.Tensor, k: int, budget: int = 8_000_000) -> torch.Tensor:
    """(B,) importance-sampled negative log-likelihood with K samples per example.

    Examples are processed in groups so that a decoder pass holds about ``budget`` output values.
    """
    mu, logvar = model.encoder(x)
    per_example = k * max(1, x[0].numel())
    group = max(1, budget // per_example)
    out = []
    for i in range(0, x.shape[0], group):
        xg, mg, lg = x[i : i + group], mu[i : i + group], logvar[i : i + group]
        b, d = mg.shape
        z = mg.unsqueeze(1) + torch.randn(b, k, d, device=x.device) * torch.exp(0.5 * lg).unsqueeze(1)
        log_qz = gaussian_logpdf(z, mg.unsqueeze(1), lg.unsqueeze(1)).sum(2)  # (b, k)
        zf = z.reshape(b * k, d)
        dec = model.decoder(zf)
        xr = xg.unsqueeze(1).expand(b, k, *xg.shape[1:]).reshape(b * k, *xg.shape[1:])
        log_px = model.log_px(xr, dec).reshape(b, k)
        log_pz = model.prior.log_prob(zf).reshape(b, k)
        logw = log_px + log_pz - log_qz
        out.append(-(torch.logsumexp(logw, 1) - math.log(k)))
    return torch.cat(out)


@torch.no_grad()
def evaluate(model, x: torch.Tensor, nll_samples: int = 1000, batch: int = 500, seed: int = 1234) -> dict:
    """Validation metrics averaged over the examples in ``x`` (a float tensor)."""
    torch.manual_seed(seed)
    model.eval()
    sums = {"neg_elbo": 0.0, "kl": 0.0, "recon": 0.0, "nll": 0.0}
    for i in range(0, x.shape[0], batch):
        xb = x[i : i + batch]
        fwd = model.forward_pass(xb)
        sums["neg_elbo"] += float((fwd.kl - fwd.log_px).sum())
        sums["kl"] += float(fwd.kl.sum())
        sums["recon"] += float((-fwd.log_px).sum())
        if nll_samples:
            sums["nll"] += float(importance_nll(model, xb, nll_samples).sum())
    n = x.shape[0]
    res = {k: v / n for k, v in sums.items()}
    if not nll_samples:
        res.pop("nll")
    res.update(examples=n, nll_samples=nll_samples)
    return res
