"""The objectives of the Taming VAEs seed: IWAE's k-sample bound, GECO's constrained ELBO, and both together.

* ``iwae`` (Burda, Grosse & Salakhutdinov 2016): minimise -L_k with
  L_k = E[log (1/k) sum_i w_i], log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x). The k
  draws of a batch go through ONE decoder pass of B*k codes (``VAE.forward(x, k=k)``). k = 1 is the VAE's
  ELBO with a one-sample Monte Carlo KL.
* ``geco`` (Rezende & Viola 2018, the seed's slides): minimise KL + lambda * C_hat, where the constraint is
  C = ||x - x_hat||^2 - kappa^2 per example (squared error summed over the data dims, averaged over the
  batch), x_hat the mean of p(x|z) (a Bernoulli decoder's sigmoid(logits), a fixed-sigma Gaussian's mean).
  C_ma = C_0 at the first step, then alpha * C_ma + (1 - alpha) * C_t; C_hat = C_t + stopgrad(C_ma - C_t)
  (its value is C_ma, its gradient C_t's); after the step lambda <- lambda * exp(eta * C_ma), clamped to
  [lambda_min, lambda_max]. The log-lambda step uses the moving average's value only, no gradient.
* ``geco-iwae`` (the seed): minimise -[(lambda - 1) * E_q log p(x|z) + L_IWAE], with E_q log p(x|z) the
  mean over the same k draws that give L_k, and lambda moved by the same constraint as ``geco``.

lambda, C_ma and the number of updates are buffers of the objective: the trainer saves them in
train_state.safetensors and restores them on --resume, and they are never exported. The multiplier is
updated only in training mode (``objective.eval()`` computes the loss with the current state and leaves
it as it is), and under DDP from the batch constraint averaged over the ranks, so every rank holds the
same lambda.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from vaezoo.errors import UsageError
from vaezoo.train.objectives.base import Objective, register_objective

# Likelihoods whose decoder output has a mean to put in the squared-error constraint. A learned-variance
# Gaussian is left out: the constraint would ignore the variance the decoder learns.
MSE_LIKELIHOODS = ("bernoulli", "gaussian")
CONSTRAINTS = ("mse",)


def _where(recipe: dict) -> str:
    return f"recipe {recipe.get('id', '?')!r}"


def check_k(recipe: dict) -> int:
    k = recipe["objective"]["k"]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"{_where(recipe)}: objective.k (importance samples per example) must be an integer >= 1, not {k!r}")
    return k


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """(B,) L_k = logsumexp_i log w_i - log k from the (B, k) log weights."""
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def one_draw_kl(model, iw) -> torch.Tensor:
    """(B,) KL(q(z|x) || p(z)) as the VAE reports it, at the first of the k draws (for the stats only)."""
    with torch.no_grad():
        return iw.q.kl(model.prior, iw.z[:, 0])


@register_objective("iwae")
class IWAE(Objective):
    """Minimise -L_k, the k-sample importance-weighted bound."""

    def __init__(self, recipe, dataset_size):
        super().__init__(recipe, dataset_size)
        self.k = check_k(recipe)

    def forward(self, model, batches, step: int, runner=None):
        iw = (runner or model)(batches[0], k=self.k)
        bound = iwae_bound(iw.log_w).mean()
        loss = -bound
        stats = {"loss": loss.detach(), "bound": bound.detach(), "recon": -iw.log_px[:, 0].mean().detach(),
                 "kl": one_draw_kl(model, iw).mean()}
        return loss, stats


class ConstrainedObjective(Objective):
    """GECO's Lagrange multiplier on the reconstruction constraint, shared by ``geco`` and ``geco-iwae``."""

    progress_stats = ("lambda", "c_ma")

    def __init__(self, recipe, dataset_size):
        super().__init__(recipe, dataset_size)
        cfg, where = self.cfg, _where(recipe)
        if cfg["constraint"] not in CONSTRAINTS:
            raise UsageError(f"{where}: objective.constraint must be one of {', '.join(CONSTRAINTS)}, not {cfg['constraint']!r}")
        likelihood = recipe["model"]["likelihood"]
        if likelihood not in MSE_LIKELIHOODS:
            raise UsageError(f"{where}: GECO's squared-error constraint needs the mean of a {' or '.join(MSE_LIKELIHOODS)} "
                             f"decoder, not model.likelihood = {likelihood!r}")
        self.kappa, self.eta, self.alpha = float(cfg["kappa"]), float(cfg["eta"]), float(cfg["alpha"])
        lam0, self.lam_min, self.lam_max = float(cfg["lambda_init"]), float(cfg["lambda_min"]), float(cfg["lambda_max"])
        if not self.kappa > 0:
            raise UsageError(f"{where}: objective.kappa (the constraint's tolerance) must be > 0, not {cfg['kappa']!r}")
        if not self.eta > 0:
            raise UsageError(f"{where}: objective.eta (the lambda step size) must be > 0, not {cfg['eta']!r}")
        if not 0 <= self.alpha < 1:
            raise UsageError(f"{where}: objective.alpha (the moving average's decay) must be in [0, 1), not {cfg['alpha']!r}")
        if not 0 < self.lam_min <= lam0 <= self.lam_max < math.inf:
            raise UsageError(f"{where}: the lambda settings need 0 < lambda_min <= lambda_init <= lambda_max < inf, "
                             f"not {cfg['lambda_min']!r}, {cfg['lambda_init']!r}, {cfg['lambda_max']!r}")
        self.register_buffer("lam", torch.tensor(lam0))
        self.register_buffer("c_ma", torch.tensor(0.0))
        self.register_buffer("updates", torch.tensor(0, dtype=torch.int64))

    def constraint(self, model, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """(B,) ||x - x_hat||^2 - kappa^2 per example; ``out`` is the decoder output (B or B*k rows)."""
        x_hat = model.likelihood.mean(out)
        if x_hat.shape[0] != x.shape[0]:   # k draws per example, side by side
            x = x.unsqueeze(1).expand(x.shape[0], x_hat.shape[0] // x.shape[0], *x.shape[1:]).reshape(x_hat.shape)
        return (x - x_hat).pow(2).flatten(1).sum(1) - self.kappa**2

    def multiplier(self, c_batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """(lambda of this step, C_hat, stats) from the batch mean of the constraint; in training mode
        also moves C_ma and then lambda (the next step's multiplier)."""
        with torch.no_grad():
            c_now = c_batch.detach().clone()
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                dist.all_reduce(c_now)
                c_now /= dist.get_world_size()
            first = int(self.updates) == 0
            c_ma = c_now if first else self.alpha * self.c_ma + (1 - self.alpha) * c_now
            lam = self.lam.clone()
            if self.training:
                self.c_ma.copy_(c_ma)
                self.lam.copy_((lam * torch.exp(self.eta * c_ma)).clamp(self.lam_min, self.lam_max))
                self.updates += 1
        c_hat = c_batch + (c_ma - c_batch).detach()
        stats = {"constraint": c_now, "c_ma": c_ma.clone(), "lambda": self.lam.clone()}
        return lam, c_hat, stats


@register_objective("geco")
class GECO(ConstrainedObjective):
    """Minimise KL + lambda * C_hat (one draw per example)."""

    def forward(self, model, batches, step: int, runner=None):
        x = batches[0]
        fwd = (runner or model)(x)
        c = self.constraint(model, x, fwd.out)
        lam, c_hat, stats = self.multiplier(c.mean())
        kl = fwd.kl.mean()
        loss = kl + lam * c_hat
        stats = {"loss": loss.detach(), "recon": -fwd.log_px.mean().detach(), "kl": kl.detach(),
                 "mse": (c.mean() + self.kappa**2).detach(), **stats}
        return loss, stats


@register_objective("geco-iwae")
class GECOIWAE(ConstrainedObjective):
    """Minimise -[(lambda - 1) * E_q log p(x|z) + L_k]: GECO's multiplier on IWAE's bound."""

    def __init__(self, recipe, dataset_size):
        super().__init__(recipe, dataset_size)
        self.k = check_k(recipe)

    def forward(self, model, batches, step: int, runner=None):
        x = batches[0]
        iw = (runner or model)(x, k=self.k)
        c = self.constraint(model, x, iw.out)               # (B*k,): every draw's squared error
        lam, _, stats = self.multiplier(c.mean())
        bound = iwae_bound(iw.log_w).mean()
        log_px = iw.log_px.mean()                           # E_q log p(x|z) over the same k draws
        loss = -((lam - 1) * log_px + bound)
        stats = {"loss": loss.detach(), "bound": bound.detach(), "recon": -log_px.detach(),
                 "kl": one_draw_kl(model, iw).mean(), "mse": (c.mean() + self.kappa**2).detach(), **stats}
        return loss, stats
