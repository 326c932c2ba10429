"""Training objectives as small compositions of terms over one shared forward pass.

Every objective returns the loss to minimise (per example: summed over pixels / latent dims,
averaged over the batch) and a dict of scalar stats. Schedules (beta-B capacity) are functions of
the training step, which only the trainer advances. An objective is an nn.Module so that any
training-only network it owns (FactorVAE's discriminator) is saved with the training state and
never exported.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.errors import UsageError
from vaezoo.models.distributions import DiagGaussian, gaussian_log_density
from vaezoo.train.objectives.base import Auxiliary, Objective, register_objective


class ELBOObjective(Objective):
    """-log p(x|z) + regularizer(...): the shape of every objective on the plain VAE's forward pass."""

    def regularizer(self, model, fwd, step, batches):
        """Extra loss terms beyond -log p(x|z); returns (tensor of shape (), stats)."""
        raise NotImplementedError

    def forward(self, model, batches, step: int, runner=None):
        fwd = (runner or model)(batches[0])
        reg, stats = self.regularizer(model, fwd, step, batches)
        recon = -fwd.log_px.mean()
        kl = fwd.kl.mean()
        loss = recon + reg
        stats = {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(), **stats}
        return loss, stats


@register_objective("vae")
class VAEObjective(ELBOObjective):
    def regularizer(self, model, fwd, step, batches):
        return fwd.kl.mean(), {}


@register_objective("beta-h")
class BetaH(ELBOObjective):
    """beta-VAE (Higgins): recon + beta * KL."""

    def regularizer(self, model, fwd, step, batches):
        return self.cfg["beta"] * fwd.kl.mean(), {}


def capacity(step: int, c_max: float, c_steps: int) -> float:
    """beta-VAE-B capacity: linear from 0 to c_max over c_steps training steps, then flat."""
    if c_steps <= 0:
        return c_max
    return c_max * min(1.0, step / c_steps)


@register_objective("beta-b")
class BetaB(ELBOObjective):
    """beta-VAE (Burgess): recon + gamma * |KL - C(step)|."""

    def regularizer(self, model, fwd, step, batches):
        c = capacity(step, self.cfg["capacity_max"], self.cfg["capacity_steps"])
        return self.cfg["gamma"] * (fwd.kl.mean() - c).abs(), {"capacity": torch.tensor(c)}


@register_objective("tc")
class TCVAE(ELBOObjective):
    """beta-TCVAE: recon + alpha*MI + beta*TC + gamma*dimwise-KL, minibatch-weighted sampling.

    From logq[i, j, d] = log q(z_i,d | x_j):  log q(z_i) = logsumexp_j sum_d logq - log(N*B) and
    log prod_d q(z_i,d) = sum_d (logsumexp_j logq - log(N*B)). The dimension-wise term
    (objective.dimwise) is one of:

    * "posterior" (our default): E_q(z) [log prod_d q(z_d) - log p(z)] at the posterior samples, the prior's
      density through the flow (log-det included) for dp models. For N(0, I) this is sum_d KL(q(z_d) || p(z_d))
      exactly; for a flow prior, which does not factorise, it is a plug-in term, not a KL.
    * "prior" (the dpVAE paper's "g^-1(z0) samples"; our reading, their formula did not survive): B draws
      z = g^-1(z0), z0 ~ N(0, I), and KL(p(z) || prod_d q(z_d)) = E_p [log p(z) - log prod_d q(z_d)], a divergence
      for any prior; q(z_d) at a point outside the batch is the batch's mixture, logsumexp_j - log B.
    """

    DIMWISE = ("posterior", "prior")

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        self.dimwise = self.cfg.get("dimwise", "posterior")
        if self.dimwise not in self.DIMWISE:
            raise UsageError(f"recipe {recipe.get('id', '?')!r}: objective.dimwise must be one of "
                             f"{', '.join(self.DIMWISE)}, not {self.dimwise!r}")

    def regularizer(self, model, fwd, step, batches):
        z, mu, logvar = fwd.z, fwd.mu, fwd.logvar
        b = z.shape[0]
        logq = gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # B x B x D
        log_nb = math.log(self.dataset_size * b)
        log_qz_x = logq.diagonal(dim1=0, dim2=1).sum(0)  # (B,) log q(z_i | x_i)
        log_qz = torch.logsumexp(logq.sum(2), dim=1) - log_nb
        log_qz_prod = (torch.logsumexp(logq, dim=1) - log_nb).sum(1)
        mi = (log_qz_x - log_qz).mean()
        tc = (log_qz - log_qz_prod).mean()
        if self.dimwise == "prior":
            z_p = model.prior.inverse(torch.randn_like(z))
            logq_p = gaussian_log_density(z_p.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))   # B x B x D
            log_qp_prod = (torch.logsumexp(logq_p, dim=1) - math.log(b)).sum(1)
            dwkl = (model.prior.log_prob(z_p) - log_qp_prod).mean()
        else:
            dwkl = (log_qz_prod - fwd.log_pz).mean()
        c = self.cfg
        reg = c["alpha"] * mi + c["beta"] * tc + c["gamma"] * dwkl
        return reg, {"mi": mi.detach(), "tc": tc.detach(), "dwkl": dwkl.detach()}


