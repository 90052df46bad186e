"""No test module is imported by another module, by an import or by a dotted path in a string
(a setting naming a class): what several test modules share lives in a support module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
# tests.<package>...test_<name>, followed by the end or by an attribute.
TEST_MODULE = re.compile(r"^tests(\.\w+)*\.test_\w+(\.\w+)*$")


def imported_test_modules(path: Path) -> list[str]:
    """Every test module that `path` imports or names as a dotted path, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        found += [
            f"{path.relative_to(TESTS.parent)}:{node.lineno} {name}"
            for name in names
            if TEST_MODULE.match(name)
        ]
    return found


def test_no_module_imports_a_test_module():
    offenders = [hit for path in sorted(TESTS.rglob("*.py")) for hit in imported_test_modules(path)]
    assert not offenders, "move what they share into a support module:\n" + "\n".join(offenders)
