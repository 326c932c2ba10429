"""vaezoo.train.objectives: what each family minimises, registered by name (see base.py for the
contract with the trainer). Adding an objective is one class in a module here, registered with
``@register_objective``; a new module needs its import line below."""

from __future__ import annotations

from vaezoo.errors import UsageError
from vaezoo.train.objectives import classifier, conditional, draw, gan_term, regularisers, semisup, taming, vaegan  # noqa: F401  (each registers its objectives)
from vaezoo.train.objectives.base import OBJECTIVES, Objective


def build_objective(recipe: dict, dataset_size: int) -> Objective:
    name = recipe["objective"]["name"]
    if name not in OBJECTIVES:
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: unknown objective {name!r} ({', '.join(OBJECTIVES)})")
    return OBJECTIVES[name](recipe, dataset_size)
