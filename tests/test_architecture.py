"""The package layout's rules, read from the source: no import cycle, no arrow from the library to the apps.

Every import counts, also one inside a function (a cycle there still ties the modules together);
``from pkg import submodule`` is an import of the submodule, not of the package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ecva_core", "ecva_apps")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (REPO_ROOT / package).rglob("*.py")}


def _imported(node: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The project modules one import statement loads (the project writes absolute imports only)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [f"{node.module}.{alias.name}" for alias in node.names]
        submodules = {name for name in names if name in modules}
        if len(submodules) < len(names) and node.module in modules:
            submodules.add(node.module)  # a name defined in the package itself
        return submodules
    return set()


def import_graph() -> dict[str, set[str]]:
    """Each project module and the project modules it imports anywhere in its source."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        deps: set[str] = set()
        for node in ast.walk(tree):
            deps |= _imported(node, modules)
        graph[name] = deps - {name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_the_scan_finds_a_cycle_and_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == [["a", "b", "c"]]
    modules = {"ecva_core.x": Path(), "ecva_core.x.y": Path(), "ecva_core.z": Path()}
    inner = ast.parse("def f():\n    from ecva_core.x import y, helper\n    import ecva_core.z\n")
    found = set().union(*(_imported(node, modules) for node in ast.walk(inner)))
    assert found == {"ecva_core.x.y", "ecva_core.x", "ecva_core.z"}


def test_no_import_cycle_among_the_project_modules() -> None:
    graph = import_graph()
    assert "ecva_core.metrics.judge.engine" in graph and "ecva_apps.serve" in graph
    assert import_cycles(graph) == []


def test_the_library_never_imports_the_apps() -> None:
    graph = import_graph()
    upward = {name: sorted(d for d in deps if d.startswith("ecva_apps")) for name, deps in graph.items()}
    assert {name: deps for name, deps in upward.items() if name.startswith("ecva_core") and deps} == {}


def test_the_explorer_builds_html_only_in_ui_and_the_library_builds_none() -> None:
    """The apps draw and the library decides: raw HTML is written in the explorer's ui.py alone, and no
    library module escapes HTML (it returns spans and values; the app builds the markup)."""
    explorer = REPO_ROOT / "ecva_apps" / "explorer"
    raw_html = [
        p.name
        for p in explorer.rglob("*.py")
        if p.name != "ui.py" and any(s in p.read_text(encoding="utf-8") for s in ("unsafe_allow_html", "st.html("))
    ]
    assert raw_html == []
    html_in_library = [
        name
        for name, path in _modules().items()
        if name.startswith("ecva_core")
        and any(
            isinstance(node, (ast.Import, ast.ImportFrom))
            and "html" in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        )
    ]
    assert html_in_library == []
