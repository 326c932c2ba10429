"""The package layout keeps its promises (read from the source, so a new module is checked too):

* no import cycle between vaezoo's modules, counting imports inside functions as well;
* no import below a module's first statement that is not an import (no bottom-of-module registration);
* the torch-free side (everything but vaezoo.models, vaezoo.train and the torch backend) never imports
  torch or a torch-side module at module level, and importing all of it really loads no torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = {"vaezoo": REPO / "zoo", "vaezoo.train": REPO / "train", "vaezoo.export": REPO / "export"}
TORCH_SIDE = ("vaezoo.models", "vaezoo.train", "vaezoo.runtime.torch_backend")


def modules() -> dict[str, Path]:
    found = {}
    for prefix, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            if "starters" in rel.parts or (prefix == "vaezoo" and rel.parts[0] in ("train", "export")):
                continue
            parts = [p for p in rel.parts if p != "__init__"]
            found[".".join([prefix, *parts])] = path
    return found


MODULES = modules()


def is_torch_side(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in TORCH_SIDE)


def _targets(node, known) -> list[str]:
    """vaezoo modules (or 'torch') that one import statement loads: ``from vaezoo.store import cards``
    loads vaezoo.store.cards, ``from vaezoo.recipes import resolve`` loads vaezoo.recipes."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.module and node.level == 0:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names]
    else:
        names = []
    return ["torch" if n.split(".")[0] == "torch" else n for n in names if n in known or n.split(".")[0] == "torch"]


def imports(name: str, module_level_only: bool) -> list[str]:
    tree = ast.parse(MODULES[name].read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found += _targets(node, MODULES)
    return sorted(set(found) - {name})


def test_modules_are_found():
    assert {"vaezoo", "vaezoo.models.vae", "vaezoo.runtime.pipeline", "vaezoo.store.checkpoint", "vaezoo.io.files",
            "vaezoo.cli.app", "vaezoo.train.trainer", "vaezoo.train.objectives.base", "vaezoo.export.onnx_export"} <= set(MODULES)


def test_no_import_cycle():
    graph = {m: [t for t in imports(m, module_level_only=False) if t != "torch"] for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def test_no_import_below_the_first_statement():
    for name, path in MODULES.items():
        seen_code = False
        for node in ast.parse(path.read_text()).body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                assert not seen_code, f"{path.relative_to(REPO)}:{node.lineno} imports below the module's code"
            elif not docstring:
                seen_code = True


def test_torch_free_side_never_imports_the_torch_side_at_module_level():
    free = [m for m in MODULES if not is_torch_side(m)]
    for m in free:
        closure, todo = set(), [m]
        while todo:
            for t in imports(todo.pop(), module_level_only=True):
                if t not in closure:
                    closure.add(t)
                    if t != "torch":
                        todo.append(t)
        bad = sorted(t for t in closure if t == "torch" or is_torch_side(t))
        assert not bad, f"{m} (torch-free side) imports {bad} at module level"


def test_importing_the_torch_free_side_loads_no_torch():
    free = [m for m in MODULES if not is_torch_side(m) and not m.endswith("__main__")]  # __main__ runs the CLI
    code = ("import sys, importlib\n"
            f"for m in {free!r}:\n"
            "    importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
