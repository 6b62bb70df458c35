"""What the launch wizard writes: the derived config (and its diff against the template), and the draft
kept as JSON in the state directory between sessions."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from console.jobs.wizard import Template, WizardDraft, derived_text
from console.store import state_dir

DRAFT_FILE = "wizard-draft.json"


def save_derived(draft: WizardDraft, template: Template, path: Path) -> Path:
    """Write the derived config to `path` (the same bytes `derive` gives for the same overrides)."""
    path.write_bytes(derived_text(draft, template).encode("utf-8"))
    return path


def diff_text(template: Template, derived: str) -> str:
    """The derived config as a unified diff against its template (comments kept on both sides)."""
    return "".join(difflib.unified_diff(
        template.text.splitlines(keepends=True), derived.splitlines(keepends=True),
        fromfile=template.path.name, tofile="derived.yaml", n=2))


def draft_path(directory: Path | None = None) -> Path:
    return (directory or state_dir()) / DRAFT_FILE


def save_draft(draft: WizardDraft, directory: Path | None = None) -> Path:
    path = draft_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(draft.as_json(), indent=1), encoding="utf-8")
    partial.replace(path)
    return path


def load_draft(directory: Path | None = None) -> WizardDraft | None:
    """The draft a wizard left, or None (none, or unreadable: a broken draft is not worth an error)."""
    try:
        document = json.loads(draft_path(directory).read_text(encoding="utf-8"))
        return WizardDraft.from_json(document) if isinstance(document, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def discard_draft(directory: Path | None = None) -> None:
    draft_path(directory).unlink(missing_ok=True)
