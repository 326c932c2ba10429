"""The Hugging Face Hub: fetch checkpoints (pinned revisions, offline cache) and push them.

A Hub repo holds a checkpoint folder as it is on disk (config.json, model.safetensors, metrics.json,
README.md = the model card, onnx/*.onnx). Downloads go through ``huggingface_hub`` and its cache
(``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_TOKEN``), one file at a time:

1. ``config.json`` at the requested revision; its snapshot folder names the commit it resolved to;
2. its manifest (``"files"``: name -> size, sha256) says what else exists; every name is checked
   against the allow-list of :mod:`vaezoo.store.checkpoint` before anything is requested;
3. only the files the command needs are fetched, at that commit (a cached commit needs no network),
   and each one is verified against its SHA-256 before it is used.

Nothing else is ever downloaded; nothing is unpickled or executed. No torch import here, and
``huggingface_hub`` is imported inside the functions. Settings that ``huggingface_hub`` reads once
at import (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, the cache folder) are read here at call time and
passed explicitly, so they can change within one process.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

from vaezoo.store.checkpoint import (CARD, CONFIG, METRICS, WEIGHTS, compute_manifest, config_text, fp32_graph_names, manifest_of, payload_names,
                               read_config, safe_path, verify_files)
from vaezoo.errors import UsageError, VaezooError

HUB_PREFIX = "hf-hub:"
DEFAULT_REVISION = "main"
NEEDS = ("config", "metrics", "weights", "graphs", "auto", "all")
OPTIONAL = (CARD, METRICS)  # fetched when there, never required
_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "ON", "YES", "TRUE"}


# ---------------------------------------------------------------- settings read at call time
def endpoint() -> str | None:
    """``HF_ENDPOINT`` now (None = huggingface_hub's default)."""
    value = os.environ.get("HF_ENDPOINT")
    return value.rstrip("/") if value else None


PROBE_TIMEOUT_S = 3.0
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def reachable(url: str) -> bool:
    """Whether a TCP connection to ``url``'s host opens within PROBE_TIMEOUT_S. huggingface_hub retries
    a failed name lookup five times with back-off (about 25 s of warnings); one probe first lets a machine
    without a connection fail, or fall back to the cache, at once. Behind a proxy the host is not
    dialled directly, so the probe is skipped (True)."""
    import socket
    from urllib.parse import urlsplit

    if any(os.environ.get(v) for v in _PROXY_VARS):
        return True
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def env_offline() -> bool:
    return (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper() in _TRUE


def cache_dir() -> Path:
    """The huggingface_hub cache folder, computed as huggingface_hub does but from the environment now."""
    def expand(p: str) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(p)))

    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return expand(os.environ[var])
    if os.environ.get("HF_HOME"):
        return expand(os.environ["HF_HOME"]) / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return expand(base) / "huggingface" / "hub"


def repo_cache(repo_id: str) -> Path:
    return cache_dir() / ("models--" + repo_id.replace("/", "--"))


# ---------------------------------------------------------------- specs
def is_hub_spec(spec: str) -> bool:
    return isinstance(spec, str) and spec.startswith(HUB_PREFIX)


def check_repo_id(repo_id: str) -> str:
    if repo_id.startswith(HUB_PREFIX):
        repo_id = repo_id[len(HUB_PREFIX):]
    if not _REPO_RE.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id:
        raise UsageError(f"invalid Hub repo id {repo_id!r}: expected org/name (letters, digits, '.', '_', '-')")
    return repo_id


