"""The package's layout as its docstring declares it (n2d_spark/__init__.py): the sub-packages
stack, no import reaches up or round in a circle, and every module says what it is for."""

import ast
import re

import n2d_spark

from conftest import REPO

PACKAGE = REPO / "n2d_spark"


def _declared_order() -> list[str]:
    """The sub-packages from the bottom up, as the package docstring lists them (top first)."""
    listing = n2d_spark.__doc__.split("never from one above", 1)[1].split("\n\n", 2)[1]
    return [re.match(r"\s+(\w+)\s", line).group(1) for line in listing.splitlines()][::-1]


def _modules() -> dict[str, ast.Module]:
    return {
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): ast.parse(path.read_text())
        for path in PACKAGE.rglob("*.py")
    }


def _imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from n2d_spark.rows import job_stages` imports the module n2d_spark.rows.job_stages.
            found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module for alias in node.names}
    return {module for module in found if module in known and module != name}


def _layer(module: str, order: list[str]) -> int:
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in order):
        return order.index(parts[1])
    return len(order)  # the entry points and the package itself, above every sub-package


def test_docstring_declares_every_subpackage():
    subpackages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert sorted(_declared_order()) == sorted(subpackages)


def test_imports_are_absolute():
    """Relative imports would slip past the checks below, which read module paths as written."""
    relative = [
        f"{path.relative_to(REPO)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert relative == []


def test_no_import_reaches_up():
    order = _declared_order()
    modules = _modules()
    upward = [
        f"{name} imports {target}"
        for name, tree in modules.items()
        for target in _imports(name, tree, set(modules))
        if _layer(target, order) > _layer(name, order)
    ]
    assert upward == []


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(name, tree, set(modules)) for name, tree in modules.items()}
    graph["n2d_spark"] = set()  # its lazy __getattr__ imports the estimator on first use, not at import
    state: dict[str, str] = {}
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_every_module_says_what_it_is_for():
    for path in PACKAGE.rglob("*.py"):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        assert doc and doc.strip(), f"{path.relative_to(REPO)} has no docstring"
        if len(path.read_text().splitlines()) > 300:
            assert "Over 300 lines" in doc, f"{path.relative_to(REPO)}: over 300 lines, and its docstring does not say why"


def test_documented_imports_resolve():
    """Every `from n2d_spark... import ...` that the README or a docs page shows works as written."""
    import importlib

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    shown = {
        (module, name.strip())
        for page in pages
        for module, names in re.findall(r"^\s*from (n2d_spark[\w.]*) import ([\w, ]+)$", page.read_text(), re.MULTILINE)
        for name in names.split(",")
    }
    assert ("n2d_spark", "N2D") in shown and ("n2d_spark.synthetic", "generate_reviews") in shown
    missing = [f"{module}.{name}" for module, name in sorted(shown) if not hasattr(importlib.import_module(module), name)]
    assert missing == []


def test_a_main_block_comes_last_in_every_module():
    """Whatever a module defines below its ``if __name__ == "__main__":`` block does not exist yet when
    the block runs (``python -m n2d_spark.cli update`` once failed so, on its summary's helper)."""
    scripts = [*PACKAGE.rglob("*.py"), *(REPO / "jobs").glob("*.py"), *(REPO / "scripts").glob("*.py")]
    misplaced = []
    for path in scripts:
        body = ast.parse(path.read_text()).body
        for index, node in enumerate(body):
            if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and index != len(body) - 1:
                misplaced.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert misplaced == []
