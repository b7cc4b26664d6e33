"""The package's shape: no simulator imports, __all__ and future annotations everywhere, small
modules, a py.typed marker."""

from __future__ import annotations

import ast
from pathlib import Path

import bankr_client
import pytest

PACKAGE = Path(bankr_client.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def test_py_typed_marker():
    assert (PACKAGE / "py.typed").exists()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_module_shape(path: Path):
    source = path.read_text()
    tree = ast.parse(source)
    assert len(source.splitlines()) < 500
    imports: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imports.append(node.module)
    assert not [name for name in imports if name.split(".")[0] == "mockbankr"]
    assert "__future__" in imports
    targets = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]
    assert "__all__" in targets
    assert ast.get_docstring(tree)


def test_no_wall_clock_or_global_random_in_logic():
    for path in MODULES:
        if path.name == "clock.py":
            continue
        source = path.read_text()
        for forbidden in ("time.monotonic(", "time.sleep(", "asyncio.sleep(", "random.random("):
            assert forbidden not in source, (path.name, forbidden)
