"""A GAN term on a VAE's samples, added to its bound: the "VAE meets GAN" poster's CVAE+CGAN, its semi-supervised
VAE with a GAN, and its "DRAW as a black-box VAE, with a GAN on top"; the VAE's objective is unchanged and the
loss adds ``gan_weight`` times the decoder's GAN term.

The discriminator has K + 1 outputs: the K real classes and one "fake" class (Mirza & Osindero's conditional
GAN in the poster's form). For an unconditional decoder K = 1 ("real"), so its softmax over (real, fake) is the
plain GAN's logistic discriminator. Fakes are decoded from z ~ p(z) (the prior's flow for dp models; T codes for
DRAW) and, for a conditional decoder, a label y drawn uniformly; the decoder's term is the non-saturating
-log D_y(fake) (each fake should pass as a real digit of its own class). The discriminator's cost, after the
model step, on detached tensors:

    labelled real:    -log D_y(x)                (unconditional: y = "real")
    unlabelled real:  -log sum_{k<K} D_k(x)      (real, class unknown: the semi-supervised case)
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
from vaezoo.parts import latent_shape
from vaezoo.train.objectives.adversarial import build_discriminator
from vaezoo.train.objectives.base import Auxiliary, register_objective
from vaezoo.train.objectives.conditional import CVAEObjective
from vaezoo.train.objectives.regularisers import VAEObjective
from vaezoo.train.objectives.semisup import M2Objective


class GANTerm:
    """The GAN half, mixed in before an objective class: ``init_gan`` in the constructor; ``forward`` is the
    objective's own loss plus ``gan_weight`` x the GAN term on the reals ``gan_inputs`` names; the discriminator's
    step is the auxiliary."""

    progress_stats = ("gan", "fooled")

    def gan_inputs(self, batches, step: int):
        """(real images, their labels or None, unlabelled real images or None, how many fakes) of this step."""
        raise NotImplementedError

    def forward(self, model, batches, step: int, runner=None):
        loss, stats = super().forward(model, batches, step, runner)
        real, labels, unlabelled, n = self.gan_inputs(batches, step)
        gan, gstats = self.gan_term(model, real, labels, unlabelled, n)
        loss = loss + self.gan_weight * gan
        return loss, {**stats, "loss": loss.detach(), **gstats}

    def init_gan(self, recipe: dict, classes: int) -> None:
        """``classes``: K for a decoder conditioned on the label, 0 for an unconditional one."""
        where = f"recipe {recipe.get('id', '?')!r}"
        self.k = classes
        self.real = max(classes, 1)   # the discriminator's real classes; index self.real is "fake"
        self.gan_weight = float(self.cfg["gan_weight"])
        if not self.gan_weight >= 0:
            raise UsageError(f"{where}: objective.gan_weight must be >= 0, not {self.cfg['gan_weight']!r}")
        self.disc = build_discriminator(recipe, outputs=self.real + 1)
        self.code_shape = tuple(latent_shape({"recipe": recipe, "latent_dim": recipe["model"]["latent"]}))
        self._kept = None

    def gan_term(self, model, real: torch.Tensor, labels: torch.Tensor | None, unlabelled: torch.Tensor | None, n: int):
        """The decoder's GAN term on ``n`` fakes, and its stats; keeps the discriminator's inputs."""
        device = real.device
        z = model.prior.inverse(torch.randn(n, *self.code_shape, device=device)).detach()
        decoder = model.parts()["decoder"].module
        if self.k:
            y = torch.randint(self.k, (n,), device=device)
            out = decoder(z, onehot(y, self.k))
        else:
            y, out = torch.zeros(n, dtype=torch.long, device=device), decoder(z)
            labels = torch.zeros(real.shape[0], dtype=torch.long, device=device)
        fake = model.likelihood.mean(out)
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
        fake_class = torch.full((fake.shape[0],), self.real, device=fake.device)
        loss = F.cross_entropy(self.disc(real)[0], labels) + F.cross_entropy(self.disc(fake)[0], fake_class)
        if unlabelled is not None:
            logits = self.disc(unlabelled)[0]
            loss = loss + (torch.logsumexp(logits, 1) - torch.logsumexp(logits[:, : self.real], 1)).mean()
        return loss


def _classes(recipe: dict) -> int:
    """K of a labelled dataset (a conditional GAN needs one)."""
    from vaezoo.data import DATASETS

    k = DATASETS[recipe["data"]["name"]].num_classes
    if k < 2:
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: a conditional GAN needs a labelled dataset, and "
                         f"{recipe['data']['name']} has no labels")
    return k


@register_objective("cvae-cgan")
class CVAECGAN(GANTerm, CVAEObjective):
    """CVAE+CGAN: the label-conditioned CVAE's bound on labelled batches, plus the GAN term."""

    def __init__(self, recipe: dict, dataset_size: int):
        condition = recipe["model"]["condition"]
        if condition != "label":
            raise UsageError(f"recipe {recipe.get('id', '?')!r}: objective cvae-cgan needs model.condition = \"label\", "
                             f"not {condition!r}")
        super().__init__(recipe, dataset_size)
        self.init_gan(recipe, _classes(recipe))

    def gan_inputs(self, batches, step: int):
        x, y = self.labelled_batch(step)   # the bound's batch of this step (drawn again: a seeded generator)
        return x, y, None, x.shape[0]


@register_objective("m2-cgan")
class M2CGAN(GANTerm, M2Objective):
    """The semi-supervised VAE with a GAN: M2's loss (q(y|x) the classifier), plus the GAN term; the
    discriminator sees the labelled batch with its labels and the unlabelled batch as real."""

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        if recipe["model"]["kind"] != "m2":
            raise UsageError(f"recipe {recipe.get('id', '?')!r}: objective m2-cgan needs model.kind = \"m2\" (a decoder "
                             f"of pixels), not {recipe['model']['kind']!r}")
        self.init_gan(recipe, _classes(recipe))

    def gan_inputs(self, batches, step: int):
        xl, yl = self._lab_batch(step)   # the bound's labelled batch of this step (a seeded generator)
        return xl, yl, batches[0], batches[0].shape[0]


@register_objective("elbo-gan")
class ELBOGAN(GANTerm, VAEObjective):
    """The ELBO plus an unconditional GAN term on prior samples (DRAW+GAN: the final canvas is the sample)."""

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        self.init_gan(recipe, 0)

    def gan_inputs(self, batches, step: int):
        return batches[0], None, None, batches[0].shape[0]
