"""No probing for attributes by name in the library.

`getattr(obj, "name", default)` and `hasattr(obj, "name")` with a literal name ask whether an
object happens to have a member, where the code should know: an engine's members are the
`Engine` contract, an IKE event is matched by its class, an optional attribute is set to None
in `__init__`, a structural type is a `Protocol`. Likewise `type(x).__name__ == "..."`
dispatches on a class name that a rename would silently break. The source is read with the AST,
so comments and strings do not count."""
from __future__ import annotations

import ast
from pathlib import Path

import inline_ipsec

ROOT = Path(inline_ipsec.__file__).parent
#: (file, attribute name): the probes that are the point, with the reason.
ALLOWED = {
    # importlib's own test for a package: a module object has `__path__` only then
    ("_aliases.py", "__path__"),
}


def probes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = node.args
            literal = len(args) >= 2 and isinstance(args[1], ast.Constant) \
                and isinstance(args[1].value, str)
            if literal and ((node.func.id == "getattr" and len(args) == 3)
                            or (node.func.id == "hasattr" and len(args) == 2)):
                found.append((node.lineno, args[1].value))
        elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) \
                and node.left.attr == "__name__" and isinstance(node.left.value, ast.Call) \
                and isinstance(node.left.value.func, ast.Name) \
                and node.left.value.func.id == "type" \
                and any(isinstance(c, ast.Constant) for c in node.comparators):
            found.append((node.lineno, "type(...).__name__"))
    return found


def test_the_library_does_not_probe_for_attributes_by_name() -> None:
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for line, name in probes(ast.parse(path.read_text(), str(path))):
            if (rel, name) not in ALLOWED:
                bad.append(f"{rel}:{line}: {name}")
    assert not bad, "attribute probes by name:\n" + "\n".join(bad)


def test_the_check_finds_each_kind_of_probe() -> None:
    src = ('getattr(x, "a", None)\nhasattr(x, "b")\nif type(e).__name__ == "C": pass\n'
           'getattr(x, name, None)\ngetattr(x, "d")\n')
    assert probes(ast.parse(src)) == [(1, "a"), (2, "b"), (3, "type(...).__name__")]
