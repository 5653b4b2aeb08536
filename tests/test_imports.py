"""No module of soar_lite imports itself back through another (issue 33, item 6: config -> tasks -> tasks.tiny ->
models -> config was one; this test finds it in the code before the fix). The graph is read from the source: every
import statement of a module, at module level and inside its functions alike (a deferred import is still a
dependency), with `from package import name` counted as importing the package and, where `name` is a submodule,
that submodule; a module's own parent packages are not counted (Python imports them first anyway)."""
import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "soar_lite"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules)
            for field in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, field, []) or [])

    visit(ast.parse(path.read_text()).body)
    # importing a.b.c imports a and a.b first
    closed = set()
    for m in out:
        parts = m.split(".")
        closed.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    ancestors = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}  # imported before it anyway
    return {m for m in closed if m in modules and m != name and m not in ancestors}


def test_no_module_imports_itself_back():
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    graph = {module_name(f): imports_of(f, modules) for f in files}
    cycles = []

    def walk(node, path):
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
                continue
            if nxt not in seen:
                seen.add(nxt)
                walk(nxt, path + [nxt])

    for start in sorted(graph):
        seen = {start}
        walk(start, [start])
    assert not cycles, sorted(set(cycles))[:5]
