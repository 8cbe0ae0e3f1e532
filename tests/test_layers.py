"""The layers only import downwards: edge <- train <- export <- release <- bench <- footfall (the CLI).

edge/ is the device side: never torch, never a host layer. Static imports are read with ``ast``;
module names handed to ``importlib.import_module`` as string constants count as imports too (a
hidden back-arrow is still an arrow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("edge", "train", "export", "release", "bench", "footfall")  # low to high
DEVICE_FORBIDDEN = ("torch", "torchao", "executorch.exir", "litert_torch")  # edge may load executorch.runtime lazily


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import and every string constant that names a project module in an import call."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__"):
            found += [(node.lineno, a.value) for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):  # e.g. COMMAND_MODULES = ("export.cli", ...)
            strings = [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if strings and all(s.split(".")[0] in LAYERS and "." in s for s in strings):
                found += [(node.lineno, s) for s in strings]
    return found


def upward_imports(layer: str) -> list[str]:
    rank = LAYERS.index(layer)
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, module in imported_modules(path):
            top = module.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > rank:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if layer == "edge" and any(module == f or module.startswith(f + ".") for f in DEVICE_FORBIDDEN):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module} (edge/ is torch-free)")
    return bad


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_a_higher_one(layer):
    assert upward_imports(layer) == []


def test_the_check_sees_static_and_hidden_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import torch\nfrom export.pipeline import x\nimportlib.import_module('bench.cli')\nMODS = ('bench.cli', 'train.cli.distill')\n")
    assert sorted(m for _, m in imported_modules(f)) == ["bench.cli", "bench.cli", "export.pipeline", "torch", "train.cli.distill"]
