"""The conditional VAE's objective: -log p(x|z, c) + KL(q(z|x, c) || p(z)), per example, batch-averaged.

* ``model.condition = "half-image"``: each example of the trainer's batch keeps one of ``objective.keep``
  (a subset of vaezoo.completion.KEEPS), drawn uniformly per example and step with torch's generator
  (seeded by the trainer and saved with its state, so a resumed run draws the same halves).
* ``model.condition = "label"``: the trainer's batches carry no labels, so this objective draws its own
  labelled batches of ``train.batch_size`` from the whole training set, with a generator seeded by
  (train.seed, step): a resumed run sees the same batches. The trainer's batch of the step is unused.
"""

from __future__ import annotations

import torch

from vaezoo.completion import KEEPS
from vaezoo.errors import UsageError
from vaezoo.train.objectives.base import Objective, register_objective


@register_objective("cvae")
class CVAEObjective(Objective):
    own_batches = True   # label condition: its own labelled batches (half-image: the trainer's; one rule for both)

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        self.condition = recipe["model"]["condition"]
        if self.condition == "half-image":
            keep = list(self.cfg["keep"])
            bad = [k for k in keep if k not in KEEPS]
            if not keep or bad:
                raise UsageError(f"recipe {recipe.get('id', '?')!r}: objective.keep must be a non-empty list of "
                                 f"{', '.join(KEEPS)}, not {keep!r}")
            self.keep_index = [KEEPS.index(k) for k in keep]
        self.x = self.y = None

    def attach(self, train_set, device) -> None:
        if self.condition != "label":
            return
        if train_set.y is None:
            raise UsageError(f"{train_set.name} has no labels; condition = \"label\" needs a labelled dataset")
        self.x = torch.from_numpy(train_set.float_batch(slice(None))).to(device)
        self.y = torch.from_numpy(train_set.y).long().to(device)

    def labelled_batch(self, step: int):
        tcfg = self.recipe["train"]
        g = torch.Generator().manual_seed(int(tcfg["seed"]) * 1_000_003 + step)
        idx = torch.randint(len(self.y), (int(tcfg["batch_size"]),), generator=g).to(self.y.device)
        return self.x[idx], self.y[idx]

    def forward(self, model, batches, step: int, runner=None):
        if self.condition == "label":
            x, y = self.labelled_batch(step)
            cond = model.label_condition(y)
        else:
            x = batches[0]
            pick = torch.randint(len(self.keep_index), (x.shape[0],), device=x.device)
            cond = model.image_condition(x, torch.tensor(self.keep_index, device=x.device)[pick])
        fwd = (runner or model)(x, cond)
        recon, kl = -fwd.log_px.mean(), fwd.kl.mean()
        loss = recon + kl
        return loss, {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}