def check_revision(revision: str) -> str:
    if not revision or any(c.isspace() for c in revision) or ".." in revision or revision.startswith("/"):
        raise UsageError(f"invalid revision {revision!r}: give a branch, a tag or a 40-hex commit id")
    return revision


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``hf-hub:org/name[@revision]`` -> (repo_id, revision or None)."""
    body = spec[len(HUB_PREFIX):] if is_hub_spec(spec) else spec
    repo_id, at, revision = body.partition("@")
    return check_repo_id(repo_id), (check_revision(revision) if at else None)


def format_spec(repo_id: str, revision: str | None = None) -> str:
    return f"{HUB_PREFIX}{repo_id}" + (f"@{revision}" if revision else "")


def cached_commit(repo_id: str, revision: str) -> str | None:
    """The commit a revision points to in the local cache (no network), or None."""
    if _COMMIT_RE.fullmatch(revision):
        return revision
    ref = repo_cache(repo_id) / "refs" / revision
    try:
        commit = ref.read_text().strip()
    except OSError:
        return None
    return commit if _COMMIT_RE.fullmatch(commit) else None


def cached_snapshot(repo_id: str, revision: str) -> Path | None:
    """The cached snapshot of repo@revision when it holds a usable checkpoint (config + weights or graphs)."""
    commit = cached_commit(repo_id, revision)
    if commit is None:
        return None
    snap = repo_cache(repo_id) / "snapshots" / commit
    if (snap / CONFIG).is_file() and ((snap / WEIGHTS).is_file() or (snap / "onnx" / "decoder.onnx").is_file()):
        return snap
    return None


# ---------------------------------------------------------------- errors
def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def _hub_errors(repo_id: str, revision: str | None, offline: bool, what: str = CONFIG):
    """Turn huggingface_hub / network exceptions into one-line VaezooErrors (revision as the user gave it)."""
    from huggingface_hub import errors as E

    spec = format_spec(repo_id, revision)
    where = endpoint() or "https://huggingface.co"
    try:
        yield
    except VaezooError:
        raise
    except E.GatedRepoError:
        raise VaezooError(f"{repo_id} is gated on the Hub: accept its terms on the website and set HF_TOKEN") from None
    except E.RepositoryNotFoundError:
        raise VaezooError(f"Hub repo {repo_id} not found at {where} (if it is private, set HF_TOKEN to a token that can read it)") from None
    except E.RevisionNotFoundError:
        raise VaezooError(f"revision {revision or DEFAULT_REVISION!r} not found in Hub repo {repo_id}") from None
    except E.RemoteEntryNotFoundError:
        if what == CONFIG:
            raise VaezooError(f"{spec} has no {CONFIG}: it is not a vaezoo checkpoint") from None
        raise VaezooError(f"{spec} lists {what} in its manifest but the repo has no such file") from None
    except (E.LocalEntryNotFoundError, E.OfflineModeIsEnabled):
        if offline:
            raise VaezooError(f"{what} of {spec} is not in the Hugging Face cache ({cache_dir()}) and offline mode is on; "
                              f"run `vaezoo pull {spec}` while online first") from None
        raise VaezooError(f"cannot reach the Hub at {where} and {what} of {spec} is not cached; "
                          "check the connection (or HF_ENDPOINT)") from None
    except E.HfHubHTTPError as exc:
        status = exc.response.status_code if getattr(exc, "response", None) is not None else "?"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = " (set HF_TOKEN to a token with access)" if status in (401, 403) else ""
        raise VaezooError(f"Hub request for {spec} failed: HTTP {status}: {first}{hint}") from None
    except (OSError, ValueError) as exc:  # connection errors, FileMetadataError, disk errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VaezooError(f"cannot fetch {what} of {spec} from {where}: {first}") from None
    except Exception as exc:  # httpx2 transport errors are not OSErrors
        if type(exc).__module__.split(".")[0] in ("httpx2", "httpx", "httpcore", "httpcore2"):
            raise VaezooError(f"cannot reach the Hub at {where} for {spec}: {exc}") from None
        raise


# ---------------------------------------------------------------- download
def _want(manifest: dict, need: str) -> list[str]:
    """The manifest files a use needs: weights (torch), graphs (onnx), metrics, or everything."""
    graphs = fp32_graph_names(manifest)  # the fp16/int8 variants come with need="all"
    weights = [n for n in manifest if n == WEIGHTS]
    metrics = [n for n in manifest if n == METRICS]
    if need == "graphs":
        return graphs
    if need == "weights":
        return weights
    if need == "metrics":
        return metrics
    if need == "all":
        return sorted(manifest)
    return []


def _auto_need(manifest: dict, snapshot: Path, offline: bool) -> str:
    """What backend=auto will use: the ONNX graphs when listed (and onnxruntime is installed), else weights.

    Offline, prefer whichever complete set is already cached.
    """
    import importlib.util

    options = []
    if {"onnx/encoder.onnx", "onnx/decoder.onnx"} <= set(manifest) and importlib.util.find_spec("onnxruntime") is not None:
        options.append("graphs")
    if WEIGHTS in manifest:
        options.append("weights")
    if not options:
        raise VaezooError(f"the checkpoint at {snapshot} lists neither {WEIGHTS} nor ONNX graphs in its manifest")
    if offline:
        for opt in options:
            if all((snapshot / n).is_file() for n in _want(manifest, opt)):
                return opt
    return options[0]


def fetch(repo_id: str, revision: str | None = None, *, need: str = "all", offline: bool = False,
          force: bool = False, quiet: bool = False) -> Path:
    """Download (or find in the cache) what ``need`` requires of repo@revision; returns the snapshot folder.

    need: config | metrics (config + metrics.json) | weights (torch) | graphs (onnx) | auto | all.
    Every fetched file is verified against the SHA-256 in config.json.
    """
    from huggingface_hub import hf_hub_download

    from vaezoo.version import __version__

    if need not in NEEDS:
        raise ValueError(f"need must be one of {NEEDS}")
    repo_id = check_repo_id(repo_id)
    asked = revision  # for messages: the spec as the user wrote it
    revision = check_revision(revision or DEFAULT_REVISION)
    offline = offline or env_offline()
    # unreachable: use what is cached, as huggingface_hub would after its retries; the messages still say
    # "cannot reach the Hub" (not "offline mode is on") when something is missing. A commit whose config is
    # cached is served from the cache without a request, so it needs no probe either (the pinned path).
    cached_commit_config = _COMMIT_RE.fullmatch(revision) and (repo_cache(repo_id) / "snapshots" / revision / CONFIG).is_file()
    cache_only = offline or (not cached_commit_config and not reachable(endpoint() or "https://huggingface.co"))
    common = dict(repo_id=repo_id, cache_dir=str(cache_dir()), endpoint=endpoint(), local_files_only=cache_only,
                  library_name="vaezoo", library_version=__version__)
    _quiet_bars()

    with _hub_errors(repo_id, asked, offline):
        cfg_path = Path(hf_hub_download(filename=CONFIG, revision=revision, force_download=force and not cache_only, **common))
    snapshot = cfg_path.parent
    commit = snapshot.name
    config = read_config(snapshot)
    where = f"{CONFIG} of {format_spec(repo_id, asked)}"
    manifest = manifest_of(config, where)
    if manifest is None:
        raise VaezooError(f"{where} has no 'files' manifest (file names with SHA-256): refusing to use it; "
                          "re-push it with a current vaezoo")
    for name in manifest:  # every name is checked before any request is made
        safe_path(snapshot, name)
    if need == "auto":
        need = _auto_need(manifest, snapshot, cache_only)
    names = _want(manifest, need)
    if need == "all" and CARD not in names:
        names.append(CARD)  # the card is not in the manifest (it may be edited); fetch it when present
    for name in names:
        if (snapshot / name).exists() and not force:
            continue
        if not quiet and not cache_only:
            size = manifest.get(name, {}).get("size")
            _log(f"downloading {name}" + (f" ({_human(size)})" if size else "") + f" from {repo_id}@{commit[:10]}")
        try:
            with _hub_errors(repo_id, asked, offline, what=name):
                hf_hub_download(filename=name, revision=commit, force_download=force and not cache_only, **common)
        except VaezooError:
            if name in OPTIONAL:
                continue  # a checkpoint without a card or metrics is still usable
            raise
    present = [n for n in names if n in manifest and (n not in OPTIONAL or (snapshot / n).exists())]
    verify_hub_files(snapshot, present, config, format_spec(repo_id, asked))
    return snapshot


def verify_hub_files(snapshot: Path, names: list[str], config: dict, spec: str) -> None:
    try:
        verify_files(snapshot, names, config)
    except VaezooError as exc:
        raise VaezooError(f"{exc} (from {spec}; run `vaezoo pull {spec} --force` to download it again)") from None


def _human(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def _quiet_bars() -> None:
    """huggingface_hub's progress bars only on a terminal (logs go to stderr; keep pipes clean)."""
    if not sys.stderr.isatty():
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

        if not are_progress_bars_disabled():
            disable_progress_bars()


