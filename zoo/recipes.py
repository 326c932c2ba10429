"""Recipes: the single source of truth for every model id.

A recipe is composed, not copied: ``train/recipes/base.toml`` holds the defaults, one table per
family (objective and prior) and one per dataset (backbone, likelihood, training length); an
optional ``train/recipes/<id>.toml`` holds the few settings that differ for that one pair.
A family table may hold ``per_dataset.<dataset>`` settings (what that family needs on that data).
Composition order: defaults -> dataset -> family (-> its per_dataset entry) -> ``<id>.toml``. The result is one complete
recipe that ``vaezoo info ID`` prints and ``config.json`` records. Pure Python: no torch here.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import tomllib
from functools import lru_cache
from pathlib import Path

from vaezoo.errors import UsageError, VaezooError

RECIPE_DIR = Path(__file__).resolve().parent.parent / "train" / "recipes"


def _recipe_dir() -> Path:
    # Installed (non-editable) layout: vaezoo/train/recipes next to vaezoo/.
    here = Path(__file__).resolve().parent
    for cand in (here / "train" / "recipes", RECIPE_DIR):
        if (cand / "base.toml").is_file():
            return cand
    raise VaezooError(f"recipe folder not found (looked in {here / 'train' / 'recipes'} and {RECIPE_DIR})")


def merge(base: dict, over: dict) -> dict:
    """Deep merge: tables merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, val in over.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


@lru_cache(maxsize=1)
def _base() -> dict:
    with open(_recipe_dir() / "base.toml", "rb") as fh:
        return tomllib.load(fh)


def _overrides(model_id: str) -> dict:
    path = _recipe_dir() / f"{model_id}.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def _family_names() -> dict[str, tuple[str, int | None]]:
    """Published family name -> (family table, label budget or None).

    A family with ``label_budgets`` is also published once per budget as ``<family>-<budget>``.
    """
    names: dict[str, tuple[str, int | None]] = {}
    for fam, spec in _base()["families"].items():
        names[fam] = (fam, None)
        for budget in spec.get("label_budgets", []):
            names[f"{fam}-{budget}"] = (fam, int(budget))
    return names


@lru_cache(maxsize=1)
def _ids() -> dict[str, tuple[str, str]]:
    """id -> (published family name, dataset), in registry order."""
    base = _base()
    ids: dict[str, tuple[str, str]] = {}
    for name, (fam, _) in _family_names().items():
        for ds in base["families"][fam].get("datasets", base["defaults"]["datasets"]):
            ids[f"{name}-{ds}"] = (name, ds)
    return ids


def list_ids(pattern: str = "*") -> list[str]:
    return [i for i in _ids() if fnmatch.fnmatchcase(i, pattern)]


def families() -> list[str]:
    return list(_family_names())


def unknown_id_error(model_id: str) -> UsageError:
    close = difflib.get_close_matches(model_id, list(_ids()), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see `vaezoo list`)"
    return UsageError(f"unknown model id {model_id!r}{hint}")


def resolve(model_id: str, overrides: dict | None = None) -> dict:
    """The complete recipe for a registry id, with optional overrides applied before derivation."""
    if model_id not in _ids():
        raise unknown_id_error(model_id)
    fam, ds = _ids()[model_id]
    base = _base()
    table, budget = _family_names()[fam]
    spec = base["families"][table]
    fam_spec = {k: v for k, v in spec.items() if k not in ("datasets", "label_budgets", "per_dataset")}
    fam_spec = merge(fam_spec, spec.get("per_dataset", {}).get(ds, {}))  # the family's settings for this dataset
    if budget is not None:
        fam_spec = merge(fam_spec, {"data": {"labels": budget}})
    recipe = merge(base["defaults"]["recipe"], base["datasets"][ds])
    recipe = merge(recipe, fam_spec)
    recipe = merge(recipe, _overrides(model_id))
    recipe = merge(recipe, overrides or {})
    recipe = {"id": model_id, "family": fam, **recipe}
    recipe["data"] = merge({"name": ds}, recipe.get("data", {}))
    recipe.setdefault("hub", {}).setdefault("repo", f"{base['defaults']['hub_org']}/{model_id}")
    return finalize(recipe)


def finalize(recipe: dict) -> dict:
    """Fill settings derived from others, so the printed recipe shows every number used."""
    obj = recipe.get("objective", {})
    if obj.get("capacity_steps", None) == 0:  # 0 = three quarters of the training run
        obj["capacity_steps"] = int(0.75 * recipe["train"]["steps"])
    model = recipe.get("model", {})
    if model.get("classifier_backbone") == "conv":
        model.setdefault("classifier_channels", [32, 64])  # the conv q(y|x)'s default stack
    validate(recipe)
    return recipe


REQUIRED = {
    "model": ("backbone", "latent", "likelihood"),
    "prior": ("kind",),
    "objective": ("name",),
    "data": ("name",),
    "train": ("steps", "batch_size", "lr", "seed"),
}


def validate(recipe: dict) -> None:
    for table, keys in REQUIRED.items():
        if not isinstance(recipe.get(table), dict):
            raise UsageError(f"recipe {recipe.get('id', '?')!r} has no [{table}] table")
        for key in keys:
            if key not in recipe[table]:
                raise UsageError(f"recipe {recipe.get('id', '?')!r} is missing {table}.{key}")
    if recipe["prior"]["kind"] not in ("standard", "flow"):
        raise UsageError(f"prior.kind must be 'standard' or 'flow', not {recipe['prior']['kind']!r}")


def load_recipe_file(path: str | Path, overrides: dict | None = None) -> dict:
    """A standalone recipe file: either complete, or ``family`` + ``dataset`` plus overrides."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read recipe {path}: {exc}") from None
    if "family" in data and "data" not in data and "dataset" in data:
        base_id = f"{data['family']}-{data['dataset']}"
        over = merge({k: v for k, v in data.items() if k != "dataset"}, overrides or {})
        recipe = resolve(base_id, over)
        recipe["id"] = data.get("id", path.stem)
        return recipe
    data.setdefault("id", path.stem)
    return finalize(merge(data, overrides or {}))


def to_toml(recipe: dict) -> str:
    """Write a recipe back as TOML (scalars, lists and nested tables only)."""

    def scalar(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    lines: list[str] = []

    def table(d: dict, prefix: str) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in d.items() if isinstance(v, dict)}
        if prefix and plain:
            lines.append(f"\n[{prefix}]")
        for k, v in plain.items():
            lines.append(f"{k} = {scalar(v)}")
        for k, v in nested.items():
            table(v, f"{prefix}.{k}" if prefix else k)

    table(recipe, "")
    return "\n".join(lines).lstrip("\n") + "\n"
