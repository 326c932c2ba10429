"""VAE-GAN (Larsen et al. 2016): the VAE's encoder and decoder, and a DCGAN-like discriminator whose
layer-l features replace the pixel likelihood as the reconstruction term.

    encoder:        KL + L_rec              L_rec = -log N(Dis_l(x~); Dis_l(x), sigma^2 I), x~ = Dec(Enc(x))
    decoder:        gamma * L_rec + L_GAN   (non-saturating: fakes scored as real)
    discriminator:  BCE on x (real), Dec(Enc(x)) and Dec(z_p), z_p ~ prior (fake)

The trainer does one Adam step of the whole model on one loss, so the encoder's and the decoder's
different losses are routed inside one backward: the reconstruction decoded through the model's
forward pass (``fwd.out``) carries L_rec to both networks with weight 1, and a second, decoder-only
pass on the *detached* codes (with the prior samples) carries the rest of the decoder's loss:
(gamma - 1) * L_rec and the GAN term. So no GAN gradient reaches the encoder and the decoder's L_rec
weight is gamma, at the price of one more decoder pass (of 2B codes), and with no change to the
trainer. The discriminator is an ``Auxiliary`` stepped after the model on the kept images; its
parameters do not take gradients during the model step (the features still pass gradient to x~).

Balancing, as in Larsen et al.'s reference code: with d = the discriminator's cost on this batch
(0.5 * (BCE real + BCE fake), ln 2 at chance), the discriminator's step is skipped when
d < equilibrium - margin and the decoder's GAN term is switched off when d > equilibrium + margin
(both resumed if both would stop). The reference code skips the decoder's whole update; here only its
GAN term drops out for the step (encoder and decoder share one optimiser step), a documented deviation.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from vaezoo.errors import UsageError
from vaezoo.train.objectives.adversarial import build_discriminator
from vaezoo.train.objectives.base import Auxiliary, Objective, register_objective


def _bce(logits, real: bool):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))


@register_objective("vaegan")
class VAEGAN(Objective):
    progress_stats = ("d_cost", "rec")

    def __init__(self, recipe, dataset_size):
        super().__init__(recipe, dataset_size)
        cfg, where = self.cfg, f"recipe {recipe.get('id', '?')!r}"
        self.gamma = float(cfg["gamma"])
        if not self.gamma > 0:
            raise UsageError(f"{where}: objective.gamma (the decoder's weight on L_rec) must be > 0, not {cfg['gamma']!r}")
        self.disc = build_discriminator(recipe)
        self.layer = cfg["feature_layer"]
        if isinstance(self.layer, bool) or not isinstance(self.layer, int) or not 1 <= self.layer <= self.disc.layers:
            raise UsageError(f"{where}: objective.feature_layer must be an integer from 1 to {self.disc.layers} (the "
                             f"discriminator's {self.disc.layers - 1} conv layers, then its fully connected one), not {self.layer!r}")
        if not float(cfg["feature_sigma"]) > 0:
            raise UsageError(f"{where}: objective.feature_sigma (L_rec's standard deviation) must be > 0, not {cfg['feature_sigma']!r}")
        self.var = float(cfg["feature_sigma"]) ** 2
        if not float(cfg["margin"]) >= 0:
            raise UsageError(f"{where}: objective.margin (the balancing band) must be >= 0, not {cfg['margin']!r}")
        self.balance = bool(cfg["balance"])
        self.low = float(cfg["equilibrium"]) - float(cfg["margin"])
        self.high = float(cfg["equilibrium"]) + float(cfg["margin"])
        self._kept = None

    def _balance(self, d_cost: torch.Tensor) -> tuple[bool, bool]:
        """(train the discriminator, train the decoder's GAN term) this step, from the discriminator's cost."""
        if not self.balance:
            return True, True
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            d_cost = d_cost.clone()   # every rank takes the same decision (else they would wait on each other)
            dist.all_reduce(d_cost)
            d_cost /= dist.get_world_size()
        d = float(d_cost)
        train_dis, train_dec = d >= self.low, d <= self.high
        return (True, True) if not (train_dis or train_dec) else (train_dis, train_dec)

    def forward(self, model, batches, step, runner=None):
        x = batches[0]
        b = x.shape[0]
        self.disc.requires_grad_(False)   # the model step's gradients pass through D, never into it
        fwd = (runner or model)(x)
        mean = model.likelihood.mean
        z_p = model.prior.inverse(torch.randn_like(fwd.z)).detach()
        fakes = mean(model.decoder(torch.cat([fwd.z.detach(), z_p])))   # decoder only: no path to the encoder
        logit_real, f_real = self.disc(x, self.layer)
        _, f_rec = self.disc(mean(fwd.out), self.layer)
        logit_fake, f_fake = self.disc(fakes, self.layer)
        self.disc.requires_grad_(True)
        f_real = f_real.detach()
        # L_rec: Gaussian -log-likelihood (variance feature_sigma^2, constant dropped) of x~'s features around x's
        rec = 0.5 * (f_rec - f_real).pow(2).sum(1).mean() / self.var
        rec_dec = 0.5 * (f_fake[:b] - f_real).pow(2).sum(1).mean() / self.var   # the same value, on the decoder-only path
        gan = _bce(logit_fake, True)
        with torch.no_grad():
            d_cost = 0.5 * (_bce(logit_real, True) + _bce(logit_fake, False))
        train_dis, train_dec = self._balance(d_cost)
        kl = fwd.kl.mean()
        loss = kl + rec + (self.gamma - 1) * rec_dec + (gan if train_dec else 0)
        self._kept = (x, fakes.detach()) if train_dis else None
        stats = {"loss": loss.detach(), "recon": -fwd.log_px.mean().detach(), "kl": kl.detach(), "rec": rec.detach(),
                 "gan": gan.detach(), "d_cost": d_cost, "train_dis": torch.tensor(float(train_dis)),
                 "train_dec": torch.tensor(float(train_dec))}
        return loss, stats

    def auxiliaries(self) -> list[Auxiliary]:
        return [Auxiliary("disc", self.disc, float(self.cfg["disc_lr"]), tuple(self.cfg["disc_betas"]), self.disc_loss)]

    def disc_loss(self):
        """D's cost on the images the model step kept (x real; reconstructions and prior samples fake),
        or None when the balancing skips D's step."""
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        x, fakes = kept
        return 0.5 * (_bce(self.disc(x, self.layer)[0], True) + _bce(self.disc(fakes, self.layer)[0], False))
