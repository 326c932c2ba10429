"""The family registry: each family's facts are declared once (its base.toml table), generated names
(dp variants, label budgets) resolve, the facts agree with the code, shared code names no family, and
adding a regulariser family takes one objective class plus one TOML table."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY, run_cli
from vaezoo import families
from vaezoo.recipes import list_ids, merge, resolve

REPO = Path(__file__).resolve().parent.parent
# modules every family shares: they must ask the registry, never name a family
SHARED = [REPO / "zoo" / d for d in ("runtime", "store", "cli", "io")] + [REPO / "train" / "trainer.py", REPO / "export"]


def _clear_caches():
    for fn in (families.base_toml, families.variants, families.families, families.published):
        fn.cache_clear()
    from vaezoo import recipes

    recipes._ids.cache_clear()


def test_every_family_declares_its_facts():
    fams = families.families()
    assert {"vae", "beta-h", "beta-b", "tc", "factor", "info", "m1", "m2", "m1m2", "untapped"} <= set(fams)
    for f in fams.values():
        assert f.paper and f.summary, f.name
        assert f.link == "" or f.link.startswith("https://"), f.name
        assert set(f.settings) <= {"model", "prior", "objective", "data", "train", "eval"}, f.name
    pub = families.published()
    assert pub["dp-factor"].family.name == "factor" and pub["dp-factor"].variant.name == "dp"
    assert pub["m2-100"].budget == 100 and pub["m2-100"].variant is None
    assert [p for p, _ in pub["dp-tc"].papers] == [fams["tc"].paper, families.variants()["dp"].paper]
    assert resolve("dp-factor-mnist5k")["prior"]["kind"] == "flow" and resolve("factor-mnist5k")["prior"]["kind"] == "standard"
    assert families.names_with("classifier") == ["m2", "m1", "m1m2", "untapped", "m2-cgan"]


@pytest.mark.parametrize("name", [n for n, p in families.published().items() if p.budget is None and p.variant is None])
def test_facts_agree_with_the_built_model(name):
    """conditional <=> the decoder takes y; classifier <=> the model has a classifier part."""
    from vaezoo.models import build_model
    from vaezoo.store.checkpoint import make_config

    fam = families.published()[name].family
    ds = "mnist5k" if "mnist5k" in fam.datasets else fam.datasets[0]
    config = make_config(resolve(f"{name}-{ds}", merge(TINY, {"model": {"m1": {"hidden": [16], "latent": 4}}} if name == "m1m2" else TINY)))
    parts = build_model(config).parts()
    decoder_inputs = [p.name for p in parts["decoder"].signature.inputs] if "decoder" in parts else []  # lenet: a classifier
    assert config["conditional"] is fam.conditional
    assert ("y" in decoder_inputs) is fam.conditional, name
    assert ("classifier" in parts) is fam.classifier, name


def test_shared_code_names_no_family():
    names = set(families.published()) - {"vae"}  # "vae" is also the generic word (a Hub tag)
    found = []
    for root in SHARED:
        for path in ([root] if root.is_file() else sorted(root.rglob("*.py"))):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not found, "shared code names a family (ask vaezoo.families instead): " + "; ".join(found)


def test_a_new_regulariser_family_is_one_class_and_one_table(tmp_path, monkeypatch):
    """A family added the documented way (ARCHITECTURE.md): an objective class registered by name and a
    base.toml table. It is listed with its dp variant, resolves, trains and samples through the CLI."""
    from vaezoo.train.objectives.base import OBJECTIVES, register_objective
    from vaezoo.train.objectives.regularisers import ELBOObjective

    recipes_dir = tmp_path / "recipes"
    shutil.copytree(families.recipe_dir(), recipes_dir)
    with open(recipes_dir / "base.toml", "a") as fh:
        fh.write('\n[families.half-kl]\npaper = "A test, 2026"\nlink = ""\nsummary = "a VAE with half its KL"\n'
                 'variants = ["dp"]\ndatasets = ["mnist5k"]\nobjective = { name = "half-kl", weight = 0.5 }\n')

    @register_objective("half-kl")
    class HalfKL(ELBOObjective):
        def regularizer(self, model, fwd, step, batches):
            return self.cfg["weight"] * fwd.kl.mean(), {}

    monkeypatch.setattr(families, "recipe_dir", lambda: recipes_dir)
    _clear_caches()
    try:
        assert {"half-kl-mnist5k", "dp-half-kl-mnist5k"} <= set(list_ids("*half-kl*"))
        recipe = resolve("dp-half-kl-mnist5k", TINY)
        assert recipe["objective"] == {"name": "half-kl", "weight": 0.5} and recipe["prior"]["kind"] == "flow"
        from vaezoo.train.trainer import train

        metrics = train(recipe, tmp_path / "ck", device="cpu", progress=False)
        assert metrics["validation"]["neg_elbo"] > 0
        from vaezoo.store.cards import render

        assert "a VAE with half its KL, with a **decoupled prior**" in render(tmp_path / "ck")
    finally:
        OBJECTIVES.pop("half-kl", None)
        monkeypatch.undo()
        _clear_caches()
    r = run_cli("sample", str(tmp_path / "ck"), "-n", "4", "--backend", "torch", "-o", str(tmp_path / "s.png"))
    assert r.returncode == 0, r.stderr