def permute_dims(z):
    """Shuffle each latent dimension independently across the batch (samples prod_d q(z_d))."""
    cols = [z[torch.randperm(z.shape[0], device=z.device), d] for d in range(z.shape[1])]
    return torch.stack(cols, dim=1)


class Discriminator(nn.Module):
    def __init__(self, latent: int, hidden: int, layers: int):
        super().__init__()
        dims = [latent] + [hidden] * (layers - 1)
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        mods.append(nn.Linear(dims[-1], 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z):
        return self.net(z)


@register_objective("factor")
class FactorVAE(ELBOObjective):
    """FactorVAE: recon + KL + gamma * E[D(z)_0 - D(z)_1]; D tells q(z) from prod_d q(z_d).

    The discriminator (an auxiliary network) is trained in ``disc_loss`` on detached codes (z of this batch vs permuted
    codes of a second batch), after the VAE step, so the two graphs never share tensors.
    """

    batches_per_step = 2   # the permuted codes come from an independent second batch

    def __init__(self, recipe, dataset_size):
        super().__init__(recipe, dataset_size)
        cfg = self.cfg
        self.disc = Discriminator(int(recipe["model"]["latent"]), int(cfg["disc_hidden"]), int(cfg["disc_layers"]))
        self._codes = None

    def regularizer(self, model, fwd, step, batches):
        logits = self.disc(fwd.z)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        if len(batches) > 1:
            with torch.no_grad():
                z2 = DiagGaussian(*model.encoder(batches[1])).sample()
            self._codes = (fwd.z.detach(), permute_dims(z2))
        return fwd.kl.mean() + self.cfg["gamma"] * tc, {"tc": tc.detach()}

    def auxiliaries(self) -> list[Auxiliary]:
        return [Auxiliary("disc", self.disc, float(self.cfg["disc_lr"]), tuple(self.cfg["disc_betas"]), self.disc_loss)]

    def disc_loss(self):
        """Cross-entropy of D on the codes kept by the last model step (q(z) -> 0, prod_d q(z_d) -> 1)."""
        z, z_perm = self._codes
        self._codes = None
        ones = torch.ones(z.shape[0], dtype=torch.long, device=z.device)
        return 0.5 * (F.cross_entropy(self.disc(z), 0 * ones) + F.cross_entropy(self.disc(z_perm), ones))


def mmd(a, b):
    """Biased MMD^2 estimate with the kernel k(a,b) = exp(-mean_d (a_d - b_d)^2 / D)."""
    d = a.shape[1]

    def k(u, v):
        return torch.exp(-(u.unsqueeze(1) - v.unsqueeze(0)).pow(2).mean(2) / d)

    return k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()


@register_objective("info")
class InfoVAE(ELBOObjective):
    """InfoVAE (MMD): recon + (1-alpha)*KL + (alpha+lambda-1)*MMD(q(z), p(z)).

    Prior samples are drawn in the generation space and pushed through g^-1 (dp models).
    """

    def regularizer(self, model, fwd, step, batches):
        eps = torch.randn_like(fwd.z)
        z_prior = model.prior.inverse(eps)
        m = mmd(fwd.z, z_prior)
        a, lam = self.cfg["alpha"], self.cfg["lambda"]
        return (1 - a) * fwd.kl.mean() + (a + lam - 1) * m, {"mmd": m.detach()}
