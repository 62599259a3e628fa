"""The public API is what ``qa_core.__all__`` says, and each name resolves to what it claims."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import qa_core


def test_exported_members_resolve_to_their_defining_module() -> None:
    for name in qa_core.__all__:
        member = getattr(qa_core, name)
        if name == "ask":
            continue
        module = importlib.import_module(qa_core._LAZY[name])
        assert member is getattr(module, name)
        assert getattr(member, "__module__", module.__name__) == module.__name__, name


def test_type_checking_imports_match_the_lazy_names() -> None:
    tree = ast.parse(Path(qa_core.__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    )
    imported = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == qa_core._LAZY


def test_all_is_sorted_and_unknown_names_raise() -> None:
    assert qa_core.__all__ == sorted(qa_core.__all__)
    try:
        qa_core.not_a_member  # noqa: B018
    except AttributeError as exc:
        assert "not_a_member" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")
