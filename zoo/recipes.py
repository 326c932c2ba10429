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
import math
import re
from vaezoo import toml
from functools import lru_cache
from pathlib import Path

from vaezoo.errors import UsageError
from vaezoo.families import base_toml, lookup, published, recipe_dir


def merge(base: dict, over: dict) -> dict:
    """Deep merge: tables merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for key, val in over.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


def _overrides(model_id: str) -> dict:
    path = recipe_dir() / f"{model_id}.toml"
    if not path.is_file():
        return {}
    with open(path, "rb") as fh:
        return toml.load(fh)


@lru_cache(maxsize=1)
def _ids() -> dict[str, tuple[str, str]]:
    """id -> (published family name, dataset), in registry order."""
    return {f"{name}-{ds}": (name, ds) for name, pub in published().items() for ds in pub.datasets}


# A model id names a folder of the store: a plain name, never a path (no "/", no "..", no leading dot).
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_id(model_id, where: str = "model id") -> str:
    """``model_id`` if it is a valid name; a UsageError otherwise (ids are joined to store paths)."""
    if not isinstance(model_id, str) or not ID_PATTERN.fullmatch(model_id) or ".." in model_id:
        raise UsageError(f"{where} {model_id!r} is not a valid model id: use letters, digits, '.', '_' and '-' "
                         "(starting with a letter or digit), not a path")
    return model_id


def list_ids(pattern: str = "*") -> list[str]:
    return [i for i in _ids() if fnmatch.fnmatchcase(i, pattern)]


def families() -> list[str]:
    """Published family names (each family, its variants and its label budgets)."""
    return list(published())


def unknown_id_error(model_id: str) -> UsageError:
    close = difflib.get_close_matches(model_id, list(_ids()), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see `vaezoo list`)"
    return UsageError(f"unknown model id {model_id!r}{hint}")


def resolve(model_id: str, overrides: dict | None = None) -> dict:
    """The complete recipe for a registry id, with optional overrides applied before derivation."""
    if model_id not in _ids():
        raise unknown_id_error(model_id)
    fam, ds = _ids()[model_id]
    base = base_toml()
    pub = published()[fam]
    fam_spec = merge(pub.family.settings, pub.family.per_dataset.get(ds, {}))  # the family's settings for this dataset
    if pub.variant is not None:
        fam_spec = merge(fam_spec, pub.variant.settings)
    if pub.budget is not None:
        fam_spec = merge(fam_spec, {"data": {"labels": pub.budget}})
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
    obj, model, steps = recipe.get("objective", {}), recipe.get("model", {}), recipe.get("train", {}).get("steps")
    if obj.get("capacity_steps", None) == 0 and steps:  # 0 = three quarters of the training run
        obj["capacity_steps"] = int(0.75 * steps)
    if obj.get("vae_steps", None) == 0 and steps:       # 0 = half of the run; fixed here, so a resumed
        obj["vae_steps"] = int(0.5 * steps)             # run keeps its stage boundary whatever --steps says
    _fill_backbone(model)
    if isinstance(model.get("m1"), dict):  # M1+M2's first stage: a VAE model table of its own
        m1 = model["m1"]
        m1.setdefault("backbone", model.get("backbone"))
        m1.setdefault("activation", model.get("activation"))
        _fill_backbone(m1)
    validate(recipe)
    return recipe


def _fill_backbone(model: dict) -> None:
    """A conv backbone's standard channel stack ([backbones.<name>] in base.toml), and a conv q(y|x)'s
    ([classifier_backbones.<name>]), unless the recipe sets its own."""
    for table, key in (("backbones", "backbone"), ("classifier_backbones", "classifier_backbone")):
        for name, value in base_toml().get(table, {}).get(model.get(key), {}).items():
            model.setdefault(name, copy.deepcopy(value))


# What the code before checkpoint format 2 assumed for the settings a recipe left out. Format-1 configs
# (the bundled starters were written then) get these filled in when read, so they build the same
# networks; a format-2 config states every setting itself.
V1_CONV_CHANNELS = {"conv28": [32, 64], "conv32": [32, 64, 128], "conv64": [32, 64, 128, 256]}
V1_OBJECTIVE = {"alpha": 0.1, "labelled_batch": 100, "weighting": "batch", "shift": 0, "label_only_batch": 100,
                "weight": 1.0, "inverse_entropy": True, "inverse_encoder": True, "inverse_prior": "uniform",
                "inverse_sample": "mean", "inverse_temperature": 0.5}
V1_SEMISUP = {"m1", "m2", "m1m2", "untapped"}


def complete_v1(recipe: dict) -> dict:
    """A format-1 recipe with the settings the format-1 code assumed made explicit."""
    recipe = copy.deepcopy(recipe)
    m, kind = recipe["model"], recipe["model"].get("kind", "vae")

    def vae_table(t: dict, hidden: list) -> None:
        t.setdefault("hidden", hidden)
        t.setdefault("activation", "leaky_relu" if t.get("backbone") == "conv64" else "relu")
        if t.get("backbone") in V1_CONV_CHANNELS:
            t.setdefault("channels", V1_CONV_CHANNELS[t["backbone"]])

    m.setdefault("kind", "vae")
    if m.get("likelihood") == "gaussian":
        m.setdefault("sigma", 0.1)
    if kind in ("vae", "m1"):
        vae_table(m, [256])
    else:
        m.setdefault("hidden", [500])
        m.setdefault("activation", "relu")
    if kind in ("m2", "untapped", "m1m2"):
        m.setdefault("classifier_hidden", m["hidden"])
        m.setdefault("classifier_backbone", "mlp")
    if kind == "m1":
        m.setdefault("classifier_hidden", [])
    if kind in V1_SEMISUP:
        m.setdefault("classifier_dropout", 0.0)
        for key, value in V1_OBJECTIVE.items():
            recipe["objective"].setdefault(key, value)
    if kind == "m1m2":
        m1 = m.setdefault("m1", {})
        m1.setdefault("backbone", m.get("backbone", "mlp"))
        m1.setdefault("latent", 50)
        vae_table(m1, [500])
    if kind in ("m1", "m1m2") and not recipe["objective"].get("vae_steps"):
        recipe["objective"]["vae_steps"] = int(0.5 * int(recipe["train"]["steps"]))
    recipe["prior"].setdefault("blocks", 6)
    recipe["prior"].setdefault("hidden", 64)
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
    if lookup(str(recipe.get("family"))) is None:
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: family {recipe.get('family')!r} is not a vaezoo family "
                         f"(one of {', '.join(published())})")
    _check_numbers(recipe)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# (table, key, test, what it must be) for the settings every recipe has; family settings are checked by
# their objective or model when it is built
NUMBER_RULES = (
    ("model", "latent", lambda v: _is_int(v) and v >= 1, "a positive integer"),
    ("model", "hidden", lambda v: isinstance(v, list) and v and all(_is_int(h) and h >= 1 for h in v), "a non-empty list of positive integers"),
    ("model", "sigma", lambda v: _is_number(v) and v > 0, "a positive number"),
    ("prior", "blocks", lambda v: _is_int(v) and v >= 1, "a positive integer"),
    ("prior", "hidden", lambda v: _is_int(v) and v >= 1, "a positive integer"),
    ("train", "steps", lambda v: _is_int(v) and v >= 1, "a positive integer"),
    ("train", "batch_size", lambda v: _is_int(v) and v >= 1, "a positive integer"),
    ("train", "lr", lambda v: _is_number(v) and v > 0, "a positive finite number"),
    ("train", "seed", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("train", "grad_clip", lambda v: _is_number(v) and v >= 0, "a non-negative number"),
    ("train", "checkpoint_every", lambda v: _is_int(v) and v >= 1, "a positive integer"),
    ("eval", "nll_samples", lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    ("eval", "max_examples", lambda v: _is_int(v) and v >= 1, "a positive integer"),
)


def _check_numbers(recipe: dict) -> None:
    """One line for a setting that cannot work (latent = -3, hidden = "lots", lr = nan), before anything runs."""
    for table, key, ok, what in NUMBER_RULES:
        section = recipe.get(table) or {}
        if key in section and not ok(section[key]):
            raise UsageError(f"recipe {recipe.get('id', '?')!r}: {table}.{key} must be {what}, not {section[key]!r}")


def load_recipe_file(path: str | Path, overrides: dict | None = None) -> dict:
    """A standalone recipe file: either complete, or ``family`` + ``dataset`` plus overrides."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = toml.load(fh)
    except (OSError, toml.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read recipe {path}: {exc}") from None
    if "family" in data and "dataset" in data:   # a [data] table beside them overrides (data.labels = 100)
        named = (data.get("data") or {}).get("name", data["dataset"])
        if named != data["dataset"]:
            raise UsageError(f"recipe {path}: dataset = {data['dataset']!r} but data.name = {named!r}")
        base_id = f"{data['family']}-{data['dataset']}"
        over = merge({k: v for k, v in data.items() if k != "dataset"}, overrides or {})
        recipe = resolve(base_id, over)
        recipe["id"] = check_id(data.get("id", path.stem), f"recipe {path}: id")
        return recipe
    data.setdefault("id", path.stem)
    check_id(data["id"], f"recipe {path}: id")
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
