"""Keep gcx.protocol a sans-IO core: no I/O, clock, database, network or crypto imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gcx.protocol

PROTOCOL_DIR = Path(gcx.protocol.__file__).parent
BANNED_MODULES = frozenset(
    {
        "asyncio",
        "aiohttp",
        "sqlalchemy",
        "socket",
        "ssl",
        "cryptography",
        "os",
        "pathlib",
        "time",
        "gcx.store",
        "gcx.crypto",
    }
)


def _is_banned(module: str) -> bool:
    return any(module == banned or module.startswith(banned + ".") for banned in BANNED_MODULES)


def banned_imports(source: str, package: str = "gcx.protocol") -> list[str]:
    """The banned modules a piece of source imports, however it spells the import."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_banned(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # A relative import inside gcx.protocol: resolve it against the package.
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [module] + [f"{module}.{alias.name}" for alias in node.names]
            found += [name for name in candidates if _is_banned(name)]
    return found


def _protocol_modules() -> list[Path]:
    return sorted(PROTOCOL_DIR.rglob("*.py"))


def test_protocol_package_has_modules() -> None:
    """The purity check looks at the real package (it would pass vacuously on none)."""
    names = {p.name for p in _protocol_modules()}
    assert {"__init__.py", "directory.py", "enrolment.py", "identifiers.py", "ping.py"} <= names


@pytest.mark.parametrize("path", _protocol_modules(), ids=lambda p: p.name)
def test_protocol_module_is_pure(path: Path) -> None:
    """No protocol module imports I/O, clock, database, network or crypto modules."""
    package = ".".join(["gcx", "protocol", *path.relative_to(PROTOCOL_DIR).parent.parts])
    assert banned_imports(path.read_text(), package) == []


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import os.path",
        "import asyncio as aio",
        "from pathlib import Path",
        "from sqlalchemy.engine import Connection",
        "from gcx import crypto",
        "from gcx.store import db",
        "import gcx.crypto._keys",
        "from ..crypto import sign_document",
        "def f():\n    import time\n",
        "try:\n    import ssl\nexcept ImportError:\n    pass\n",
    ],
)
def test_checker_catches_banned_imports(source: str) -> None:
    """The checker itself flags every way of spelling a banned import."""
    assert banned_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import datetime as dt",
        "from gcx.errors import InputError",
        "import json",
        "from .directory import Directory",
        "import osmosis",
        "from gcx import errors",
    ],
)
def test_checker_allows_pure_imports(source: str) -> None:
    """Standard pure modules, gcx.errors and sibling protocol modules are allowed."""
    assert banned_imports(source) == []
