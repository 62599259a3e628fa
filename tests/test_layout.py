"""The house rules of the layout, checked on the source (see the README's module map)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qa_core"
PAGES = ROOT / "pages"
RETRIEVAL = ("qa_core.embeddings", "qa_core.store", "qa_core.ingest")
UPSTREAM = ("qa_core.answering", "qa_core.matrix", "qa_core.evaluation", "qa_core.service")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every qa_core module ``path`` imports, at module level or deferred inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qa_core"):
            found.add(node.module)
            found.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if (PACKAGE.parent / f"{node.module}.{a.name}".replace(".", "/")).exists()
                or (PACKAGE.parent / (f"{node.module}.{a.name}".replace(".", "/") + ".py")).exists()
            )
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("qa_core"))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _imports(path) if m in modules} - {name} for name, path in modules.items()
    }


def test_no_import_circle() -> None:
    graph = _graph()
    # A package's __init__ importing its own submodules is how a face works, not a circle.
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in edges.get(node, ()):
            if state.get(dep) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, node, dep]))
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])


def test_retrieval_imports_nothing_from_answering_or_above() -> None:
    for name, deps in _graph().items():
        if name.startswith(RETRIEVAL):
            assert not {d for d in deps if d.startswith(UPSTREAM)}, name


def test_sizes_and_top_level() -> None:
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= 12, sorted(p.name for p in top)
    for path in [*PACKAGE.rglob("*.py"), *PAGES.glob("*.py")]:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, (path, lines)
    for page in PAGES.glob("[!_]*.py"):
        assert len(page.read_text(encoding="utf-8").splitlines()) <= 160, page


def test_pages_do_no_prompting_and_the_package_holds_no_fakes() -> None:
    for page in PAGES.glob("*.py"):
        text = page.read_text(encoding="utf-8")
        for call in ("prompts.fit", "format_context", "encoding_for"):
            assert call not in text, (page, call)
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        assert not [n for n in names if n.startswith(("Fake", "Queue", "Scripted", "Stub"))], path
