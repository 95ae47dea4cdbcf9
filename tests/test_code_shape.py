"""Every function in service/ stays short enough to read in one screen: under 50 lines, counted with
``ast`` from its first decorator to its last line (docstring and comments included)."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parent.parent / "service"
MAX_LINES = 50  # a function of this many lines or more fails


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """(lines, "path:line name") of every function and method under ``root``, nested ones included."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                assert node.end_lineno is not None
                found.append((node.end_lineno - first + 1, f"{path.relative_to(root.parent)}:{node.lineno} {node.name}"))
    return found


def test_no_function_in_service_reaches_50_lines() -> None:
    lengths = function_lengths(SERVICE)
    assert len(lengths) > 100  # the walk found the package
    too_long = sorted((f"{where} ({n} lines)" for n, where in lengths if n >= MAX_LINES))
    assert too_long == [], f"split these into named steps (under {MAX_LINES} lines each): {too_long}"


def test_the_count_includes_decorators_and_docstrings(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(45))
    (package / "m.py").write_text(f'import functools\n\n\n@functools.cache\ndef f():\n    """Doc."""\n{body}\n    return 0\n')
    assert function_lengths(package) == [(49, "pkg/m.py:5 f")]  # decorator, def, docstring, 45, return
