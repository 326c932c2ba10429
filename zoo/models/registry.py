"""Model kinds by name: a model module registers its classes where it defines them.

    @register_model("m2")
    class M2(nn.Module): ...

``recipe.model.kind`` picks the class. The family facts (paper, summary, label budgets, ...) live in
the family's TOML table and are read torch-free by :mod:`vaezoo.families`; this table only maps a kind
to the code that builds it. :mod:`vaezoo.models` imports every model module, so looking a kind up
through :func:`vaezoo.models.build_model` always sees all of them.
"""

from __future__ import annotations

from vaezoo.registration import Registry

MODEL_KINDS = Registry("model kind")
register_model = MODEL_KINDS.register   # @register_model("m2"): recipe.model.kind = "m2" builds this class
