"""cdraw: DRAW conditioned on the class, trained on the ELBO of (x, y) pairs.

The trainer's batches hold images only, so this objective draws its own labelled batch each step, as M2
draws its labelled one (semisup.py): a permutation of the whole training set from a torch generator seeded by
(train.seed, step), so a resumed run reads the same batches. The trainer's own batch is not used; metrics'
``epochs`` counts batches of the same size, so it still says how much data went through.

Against posterior collapse (a class-conditional DRAW can draw each class from the label alone and leave z
unused: KL near 0, one template per class), two standard remedies, both off in the recipe (the plain ELBO):

* ``kl_warmup`` = W > 0: the KL term weighted min(1, step / W) (Bowman et al. 2016; Sønderby et al. 2016);
* ``free_bits`` = lambda > 0: each step's KL_t, averaged over the batch, counts as at least lambda nats:
  sum_t max(lambda, mean_b KL_t) (Kingma et al. 2016), so KL_t below lambda takes no gradient.

The recorded ``kl`` stat is the plain sum_t KL_t (the ELBO's), whatever the training term.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vaezoo.errors import UsageError
from vaezoo.train.objectives.base import Objective, register_objective


@register_objective("cdraw")
class ConditionalDRAW(Objective):
    own_batches = True

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        self.warmup, self.free_bits = int(self.cfg["kl_warmup"]), float(self.cfg["free_bits"])
        if self.warmup < 0 or not self.free_bits >= 0:
            raise UsageError(f"recipe {recipe.get('id', '?')!r}: objective.kl_warmup (steps) and objective.free_bits "
                             f"(nats per step) must be >= 0, not {self.cfg['kl_warmup']!r} and {self.cfg['free_bits']!r}")

    def kl_term(self, fwd, step: int) -> torch.Tensor:
        """The KL the loss minimises: sum_t KL_t, or its free-bits form, times the warm-up weight."""
        if self.free_bits:
            kl_t = 0.5 * (fwd.mu.pow(2) + fwd.logvar.exp() - 1 - fwd.logvar).sum(2).mean(0)   # (T,), closed form
            kl = torch.clamp(kl_t, min=self.free_bits).sum()
        else:
            kl = fwd.kl.mean()
        return kl * min(1.0, step / self.warmup) if self.warmup else kl

    def attach(self, train_set, device) -> None:
        if train_set.y is None:
            raise UsageError(f"{train_set.name} has no labels; cdraw needs a labelled dataset")
        self.seed = int(self.recipe["train"]["seed"])
        self.size = int(self.recipe["train"]["batch_size"])
        self.x = torch.from_numpy(train_set.float_batch(np.arange(len(train_set)))).to(device)
        self.y = torch.from_numpy(np.asarray(train_set.y)).long().to(device)

    def forward(self, model, batches, step: int, runner=None):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 700_001 + step)
        idx = torch.randperm(len(self.x), generator=g)[: self.size].to(self.x.device)
        y = F.one_hot(self.y[idx], model.classes).to(self.x.dtype)
        fwd = (runner or model)(self.x[idx], y)
        recon, kl = -fwd.log_px.mean(), fwd.kl.mean()
        loss = recon + self.kl_term(fwd, step)
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}
