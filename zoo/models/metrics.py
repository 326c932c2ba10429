"""Held-out evaluation of a VAE-shaped model: negative ELBO, importance-sampled NLL, KL and
reconstruction (nats per example).

NLL(x) ~= -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x), K >= 1000, through
:func:`vaezoo.models.distributions.importance_nll` and the model's ``log_weights``. For dp models p(z)
is evaluated through the flow with its log-det.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaezoo.models.distributions import importance_nll


@torch.no_grad()
def elbo_metrics(model, x: torch.Tensor, nll_samples: int = 1000, batch: int = 500, seed: int = 1234) -> dict:
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
            sums["nll"] += float(importance_nll(model.log_weights, xb, nll_samples).sum())
    n = x.shape[0]
    res = {k: v / n for k, v in sums.items()}
    if not nll_samples:
        res.pop("nll")
    res.update(examples=n, nll_samples=nll_samples)
    return res


def classification_metrics(model, x, y, batch: int) -> dict:
    """Error rate and cross-entropy (nats) of ``model.classify_logits`` on labelled examples."""
    ce = err = 0.0
    for i in range(0, x.shape[0], batch):
        logits = model.classify_logits(x[i : i + batch])
        yb = y[i : i + batch]
        ce += float(F.cross_entropy(logits, yb, reduction="sum"))
        err += float((logits.argmax(1) != yb).sum())
    return {"error_rate": err / x.shape[0], "cross_entropy": ce / x.shape[0]}
