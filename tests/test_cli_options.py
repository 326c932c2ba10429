"""The CLI's shared options (zoo/cli/options.py), driven as a user would: bad choices and numbers out of
range are one-line usage errors before anything is loaded or written, --offline is on every model
command and reaches the model's resolution, shell completion works through the console script, and
the typer app itself shows every shared option declared once."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
import typer
import typer.main

from conftest import run_cli
from fake_hub import fake_hub  # noqa: F401 (fixture)
from vaezoo.cli import app
from vaezoo.store.resolution import bundled_dir

STARTER = "dp-factor-mnist5k"  # bundled, with its ONNX graphs: works offline with no training
M2 = "m2-mnist5k"              # bundled conditional model with a classifier


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """Eight real validation digits (one per class 0..7) as an N x 28 x 28 uint8 .npy file."""
    from vaezoo.data import load_dataset

    ds = load_dataset("mnist5k", "val")
    path = tmp_path_factory.mktemp("digits") / "digits.npy"
    np.save(path, ds.x[np.arange(0, 400, 50), 0])
    return path


def usage_error(res) -> str:
    """Exit 2, exactly one line on stderr (``error: ...``), no traceback, nothing on stdout."""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr and not res.stdout.strip(), (res.stdout, res.stderr)
    return lines[0]


# ---------------------------------------------------------------- choices
def test_bad_choices_are_one_line_usage_errors(tmp_path, digits, _isolated_home):
    out = tmp_path / "out.png"
    cases = [
        (["sample", STARTER, "-o", str(out), "--backend", "tensorflow"], ["'tensorflow'", "auto", "torch", "onnx"]),
        (["encode", STARTER, str(digits), "-o", str(tmp_path / "z.npy"), "--space", "sideways"], ["'sideways'", "representation", "generation"]),
        (["decode", STARTER, str(digits), "-o", str(out), "--space", "sideways"], ["representation", "generation"]),
        (["sample", STARTER, "-o", str(out), "--device", "cuda:x"], ["'cuda:x'", "auto", "cpu", "cuda", "cuda:N"]),
        (["sample", STARTER, "-o", str(out), "--device", "gpu"], ["'gpu'", "auto", "cpu", "cuda", "cuda:N"]),
        (["classify", M2, str(digits), "--device", "gpu"], ["'gpu'", "cuda:N"]),
        (["train", "dp-vae-moons", "--out", str(tmp_path / "run"), "--device", "gpu"], ["'gpu'", "cuda:N"]),
        (["classify", M2, str(digits), "--format", "xml"], ["'xml'", "csv", "jsonl"]),
        (["export", STARTER, "--exporter", "nope"], ["'nope'", "dynamo", "torchscript"]),
        (["pull", STARTER, "--files", "some"], ["'some'", "all", "onnx", "torch"]),
    ]
    for args, words in cases:
        line = usage_error(run_cli(*args))
        assert all(w in line for w in words), (args, line)
        assert f"vaezoo {args[0]} --help" in line, line
    assert not out.exists() and not (tmp_path / "z.npy").exists() and not (tmp_path / "run").exists()
    assert not any(_isolated_home.iterdir()), "nothing was written to $VAEZOO_HOME (export copies a starter there)"


def test_good_device_spellings_pass_the_parser(tmp_path):
    # cuda:N is accepted by the option; without a GPU it fails later, in the backend, with exit 1
    for device in ("cpu", "auto"):
        res = run_cli("sample", STARTER, "-n", "2", "-o", str(tmp_path / f"{device}.npy"), "--device", device)
        assert res.returncode == 0, res.stderr
    res = run_cli("sample", STARTER, "-n", "2", "-o", str(tmp_path / "c.npy"), "--device", "cuda:0", "--backend", "onnx")
    assert "not one of" not in res.stderr and "Traceback" not in res.stderr


# ---------------------------------------------------------------- numbers out of range
def test_numbers_out_of_range_are_one_line_usage_errors(tmp_path, digits):
    out = str(tmp_path / "out.png")
    cases = [
        ["sample", STARTER, "-o", out, "-n", "0"],
        ["sample", STARTER, "-o", out, "--seed", "-1"],
        ["sample", STARTER, "-o", out, "--nrow", "0"],
        ["sample", STARTER, "-o", out, "--temperature", "-1"],
        ["traverse", STARTER, "-o", out, "--steps", "1"],
        ["interpolate", STARTER, "-o", out, "--steps", "1"],
        ["interpolate", STARTER, "-o", out, "--pairs", "0"],
        ["analogies", M2, "-o", out, "--rows", "0"],
        ["classify", M2, str(digits), "--top-k", "0"],
        ["classify", M2, str(digits), "--batch-size", "0"],
        ["classify", M2, str(digits), "--decode-threads", "0"],
        ["evaluate", M2, "--data", "mnist5k:val", "--batch-size", "0"],
        ["export", STARTER, "--opset", "17"],
        ["train", "dp-vae-moons", "--out", str(tmp_path / "run"), "--steps", "0"],
        ["train", "dp-vae-moons", "--out", str(tmp_path / "run"), "--nll-samples", "0"],
        ["train", "dp-vae-moons", "--out", str(tmp_path / "run"), "--threads", "-1"],
        ["train", "dp-vae-moons", "--out", str(tmp_path / "run"), "--seed", "-3"],
    ]
    for args in cases:
        line = usage_error(run_cli(*args))
        flag = args[-2]
        assert flag in line or flag.lstrip("-") in line, (args, line)
    assert not Path(out).exists() and not (tmp_path / "run").exists()
    # the bounds are today's: the smallest allowed value works
    res = run_cli("traverse", STARTER, "--dims", "0", "--steps", "2", "--seed", "0", "-o", str(tmp_path / "t.npy"))
    assert res.returncode == 0, res.stderr
    assert np.load(tmp_path / "t.npy").shape == (2, 1, 28, 28)


# ---------------------------------------------------------------- --offline
def test_offline_works_on_bundled_starters(tmp_path, digits):
    env = {"HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens there: any Hub request would fail
    res = run_cli("classify", M2, str(digits), "--offline", env=env)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 1 + 8
    res = run_cli("evaluate", M2, "--data", "mnist5k:val", "--offline", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["error_rate"] < 0.5
    res = run_cli("analogies", M2, "-n", "2", "-o", str(tmp_path / "a.png"), "--offline", env=env)
    assert res.returncode == 0 and (tmp_path / "a.png").is_file(), res.stderr
    res = run_cli("info", STARTER, "--offline", "--json", env=env)
    assert res.returncode == 0 and json.loads(res.stdout)["id"] == STARTER, res.stderr
    res = run_cli("card", STARTER, "--offline", env=env)
    assert res.returncode == 0 and STARTER in res.stdout, res.stderr
    res = run_cli("sample", STARTER, "-n", "4", "-o", str(tmp_path / "s.npy"), "--offline", env=env)
    assert res.returncode == 0, res.stderr
    pytest.importorskip("torch")
    graphs = tmp_path / "graphs"
    res = run_cli("export", STARTER, "--offline", "--exporter", "torchscript", "-o", str(graphs), "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["ok"] and (graphs / "decoder.onnx").is_file()


def test_offline_reaches_the_hub_resolution(fake_hub, tmp_path, digits):  # noqa: F811
    """classify, evaluate, analogies, export and info honour --offline for a Hub model: before a pull it
    is a one-line error and no request is made; after `vaezoo pull` they all work offline."""
    fake_hub.add_folder("org/m2", bundled_dir(M2))
    spec = "hf-hub:org/m2"
    commands = [
        ["classify", spec, str(digits)],
        ["evaluate", spec, "--data", "mnist5k:val"],
        ["analogies", spec, "-n", "2", "-o", str(tmp_path / "a.png")],
        ["info", spec, "--json"],
        ["sample", spec, "-n", "2", "-o", str(tmp_path / "s.npy")],
        ["export", spec, "-o", str(tmp_path / "graphs"), "--exporter", "torchscript"],
    ]
    for args in commands:
        res = run_cli(*args, "--offline")
        assert res.returncode != 0 and "Traceback" not in res.stderr, (args, res.stderr)
        assert "not in the Hugging Face cache" in res.stderr and f"vaezoo pull {spec}" in res.stderr, (args, res.stderr)
    assert fake_hub.requests == [] and not (tmp_path / "a.png").exists()

    assert run_cli("pull", spec).returncode == 0
    fake_hub.requests.clear()
    torch_ok = _has_torch()
    for args in commands:
        if args[0] == "export" and not torch_ok:
            continue
        res = run_cli(*args, "--offline")
        assert res.returncode == 0, (args, res.stderr)
    assert fake_hub.requests == []


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


# ---------------------------------------------------------------- shell completion
def complete(words: str, no_torch_dir: Path | None = None, **env) -> list[str]:
    """Ask the installed `vaezoo` script for completions the way the bash script typer installs does."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {"_VAEZOO_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword), **env}
    if no_torch_dir is not None:
        env["PYTHONPATH"] = str(no_torch_dir)
    res = run_cli(env=env)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    return res.stdout.split()


