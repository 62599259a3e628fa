"""Saved instruction templates: every version kept, and which template is active."""

from __future__ import annotations

import builtins
import difflib
import json
import threading
from pathlib import Path
from typing import TypedDict

from qa_core._files import slug, write_atomic
from qa_core.answering.prompts import DEFAULT_TEMPLATE_NAME, PRESETS, Template
from qa_core.errors import TemplateError

__all__ = ["TemplateStore"]

_MAX_NAME = 80
_INDEX_LOCK = threading.Lock()  # serialises read-modify-write of index.json within a process


class _Entry(TypedDict):
    slug: str
    numbered: bool
    versions: list[str]  # content hashes, oldest first


class TemplateStore:
    """Presets plus the user's saved templates under ``data_dir/templates``.

    Every saved version is kept as ``<slug>/<hash>.txt``; ``index.json`` maps each name to its
    versions (oldest first) and ``active.json`` names the active template. Writes are atomic.
    """

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "templates"

    def _index(self) -> dict[str, _Entry]:
        path = self.root / "index.json"
        if not path.exists():
            return {}
        try:
            loaded: dict[str, _Entry] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TemplateError(f"The template index {path} cannot be read ({exc}).") from exc
        return loaded

    def _load(self, name: str, entry: _Entry, version: str | None = None) -> Template:
        path = self.root / entry["slug"] / f"{version or entry['versions'][-1]}.txt"
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise TemplateError(f"The saved template {name!r} is missing its file {path}.") from exc
        return Template(name, text, numbered=entry["numbered"])

    def list(self) -> builtins.list[Template]:
        """Presets first, then saved templates (latest version each) by name."""
        saved = [self._load(name, entry) for name, entry in sorted(self._index().items())]
        return [*PRESETS.values(), *saved]

    def versions(self, name: str) -> builtins.list[Template]:
        """Every saved version of ``name``, oldest first (a preset has just one)."""
        if name in PRESETS:
            return [PRESETS[name]]
        entry = self._index().get(name)
        if entry is None:
            raise TemplateError(f"No saved template is named {name!r}.")
        return [self._load(name, entry, version) for version in entry["versions"]]

    def get(self, name_or_path: str) -> Template:
        """A preset, a saved template (latest version) or a ``.txt`` file, in that order.

        Paths are for the CLI and scripts; a public app should pass names only.
        """
        if name_or_path in PRESETS:
            return PRESETS[name_or_path]
        entry = self._index().get(name_or_path)
        if entry is not None:
            return self._load(name_or_path, entry)
        path = Path(name_or_path).expanduser()
        if path.suffix.lower() == ".txt" or path.exists():
            try:
                text = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise TemplateError(f"The template file {path} cannot be read ({exc}).") from exc
            template = Template(path.stem, text)
            template.validate()
            return template
        names = ", ".join(repr(t.name) for t in self.list())
        raise TemplateError(
            f"No template is named {name_or_path!r}; choose one of {names} or give a .txt file."
        )

    def save(self, name: str, text: str, *, numbered: bool = True) -> Template:
        """Validate, then store ``text`` as the latest version of ``name``."""
        name = name.strip()
        if not name or len(name) > _MAX_NAME or any(c in name for c in "\r\n\t"):
            raise TemplateError(f"A template name must be one line of 1 to {_MAX_NAME} characters.")
        if name.casefold() in {preset.casefold() for preset in PRESETS}:
            raise TemplateError(f"{name!r} is a built-in template; save yours under another name.")
        template = Template(name, text, numbered=numbered)
        template.validate()
        with _INDEX_LOCK:
            index = self._index()
            old = index.get(name)
            folder = old["slug"] if old else slug(name, "template")
            # Re-saving an older text makes it the latest again instead of duplicating it.
            versions = [v for v in (old["versions"] if old else []) if v != template.hash]
            path = self.root / folder / f"{template.hash}.txt"
            if not path.exists():
                write_atomic(path, text)
            index[name] = {
                "slug": folder,
                "numbered": numbered,
                "versions": [*versions, template.hash],
            }
            write_atomic(self.root / "index.json", json.dumps(index, indent=1, ensure_ascii=False))
        return template

    def active(self) -> Template:
        """The active template; Evidence-first unless another was chosen and still exists."""
        path = self.root / "active.json"
        try:
            name = json.loads(path.read_text(encoding="utf-8"))["name"]
            return self.get(str(name))
        except (OSError, ValueError, KeyError, TypeError, TemplateError):
            return PRESETS[DEFAULT_TEMPLATE_NAME]

    def set_active(self, name: str) -> Template:
        """Make the preset or saved template ``name`` the active one."""
        if name not in PRESETS and name not in self._index():
            raise TemplateError(f"No template is named {name!r}; save it before making it active.")
        write_atomic(self.root / "active.json", json.dumps({"name": name}, ensure_ascii=False))
        return self.get(name)

    @staticmethod
    def diff(a: Template, b: Template) -> str:
        """A unified diff from ``a`` to ``b`` (empty when the texts are equal)."""
        lines = difflib.unified_diff(
            a.text.splitlines(),
            b.text.splitlines(),
            fromfile=f"{a.name} ({a.hash})",
            tofile=f"{b.name} ({b.hash})",
            lineterm="",
        )
        return "\n".join(lines)
