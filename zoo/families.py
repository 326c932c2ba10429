"""The family registry (torch-free): what each model family is, declared once in its TOML table.

A family is one table ``[families.<name>]`` in ``train/recipes/base.toml``. Its *facts* sit beside its
recipe settings (model, prior, objective, data, train, eval), under these keys:

    paper          "Authors year, title"            link      URL of the paper
    summary        one line: "a FactorVAE: ..."     (the model cards start from it)
    conditional    decoder(z, y) and encoder(x, y)  classifier  has a q(y|x) part
    completion     decoder(z, kept, mask) and encoder(x, kept, mask): completes half images (vaezoo.completion)
    classifier_reads  what q(y|x) reads when it is not the pixels (for the cards)
    disentangling  its objective pushes towards factorised latents (the cards say what that promises)
    adversarial    its decoder is trained against a discriminator: "features" (on the discriminator's features
                   instead of the pixel likelihood: VAE-GAN) or "added" (a GAN term added to the bound: the
                   conditional GANs); the cards say what that means for its ELBO and NLL
    feature_net    not a generative model: a classifier whose features other models' metrics read (FID-LeNet's
                   LeNet); its card describes a classifier, not a VAE
    label_budgets  also published as <family>-<budget> with data.labels = budget
    variants       e.g. ["dp"]: also published as dp-<family>, with the [variants.dp] table applied
    datasets       where it is published (default: [defaults].datasets)
    per_dataset    settings for one dataset (recipe settings only)

``list``, ``info``, the recipes, the cards, the pipeline's messages and the tests read these facts
from here; the code that trains and runs a family registers itself by name where it is defined
(``@register_model`` in vaezoo.models, ``@register_objective`` in vaezoo.train.objectives).
"""

from __future__ import annotations

from vaezoo import toml
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vaezoo.errors import VaezooError

FACT_KEYS = ("paper", "link", "summary", "conditional", "completion", "classifier", "classifier_reads", "disentangling",
             "adversarial", "feature_net", "label_budgets", "variants", "datasets", "per_dataset")
VARIANT_FACT_KEYS = ("paper", "link", "summary", "datasets")   # datasets: optional, where it applies
RECIPE_DIR = Path(__file__).resolve().parent.parent / "train" / "recipes"


def recipe_dir() -> Path:
    """train/recipes: beside vaezoo/ in a source checkout, inside it (vaezoo/train) when installed."""
    here = Path(__file__).resolve().parent
    for cand in (here / "train" / "recipes", RECIPE_DIR):
        if (cand / "base.toml").is_file():
            return cand
    raise VaezooError(f"recipe folder not found (looked in {here / 'train' / 'recipes'} and {RECIPE_DIR})")


@lru_cache(maxsize=1)
def base_toml() -> dict:
    with open(recipe_dir() / "base.toml", "rb") as fh:
        return toml.load(fh)


@dataclass(frozen=True)
class Variant:
    name: str            # "dp"
    paper: str
    link: str
    summary: str         # appended to the family's summary
    settings: dict       # recipe settings it applies (the decoupled prior: prior.kind = "flow")
    datasets: tuple[str, ...] | None = None   # where it is published (None: wherever its family is)


@dataclass(frozen=True)
class Family:
    name: str                        # the table name: "factor", "m2"
    paper: str
    link: str
    summary: str
    conditional: bool
    completion: bool
    classifier: bool
    classifier_reads: str
    disentangling: bool
    adversarial: str                 # "", "features" or "added"
    feature_net: bool
    label_budgets: tuple[int, ...]
    variants: tuple[str, ...]
    datasets: tuple[str, ...]
    settings: dict                   # recipe settings of the table (model, prior, objective, ...)
    per_dataset: dict