def _show_completion_from_bash() -> subprocess.CompletedProcess:
    """`vaezoo --show-completion` typed in bash: typer detects the shell from the process's ancestors (its
    flag takes no shell name), so run it under a bash that stays its parent (``; true`` stops bash from
    exec-ing it), whoever started the tests."""
    exe = Path(sys.executable).parent / "vaezoo"
    cmd = shlex.quote(str(exe)) if exe.exists() else f"{shlex.quote(sys.executable)} -c 'from vaezoo.cli import main; main()'"
    return subprocess.run(["bash", "-c", f"{cmd} --show-completion; true"], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_installed_completion_script_uses_the_protocol_tested_here():
    assert "--install-completion" in run_cli("--help").stdout
    res = _show_completion_from_bash()
    assert res.stdout and not res.stderr, res.stderr
    assert "_VAEZOO_COMPLETE=complete_bash" in res.stdout and "COMP_WORDS" in res.stdout and "COMP_CWORD" in res.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_through_the_script_vaezoo_installs(tmp_path):
    script = tmp_path / "vaezoo.sh"
    script.write_text(_show_completion_from_bash().stdout)
    words = ["(vaezoo sample dp-fac)", "2", "(vaezoo sample dp-factor-mnist5k --backend '')", "4"]
    code = (f"source {script}\n"
            f"COMP_WORDS={words[0]}; COMP_CWORD={words[1]}; _vaezoo_completion vaezoo; echo \"${{COMPREPLY[*]}}\"\n"
            f"COMP_WORDS={words[2]}; COMP_CWORD={words[3]}; _vaezoo_completion vaezoo; echo \"${{COMPREPLY[*]}}\"\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run(["bash", "--norc", "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    ids, backends = res.stdout.splitlines()
    assert "dp-factor-mnist5k" in ids.split() and backends.split() == ["auto", "torch", "onnx"], res.stdout


def test_model_arguments_complete_ids_store_and_folders(tmp_path, _isolated_home):
    # torch is blocked: completing must not import it (it runs on every <TAB>)
    blocked = tmp_path / "blocked"
    (blocked / "torch").mkdir(parents=True)
    marker = tmp_path / "torch_was_imported"
    (blocked / "torch" / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('x')\nraise ImportError('blocked')\n")

    got = complete("vaezoo sample dp-fac", blocked)
    assert "dp-factor-mnist5k" in got and all(g.startswith("dp-fac") for g in got), got
    assert {"m2-mnist5k"} <= set(complete("vaezoo classify m2-mn", blocked))
    for cmd in ("encode", "info", "export", "card", "pull", "evaluate", "analogies", "traverse"):
        assert STARTER in complete(f"vaezoo {cmd} {STARTER[:6]}", blocked), cmd
    assert set(complete("vaezoo sample dp-factor-mnist5k --backend ", blocked)) == {"auto", "torch", "onnx"}
    assert set(complete("vaezoo encode dp-factor-mnist5k x.npy --space ", blocked)) == {"representation", "generation"}
    assert {"auto", "cpu", "cuda"} <= set(complete("vaezoo sample dp-factor-mnist5k --device ", blocked))

    # a model trained into the local store, and a checkpoint folder given as a path
    (_isolated_home / "models" / "my-own-run").mkdir(parents=True)
    (_isolated_home / "models" / "my-own-run" / "config.json").write_text("{}")
    assert complete("vaezoo sample my-own", blocked) == ["my-own-run"]
    (tmp_path / "runs" / "ckpt-a").mkdir(parents=True)
    assert complete(f"vaezoo sample {tmp_path}/runs/ck", blocked) == [f"{tmp_path}/runs/ckpt-a/"]
    assert not marker.exists(), "completion imported torch"


# ---------------------------------------------------------------- the typer app: declared once
# Option names whose meaning is the command's own, so their help (and bounds) may differ:
PER_COMMAND = {
    "-o": "what -o writes differs by command (a grid or arrays, predictions, codes, graphs, a card)",
    "--output": "as -o",
    "--steps": "train overrides the recipe's step count (>= 1); traverse/interpolate count images per row (>= 2)",
    "-n": "sample's -n/--num counts samples, analogies' --rows/-n counts rows",
}
# Commands that take a model but cannot run offline:
NO_OFFLINE = {"push": "it uploads to the Hub"}


def _commands(typer_app) -> dict:
    return dict(typer.main.get_command(typer_app).commands)


def _declaration(p) -> tuple:
    """What must agree between two commands declaring the same option: flags, help, type, choices, bounds,
    validation callback (the default may differ: train's --device defaults to auto, inference's to cpu)."""
    click_type = getattr(p, "type", None)                                   # click's parameter type
    ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)  # typer >= 0.26 keeps the annotation
    choices = tuple(getattr(click_type, "choices", None) or ())
    if not choices and isinstance(ann, type) and issubclass(ann, Enum):
        choices = tuple(m.value for m in ann)
    callback = getattr(p.callback, "__wrapped__", p.callback)
    return (tuple(sorted(p.opts + p.secondary_opts)), p.help, getattr(ann, "__name__", None) or type(click_type).__name__,
            choices, getattr(p, "min", getattr(click_type, "min", None)), getattr(p, "max", getattr(click_type, "max", None)),
            getattr(callback, "__qualname__", None), p.is_flag, p.multiple)


def declaration_drift(typer_app, allowed=()) -> dict:
    """{option name: {declaration: [commands]}} for every name declared differently by two commands."""
    seen: dict = defaultdict(lambda: defaultdict(list))
    for name, cmd in _commands(typer_app).items():
        for p in cmd.params:
            if p.param_type_name == "option" and p.name != "help":
                for flag in p.opts + p.secondary_opts:
                    seen[flag][_declaration(p)].append(name)
    return {flag: dict(decls) for flag, decls in seen.items() if len(decls) > 1 and flag not in allowed}


def test_the_drift_check_catches_a_drifted_option():
    demo = typer.Typer()

    @demo.command()
    def one(backend: str = typer.Option("auto", "--backend", help="auto, torch or onnx.")) -> None: ...

    @demo.command()
    def two(backend: str = typer.Option("auto", "--backend", help="torch or onnx.")) -> None: ...

    assert set(declaration_drift(demo)) == {"--backend"}


def test_every_shared_option_is_declared_once():
    drift = declaration_drift(app, allowed=PER_COMMAND)
    assert not drift, "options declared differently by different commands (declare them once in zoo/cli/options.py):\n" + \
        "\n".join(f"{flag}: {decls}" for flag, decls in drift.items())
    still_needed = declaration_drift(app)
    assert set(PER_COMMAND) <= set(still_needed), "an exception in PER_COMMAND is no longer needed: drop it"


def test_every_model_command_has_offline_and_completes_ids():
    model_commands = []
    for name, cmd in _commands(app).items():
        params = {p.name: p for p in cmd.params}
        model = params.get("model")
        if model is None or model.param_type_name != "argument":
            continue
        model_commands.append(name)
        if name not in NO_OFFLINE:
            assert "offline" in params and params["offline"].opts == ["--offline"], f"`vaezoo {name}` has no --offline"
        got = [c.value for c in model.shell_complete(typer.Context(cmd), "dp-factor-mn")]
        assert STARTER in got, (name, got)
    assert {"sample", "decode", "encode", "reconstruct", "traverse", "interpolate", "classify", "evaluate", "analogies",
            "info", "export", "card", "pull", "push"} <= set(model_commands)


def test_choice_sets_match_what_the_code_accepts():
    from vaezoo.cli.options import Backend, Exporter
    from vaezoo.export.onnx_export import EXPORTERS
    from vaezoo.runtime.backends import BACKENDS

    assert tuple(b.value for b in Backend) == BACKENDS
    assert tuple(e.value for e in Exporter) == EXPORTERS
