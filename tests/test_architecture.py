"""The house stays readable: layers import downward only, plug-ins keep their internals, functions stay short.

The layer order and the plug-in rules are import-linter contracts in pyproject.toml; the rest is read
from the source with `ast`, so the numbers the redesign issue set (no upward import, no borrowed
private name, no function over 60 lines, own-package imports at the top) cannot rot unnoticed.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hf_finetune"
MAX_FUNCTION_LINES = 60
# The one own-package import inside a function: `hf_finetune.train`, loaded on first use, because every
# submodule import runs the package's __init__ (see its docstring).
LATE_IMPORTS_ALLOWED = {("hf_finetune/__init__.py", "hf_finetune.api")}


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("import-linter is not installed: `pip install -e '.[dev]'` installs it")
    result = subprocess.run([lint], cwd=PACKAGE.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_no_function_is_longer_than_sixty_lines():
    long = [
        f"{relative(path)}:{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, long


def own_imports(path: Path):
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hf_finetune"):
            yield node, id(node) in top


def test_no_module_imports_another_modules_private_name():
    borrowed = [
        f"{relative(path)}: {node.module}.{alias.name}"
        for path in modules()
        for node, _ in own_imports(path)
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert not borrowed, borrowed


def test_own_package_imports_sit_at_the_top_of_the_file():
    late = [
        (relative(path), node.module)
        for path in modules()
        for node, at_top in own_imports(path)
        if not at_top and (relative(path), node.module) not in LATE_IMPORTS_ALLOWED
    ]
    assert not late, late
