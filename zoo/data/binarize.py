"""Binarised digits: the protocol under which likelihoods on MNIST compare with the literature (Burda et al.'s
IWAE tables, pythae's benchmarks). A recipe's ``data.binarize``:

* ``"none"`` (what a recipe without the key does): grey levels in [0, 1], the Bernoulli likelihood scored on
  them. Such numbers do not compare with published binarised-MNIST ones.
* ``"dynamic"``: every training batch drawn afresh, each pixel on with probability its grey level (the trainer,
  with torch's generator, saved with the run so a resume draws the same); the validation digits binarised
  *once*, by :func:`fixed`, so that training's metrics.json and `vaezoo evaluate` score the same images.
"""

from __future__ import annotations

import numpy as np

MODES = ("none", "dynamic")
SEED = 0   # the fixed binarisation of held-out digits: numpy default_rng(SEED), the same wherever it is made


def mode(recipe: dict) -> str:
    """The recipe's data.binarize ("none" when absent: recipes and checkpoints from before the option)."""
    return recipe.get("data", {}).get("binarize", "none")


def fixed(x: np.ndarray, seed: int = SEED) -> np.ndarray:
    """x (floats in [0, 1]) binarised once: pixel on where a uniform draw of default_rng(seed) is below it."""
    return (np.random.default_rng(seed).random(x.shape, dtype=np.float32) < x).astype(np.float32)


def describe(recipe: dict) -> str:
    """How the held-out digits were scored, for protocols and cards ("" for grey levels)."""
    if mode(recipe) == "none":
        return ""
    return f"binarised once (pixel on with probability its grey level, numpy default_rng({SEED}))"
