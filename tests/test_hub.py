"""The Hub without the network: a fake Hub on 127.0.0.1 (tests/fake_hub.py) behind HF_ENDPOINT.

pull, pinned revisions, offline after a pull, offline without one, tampered and truncated files,
path-escaping names, push (repo creation, one commit, the card as README.md, hand-edited cards), and
the ONNX-only download once the exporter exists.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from fake_hub import TINY_MODEL, fake_hub, tiny_ckpt, tiny_onnx_ckpt, validate_card_metadata  # noqa: F401 (fixtures)
from vaezoo.store import hub
from vaezoo.store.checkpoint import write_config, write_manifest
from vaezoo.errors import UsageError, VaezooError

MODEL = TINY_MODEL


@pytest.fixture
def ckpt(tiny_ckpt) -> Path:
    return tiny_ckpt


def copy_ckpt(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def with_fake_graphs(src: Path, dst: Path) -> Path:
    """A copy of the checkpoint with stand-in graph files listed in its manifest (for download selection)."""
    folder = copy_ckpt(src, dst)
    (folder / "onnx").mkdir()
    for part in ("encoder", "decoder", "prior_forward", "prior_inverse", "decoder.fp16"):
        (folder / "onnx" / f"{part}.onnx").write_bytes(f"not a real graph: {part}".encode() * 50)
    (folder / "onnx" / "test_data" / "decoder" / "test_data_set_0").mkdir(parents=True)
    (folder / "onnx" / "test_data" / "decoder" / "test_data_set_0" / "input_0.pb").write_bytes(b"tensor")
    write_manifest(folder)
    return folder


def one_line_error(proc) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("downloading ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# ---------------------------------------------------------------- specs
def test_parse_spec():
    assert hub.parse_spec("hf-hub:org/name") == ("org/name", None)
    assert hub.parse_spec("hf-hub:org/name@v1.0") == ("org/name", "v1.0")
    assert hub.parse_spec("hf-hub:org/name@" + "a" * 40) == ("org/name", "a" * 40)
    for bad in ("hf-hub:name", "hf-hub:org/na me", "hf-hub:../x", "hf-hub:org/x/y", "hf-hub:org--a/b", "hf-hub:org/name@"):
        with pytest.raises(UsageError):
            hub.parse_spec(bad)


# ---------------------------------------------------------------- pull, selection, pinning
def test_fetch_downloads_config_then_only_what_the_backend_needs(ckpt, fake_hub, tmp_path):
    folder = with_fake_graphs(ckpt, tmp_path / "ck")
    fake_hub.add_folder("org/tiny", folder)

    snap = hub.fetch("org/tiny", need="graphs", quiet=True)
    got = fake_hub.downloaded_names()
    assert got[0] == "config.json"
    assert sorted(got[1:]) == ["onnx/decoder.onnx", "onnx/encoder.onnx", "onnx/prior_forward.onnx", "onnx/prior_inverse.onnx"]
    assert not (snap / "model.safetensors").exists() and not (snap / "metrics.json").exists()

    fake_hub.requests.clear()
    snap2 = hub.fetch("org/tiny", need="weights", quiet=True)
    assert snap2 == snap and fake_hub.downloaded_names() == ["model.safetensors"]  # config.json: a HEAD, cached
    assert (snap / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()

    fake_hub.requests.clear()
    hub.fetch("org/tiny", need="all", quiet=True)  # `vaezoo pull`: the rest (variants, test data, metrics)
    assert sorted(fake_hub.downloaded_names()) == ["metrics.json", "onnx/decoder.fp16.onnx",
                                                   "onnx/test_data/decoder/test_data_set_0/input_0.pb", "samples.png"]
    assert fake_hub.unhandled == []


def test_pinned_revision_and_cached_commit_needs_no_network(ckpt, fake_hub, tmp_path, monkeypatch):
    first = fake_hub.add_folder("org/tiny", ckpt)
    v2 = copy_ckpt(ckpt, tmp_path / "v2")
    cfg = json.loads((v2 / "config.json").read_text())
    cfg["recipe"]["description"] = "second version"
    write_config(v2, cfg)   # a new version, sealed as vaezoo writes it
    second = fake_hub.add_folder("org/tiny", v2)
    fake_hub.repos["org/tiny"].tags["v1"] = first

    def description(snap: Path) -> str:
        return json.loads((snap / "config.json").read_text())["recipe"]["description"]

    assert description(hub.fetch("org/tiny", first, need="weights", quiet=True)) != "second version"
    assert description(hub.fetch("org/tiny", "v1", need="weights", quiet=True)) != "second version"
    assert hub.fetch("org/tiny", "v1", need="weights", quiet=True).name == first
    assert description(hub.fetch("org/tiny", need="weights", quiet=True)) == "second version"
    assert hub.cached_snapshot("org/tiny", "main").name == second

    fake_hub.requests.clear()
    hub.fetch("org/tiny", first, need="weights", quiet=True)  # a cached commit: not a single request
    assert fake_hub.requests == []

    def no_probe(url):
        raise AssertionError(f"a cached commit probed {url}")

    with monkeypatch.context() as m:                              # nor a connection to test the network
        m.setattr(hub, "reachable", no_probe)
        hub.fetch("org/tiny", first, need="weights", quiet=True)

    with pytest.raises(VaezooError, match="revision 'nope' not found"):
        hub.fetch("org/tiny", "nope", need="weights")
    with pytest.raises(VaezooError, match="not found"):
        hub.fetch("org/missing", need="weights")


def test_pull_then_offline(ckpt, fake_hub, tmp_path):
    import vaezoo

    commit = fake_hub.add_folder("org/tiny", ckpt)
    proc = run_cli("pull", "hf-hub:org/tiny", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["commit"] == commit and record["model"] == MODEL
    assert sorted(record["files"]) == ["config.json", "metrics.json", "model.safetensors", "samples.png"]
    assert Path(record["path"]).is_relative_to(tmp_path / "hf" / "hub" / "models--org--tiny" / "snapshots")

    fake_hub.requests.clear()
    proc = run_cli("info", "hf-hub:org/tiny", "--offline", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"]["validation"]["nll"] > 0
    pipe = vaezoo.load("hf-hub:org/tiny", backend="torch", offline=True)
    assert pipe.sample(4).shape == (4, 1, 28, 28)
    assert fake_hub.requests == []  # offline: the Hub was not contacted at all


def test_an_unreachable_hub_fails_at_once_in_one_line_and_a_pulled_model_still_loads(ckpt, fake_hub, tmp_path):
    fake_hub.add_folder("org/tiny", ckpt)
    assert run_cli("pull", "hf-hub:org/tiny").returncode == 0
    nowhere = {"HF_ENDPOINT": "http://vaezoo-test-host.invalid"}   # .invalid never resolves (RFC 2606)
    # huggingface_hub alone would retry the name lookup five times, printing a warning each time
    r = run_cli("info", "hf-hub:org/absent", env=nowhere)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot reach the Hub at http://vaezoo-test-host.invalid" in r.stderr and "Retry" not in r.stderr
    r = run_cli("info", "hf-hub:org/tiny", "--json", env=nowhere)     # revision main, resolved from the cache
    assert r.returncode == 0 and json.loads(r.stdout)["metrics"]["validation"]["nll"] > 0, r.stderr


def test_offline_without_a_pull_says_what_to_do(fake_hub, tmp_path, ckpt):
    fake_hub.add_folder("org/tiny", ckpt)
    out = tmp_path / "grid.png"
    msg = one_line_error(run_cli("sample", "hf-hub:org/tiny", "-n", "4", "-o", str(out), "--offline"))
    assert "not in the Hugging Face cache" in msg and "vaezoo pull hf-hub:org/tiny" in msg
    msg = one_line_error(run_cli("info", "hf-hub:org/tiny", env={"HF_HUB_OFFLINE": "1"}))
    assert "offline" in msg
    assert not out.exists() and fake_hub.requests == []


def test_tampered_remote_file_is_refused(ckpt, fake_hub, tmp_path):
    fake_hub.add_folder("org/tiny", ckpt)
    good = (ckpt / "model.safetensors").read_bytes()
    fake_hub.replace_in_place("org/tiny", "model.safetensors", good[:-8] + b"\0" * 8)  # same size, other bytes
    out = tmp_path / "grid.png"
    msg = one_line_error(run_cli("sample", "hf-hub:org/tiny", "-n", "4", "-o", str(out), "--backend", "torch"))
    assert "model.safetensors" in msg and "does not match its SHA-256" in msg and "tampered" in msg
    assert not out.exists()


def test_truncated_cache_file_is_refused_offline(ckpt, fake_hub, tmp_path):
    fake_hub.add_folder("org/tiny", ckpt)
    snap = hub.fetch("org/tiny", need="weights", quiet=True)
    blob = (snap / "model.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:1000])
    with pytest.raises(VaezooError, match="truncated"):
        hub.fetch("org/tiny", need="weights", offline=True)
    msg = one_line_error(run_cli("sample", "hf-hub:org/tiny", "-n", "4", "-o", str(tmp_path / "g.png"), "--offline"))
    assert "truncated" in msg and "vaezoo pull hf-hub:org/tiny --force" in msg
    # --force downloads it again and the model works
    hub.fetch("org/tiny", need="weights", force=True, quiet=True)
    hub.fetch("org/tiny", need="weights", offline=True)


@pytest.mark.parametrize("name", ["../../evil.onnx", "onnx/../../../escape.onnx", "/etc/passwd", "onnx/sub/../../x.onnx",
                                  "evil.py", "pytorch_model.bin", "onnx\\..\\x.onnx", "train_state.safetensors"])
def test_manifest_names_that_escape_or_are_not_allowed_are_refused(ckpt, fake_hub, tmp_path, name):
    folder = copy_ckpt(ckpt, tmp_path / "ck")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["files"][name] = {"size": 3, "sha256": hashlib.sha256(b"bad").hexdigest()}
    (folder / "config.json").write_text(json.dumps(cfg))
    fake_hub.add_folder("org/evil", folder)
    with pytest.raises(VaezooError, match="refusing"):
        hub.fetch("org/evil", need="all", quiet=True)
    assert fake_hub.downloaded_names() == ["config.json"]  # nothing after the config was requested
    assert not (tmp_path / "hf" / "escape.onnx").exists() and not (tmp_path / "evil.onnx").exists()


def test_config_without_manifest_is_refused(ckpt, fake_hub, tmp_path):
    folder = copy_ckpt(ckpt, tmp_path / "ck")
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["files"]
    (folder / "config.json").write_text(json.dumps(cfg))
    fake_hub.add_folder("org/old", folder)
    with pytest.raises(VaezooError, match="no 'files' manifest"):
        hub.fetch("org/old", need="weights")


def test_local_folder_with_tampered_weights_is_refused(ckpt, tmp_path):
    import vaezoo

    folder = copy_ckpt(ckpt, tmp_path / "ck")
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(VaezooError, match="tampered"):
        vaezoo.load(str(folder), backend="torch")


# ---------------------------------------------------------------- push
def test_push_creates_the_repo_in_one_commit_with_the_card_as_readme(ckpt, fake_hub, tmp_path):
    proc = run_cli("push", str(ckpt), "org/pushed", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    repo = fake_hub.repos["org/pushed"]
    assert repo.branches["main"] == result["commit"]
    assert len(fake_hub.commits_log) == 1
    assert fake_hub.commits_log[0]["files"] == ["README.md", "config.json", "metrics.json", "model.safetensors", "samples.png"]
    files = fake_hub.files("org/pushed")
    assert files["model.safetensors"] == (ckpt / "model.safetensors").read_bytes()
    readme = files["README.md"].decode()
    assert validate_card_metadata(readme) == []
    assert fake_hub.validated == [readme]  # huggingface_hub had the Hub validate the card's metadata first
    assert "library_name: vaezoo" in readme and "hf-hub:org/pushed" in readme
    pushed_cfg = json.loads(files["config.json"])
    assert set(pushed_cfg["files"]) == {"metrics.json", "model.safetensors", "samples.png"}

    # the plain CLI output is the commit to pin, and the pushed repo loads back verified
    proc = run_cli("push", str(ckpt), "org/pushed")
    assert proc.returncode == 0 and proc.stdout.strip() == fake_hub.repos["org/pushed"].branches["main"]
    assert "pin it as hf-hub:org/pushed@" in proc.stderr
    snap = hub.fetch("org/pushed", result["commit"], need="all", quiet=True)
    assert (snap / "README.md").read_text() == readme


def test_push_keeps_a_hand_edited_card_unless_asked(ckpt, fake_hub):
    hub.push(ckpt, "org/cards")
    fake_hub.commit("org/cards", {"README.md": b"---\nlicense: mit\n---\n# My own notes\n"}, summary="edit card")
    msg = one_line_error(run_cli("push", str(ckpt), "org/cards"))
    assert "edited by hand" in msg and "--overwrite-card" in msg
    hub.push(ckpt, "org/cards", keep_card=True)
    assert b"My own notes" in fake_hub.files("org/cards")["README.md"]
    hub.push(ckpt, "org/cards", overwrite_card=True)
    assert b"library_name: vaezoo" in fake_hub.files("org/cards")["README.md"]
    # a card vaezoo generated may be replaced by a newer generated one without asking
    hub.push(ckpt, "org/cards", commit_message="again")


def test_push_to_a_branch_with_a_message(ckpt, fake_hub):
    fake_hub.create_repo("org/branchy")
    main_before = fake_hub.repos["org/branchy"].branches["main"]
    result = hub.push(ckpt, "org/branchy", branch="dev", commit_message="tiny model for tests", private=True)
    repo = fake_hub.repos["org/branchy"]
    assert repo.branches["main"] == main_before and repo.branches["dev"] == result["commit"]
    assert fake_hub.commits_log[-1]["summary"] == "tiny model for tests"
    assert hub.fetch("org/branchy", "dev", need="weights", quiet=True).name == result["commit"]


def test_push_refuses_without_token_and_with_a_stale_manifest(ckpt, fake_hub, tmp_path, monkeypatch):
    folder = copy_ckpt(ckpt, tmp_path / "ck")
    (folder / "metrics.json").write_text('{"validation": {}}\n')
    with pytest.raises(VaezooError, match="metrics.json .*does not match"):
        hub.push(folder, "org/x")
    assert "org/x" not in fake_hub.repos
    hub.push(folder, "org/x", rehash=True)
    assert json.loads(fake_hub.files("org/x")["config.json"])["files"]["metrics.json"]["size"] == len('{"validation": {}}\n')
    monkeypatch.setenv("HF_TOKEN", "")
    with pytest.raises(VaezooError, match="HF_TOKEN"):
        hub.push(ckpt, "org/y")


@pytest.mark.parametrize("model_id", ["vae-mnist5k", "dp-vae-mnist5k", "dp-factor-mnist5k", "m2-mnist5k"])
def test_push_of_a_bundled_starter_has_its_card_as_readme(fake_hub, model_id):
    from vaezoo.store.resolution import bundled_dir

    if not (bundled_dir(model_id) / "config.json").is_file():
        pytest.skip(f"{model_id} is not bundled yet")
    proc = run_cli("push", model_id, f"org/{model_id}")
    assert proc.returncode == 0, proc.stderr
    files = fake_hub.files(f"org/{model_id}")
    readme = files["README.md"].decode()
    assert validate_card_metadata(readme) == [] and "library_name: vaezoo" in readme
    assert f"# {model_id}" in readme and "model.safetensors" in files
    hub.fetch(f"org/{model_id}", proc.stdout.strip(), need="all", quiet=True)  # verifies every file


# ---------------------------------------------------------------- registry ids pinned to the Hub
def test_registry_id_resolves_to_its_pinned_revision(ckpt, fake_hub, monkeypatch):
    from typer.testing import CliRunner

    from vaezoo.store import resolution as store
    from vaezoo.cli import app

    commit = fake_hub.add_folder("vaezoo/" + MODEL, ckpt)
    monkeypatch.setattr(store, "STARTERS", ckpt.parent / "no-starters")  # MODEL is also a bundled starter
    monkeypatch.setattr(store, "hub_pin", lambda mid, recipe=None: ("vaezoo/" + mid, commit) if mid == MODEL else None)
    assert store.availability(MODEL) == ["remote"]
    with pytest.raises(VaezooError, match="not in the Hugging Face cache"):
        store.resolve_model(MODEL, need="weights", offline=True)
    folder = store.resolve_model(MODEL, need="weights")
    assert folder.name == commit and store.availability(MODEL) == ["cached"]
    listing = CliRunner().invoke(app, ["list", MODEL, "--json"])
    assert json.loads(listing.stdout)[0]["available"] == ["cached"]
    # a local copy comes first
    shutil.copytree(ckpt, store.local_dir(MODEL))
    assert store.resolve_model(MODEL) == store.local_dir(MODEL)
    assert store.availability(MODEL) == ["local", "cached"]


# ---------------------------------------------------------------- the ONNX path (needs the exporter)
def test_sample_with_onnx_downloads_only_config_and_graphs_then_works_offline(tiny_onnx_ckpt, fake_hub, tmp_path):
    assert run_cli("push", str(tiny_onnx_ckpt), "org/onnx").returncode == 0
    fake_hub.requests.clear()
    grid = tmp_path / "grid.png"
    proc = run_cli("sample", "hf-hub:org/onnx", "-n", "16", "--backend", "onnx", "-o", str(grid))
    assert proc.returncode == 0, proc.stderr
    got = fake_hub.downloaded_names()
    assert got[0] == "config.json" and all(n.startswith("onnx/") for n in got[1:]) and "onnx/decoder.onnx" in got
    assert "model.safetensors" not in got and grid.stat().st_size > 0
    grid.unlink()
    fake_hub.requests.clear()
    proc = run_cli("sample", "hf-hub:org/onnx", "-n", "16", "--backend", "onnx", "-o", str(grid), "--offline")
    assert proc.returncode == 0, proc.stderr
    assert fake_hub.requests == [] and grid.is_file()

    # a tampered graph is refused (a fresh cache, a compromised mirror)
    graph = fake_hub.files("org/onnx")["onnx/decoder.onnx"]
    fake_hub.replace_in_place("org/onnx", "onnx/decoder.onnx", graph[:-4] + b"\0\0\0\0")
    msg = one_line_error(run_cli("sample", "hf-hub:org/onnx", "-n", "4", "--backend", "onnx", "-o", str(tmp_path / "t.png"),
                                 env={"HF_HOME": str(tmp_path / "fresh")}))
    assert "onnx/decoder.onnx" in msg and "does not match" in msg


def test_tampered_local_graph_is_refused(tiny_onnx_ckpt, tmp_path):
    import vaezoo

    folder = copy_ckpt(tiny_onnx_ckpt, tmp_path / "ck")
    with open(folder / "onnx" / "decoder.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(VaezooError, match="decoder.onnx .*does not match"):
        vaezoo.load(str(folder), backend="onnx")
