"""The package layout keeps its promises: every subpackage is in pyproject.toml, the top
of harness/ stays small, no import cycle, and the library never imports the tests."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"harness": REPO / "harness", "mnh_guest": REPO / "guest-tests" / "mnh_guest",
         "bench": REPO / "bench"}


def packages_in_tree(name: str) -> set[str]:
    root = ROOTS[name]
    return {".".join((name, *p.parent.relative_to(root).parts))
            for p in root.rglob("__init__.py")}


def test_every_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    in_tree = packages_in_tree("harness") | packages_in_tree("mnh_guest")
    assert listed == in_tree, (f"missing from pyproject: {sorted(in_tree - listed)}; "
                               f"listed but absent: {sorted(listed - in_tree)}")


def test_the_top_of_harness_holds_at_most_a_dozen_modules() -> None:
    top = sorted(p.name for p in ROOTS["harness"].glob("*.py"))
    assert len(top) <= 12, top


def module_name(path: Path) -> str:
    for name, root in ROOTS.items():
        if path.is_relative_to(root):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join((name, *parts))
    raise AssertionError(path)


def top_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (not inside functions, not under TYPE_CHECKING),
    relative imports resolved."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for root in ROOTS.values() for p in root.rglob("*.py")]
    mods = {module_name(p): p for p in files}
    return {m: {i for i in top_level_imports(p) if i in mods and i != m}
            for m, p in mods.items()}


def find_cycle(g: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for m in sorted(g[n]):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return []

    for n in sorted(g):
        if n not in state and (c := visit(n)):
            return c
    return []


def test_no_import_cycle() -> None:
    g = graph()
    # A package importing its own submodules is not a cycle of the data path.
    for m in g:
        g[m] = {i for i in g[m] if not i.startswith(m + ".")}
    assert find_cycle(g) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("root", ["harness", "mnh_guest"])
def test_the_library_never_imports_the_tests(root: str) -> None:
    for p in ROOTS[root].rglob("*.py"):
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "tests" or n.startswith(("tests.", "conftest")) for n in names), p
        assert "sys.path" not in p.read_text(), f"{p} changes sys.path"


def test_guest_code_uses_the_standard_library_only() -> None:
    import sys

    allowed = set(sys.stdlib_module_names) | {"mnh_guest", "__future__"}
    for p in ROOTS["mnh_guest"].rglob("*.py"):
        for name in top_level_imports(p):
            assert name.split(".")[0] in allowed, f"{p} imports {name}"
