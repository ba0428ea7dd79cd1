"""docs/security.md names its tests: each named test exists, so a removed one is noticed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
# `dir/test_file.py::test_name[*]` or a following `::test_name` meaning the same file.
REFERENCE = re.compile(r"`(?:((?:unit|contract|integration)/[\w/]+\.py))?(?:::(\w+))?(?:\[\*\])?`")


def _references() -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for line in DOC.read_text().splitlines():
        current: str | None = None
        for match in REFERENCE.finditer(line):
            path, name = match.groups()
            if path:
                current = path
            if current and (path or name):
                found.append((current, name))
    return found


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_the_threat_model_names_many_tests() -> None:
    """The threat model cites tests for its threats (the parser below is not finding nothing)."""
    assert len(_references()) >= 60


@pytest.mark.parametrize(("path", "name"), sorted(set(_references()), key=str))
def test_each_named_test_exists(path: str, name: str | None) -> None:
    """A file or test docs/security.md names as a threat's evidence is in the suite."""
    target = ROOT / "tests" / path
    if target.suffix == ".py" and not target.exists():
        pytest.fail(f"docs/security.md names {path}, which does not exist")
    if target.is_dir():
        return
    if name is not None:
        assert name in _tests_in(target), f"docs/security.md names {path}::{name}"
