"""cdraw: DRAW conditioned on the class, trained on the ELBO of (x, y) pairs.

The trainer's batches hold images only, so this objective draws its own labelled batch each step, as M2
draws its labelled one (semisup.py): a permutation of the whole training set from a torch generator seeded by
(train.seed, step), so a resumed run reads the same batches. The trainer's own batch is not used; metrics'
``epochs`` counts batches of the same size, so it still says how much data went through.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vaezoo.errors import UsageError
from vaezoo.train.objectives.base import Objective, register_objective


@register_objective("cdraw")
class ConditionalDRAW(Objective):
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
        loss = recon + kl
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}