# ---------------------------------------------------------------- upload
def push(folder: Path, repo_id: str, *, private: bool = False, branch: str | None = None,
         commit_message: str | None = None, card: Path | None = None, overwrite_card: bool = False,
         keep_card: bool = False, rehash: bool = False, token: str | None = None) -> dict:
    """Upload a checkpoint folder to repo_id in one commit; returns {repo, revision, commit, url, files}.

    Creates the repo when missing (and the branch when given). The README.md is the model card:
    ``card`` if given, else the folder's README.md, else one generated from the checkpoint. A remote
    card edited by hand is not replaced unless ``overwrite_card`` (or left alone with ``keep_card``).
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.utils import get_token

    from vaezoo.store import cards
    from vaezoo.version import __version__

    folder = Path(folder)
    repo_id = check_repo_id(repo_id)
    branch = check_revision(branch) if branch else None
    revision = branch or DEFAULT_REVISION
    config = read_config(folder)
    present = payload_names(folder)
    manifest = manifest_of(config, str(folder / CONFIG))
    if manifest is None or rehash:
        manifest = compute_manifest(folder, present)
    else:
        unlisted = [n for n in present if n not in manifest]
        if unlisted:
            raise VaezooError(f"{folder} holds {', '.join(unlisted)}, not listed in its {CONFIG} manifest; "
                              "pass --rehash to list the folder's current files")
        verify_files(folder, list(manifest), config)
    config_out = {**config, "files": manifest}
    if keep_card:
        card_text = None
    elif card is not None:
        try:
            card_text = Path(card).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read card {card}: {exc}") from None
    elif (folder / CARD).is_file() and not cards.is_generated((folder / CARD).read_text(encoding="utf-8")):
        card_text = (folder / CARD).read_text(encoding="utf-8")  # a hand-written card: as it is
    else:
        card_text = cards.render(folder, repo_id=repo_id)  # generated: for this repo

    token = token or get_token()
    if not token:
        raise VaezooError("pushing needs a Hugging Face token with write access: set HF_TOKEN (or run `hf auth login`)")
    api = HfApi(endpoint=endpoint(), token=token, library_name="vaezoo", library_version=__version__)
    _quiet_bars()
    with _hub_errors(repo_id, revision, offline=False, what="the push"):
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch and branch != DEFAULT_REVISION:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        if card_text is not None:
            remote = _remote_card(api, repo_id, revision)
            if remote is not None and remote != card_text and not cards.is_generated(remote) and not overwrite_card:
                raise VaezooError(f"the README.md of {repo_id}@{revision} was edited by hand; pass --overwrite-card "
                                  "to replace it with this card, or --keep-card to leave it as it is")
        ops = [CommitOperationAdd(CONFIG, config_text(config_out).encode())]
        ops += [CommitOperationAdd(name, str(safe_path(folder, name))) for name in sorted(manifest)]
        if card_text is not None:
            ops.append(CommitOperationAdd(CARD, card_text.encode("utf-8")))
        info = api.create_commit(
            repo_id, ops, revision=branch,
            commit_message=commit_message or f"Upload {config.get('id', folder.name)} checkpoint (vaezoo {__version__})",
        )
    return {"repo": repo_id, "revision": revision, "commit": info.oid, "url": info.commit_url,
            "files": [CONFIG, *sorted(manifest), *([CARD] if card_text is not None else [])]}


def _remote_card(api, repo_id: str, revision: str) -> str | None:
    """The README.md at repo@revision, or None when there is none."""
    from huggingface_hub import errors as E

    try:
        path = api.hf_hub_download(repo_id, CARD, revision=revision, cache_dir=str(cache_dir()))
    except (E.RemoteEntryNotFoundError, E.RevisionNotFoundError, E.RepositoryNotFoundError):
        return None
    return Path(path).read_text(encoding="utf-8", errors="replace")
