"""A supervised classifier's objective (the FID-LeNet digit net): mean cross-entropy on labelled batches.

The trainer hands objectives images only, so the labelled training set is kept here (``attach``) and each
step draws its batch of ``train.batch_size`` (x, y) pairs from a generator seeded by (train.seed, step):
a pure function of the step, so a resumed run draws the same batches. ``objective.shift`` > 0 translates
each training digit by up to that many pixels (random_shift of the semi-supervised recipes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vaezoo.errors import UsageError
from vaezoo.train.objectives.base import Objective, register_objective
from vaezoo.train.objectives.semisup import random_shift


@register_objective("cross-entropy")
class CrossEntropyObjective(Objective):
    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        self.shift = int(self.cfg["shift"])
        if self.shift < 0:
            raise UsageError(f"objective.shift = {self.shift}: must be >= 0")
        self.batch, self.seed = int(recipe["train"]["batch_size"]), int(recipe["train"]["seed"])
        self.x = self.y = None

    def attach(self, train_set, device) -> None:
        if train_set.y is None:
            raise UsageError(f"{train_set.name} has no labels; the cross-entropy objective needs labelled data")
        self.x = torch.from_numpy(train_set.float_batch(slice(None))).to(device)
        self.y = torch.from_numpy(train_set.y).long().to(device)

    def forward(self, model, batches, step: int, runner=None):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 700_001 + step)
        idx = torch.randint(len(self.y), (self.batch,), generator=g).to(self.y.device)
        x = self.x[idx]
        x = random_shift(x, self.shift) if self.shift else x
        logits, _ = (runner or model)(x)
        loss = F.cross_entropy(logits, self.y[idx])
        acc = (logits.argmax(1) == self.y[idx]).float().mean()
        return loss, {"loss": loss.detach(), "acc": acc.detach()}

    progress_stats = ("acc",)

    def metrics_info(self) -> dict:
        return {"objective_note": "cross-entropy on all labelled training digits"
                + (f", shifted by up to {self.shift} pixels" if self.shift else "")}
