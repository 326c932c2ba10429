"""The VAE: encoder, decoder and prior (standard, or the decoupled prior's flow), and the pieces the
other model kinds reuse (the exportable prior parts, one forward pass that every objective reads).

``build_model(config)`` (vaezoo.models) rebuilds the architecture from a checkpoint's config; weights
come from safetensors. Convention: every term is per example (summed over pixels / latent dims),
averaged over the batch only in the objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vaezoo import parts as sig
from vaezoo.models.distributions import DiagGaussian, Likelihood
from vaezoo.models.flow import build_prior
from vaezoo.models.metrics import elbo_metrics
from vaezoo.models.nets import build_backbone
from vaezoo.models.loading import Pretrained
from vaezoo.models.registry import register_model
from vaezoo.parts import Part


@dataclass
class Forward:
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    out: torch.Tensor        # decoder output (logits or mean)
    log_px: torch.Tensor     # (B,) log p(x|z)
    kl: torch.Tensor         # (B,) KL(q(z|x) || p(z)); closed form for N(0,I), entropy + MC for the flow
    log_pz: torch.Tensor     # (B,) log p(z) under the prior (flow: with its log-det)


@dataclass
class ImportanceForward:
    """k draws per example through ONE decoder pass of B*k codes (IWAE's bound, the importance-sampled NLL)."""

    q: DiagGaussian          # q(z|x), B x D
    z: torch.Tensor          # (B, k, D) reparameterised draws
    out: torch.Tensor        # (B*k, ...) decoder outputs, the k draws of an example side by side
    log_px: torch.Tensor     # (B, k) log p(x|z_i)
    log_pz: torch.Tensor     # (B, k) log p(z_i) (flow: with its log-det)
    log_qz: torch.Tensor     # (B, k) log q(z_i|x)

    @property
    def log_w(self) -> torch.Tensor:
        """(B, k) log importance weights log p(x, z_i) - log q(z_i|x)."""
        return self.log_px + self.log_pz - self.log_qz


class PriorForward(nn.Module):
    """Exportable part: z -> (eps, logdet)."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, z):
        return self.prior(z)


class PriorInverse(nn.Module):
    """Exportable part: eps -> z."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, eps):
        return self.prior.inverse(eps)


def prior_parts(prior) -> dict[str, Part]:
    return {"prior_forward": Part(PriorForward(prior), sig.PRIOR_FORWARD),
            "prior_inverse": Part(PriorInverse(prior), sig.PRIOR_INVERSE)}


@register_model("vae")
class VAE(Pretrained, nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        recipe = config["recipe"]
        self.shape = tuple(config["input"]["shape"])
        self.likelihood = Likelihood.from_recipe(recipe["model"])
        self.latent = int(recipe["model"]["latent"])
        self.encoder, self.decoder = build_backbone(recipe["model"], self.shape)
        self.prior = build_prior(recipe["prior"], self.latent)

    # -- parts with plain tensor I/O, for export and the torch backend
    def parts(self) -> dict[str, Part]:
        return {"encoder": Part(self.encoder, sig.encoder()),
                "decoder": Part(self.decoder, sig.decoder(self.likelihood.decoder_output)),
                **prior_parts(self.prior)}

    def log_px(self, x, out):
        """(B,) log p(x|z), summed over the data dims."""
        return self.likelihood.log_prob(x, out)

    def forward_pass(self, x) -> Forward:
        q = DiagGaussian(*self.encoder(x))
        z = q.sample()
        out = self.decoder(z)
        log_pz = self.prior.log_prob(z)
        return Forward(q.mu, q.logvar, z, out, self.log_px(x, out), q.kl(self.prior, z), log_pz)

    def forward(self, x, k: int | None = None):
        """nn.Module.__call__ (and DDP) run the training forward pass: one draw per example
        (:class:`Forward`), or ``k`` draws through one batched decoder pass (:class:`ImportanceForward`)."""
        return self.forward_pass(x) if k is None else self.importance_pass(x, k)

    def importance_pass(self, x, k: int) -> ImportanceForward:
        """k draws z_i ~ q(z|x) per example, decoded as one batch of B*k codes."""
        q = DiagGaussian(*self.encoder(x))
        z = q.sample(k)                                    # (B, k, D)
        b = x.shape[0]
        zf = z.reshape(b * k, -1)
        xr = x.unsqueeze(1).expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])
        out = self.decoder(zf)
        log_px = self.log_px(xr, out).reshape(b, k)
        return ImportanceForward(q, z, out, log_px, self.prior.log_prob(zf).reshape(b, k), q.log_density(z))

    def log_weights(self, x, k: int):
        """(B, k) log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x): the importance weights of the NLL."""
        return self.importance_pass(x, k).log_w

    @torch.no_grad()
    def validation_metrics(self, x, y=None, nll_samples: int = 1000) -> dict:
        """Held-out -ELBO, KL, reconstruction and importance-sampled NLL (labels unused)."""
        return elbo_metrics(self, x, nll_samples)
