"""Repository hygiene that CI depends on: .ci/run runs the README's test command."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    blocks = [b.strip() for b in _bash_blocks(setup)]
    assert len(blocks) == 2, "the README's set-up section has exactly two commands"
    main_cmd, test_cmd = blocks
    assert "vaezoo sample" in main_cmd and "pytest" in test_cmd
    for cmd in blocks:
        assert "pip install torch==2.13.0 &&" in cmd, "torch is pinned before anything can pull a CUDA build"
    ci = (REPO / ".ci" / "run").read_text()
    # .ci/run adds -q to pip for quieter logs; otherwise it is the same command
    assert test_cmd.replace("pip install ", "pip install -q ") in ci


def test_packages_map_to_vaezoo_import_names():
    toml = (REPO / "pyproject.toml").read_text()
    assert 'package-dir = {"vaezoo" = "zoo", "vaezoo.train" = "train", "vaezoo.export" = "export"}' in toml
    import vaezoo
    import vaezoo.export
    import vaezoo.train

    assert Path(vaezoo.__file__).parent.name == "zoo"
    assert Path(vaezoo.train.__file__).parent.name == "train"
