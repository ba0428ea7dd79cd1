"""No import cycles in gcx, type-only imports included (ARCHITECTURE.md, "Rules of the house").

If two modules need each other, the shared part belongs in a third. The finder
here reads the source, not the running interpreter, so it sees every import:
at module level, inside functions, under ``if TYPE_CHECKING:`` and relative
ones. An import names the most specific gcx module it reaches
(``from gcx.web import site`` is ``gcx.web.site``; ``from gcx.errors import
GcxError`` is ``gcx.errors``). A package importing its own submodules is left
out: Python imports a package before any of its submodules, so every
submodule already "imports" its package, and a package gathering its children
(``gcx.evidence`` re-exporting ``gcx.evidence._file``) is the normal shape of
a package, not two ideas that need each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src"


def modules_under(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` under ``root``, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _nearest_module(name: str, known: Mapping[str, Path]) -> str | None:
    """The longest dotted prefix of ``name`` that is a known module, if any."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_modules(
    tree: ast.AST, module: str, is_package: bool, known: Mapping[str, Path]
) -> Iterator[str]:
    """Every known module ``module`` imports, anywhere in its source, relative imports included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _nearest_module(alias.name, known)
                if target is not None:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from . import x` in a package's __init__ means the package itself;
                # in a plain module it means the module's package.
                here = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(here[: len(here) - (node.level - 1)])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:
                # `from gcx.web import site` imports the module gcx.web.site; `from
                # gcx.errors import GcxError` imports a name defined in gcx.errors.
                submodule = f"{source}.{alias.name}"
                target = submodule if submodule in known else _nearest_module(source, known)
                if target is not None:
                    yield target


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Which modules of ``package`` each of its modules imports."""
    known = modules_under(root, package)
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = {
            target
            for target in _imported_modules(tree, module, is_package, known)
            # A package importing its own submodules is left out (see the module docstring).
            if target != module and not (is_package and target.startswith(module + "."))
        }
    return graph


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of ``graph`` with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a long chain of imports cannot reach the recursion limit.
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = lowest[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = lowest[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    lowest[node] = min(lowest[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowest[parent] = min(lowest[parent], lowest[node])
                if lowest[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_gcx_has_no_import_cycles() -> None:
    """No two modules of gcx import each other, directly or around a loop, type-only or not."""
    graph = import_graph(SOURCE, "gcx")
    assert len(graph) > 100, "the finder did not find gcx's modules"
    cycles = strongly_connected(graph)
    assert cycles == [], "import cycles (move the shared part into a third module):\n" + "\n".join(
        ", ".join(group) for group in cycles
    )


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_finder_sees_type_only_relative_and_function_level_imports(tmp_path: Path) -> None:
    """A cycle closed only by a TYPE_CHECKING, a relative or a function-level import is found."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n"
            ),
            "pkg/b.py": "from .c import C\n",
            "pkg/c.py": "def late():\n    from pkg import a\n",
            "pkg/sub/__init__.py": "from . import d\n",
            "pkg/sub/d.py": "from .. import e\n",
            "pkg/e.py": "import pkg.sub.d\n",
            "pkg/alone.py": "import pkg.a\nfrom pkg.errors_like import nothing\n",
        },
    )
    assert strongly_connected(import_graph(tmp_path, "pkg")) == [
        ["pkg.a", "pkg.b", "pkg.c"],
        ["pkg.e", "pkg.sub.d"],
    ]


def test_a_package_gathering_its_children_is_no_cycle(tmp_path: Path) -> None:
    """A package's __init__ importing its submodules, which use the package, is not reported."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.child import thing\n",
            "pkg/child.py": "import pkg\nthing = 1\n",
        },
    )
    assert strongly_connected(import_graph(tmp_path, "pkg")) == []
