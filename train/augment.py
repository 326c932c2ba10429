"""Training-batch augmentation, a recipe's ``data.augment`` (images only; the held-out data is never augmented):

* ``"none"`` (a recipe without the key): the batches as they are.
* ``"affine-jitter"``: the dpVAE authors' augmentation as their configs name it ("colour jitter + random affine,
  p = 0.5 each"). Their parameters did not survive; ours: with probability 0.5 per image a random affine map
  (rotation within +-15 degrees, shift within +-10 % of the side, scale 0.9-1.1; bilinear, zeros outside), and
  independently with probability 0.5 a brightness and a contrast factor, each in [0.8, 1.2] (torchvision's
  formulas: x * b, then (x - mean) * c + mean, clipped to [0, 1]).

Draws come from torch's generator, saved with the training state, so a resumed run augments as the first did.
The trainer checks the mode (vaezoo.train.trainer.check_batch_transforms, with data.binarize's).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MODES = ("none", "affine-jitter")
P = 0.5
ROTATION, SHIFT, SCALE, JITTER = 15.0, 0.1, 0.1, 0.2


def mode(recipe: dict) -> str:
    return recipe.get("data", {}).get("augment", "none")


def affine(x: torch.Tensor) -> torch.Tensor:
    """Each image of N x C x H x W, with probability P, through a random rotation, shift and scale."""
    n = x.shape[0]
    u = lambda: torch.rand(n, device=x.device) * 2 - 1   # noqa: E731  (uniform in [-1, 1], one per image)
    angle, scale = u() * math.radians(ROTATION), 1 + u() * SCALE
    tx, ty = u() * 2 * SHIFT, u() * 2 * SHIFT            # affine_grid's coordinates span [-1, 1]: 2 per side
    apply = torch.rand(n, device=x.device) < P
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(apply[:, None, None, None], moved, x)


def jitter(x: torch.Tensor) -> torch.Tensor:
    """Each image, with probability P, scaled by a brightness factor then a contrast factor (clipped to [0, 1])."""
    n = x.shape[0]
    shape = (n,) + (1,) * (x.dim() - 1)
    apply = (torch.rand(n, device=x.device) < P).view(shape)
    b = 1 + (torch.rand(n, device=x.device) * 2 - 1).view(shape) * JITTER
    c = 1 + (torch.rand(n, device=x.device) * 2 - 1).view(shape) * JITTER
    y = (x * b).clamp(0, 1)
    mean = y.mean(dim=tuple(range(1, x.dim())), keepdim=True)
    y = ((y - mean) * c + mean).clamp(0, 1)
    return torch.where(apply, y, x)


def augmented(batches: list[torch.Tensor], recipe: dict) -> list[torch.Tensor]:
    if mode(recipe) == "none":
        return batches
    return [jitter(affine(b)) if b.dim() == 4 else b for b in batches]
