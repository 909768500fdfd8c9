"""The house rules of docs/architecture.md, checked on every module of ``overc/``.

Imports only point down: a module may import its own package and the layers below it, never a
layer above or a sibling at the same rank (the UI and the read API know nothing of each other).
The agent stands apart and leans only on the domain floor. The rules are read from the source
with ``ast`` (nothing is imported), so a violation is found even in a branch no test runs.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "overc"

#: (prefix, rank): the first prefix a module name starts with decides its layer.
LAYERS: list[tuple[str, int]] = [
    ("overc.core", 0),
    ("overc.config", 1),
    ("overc.runtime", 1),
    ("overc.storage", 2),
    ("overc.monitoring", 3),
    ("overc.notify", 3),
    ("overc.ingest", 3),
    ("overc.web", 4),
    ("overc.api", 5),
    ("overc.ui", 5),
    ("overc.tap", 6),
    ("overc.site", 6),
    ("overc.startup", 6),
    ("overc.workers", 6),
    ("overc.passwd", 6),
    ("overc.agent", 10),
]
#: Packages of one rank that must not import each other.
SIBLINGS = {"overc.api", "overc.ui", "overc.monitoring", "overc.notify", "overc.ingest"}
MAX_LINES = 420


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> tuple[str, int] | None:
    for prefix, rank in LAYERS:
        if name == prefix or name.startswith(prefix + "."):
            return prefix, rank
    return None


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base))
    return [(line, name) for line, name in found if name == "overc" or name.startswith("overc.")]


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    homeless = [module_name(p) for p in MODULES
                if p.name != "__init__.py" and layer_of(module_name(p)) is None]
    assert homeless == [], f"modules outside every layer of docs/architecture.md: {homeless}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_down(path: Path) -> None:
    here = layer_of(module_name(path))
    if here is None:
        return
    prefix, rank = here
    wrong = []
    for line, target in imported_modules(path):
        there = layer_of(target)
        if there is None:
            continue
        other_prefix, other_rank = there
        if other_prefix == prefix:
            continue
        if prefix == "overc.agent":
            if other_prefix != "overc.core":
                wrong.append(f"line {line}: the agent imports {target} (only overc.core is allowed)")
            continue
        if other_prefix == "overc.agent":
            wrong.append(f"line {line}: the server imports the agent ({target})")
        elif other_rank > rank:
            wrong.append(f"line {line}: {target} is a layer above (rank {other_rank} > {rank})")
        elif other_rank == rank and (prefix in SIBLINGS or other_prefix in SIBLINGS):
            wrong.append(f"line {line}: {target} is a sibling at rank {rank}")
    assert wrong == [], f"{module_name(path)} imports upward or sideways:\n" + "\n".join(wrong)


def test_the_core_is_pure() -> None:
    """The domain floor takes ``now`` as an argument: no Twisted, no database driver."""
    impure = []
    for path in (PACKAGE / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] in {"twisted", "klein", "treq", "pymysql", "sqlite3", "jinja2"}:
                    impure.append(f"{module_name(path)}:{node.lineno} imports {name}")
    assert impure == []


def test_no_module_is_too_long() -> None:
    long = {module_name(p): n for p in MODULES
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_sql_lives_in_storage() -> None:
    """Only ``overc/storage`` talks SQL; a keyword at the start of a string elsewhere is a leak."""
    leaks = []
    keywords = ("SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "CREATE TABLE")
    for path in MODULES:
        name = module_name(path)
        if name.startswith("overc.storage"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value.lstrip().upper().startswith(keywords)):
                leaks.append(f"{name}:{node.lineno}")
    assert leaks == []
