"""No import cycles in ``hygiene``, between modules or between its packages.

The graph is read from the source with :mod:`ast`, not from ``sys.modules``, so every
``import`` counts wherever it is written: at the top, inside a function (an import moved
into a function to dodge a cycle is still a dependency, only a later one), or in a
``try``. Imports under ``if TYPE_CHECKING:`` do not count: they never run, and naming a
type in an annotation is not using the module (``rules`` may annotate with
``config.Config`` while ``config`` knows nothing of ``rules``).

An edge goes to the module an import names: ``from hygiene.rules import protections``
depends on ``hygiene.rules.protections``, ``from hygiene.rules import evaluate`` on the
package ``hygiene.rules`` (its ``__init__``). That Python runs a package's ``__init__``
before any of its modules is not counted as a dependency of the module.

Package level: each module counts as its package directly under ``hygiene``
(``hygiene.collect.ecr`` is ``hygiene.collect``; ``hygiene.scan`` is itself), and imports
inside one package are dropped. ``collect`` importing ``scan`` which imports ``collect``
is a cycle there even when the modules involved differ.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import hygiene

ROOT = Path(hygiene.__file__).parent
Graph = dict[str, set[str]]  # module → the modules it imports


def _module_files(root: Path) -> dict[str, Path]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, except those in ``if TYPE_CHECKING:`` (its ``else`` runs)."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(node.orelse)
        else:
            yield from _imports(ast.iter_child_nodes(node))


def import_graph(root: Path = ROOT) -> Graph:
    """The modules of the package at ``root`` and the modules of it each one imports."""
    files = _module_files(root)
    graph: Graph = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports([ast.parse(path.read_text(encoding="utf-8"), str(path))]):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:  # relative: from . import x, from ..rules import y
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def package_graph(graph: Graph) -> Graph:
    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: Graph = {package(m): set() for m in graph}
    for module, imported in graph.items():
        packages[package(module)] |= {package(i) for i in imported} - {package(module)}
    return packages


def cycles(graph: Graph) -> list[list[str]]:
    """Cycles as ``[a, b, …, a]`` (each imports the next); one per edge removed until none."""
    remaining = {node: set(edges) for node, edges in graph.items()}
    found = []
    while True:
        try:
            # graphlib's edges point at predecessors: a module comes after what it imports
            TopologicalSorter(remaining).prepare()
        except CycleError as exc:
            # reported so that each node is imported by the next one: read it backwards
            cycle = list(reversed(exc.args[1]))
            found.append(cycle)
            remaining[cycle[0]].discard(cycle[1])
        else:
            return found


def _describe(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in found)


def test_no_module_imports_itself_through_others() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles between modules:\n" + _describe(found)


def test_no_package_imports_itself_through_others() -> None:
    found = cycles(package_graph(import_graph()))
    assert not found, "import cycles between packages of hygiene:\n" + _describe(found)


def test_the_graph_counts_lazy_and_relative_imports_not_type_checking(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    sources = {
        "__init__.py": "from pkg.engine import run\n",
        "config.py": "def load():\n    from pkg.rules import check\n    check()\n",
        "engine.py": "from . import protections as prot\nfrom .rules import base\n",
        "protections.py": "",
        "rules/__init__.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.config import Config\n"
        "else:\n    import pkg.protections\n",
        "rules/base.py": "import json\nfrom ..config import load\n",
    }
    for name, text in sources.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.engine"},
        "pkg.config": {"pkg.rules"},  # the import inside load()
        "pkg.engine": {"pkg.protections", "pkg.rules.base"},  # the submodules, by name
        "pkg.protections": set(),
        "pkg.rules": {"pkg.protections"},  # the else branch runs; TYPE_CHECKING does not
        "pkg.rules.base": {"pkg.config"},
    }
    assert cycles(graph) == []
    assert package_graph(graph)["pkg.config"] == {"pkg.rules"}
    # the two packages import each other although no module imports itself
    (cycle,) = cycles(package_graph(graph))
    assert cycle in (
        ["pkg.config", "pkg.rules", "pkg.config"],
        ["pkg.rules", "pkg.config", "pkg.rules"],
    )


def test_cycles_are_found_and_printed_in_import_order() -> None:
    graph: Graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    found = cycles(graph)
    assert len(found) == 2
    rotations = [["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"]]
    assert any(cycle in rotations for cycle in found)
    assert any(cycle in (["e", "f", "e"], ["f", "e", "f"]) for cycle in found)
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
