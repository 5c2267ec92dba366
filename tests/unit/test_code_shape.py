"""Small modules, short functions: the house rule, enforced.

No module in ``src/`` over 500 lines; no function over 80 lines unless its docstring
says why with the words "Long because" (a long function that really is clearer whole).
Split along the ideas a module holds, not by line count.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "pgsafe"
MODULE_MAX = 500
FUNCTION_MAX = 80
REASON = "Long because"


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_sources_are_found() -> None:
    assert len(_sources()) > 100


def test_no_module_over_500_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in _sources()
        if (n := len(p.read_text().splitlines())) > MODULE_MAX
    }
    assert not long, f"split these modules along the ideas they hold: {long}"


def _long_functions(tree: ast.AST) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > FUNCTION_MAX and REASON not in (ast.get_docstring(node) or ""):
                out.append((node.name, lines))
    return out


def test_no_function_over_80_lines_without_a_reason() -> None:
    long = {
        f"{p.relative_to(SRC)}:{name}": n
        for p in _sources()
        for name, n in _long_functions(ast.parse(p.read_text()))
    }
    assert not long, f'split these, or say "{REASON} ..." in their docstrings: {long}'


def test_the_function_rule_sees_a_long_function() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(FUNCTION_MAX))
    assert _long_functions(ast.parse(f"def f():\n{body}")) == [("f", FUNCTION_MAX + 1)]
    reason = f'    """{REASON} it is one table."""\n'
    assert _long_functions(ast.parse(f"def f():\n{reason}{body}")) == []
