"""Checkpoint folders: the same layout locally, in the cache, bundled and on the Hub.

    config.json        resolved recipe, vaezoo version, input shape and pixel scaling, labels
    model.safetensors  weights (architecture comes from code + config; never pickle)
    metrics.json       held-out evaluation
    README.md          model card
    onnx/*.onnx        exported parts

Trust: config.json lists every other file of the checkpoint (except the editable README.md) with its
size and SHA-256 under "files"; loading verifies the files it reads against that manifest, so a tampered
or truncated file is refused. config.json vouches for itself too: "config_sha256" is the SHA-256 of its
other settings (:func:`config_digest`), so an edited recipe, label list or input shape is refused as well.
Only the names accepted by :func:`is_allowed_name` are ever listed, read or downloaded: plain JSON,
Markdown, safetensors and ONNX files, never pickles or code.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from vaezoo.version import __version__
from vaezoo.errors import VaezooError
from vaezoo.families import lookup
from vaezoo.recipes import complete_v1
from vaezoo.io.files import read_json, write_bytes

FORMAT = "vaezoo-checkpoint/2"   # 2: every setting is in the recipe (format 1 left some to the code)
FORMAT_V1 = "vaezoo-checkpoint/1"
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.json"
CARD = "README.md"
ONNX_DIR = "onnx"   # the exported graphs: onnx/<part>.onnx
MANIFEST_KEY = "files"
DIGEST_KEY = "config_sha256"   # SHA-256 of config.json's settings: everything but the manifest and itself
TRAIN_STATE = "train_state.safetensors"  # resumable training state: never published

# The only file names a checkpoint may hold (posix paths relative to the folder). Names start with a
# letter, digit or underscore and use no other characters than [A-Za-z0-9_.-], so none can be absolute,
# hidden, or climb out of the folder.
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
ALLOWED_NAMES = (
    re.compile(r"config\.json"),
    re.compile(r"metrics\.json"),
    re.compile(r"samples\.png"),   # the card's sample grid (vaezoo.runtime.preview)
    re.compile(r"README\.md"),
    re.compile(_NAME + r"\.safetensors"),
    re.compile(r"onnx/" + _NAME + r"\.onnx"),
    re.compile(r"onnx/" + _NAME + r"\.onnx\.data"),  # external weights of a large graph
    # parity inputs/outputs (TensorProto .pb as onnx_test_runner reads them, or numpy without pickles)
    re.compile(r"onnx/test_data/(?:" + _NAME + r"/){0,2}" + _NAME + r"\.(pb|npy|npz|json)"),
)
_FP32_GRAPH = re.compile(r"onnx/[A-Za-z0-9_-]+\.onnx(\.data)?")  # onnx/<part>.onnx, not <part>.fp16.onnx


def fp32_graph_names(names) -> list[str]:
    """The graphs (and their external data) the ONNX backend reads by default: onnx/<part>.onnx."""
    return sorted(n for n in names if _FP32_GRAPH.fullmatch(n))


def is_allowed_name(name) -> bool:
    """True for the file names a checkpoint may contain (see ALLOWED_NAMES)."""
    return (isinstance(name, str) and ".." not in name and name != TRAIN_STATE
            and any(p.fullmatch(name) for p in ALLOWED_NAMES))


def safe_path(folder: Path, name: str) -> Path:
    """``folder / name`` for an allowed name, refusing anything that would land outside ``folder``."""
    if not is_allowed_name(name):
        raise VaezooError(f"refusing file name {name!r}: not one of the files a vaezoo checkpoint may hold")
    root = Path(folder).resolve()
    path = root.joinpath(*name.split("/"))
    if root not in path.parents:
        raise VaezooError(f"refusing file name {name!r}: it points outside {folder}")
    return path


def file_digest(path: Path) -> tuple[int, str]:
    """(size, SHA-256 hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def payload_names(folder: Path) -> list[str]:
    """The manifest-worthy files present in ``folder``: every allowed name except config.json and README.md."""
    folder = Path(folder)
    names = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            if name not in (CONFIG, CARD) and is_allowed_name(name):
                names.append(name)
    return names


def compute_manifest(folder: Path, names: list[str] | None = None) -> dict:
    """{name: {"size": bytes, "sha256": hex}} for ``names`` (default: :func:`payload_names`)."""
    folder = Path(folder)
    out = {}
    for name in sorted(names if names is not None else payload_names(folder)):
        size, digest = file_digest(safe_path(folder, name))
        out[name] = {"size": size, "sha256": digest}
    return out


def manifest_with_graphs(folder: Path, graphs: Path) -> dict:
    """The manifest ``folder`` will have once the folder ``graphs`` has become its onnx/."""
    folder, graphs = Path(folder), Path(graphs)
    out = compute_manifest(folder, [n for n in payload_names(folder) if not n.startswith(ONNX_DIR + "/")])
    for path in sorted(graphs.rglob("*")):
        name = f"{ONNX_DIR}/{path.relative_to(graphs).as_posix()}"
        if path.is_file() and is_allowed_name(name):
            size, digest = file_digest(path)
            out[name] = {"size": size, "sha256": digest}
    return dict(sorted(out.items()))


def config_digest(config: dict) -> str:
    """SHA-256 of a config's settings in canonical JSON. The manifest is left out (its entries are checked
    against the files themselves), so adding a file's entry does not change the digest."""
    settings = {k: v for k, v in config.items() if k not in (MANIFEST_KEY, DIGEST_KEY)}
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def config_text(config: dict) -> str:
    """config.json's text for ``config``, sealed with its digest: the one way config.json is written."""
    return json.dumps({**config, DIGEST_KEY: config_digest(config)}, indent=2) + "\n"


def write_config(folder: Path, config: dict) -> None:
    write_bytes(Path(folder) / CONFIG, config_text(config).encode("utf-8"))


def write_manifest(folder: Path) -> dict:
    """Recompute the manifest of ``folder`` from the files now in it and store it in config.json.

    Call this after adding or replacing files (the ONNX exporter does, after writing its graphs).
    Returns the manifest.
    """
    folder = Path(folder)
    read_config(folder, verify=False)   # a vaezoo config; the folder is trusted as it is: this seals it
    config = read_json(folder / CONFIG)  # as stored (read_config completes a format-1 recipe)
    manifest = compute_manifest(folder)
    config[MANIFEST_KEY] = manifest
    write_config(folder, config)
    return manifest


def manifest_of(config: dict, where: str = "config.json") -> dict | None:
    """The validated manifest of a config, or None when it has none (checkpoints written before manifests)."""
    files = config.get(MANIFEST_KEY)
    if files is None:
        return None
    if not isinstance(files, dict):
        raise VaezooError(f"{where}: '{MANIFEST_KEY}' must map file names to their size and sha256")
    for name, entry in files.items():
        if not is_allowed_name(name):
            raise VaezooError(f"{where} lists {name!r}, which is not a file a vaezoo checkpoint may hold "
                              "(only config/metrics JSON, README.md, *.safetensors and onnx/*.onnx); refusing it")
        if (not isinstance(entry, dict) or not isinstance(entry.get("size"), int)
                or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", "")))):
            raise VaezooError(f"{where}: the manifest entry of {name} needs an integer size and a sha256 hex digest")
    return files


def _required_manifest(folder: Path, config: dict) -> dict:
    if DIGEST_KEY not in config:   # read_config checked the digest where there is one; none must not turn it off
        raise VaezooError(f"{Path(folder) / CONFIG} has no '{DIGEST_KEY}', so its own settings cannot be verified; refusing to "
                          "load it (if you trust the folder as it is, vaezoo.store.checkpoint.write_manifest(folder) seals it)")
    manifest = manifest_of(config, str(Path(folder) / CONFIG))
    if manifest is None:
        raise VaezooError(f"{Path(folder) / CONFIG} has no '{MANIFEST_KEY}' manifest with the files' SHA-256, so none of its "
                          "files can be verified; refusing to load it (if you trust the folder as it is, "
                          "vaezoo.store.checkpoint.write_manifest(folder) lists its current files)")
    return manifest


def _listed(folder: Path, manifest: dict, name: str) -> tuple[Path, dict]:
    path = safe_path(folder, name)
    entry = manifest.get(name)
    if entry is None:
        raise VaezooError(f"{name} is not listed in the manifest of {Path(folder) / CONFIG}; refusing to load it")
    return path, entry


def _check_entry(path: Path, size: int, digest: str, entry: dict) -> None:
    if size != entry["size"] or digest != entry["sha256"]:
        what = "truncated" if size < entry["size"] else "tampered with or corrupt"
        raise VaezooError(
            f"{path} does not match its SHA-256 in {CONFIG} (size {size}, expected {entry['size']}; "
            f"sha256 {digest[:12]}…, expected {entry['sha256'][:12]}…): the file is {what}; refusing to load it"
        )


def verify_files(folder: Path, names, config: dict | None = None) -> None:
    """Check ``names`` in ``folder`` against the manifest in config.json; raise a one-line error on a mismatch.

    Listed files must exist and match size and SHA-256. A config without a manifest, or a file the
    manifest does not list, is refused: removing the manifest (or an entry) must not turn the checks off.
    """
    folder = Path(folder)
    manifest = _required_manifest(folder, read_config(folder) if config is None else config)
    for name in names:
        path, entry = _listed(folder, manifest, name)
        if not path.is_file():
            raise VaezooError(f"{path} is missing (listed in {CONFIG})")
        _check_entry(path, *file_digest(path), entry)


def read_verified(folder: Path, names, config: dict) -> dict[str, bytes]:
    """{name: bytes} of small files (graphs), each checked against the manifest as it was read, so what
    is used is exactly what was verified."""
    folder = Path(folder)
    manifest = _required_manifest(folder, config)
    out = {}
    for name in names:
        path, entry = _listed(folder, manifest, name)
        try:
            data = path.read_bytes()
        except OSError:
            raise VaezooError(f"{path} is missing (listed in {CONFIG})") from None
        _check_entry(path, len(data), hashlib.sha256(data).hexdigest(), entry)
        out[name] = data
    return out


def make_config(recipe: dict) -> dict:
    """config.json for a recipe: everything needed to rebuild and use the model."""
    from vaezoo.data import DATASETS

    info = DATASETS[recipe["data"]["name"]]
    likelihood = recipe["model"]["likelihood"]
    return {
        "format": FORMAT,
        "vaezoo_version": __version__,
        "id": recipe["id"],
        "recipe": recipe,
        "input": {
            "shape": list(info.shape),
            "kind": info.kind,
            # how raw data maps to model input: images are uint8/255 -> float32 in [0, 1]
            "pixel_scale": "x/255" if info.kind == "image" else "none",
            "dtype": "float32",
        },
        "output": {
            "likelihood": likelihood,
            "decoder": "logits" if likelihood == "bernoulli" else "mean",
        },
        "latent_dim": int(recipe["model"]["latent"]),
        "labels": list(info.classes),
        # conditional decoders take (z, y_onehot); label_budget = labelled training examples (None: unsupervised)
        "conditional": lookup(recipe["family"]).family.conditional,
        # completion decoders take (z, kept, mask): the kept half of an image and its mask (vaezoo.completion)
        "completion": lookup(recipe["family"]).family.completion,
        "label_budget": recipe["data"].get("labels"),
    }


def read_config(folder: Path, verify: bool = True) -> dict:
    """config.json, checked against its own digest (``verify``) and completed to format 2's recipe."""
    path = Path(folder) / CONFIG
    if not path.is_file():
        raise VaezooError(f"{folder} is not a vaezoo checkpoint folder (no {CONFIG})")
    try:
        cfg = read_json(path)
    except (ValueError, OSError) as exc:
        raise VaezooError(f"cannot read {path}: {exc}") from None
    if not isinstance(cfg, dict) or "recipe" not in cfg or "input" not in cfg:
        raise VaezooError(f"{path} is not a vaezoo config (missing 'recipe' or 'input')")
    shape = cfg["input"].get("shape") if isinstance(cfg["input"], dict) else None
    if not (isinstance(shape, list) and shape and all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)):
        raise VaezooError(f"{path}: input.shape must be a list of positive integers, not {shape!r}")
    latent = cfg.get("latent_dim")
    if not (isinstance(latent, int) and not isinstance(latent, bool) and latent >= 1):
        raise VaezooError(f"{path}: latent_dim must be a positive integer, not {latent!r}")
    if verify and DIGEST_KEY in cfg and cfg[DIGEST_KEY] != config_digest(cfg):
        raise VaezooError(f"{path} does not match its own '{DIGEST_KEY}': its settings were edited or corrupted; "
                          "refusing to load it")
    if cfg.get("format") == FORMAT_V1:
        cfg["recipe"] = complete_v1(cfg["recipe"])
    return cfg
