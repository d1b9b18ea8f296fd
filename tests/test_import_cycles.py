"""No import cycles between the modules of inline_ipsec.

The import graph is read from the source (AST): every `import` and `from ... import`, at
module level and inside functions (a function-level import is still a dependency; moving an
import into a function only hides a cycle). Imports under `if TYPE_CHECKING:` are left out:
they never run. A cycle is a strongly connected component of more than one module."""
from __future__ import annotations

import ast
from pathlib import Path

import inline_ipsec

ROOT = Path(inline_ipsec.__file__).parent
#: Cycles known and not yet broken, each with the reason (none now); the test fails when one
#: of them disappears (so it is removed here) or grows, and on any other cycle.
KNOWN: set = set()


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def target(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        base = name.split(".") if is_package else name.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.ImportFrom):
                base = target(child)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    out.add(sub if sub in known else base)
            elif isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in out if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's strongly connected components of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(frozenset(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def test_no_import_cycles() -> None:
    found = set(cycles(graph()))
    assert found - KNOWN == set(), sorted(sorted(c) for c in found - KNOWN)
    assert KNOWN <= found, "a known cycle is gone: remove it from KNOWN"


def test_the_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    g = graph()
    # function-level imports count: the gateway starts IKE control from a method
    assert "inline_ipsec.control.ike_control" in g["inline_ipsec.dataplane.gateway"]
    # TYPE_CHECKING imports do not: IKE control names the Gateway type only for annotations
    assert "inline_ipsec.dataplane.gateway" not in g["inline_ipsec.control.ike_control"]


def test_only_the_pfe_module_imports_the_extension() -> None:
    """`_pfe_core` is imported by inline_ipsec.pfe, nowhere else: the gateway, the CPU engine
    and the benchmarks (whose raw crypto loops it also holds) reach it through that module,
    so the CPU engine loads without it (tests/test_package.py runs that)."""
    allowed = {"inline_ipsec.pfe"}
    importers = set()
    for name, path in modules().items():
        text = ast.parse(path.read_text())
        uses = [n for n in ast.walk(text)
                if (isinstance(n, ast.ImportFrom) and not n.level
                    and (n.module or "").split(".")[0] == "_pfe_core")
                or (isinstance(n, ast.Import)
                    and any(a.name.split(".")[0] == "_pfe_core" for a in n.names))]
        if uses:
            importers.add(name)
    assert importers == allowed, sorted(importers)
