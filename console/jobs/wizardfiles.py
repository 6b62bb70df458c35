"""What the launch wizard writes: the derived config (and its diff against the template), and the draft
kept as JSON in the state directory between sessions."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from console.jobs.wizard import Template, WizardDraft, derived_text, read_template
from console.store import state_dir
from model.yamlsource import Problem, SourceError
from remote.inventory import Cluster
from remote.pool import NodePool

DRAFT_FILE = "wizard-draft.json"
NODE_TEMPLATES = "wizard-templates"
"""Under the state directory: templates read from a node, kept here as `<node>/<file name>`."""
READ_TIMEOUT = 30.0
_ON_NODE = re.compile(r"(?P<node>[A-Za-z0-9][A-Za-z0-9_.-]*):(?P<path>/.+)")


def on_node(typed: str, cluster: Cluster) -> tuple[str, str] | None:
    """`NODE:/path` of a node of the cluster -> (node, path); None for a path on this machine."""
    found = _ON_NODE.fullmatch(typed.strip())
    if found is None or found["node"] not in {n.name for n in cluster.nodes}:
        return None
    return found["node"], found["path"]


def read_node_template(pool: NodePool, node: str, path: str, directory: Path | None = None) -> Template:
    """A job file on a node, copied into the state directory and read from there (the plan, the diff
    and a saved config then work as with a file here). SourceError names `node:path` and why not."""
    where = f"{node}:{path}"
    result = pool.transport(pool.cluster.node(node)).run(["cat", "--", path], timeout=READ_TIMEOUT)
    if not result.ok:
        why = result.message or result.stderr.strip() or f"cat exited {result.exit_code}"
        raise SourceError([Problem(where, None, "", f"cannot read: {why}")])
    copy = (directory or state_dir()) / NODE_TEMPLATES / node / Path(path).name
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(result.stdout, encoding="utf-8")
    return read_template(copy)


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
