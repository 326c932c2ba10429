"""A conditional GAN on a conditional VAE (the "VAE meets GAN" poster's CVAE+CGAN and its semi-supervised
VAE with a GAN): the bound of the VAE, plus ``gan_weight`` times a GAN term on the decoder's samples.

The discriminator (Mirza & Osindero's conditional GAN, in the poster's form) has K + 1 outputs: the K real
classes and one "fake" class. Fakes are decoded from z ~ p(z) (the prior's flow for dp models) and a label y
drawn uniformly; the decoder's term is the non-saturating -log D_y(fake) (each fake should pass as a real
digit of its own class). The discriminator's cost, after the model step, on detached tensors:

    labelled real:    -log D_y(x)
    unlabelled real:  -log sum_{k<K} D_k(x)    (real, class unknown: the semi-supervised case)
    fake:             -log D_K(G(z, y))

each averaged over its batch and summed. The GAN term reaches the decoder only: z and y come from the prior,
not the encoder (as in VAE-GAN), and the discriminator takes no gradient during the model step. The poster
classifies with the semi-supervised VAE's encoder q(y|x), not with the discriminator; so does ``m2-cgan``.
Ours, not the poster's: the weight, the discriminator's widths (the conv stack of VAE-GAN's), Adam.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaezoo.errors import UsageError
from vaezoo.models.semisup import onehot
from vaezoo.train.objectives.adversarial import build_discriminator
from vaezoo.train.objectives.base import Auxiliary, register_objective
from vaezoo.train.objectives.conditional import CVAEObjective
from vaezoo.train.objectives.semisup import M2Objective


class ConditionalGAN:
    """The GAN half, mixed into a conditional objective: ``init_gan`` in its constructor, ``gan_term`` in its
    forward pass; the discriminator's step is the auxiliary."""

    def init_gan(self, recipe: dict, k: int) -> None:
        where = f"recipe {recipe.get('id', '?')!r}"
        if k < 2:
            raise UsageError(f"{where}: a conditional GAN needs a labelled dataset (got {k} classes)")
        self.k = k
        self.gan_weight = float(self.cfg["gan_weight"])
        if not self.gan_weight >= 0:
            raise UsageError(f"{where}: objective.gan_weight must be >= 0, not {self.cfg['gan_weight']!r}")
        self.disc = build_discriminator(recipe, outputs=k + 1)
        self._kept = None

    def gan_term(self, model, real: torch.Tensor, labels: torch.Tensor, unlabelled: torch.Tensor | None, n: int):
        """The decoder's GAN term on ``n`` fakes, and its stats; keeps the discriminator's inputs."""
        z = model.prior.inverse(torch.randn(n, model.latent, device=real.device)).detach()
        y = torch.randint(self.k, (n,), device=real.device)
        decoder = model.parts()["decoder"].module
        fake = model.likelihood.mean(decoder(z, onehot(y, self.k)))
        self.disc.requires_grad_(False)   # the model step's gradients pass through D, never into it
        logits = self.disc(fake)[0]
        self.disc.requires_grad_(True)
        gan = F.cross_entropy(logits, y)
        self._kept = (real, labels, unlabelled, fake.detach())
        with torch.no_grad():
            fooled = (logits.argmax(1) == y).float().mean()
        return gan, {"gan": gan.detach(), "fooled": fooled}

    def auxiliaries(self) -> list[Auxiliary]:
        return [Auxiliary("disc", self.disc, float(self.cfg["disc_lr"]), tuple(self.cfg["disc_betas"]), self.disc_loss)]

    def disc_loss(self):
        kept, self._kept = self._kept, None
        if kept is None:
            return None
        real, labels, unlabelled, fake = kept
        fake_class = torch.full((fake.shape[0],), self.k, device=fake.device)
        loss = F.cross_entropy(self.disc(real)[0], labels) + F.cross_entropy(self.disc(fake)[0], fake_class)
        if unlabelled is not None:
            logits = self.disc(unlabelled)[0]
            loss = loss + (torch.logsumexp(logits, 1) - torch.logsumexp(logits[:, : self.k], 1)).mean()
        return loss


@register_objective("cvae-cgan")
class CVAECGAN(ConditionalGAN, CVAEObjective):
    """CVAE+CGAN: the label-conditioned CVAE's bound on labelled batches, plus the GAN term."""

    progress_stats = ("gan", "fooled")

    def __init__(self, recipe: dict, dataset_size: int):
        condition = recipe["model"]["condition"]
        if condition != "label":
            raise UsageError(f"recipe {recipe.get('id', '?')!r}: objective cvae-cgan needs model.condition = \"label\", "
                             f"not {condition!r}")
        super().__init__(recipe, dataset_size)
        from vaezoo.data import DATASETS

        self.init_gan(recipe, DATASETS[recipe["data"]["name"]].num_classes)

    def forward(self, model, batches, step: int, runner=None):
        x, y = self.labelled_batch(step)
        fwd = (runner or model)(x, model.label_condition(y))
        recon, kl = -fwd.log_px.mean(), fwd.kl.mean()
        gan, gstats = self.gan_term(model, x, y, None, x.shape[0])
        loss = recon + kl + self.gan_weight * gan
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(), **gstats}


@register_objective("m2-cgan")
class M2CGAN(ConditionalGAN, M2Objective):
    """The semi-supervised VAE with a GAN: M2's loss (q(y|x) the classifier), plus the GAN term; the
    discriminator sees the labelled batch with its labels and the unlabelled batch as real."""

    progress_stats = ("gan", "fooled")

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        if recipe["model"]["kind"] != "m2":
            raise UsageError(f"recipe {recipe.get('id', '?')!r}: objective m2-cgan needs model.kind = \"m2\" (a decoder "
                             f"of pixels), not {recipe['model']['kind']!r}")
        from vaezoo.data import DATASETS

        self.init_gan(recipe, DATASETS[recipe["data"]["name"]].num_classes)

    def forward(self, model, batches, step: int, runner=None):
        x = batches[0]
        loss, stats = self.m2_step(model, x, step)
        xl, yl = self._lab_batch(step)
        gan, gstats = self.gan_term(model, xl, yl, x, x.shape[0])
        loss = loss + self.gan_weight * gan
        return loss, {"loss": loss.detach(), **stats, **gstats}
