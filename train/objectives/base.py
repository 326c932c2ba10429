"""The trainer-objective contract, and the table of objectives by name.

An objective is an ``nn.Module`` (so training-only state it owns, a discriminator or a Lagrange
multiplier, is saved with the training state and never exported) that tells the trainer everything
the trainer needs; the trainer knows no family:

* ``batches_per_step``: how many independent data batches one step reads (FactorVAE: 2). The trainer
  draws them from the epoch sampler, so the recorded epochs count every batch.
* ``attach(train_set, device)``: called once before the first step (labelled subsets, dataset sizes).
* ``forward(model, batches, step, runner)``: the model's loss to minimise and a dict of scalar stats;
  ``runner`` runs the model's forward pass (today the model itself: the trainer averages gradients over DDP
  ranks after the backward, so a loss computed outside this pass counts too).
* ``auxiliaries()``: training-only networks with their own optimiser settings; the trainer steps each
  after the model step, on ``aux.loss()`` (computed from detached tensors the objective kept); a loss
  of None skips that network's step (VAE-GAN's balancing: Adam then leaves it exactly as it was).
* ``metrics_info()``: extra entries for metrics.json (the labelled subset, ...).
* ``own_batches``: true when it draws (some of) its training images itself (labelled batches) rather than
  from the trainer's batches, which the trainer alone transforms (data.binarize is refused for it);
* ``progress_stats``: names of stats shown on the progress line beside ``loss`` and ``kl`` (GECO's lambda);
  every stat goes to metrics.json's ``final_stats``.

Every loss term is per example (summed over pixels and latent dimensions, averaged over the batch).
Schedules are functions of the step, which only the trainer advances, so resuming needs no extra state;
adaptive state (GECO's Lagrange multiplier and moving average) is a buffer of the objective, saved with
the training state and restored on resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from vaezoo.registration import Registry

OBJECTIVES = Registry("objective")
register_objective = OBJECTIVES.register   # @register_objective("factor"): recipe.objective.name = "factor"


@dataclass
class Auxiliary:
    """A training-only network stepped by its own Adam optimiser after each model step."""

    name: str
    module: nn.Module
    lr: float
    betas: tuple[float, float]
    loss: Callable[[], torch.Tensor | None]   # None: no step this time


class Objective(nn.Module):
    batches_per_step = 1
    own_batches = False
    progress_stats: tuple[str, ...] = ()

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__()
        self.recipe = recipe
        self.cfg = recipe["objective"]
        self.dataset_size = dataset_size

    def attach(self, train_set, device) -> None:
        """Called by the trainer once, before the first step."""

    def auxiliaries(self) -> list[Auxiliary]:
        return []

    def metrics_info(self) -> dict:
        return {}

    def forward(self, model, batches: list[torch.Tensor], step: int, runner=None):
        raise NotImplementedError
