"""Model kinds by name: a model module registers its classes where it defines them.

    @register_model("m2")
    class M2(nn.Module): ...

``recipe.model.kind`` picks the class. The family facts (paper, summary, label budgets, ...) live in
the family's TOML table and are read torch-free by :mod:`vaezoo.families`; this table only maps a kind
to the code that builds it. :mod:`vaezoo.models` imports every model module, so looking a kind up
through :func:`vaezoo.models.build_model` always sees all of them.
"""

from __future__ import annotations

MODEL_KINDS: dict[str, type] = {}


def register_model(kind: str):
    """Class decorator: ``recipe.model.kind = kind`` builds this class from a checkpoint config."""

    def add(cls):
        if kind in MODEL_KINDS:
            raise ValueError(f"model kind {kind!r} is registered twice ({MODEL_KINDS[kind].__name__}, {cls.__name__})")
        MODEL_KINDS[kind] = cls
        return cls

    return add
