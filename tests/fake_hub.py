"""A local fake of the Hugging Face Hub for tests: point HF_ENDPOINT at ``FakeHub.url``.

It serves exactly what the installed ``huggingface_hub`` client asks of a real Hub when vaezoo
downloads and pushes, with the headers the client checks:

* ``HEAD|GET /{org}/{name}/resolve/{revision}/{path}``
  - small files: 200 with ``ETag`` (git blob sha1), ``X-Repo-Commit``, ``Content-Length`` (+ body on GET);
  - large files (``.safetensors``, ``.onnx``, ``.onnx.data``, ``.npz``) are "LFS": 302 to the CDN with
    ``Location``, ``X-Linked-Etag`` (sha256), ``X-Linked-Size`` and ``X-Repo-Commit``, as the real Hub does;
  - errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``).
* ``GET /cdn/{sha256}`` on host ``localhost`` (a different host than the API at 127.0.0.1, like the
  real CDN, so the client neither follows the redirect during HEAD nor sends the token there).
* ``GET /api/models/{org}/{name}[/revision/{rev}]``: repo info (``sha``, ``siblings``, ``private``).
* ``POST /api/repos/create``, ``POST /api/models/{repo}/branch/{branch}``,
  ``POST /api/models/{repo}/preupload/{rev}`` (every file "regular": sent inline in the commit),
  ``POST /api/models/{repo}/commit/{rev}`` (NDJSON; recorded in ``FakeHub.commits_log``),
  ``POST /api/validate-yaml`` (parses the card's metadata as the Hub would: YAML mapping + model-index).

Every request is recorded in ``FakeHub.requests`` as ``(method, path, host)``; unknown routes answer
404 and are listed in ``FakeHub.unhandled``. Writes need ``Authorization: Bearer <token>`` when
``token`` is set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".onnx", ".onnx.data", ".npz")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    parent: str | None
    summary: str


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        sha = self.branches.get(rev) or self.tags.get(rev)
        if sha is None and len(rev) >= 7:
            matches = [c for c in self.commits if c.startswith(rev)]
            sha = matches[0] if len(matches) == 1 else None
        return self.commits.get(sha) if sha else None


class FakeHub:
    def __init__(self, token: str | None = "hf_fake_write_token"):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.commits_log: list[dict] = []
        self.validated: list[str] = []
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cdn(self) -> str:
        return f"http://localhost:{self.port}/cdn"

    # ------------------------------------------------------------ content
    def _new_sha(self, parent: str | None, files: dict[str, bytes], summary: str) -> str:
        self._counter += 1
        h = hashlib.sha1(f"{parent}|{summary}|{self._counter}|{time.time_ns()}".encode())
        for name in sorted(files):
            h.update(name.encode() + git_blob_sha1(files[name]).encode())
        return h.hexdigest()

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        repo = Repo(repo_id, private)
        files = {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n"}
        sha = self._new_sha(None, files, "initial commit")
        repo.commits[sha] = Commit(sha, files, None, "initial commit")
        repo.branches["main"] = sha
        self.repos[repo_id] = repo
        return repo

    def commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main", summary: str = "update",
               deleted: tuple[str, ...] = ()) -> str:
        """Add a commit on ``branch`` that adds/replaces ``files``; returns its sha."""
        with self._lock:
            repo = self.repos.get(repo_id) or self.create_repo(repo_id)
            parent = repo.branches.get(branch) or repo.branches["main"]
            new = dict(repo.commits[parent].files)
            for name in deleted:
                new.pop(name, None)
            new.update(files)
            sha = self._new_sha(parent, new, summary)
            repo.commits[sha] = Commit(sha, new, parent, summary)
            repo.branches[branch] = sha
            return sha

    def add_folder(self, repo_id: str, folder: Path, branch: str = "main", summary: str = "upload folder") -> str:
        """Commit every file of a folder (as a push would), returning the commit sha."""
        folder = Path(folder)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.commit(repo_id, files, branch, summary)

    def replace_in_place(self, repo_id: str, path: str, data: bytes, rev: str = "main") -> None:
        """Change a file's bytes inside an existing commit (a compromised mirror): the sha stays the same."""
        commit = self.repos[repo_id].resolve(rev)
        commit.files[path] = data

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        return dict(self.repos[repo_id].resolve(rev).files)

    def downloaded_names(self) -> list[str]:
        """Repo file names whose bytes were sent (CDN paths carry ?name=...)."""
        names = []
        for method, path, _host in self.requests:
            if method != "GET":
                continue
            parts = urlsplit(path)
            if parts.path.startswith("/cdn/"):
                names.append(unquote(parts.query.partition("name=")[2]))
            elif "/resolve/" in parts.path:
                segs = parts.path.split("/")
                names.append("/".join(unquote(s) for s in segs[5:]))
        return names


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # ------------------------------------------------------------ plumbing
    def _record(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0]
        self.fake.requests.append((self.command, self.path, host))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str | None, message: str, headers: dict | None = None) -> None:
        h = dict(headers or {})
        if code:
            h["X-Error-Code"] = code
        h["X-Error-Message"] = message
        self._json(status, {"error": message}, h)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _authorized(self) -> bool:
        if self.fake.token is None:
            return True
        return self.headers.get("Authorization") == f"Bearer {self.fake.token}"

    def _repo(self, repo_id: str, write: bool = False) -> Repo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404 if self._authorized() else 401, "RepoNotFound", "Repository not found")
            return None
        if write and not self._authorized():
            self._error(401, None, "Invalid credentials in Authorization header")
            return None
        return repo

    # ------------------------------------------------------------ routes
    def do_HEAD(self) -> None:
        self._record()
        self._route()

    def do_GET(self) -> None:
        self._record()
        self._route()

    def do_POST(self) -> None:
        self._record()
        self._route()

    def _route(self) -> None:
        parts = urlsplit(self.path)
        segs = parts.path.strip("/").split("/")
        try:
            if segs[0] == "cdn" and len(segs) == 2:
                return self._cdn(segs[1])
            if len(segs) >= 5 and segs[2] == "resolve":
                return self._resolve(f"{unquote(segs[0])}/{unquote(segs[1])}", unquote(segs[3]),
                                     "/".join(unquote(s) for s in segs[4:]))
            if segs[:2] == ["api", "models"] and len(segs) >= 4:
                repo_id = f"{unquote(segs[2])}/{unquote(segs[3])}"
                rest = segs[4:]
                if self.command == "GET" and not rest:
                    return self._info(repo_id, "main")
                if self.command == "GET" and len(rest) == 2 and rest[0] == "revision":
                    return self._info(repo_id, unquote(rest[1]))
                if self.command == "POST" and len(rest) == 2 and rest[0] == "preupload":
                    return self._preupload(repo_id, unquote(rest[1]))
                if self.command == "POST" and len(rest) == 2 and rest[0] == "commit":
                    return self._commit(repo_id, unquote(rest[1]))
                if self.command == "POST" and len(rest) >= 2 and rest[0] == "branch":
                    return self._branch(repo_id, unquote("/".join(rest[1:])))
            if segs == ["api", "repos", "create"] and self.command == "POST":
                return self._create()
            if segs == ["api", "agent-harnesses"] and self.command == "GET":  # huggingface_hub's user-agent registry
                return self._json(200, {"standardEnvVars": [], "harnesses": {}})
            if segs == ["api", "validate-yaml"] and self.command == "POST":
                return self._validate_yaml()
        except Exception as exc:  # a bug in the fake: show it to the client
            return self._error(500, None, f"fake hub error: {type(exc).__name__}: {exc}")
        self.fake.unhandled.append((self.command, self.path))
        self._error(404, None, f"fake hub: no route for {self.command} {parts.path}")

    def _repo_commit(self, repo_id: str, rev: str) -> tuple[Repo, Commit] | None:
        """The repo and the commit ``rev`` names, or None after answering with the Hub's error."""
        repo = self._repo(repo_id)
        if repo is None:
            return None
        commit = repo.resolve(rev)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return repo, commit

    def _resolve(self, repo_id: str, rev: str, path: str) -> None:
        found = self._repo_commit(repo_id, rev)
        if found is None:
            return
        commit = found[1]
        data = commit.files.get(path)
        if data is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {rev}", {"X-Repo-Commit": commit.sha})
        blob = git_blob_sha1(data)
        if path.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            with self.fake._lock:
                self.fake._blobs[sha256] = data
            headers = {"Location": f"{self.fake.cdn}/{sha256}?name={path}", "X-Repo-Commit": commit.sha,
                       "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": len(data), "ETag": f'"{blob}"'}
            return self._send(302, b"", headers, "text/plain")
        self._send(200, data, {"ETag": f'"{blob}"', "X-Repo-Commit": commit.sha}, "application/octet-stream")

    def _cdn(self, sha256: str) -> None:
        data = self.fake._blobs.get(sha256)
        if data is None:
            return self._error(404, None, "no such blob")
        self._send(200, data, {"ETag": f'"{sha256}"'}, "application/octet-stream")

    def _info(self, repo_id: str, rev: str) -> None:
        found = self._repo_commit(repo_id, rev)
        if found is None:
            return
        repo, commit = found
        self._json(200, {"_id": repo_id, "id": repo_id, "modelId": repo_id, "sha": commit.sha, "private": repo.private,
                         "siblings": [{"rfilename": n} for n in sorted(commit.files)], "tags": [], "downloads": 0})

    def _create(self) -> None:
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        payload = json.loads(self._body() or b"{}")
        repo_id = f"{payload.get('organization')}/{payload['name']}" if payload.get("organization") else payload["name"]
        if "/" not in repo_id:
            repo_id = f"user/{repo_id}"
        if repo_id in self.fake.repos:
            return self._json(409, {"error": "You already created this model repo", "url": f"{self.fake.url}/{repo_id}"})
        private = payload.get("private") or payload.get("visibility") == "private"
        self.fake.create_repo(repo_id, private=bool(private))
        self._json(200, {"url": f"{self.fake.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _branch(self, repo_id: str, branch: str) -> None:
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        payload = json.loads(self._body() or b"{}")
        if branch in repo.branches:
            return self._error(409, None, f"Branch {branch} already exists")
        start = repo.resolve(payload.get("startingPoint") or "main")
        if start is None:
            return self._error(404, "RevisionNotFound", "Invalid starting point")
        repo.branches[branch] = start.sha
        self._json(200, {})

    def _preupload(self, repo_id: str, rev: str) -> None:
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        commit = repo.resolve(rev)
        payload = json.loads(self._body() or b"{}")
        files = []
        for f in payload.get("files", []):
            existing = commit.files.get(f["path"]) if commit else None
            files.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_blob_sha1(existing) if existing is not None else None})
        self._json(200, {"files": files, "commitOid": commit.sha if commit else None})

    def _commit(self, repo_id: str, rev: str) -> None:
        repo = self._repo(repo_id, write=True)
        if repo is None:
            return
        if rev not in repo.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = next((item["value"] for item in lines if item["key"] == "header"), {})
        if header.get("parentCommit") and not repo.branches[rev].startswith(header["parentCommit"]):
            return self._error(412, None, "A commit has happened since the parent commit")
        added: dict[str, bytes] = {}
        deleted: list[str] = []
        for item in lines:
            if item["key"] == "file":
                value = item["value"]
                if value.get("encoding") != "base64":
                    return self._error(400, None, "only base64 file content is supported")
                added[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                deleted.append(item["value"]["path"])
            elif item["key"] != "header":
                return self._error(400, None, f"fake hub: unsupported commit operation {item['key']}")
        sha = self.fake.commit(repo_id, added, rev, header.get("summary", ""), tuple(deleted))
        self.fake.commits_log.append({"repo": repo_id, "revision": rev, "sha": sha, "summary": header.get("summary"),
                                      "files": sorted(added), "deleted": deleted})
        self._json(200, {"success": True, "commitOid": sha, "commitUrl": f"{self.fake.url}/{repo_id}/commit/{sha}",
                         "pullRequestUrl": None})

    def _validate_yaml(self) -> None:
        payload = json.loads(self._body() or b"{}")
        content = payload.get("content", "")
        self.fake.validated.append(content)
        errors = validate_card_metadata(content)
        if errors:
            return self._json(400, {"errors": [{"message": e} for e in errors], "warnings": []})
        self._json(200, {"errors": [], "warnings": []})


def validate_card_metadata(content: str) -> list[str]:
    """What the Hub's metadata validation would object to in a model card (empty list = valid)."""
    import yaml

    from huggingface_hub.repocard_data import model_index_to_eval_results

    if not content.startswith("---\n"):
        return ["the card has no YAML metadata block"]
    try:
        head = content[4:].split("\n---\n", 1)[0]
        meta = yaml.safe_load(head)
    except yaml.YAMLError as exc:
        return [f"invalid YAML: {exc}"]
    if not isinstance(meta, dict):
        return ["metadata must be a YAML mapping"]
    errors = []
    for key in ("tags", "datasets"):
        if key in meta and not (isinstance(meta[key], list) and all(isinstance(t, str) for t in meta[key])):
            errors.append(f"'{key}' must be a list of strings")
    if "license" in meta and not isinstance(meta["license"], str):
        errors.append("'license' must be a string")
    if "model-index" in meta:
        try:
            name, results = model_index_to_eval_results(meta["model-index"])
            if not results:
                errors.append("model-index has no results")
            for r in results:
                if not isinstance(r.metric_value, (int, float)):
                    errors.append(f"metric {r.metric_type} has a non-numeric value")
        except Exception as exc:
            errors.append(f"invalid model-index: {type(exc).__name__}: {exc}")
    return errors



# ---------------------------------------------------------------- pytest fixtures shared by the hub tests
# Import them into a test module (``from fake_hub import fake_hub, tiny_ckpt, tiny_onnx_ckpt``). The tiny
# checkpoints are built once per test session (cached here) and must be copied before being changed.
import pytest  # noqa: E402

TINY_MODEL = "dp-vae-mnist5k"
_BUILT: dict[str, Path] = {}


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A running fake Hub; HF_ENDPOINT, an empty HF_HOME and a write token are set for this process and the CLI."""
    hub = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_TOKEN", hub.token)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    yield hub
    hub.stop()


@pytest.fixture
def tiny_ckpt(tmp_path_factory) -> Path:
    """A tiny trained dp-vae-mnist5k checkpoint (config, weights, metrics, manifest); read-only."""
    if "plain" not in _BUILT:
        from conftest import train_tiny

        _BUILT["plain"] = train_tiny(TINY_MODEL, tmp_path_factory.mktemp("hub_ckpt") / TINY_MODEL)
    return _BUILT["plain"]


@pytest.fixture
def tiny_onnx_ckpt(tiny_ckpt, tmp_path_factory) -> Path:
    """The tiny checkpoint with its ONNX graphs; read-only."""
    if "onnx" not in _BUILT:
        import shutil

        from vaezoo.export import export_checkpoint

        folder = tmp_path_factory.mktemp("hub_onnx_ckpt") / TINY_MODEL
        shutil.copytree(tiny_ckpt, folder)
        export_checkpoint(folder, exporter="torchscript", test_data=False, log=None)  # also refreshes the manifest
        _BUILT["onnx"] = folder
    return _BUILT["onnx"]