@dataclass(frozen=True)
class Published:
    """A published family name (the part of a registry id before the dataset): a family, optionally
    with a variant ("dp-factor") and a label budget ("m2-100")."""

    name: str
    family: Family
    variant: Variant | None
    budget: int | None

    @property
    def datasets(self) -> tuple[str, ...]:
        """Where it is published: the family's datasets, narrowed by the variant's."""
        if self.variant is None or self.variant.datasets is None:
            return self.family.datasets
        return tuple(d for d in self.family.datasets if d in self.variant.datasets)

    @property
    def papers(self) -> list[tuple[str, str]]:
        """(paper, link) of the family, then of the variant."""
        return [(self.family.paper, self.family.link)] + ([(self.variant.paper, self.variant.link)] if self.variant else [])

    @property
    def summary(self) -> str:
        return self.family.summary + (f", {self.variant.summary}" if self.variant else "")


def _required(table: dict, keys, where: str) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        raise VaezooError(f"base.toml [{where}] lacks the fact(s) {', '.join(missing)}")


@lru_cache(maxsize=1)
def variants() -> dict[str, Variant]:
    out = {}
    for name, table in base_toml().get("variants", {}).items():
        _required(table, ("paper", "link", "summary"), f"variants.{name}")
        out[name] = Variant(name, table["paper"], table["link"], table["summary"],
                            {k: v for k, v in table.items() if k not in VARIANT_FACT_KEYS},
                            tuple(table["datasets"]) if "datasets" in table else None)
    return out


@lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    """Every family table of base.toml, in file order."""
    base = base_toml()
    out = {}
    for name, table in base["families"].items():
        _required(table, ("paper", "link", "summary"), f"families.{name}")
        unknown = [v for v in table.get("variants", []) if v not in variants()]
        if unknown:
            raise VaezooError(f"base.toml [families.{name}] names unknown variant(s) {', '.join(unknown)}")
        out[name] = Family(
            name=name, paper=table["paper"], link=table["link"], summary=table["summary"],
            conditional=bool(table.get("conditional", False)), completion=bool(table.get("completion", False)),
            classifier=bool(table.get("classifier", False)),
            classifier_reads=str(table.get("classifier_reads", "")),
            disentangling=bool(table.get("disentangling", False)),
            adversarial=_adversarial(table.get("adversarial", ""), name),
            feature_net=bool(table.get("feature_net", False)),
            label_budgets=tuple(int(b) for b in table.get("label_budgets", [])),
            variants=tuple(table.get("variants", [])),
            datasets=tuple(table.get("datasets", base["defaults"]["datasets"])),
            settings={k: v for k, v in table.items() if k not in FACT_KEYS},
            per_dataset=dict(table.get("per_dataset", {})),
        )
    return out


ADVERSARIAL = ("", "features", "added")


def _adversarial(value, name: str) -> str:
    if value not in ADVERSARIAL:
        raise VaezooError(f"base.toml [families.{name}] adversarial = {value!r}: use \"features\" or \"added\" (or leave it out)")
    return value


@lru_cache(maxsize=1)
def published() -> dict[str, Published]:
    """Published family name -> what it is: each family, then each variant of each family (the order
    of `vaezoo list`), each also once per label budget."""
    fams = families()
    bases = [(f.name, f, None) for f in fams.values()]
    bases += [(f"{v}-{f.name}", f, variants()[v]) for v in variants() for f in fams.values() if v in f.variants]
    out = {}
    for name, fam, var in bases:
        out[name] = Published(name, fam, var, None)
        for budget in fam.label_budgets:
            out[f"{name}-{budget}"] = Published(f"{name}-{budget}", fam, var, budget)
    return out


def lookup(name: str) -> Published | None:
    """What a recipe's ``family`` names, or None for a name no table declares."""
    return published().get(name)


def names_with(fact: str) -> list[str]:
    """Family names whose boolean fact (``conditional``, ``completion``, ``classifier``, ``disentangling``) is true."""
    return [f.name for f in families().values() if getattr(f, fact)]
