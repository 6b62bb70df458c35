"""The launch wizard's data page: the dataset and the weights, each as a path on the nodes, or made from
something on this machine (a text converted, a path copied) or fetched from a hub onto the nodes.

What it computes is console/jobs/wizarddata.py; converting, copying and fetching run on thread workers
that post progress and results back as messages. A copy or a download is said first (what, how big,
where) and starts on a second Enter. When one ends, the path on the nodes the job will use fills the
field above and the nodes are checked again. The page's fields reach the wizard's draft as `Edited`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, ProgressBar, Static

from console.jobs.wizard import Template, WizardDraft
from console.jobs.wizardcheck import chosen_nodes, missing_inputs
from console.jobs.wizarddata import (
    Copy,
    Fetch,
    conversion,
    conversion_text,
    convert_text,
    converted_text,
    copied_text,
    copy_lines,
    copy_progress,
    fetch_lines,
    fetched_text,
    on_this_machine,
    plan_copy,
    plan_fetch,
    run_copy,
    run_fetch,
    size_text,
)
from console.services import ConsoleServices
from console.widgets.wizard_fields import FieldRow
from model.data.convert import ConvertError, Progress
from model.yamlsource import SourceError
from remote.hub import HubError
from remote.inventory import NodeSpec
from remote.paths import MissingPath
from remote.relayplan import NodeProgress
from remote.transfer import DistributionError

Drafted = Callable[[], tuple[WizardDraft, "Template | None"]]
"""What the wizard holds now: its draft and template."""

ROWS = {"data-prefix": "data_prefix", "data-text": "data_text", "data-tokenizer": "tokenizer",
        "data-weights": "weights", "weights-here": "weights_here", "weights-hub": "weights_hub",
        "data-prompt": "prompt"}
"""The page's fields: row id -> the WizardDraft field it sets."""
NO_POOL = "✗ no connection to the nodes in this console"
TASK_ERRORS = (ConvertError, DistributionError, HubError, SourceError, OSError, ValueError)
"""Why a conversion, copy or download did not happen: said on the page, not as a crash."""


class WorkLine(Vertical):
    """A long task's line under its fields: what it will do, is doing or did, with a bar while it runs."""

    DEFAULT_CSS = """
    WorkLine { height: auto; padding-left: 2; display: none; }
    WorkLine.-said { display: block; }
    WorkLine Static { height: auto; max-height: 6; color: $text-muted; }
    WorkLine.-failed Static { color: $text-error; }
    WorkLine ProgressBar { display: none; height: 1; }
    WorkLine.-running ProgressBar { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", markup=False)
        yield ProgressBar(show_eta=False)

    @property
    def running(self) -> bool:
        return self.has_class("-running")

    def say(self, text: str, *, failed: bool = False) -> None:
        """The task is not running: what it will do on Enter, what it did, or why it failed."""
        self.set_class(False, "-running")
        self.set_class(failed, "-failed")
        self.set_class(bool(text), "-said")
        self.query_one(Static).update(text)

    def start(self, text: str) -> None:
        self.set_class(True, "-running", "-said")
        self.set_class(False, "-failed")
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one(Static).update(text)

    def advance(self, done: int, total: int, text: str) -> None:
        self.query_one(ProgressBar).update(total=total or None, progress=done)
        self.query_one(Static).update(text)


class DataPage(VerticalScroll):
    """The dataset and the weights of the draft `drafted` returns, on the nodes it has chosen."""

    DEFAULT_CSS = """
    DataPage { height: 1fr; padding: 0 1; }
    DataPage FieldRow Input { width: 1fr; }
    DataPage FieldRow Static.template { display: none; }
    """

    class Edited(Message):
        """A field of the draft changed: `name` is the WizardDraft field."""

        def __init__(self, name: str, value: str) -> None:
            super().__init__()
            self.name, self.value = name, value

    class Progressed(Message):
        """A task moved on; a newer one replaces an older one of the same line still queued."""

        def __init__(self, line: str, done: int, total: int, text: str) -> None:
            super().__init__()
            self.line, self.done, self.total, self.text = line, done, total, text

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DataPage.Progressed) and message.line == self.line

    class Asked(Message):
        """What the next Enter in `row` will copy or download, said before it starts."""

        def __init__(self, row: str, typed: str, task: Copy | Fetch, text: str) -> None:
            super().__init__()
            self.row, self.typed, self.task, self.text = row, typed, task, text

    class Finished(Message):
        """A task ended; `fill` is (row id, the path on the nodes) when it made one."""

        def __init__(self, line: str, text: str, *, ok: bool, fill: tuple[str, str] | None = None) -> None:
            super().__init__()
            self.line, self.text, self.ok, self.fill = line, text, ok, fill

    class Checked(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, services: ConsoleServices, drafted: Drafted, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.services = services
        self.drafted = drafted
        self._asked: dict[str, tuple[str, Copy | Fetch]] = {}

    def compose(self) -> ComposeResult:
        yield Static("Dataset", classes="group")
        yield FieldRow("data_prefix", "prefix on the nodes", "a Megatron dataset on the nodes: PREFIX.bin "
                       "and PREFIX.idx; empty: the template's. Enter checks the nodes",
                       placeholder="the template's", id="data-prefix")
        yield FieldRow("data_text", "or a text file here", "a text file on this machine (blank lines between "
                       "documents); Enter converts it for the model's seq_length, with progress",
                       placeholder="path/to/text.txt", id="data-text")
        yield FieldRow("tokenizer", "  converted with", "the tokenizer.json on this machine that converts "
                       "the text; empty: the embedded corpus's, built for the model's vocab_size",
                       placeholder="the embedded corpus's tokenizer", id="data-tokenizer")
        yield WorkLine(id="dataset-work")
        yield Static("Checkpoint or weights", classes="group")
        yield FieldRow("weights", "path on the nodes", "a checkpoint or weights path on the nodes; empty: "
                       "the template's. Enter checks the nodes", placeholder="the template's",
                       id="data-weights")
        yield FieldRow("weights_here", "or a path here", "a checkpoint file or directory on this machine; "
                       "Enter shows what would be copied where, Enter again copies it to the nodes",
                       placeholder="path/to/weights", id="weights-here")
        yield FieldRow("weights_hub", "or a hub repo id", "OWNER/NAME on the openMind hub "
                       "($OPENMIND_HUB_ENDPOINT for a mirror); Enter shows where, Enter again downloads",
                       placeholder="MindSpore-Lab/DeepSeek-V3", id="weights-hub")
        yield WorkLine(id="weights-work")
        yield Static("Predict", classes="group", id="prompt-group")
        yield FieldRow("prompt", "prompt", "a predict job's text for the model to continue (its checkpoint: "
                       "the weights path on the nodes above)", placeholder="Return the number of",
                       id="data-prompt")
        yield Static("", id="data-check", classes="note", markup=False)

    # --- the wizard's calls ------------------------------------------------------------------------------

    def enter(self) -> None:
        """The page is shown: its first field focused, the nodes asked about the inputs."""
        self.query_one("#data-prefix", FieldRow).query_one(Input).focus()
        predicting = self._draft()[0].kind == "predict"
        for widget_id in ("#prompt-group", "#data-prompt"):
            self.query_one(widget_id).display = predicting
        self.check_inputs()

    def restore(self, draft: WizardDraft) -> None:
        """Show a draft's fields (one read back, or a fresh one to start over)."""
        for row_id, name in ROWS.items():
            self.query_one(f"#{row_id}", FieldRow).set_value(getattr(draft, name))
        for line in self.query(WorkLine):
            line.say("")
        self._asked.clear()

    @property
    def busy(self) -> bool:
        """A conversion, copy or download is running: the wizard waits for its path before moving on."""
        return any(line.running for line in self.query(WorkLine))

    # --- the fields ---------------------------------------------------------------------------------------

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        row_id = event.row.id or ""
        if row_id in ROWS:
            event.stop()
            self._asked.pop(row_id, None)
            self.post_message(self.Edited(ROWS[row_id], event.value.strip()))

    def on_field_row_submitted(self, event: FieldRow.Submitted) -> None:
        row_id = event.row.id or ""
        if row_id not in ROWS:
            return
        event.stop()
        if row_id in ("data-prefix", "data-weights"):
            self.check_inputs()
        elif row_id in ("data-text", "data-tokenizer"):
            self._dataset()
        elif row_id == "weights-here":
            self._weights_here()
        elif row_id == "weights-hub":
            self._weights_hub()

    def _draft(self) -> tuple[WizardDraft, Template | None, tuple[NodeSpec, ...]]:
        """The wizard's draft with this page's fields as typed (the wizard may not have them yet)."""
        draft, template = self.drafted()
        draft = draft.with_texts({name: self.query_one(f"#{row_id}", FieldRow).value.strip()
                                  for row_id, name in ROWS.items()})
        return draft, template, chosen_nodes(draft, self.services.cluster)

    def _line(self, line_id: str) -> WorkLine:
        return self.query_one(f"#{line_id}", WorkLine)

    def _confirmed(self, row_id: str) -> Copy | Fetch | None:
        """The task said for this row's text, when Enter is pressed on it a second time."""
        asked = self._asked.get(row_id)
        typed = self.query_one(f"#{row_id}", FieldRow).value.strip()
        return asked[1] if asked is not None and asked[0] == typed else None

    # --- the dataset --------------------------------------------------------------------------------------

    def _dataset(self) -> None:
        line = self._line("dataset-work")
        draft, template, nodes = self._draft()
        confirmed = self._confirmed("data-text")
        if line.running or template is None:
            return
        if isinstance(confirmed, Copy):
            self._copy("dataset-work", confirmed, "data-prefix")
        elif not draft.data_text:
            line.say("✗ give a text file on this machine to convert", failed=True)
        else:
            self._convert(draft, template, nodes)

    def _convert(self, draft: WizardDraft, template: Template, nodes: tuple[NodeSpec, ...]) -> None:
        first = "" if draft.tokenizer else " (the embedded corpus's tokenizer is built first, once)"
        typed = draft.data_text

        def report(progress: Progress) -> None:
            self.post_message(self.Progressed("dataset-work", progress.bytes_read, progress.total_bytes,
                                              f"converting: {conversion_text(progress)}"))

        def convert() -> Message:
            result = convert_text(conversion(draft, template), report)
            if on_this_machine(nodes):
                said = f"{converted_text(result)}\nthe nodes are this machine: the job reads it there"
                return self.Finished("dataset-work", said, ok=True, fill=("data-prefix", str(result.prefix)))
            copy = plan_copy(result.prefix.parent, nodes, "datasets", prefix=result.prefix.name)
            said = "\n".join([converted_text(result), *copy_lines(copy), "Enter again copies it"])
            return self.Asked("data-text", typed, copy, said)

        self._work("dataset-work", f"converting {typed}{first}…", f"converting {typed} into a dataset",
                   convert)

    # --- the weights --------------------------------------------------------------------------------------

    def _weights_here(self) -> None:
        line = self._line("weights-work")
        draft, _, nodes = self._draft()
        confirmed = self._confirmed("weights-here")
        typed = draft.weights_here
        if line.running:
            return
        if isinstance(confirmed, Copy):
            self._copy("weights-work", confirmed, "data-weights")
        elif not typed:
            line.say("✗ give a checkpoint file or directory on this machine", failed=True)
        else:
            def listed() -> Message:
                copy = plan_copy(Path(typed), nodes, "weights")
                said = "\n".join([*copy_lines(copy), "Enter again copies it"])
                return self.Asked("weights-here", typed, copy, said)

            self._work("weights-work", f"listing {typed}…", f"listing {typed}", listed)

    def _weights_hub(self) -> None:
        line = self._line("weights-work")
        draft, _, nodes = self._draft()
        confirmed = self._confirmed("weights-hub")
        if line.running:
            return
        if isinstance(confirmed, Fetch):
            self._fetch(confirmed)
            return
        try:
            fetch = plan_fetch(draft.weights_hub, nodes)
        except ValueError as exc:
            line.say(f"✗ {exc}", failed=True)
            return
        self._asked["weights-hub"] = (draft.weights_hub, fetch)
        line.say("\n".join([*fetch_lines(fetch), "Enter again downloads"]))

    # --- copies and downloads ---------------------------------------------------------------------------

    def _copy(self, line_id: str, copy: Copy, fill: str) -> None:
        pool, reported = self.services.pool, _Reported(self, line_id)
        if pool is None:
            self._line(line_id).say(NO_POOL, failed=True)
            return

        def run() -> Message:
            result = run_copy(pool, copy, reported)
            if not result.ok:
                return self.Finished(line_id, copied_text(result), ok=False)
            said = f"{copied_text(result)}\nthe job reads {copy.path_on_nodes}"
            return self.Finished(line_id, said, ok=True, fill=(fill, copy.path_on_nodes))

        size = size_text(copy.total_bytes)
        doing = (f"hashing {copy.files} file(s), {size} here (each is checked again on arrival), then "
                 f"copying to {copy.targets.names}…")
        self._work(line_id, doing, f"copying {copy.source} to {copy.targets.names}", run)

    def _fetch(self, fetch: Fetch) -> None:
        pool, reported = self.services.pool, _Reported(self, "weights-work")
        first = fetch.targets.nodes[0].name
        if pool is None:
            self._line("weights-work").say(NO_POOL, failed=True)
            return

        def run() -> Message:
            result = run_fetch(pool, fetch, reported)
            fill = ("data-weights", fetch.destination) if result.ok else None
            return self.Finished("weights-work", fetched_text(fetch, result), ok=result.ok, fill=fill)

        doing = f"downloading {fetch.repo_id} on {first} (no progress from the hub: it says when it is done)…"
        self._work("weights-work", doing, f"fetching {fetch.repo_id} on {first}", run)

    def _work(self, line_id: str, doing: str, description: str, task: Callable[[], Message]) -> None:
        """Run `task` on a thread worker, `doing` on its line; the message it returns says how it ended.
        Its expected failures (TASK_ERRORS) are said on the line; anything else is the app's worker error."""
        self._line(line_id).start(doing)

        def work() -> None:
            try:
                self.post_message(task())
            except TASK_ERRORS as exc:
                self.post_message(self.Finished(line_id, f"✗ {exc}", ok=False))

        self.run_worker(work, thread=True, exclusive=True, group=f"wizard-{line_id}", exit_on_error=False,
                        description=description)

    def on_data_page_progressed(self, message: Progressed) -> None:
        self._line(message.line).advance(message.done, message.total, message.text)

    def on_data_page_asked(self, message: Asked) -> None:
        self._asked[message.row] = (message.typed, message.task)
        self._line("dataset-work" if message.row == "data-text" else "weights-work").say(message.text)

    def on_data_page_finished(self, message: Finished) -> None:
        self._line(message.line).say(message.text, failed=not message.ok)
        if message.fill is not None:
            row_id, path = message.fill
            self.query_one(f"#{row_id}", FieldRow).set_value(path)
            self.check_inputs()

    # --- the inputs on the nodes -------------------------------------------------------------------------

    def check_inputs(self) -> None:
        draft, template, nodes = self._draft()
        pool = self.services.pool
        if template is None or pool is None:
            return
        self.query_one("#data-check", Static).update("checking the nodes…")

        def ask() -> None:
            missing = missing_inputs(pool, nodes, draft, template)
            self.post_message(self.Checked(_inputs_text(missing, draft, template, nodes)))

        self.run_worker(ask, thread=True, exclusive=True, group="wizard-inputs", exit_on_error=False,
                        description="checking the job's input paths on the nodes")

    def on_data_page_checked(self, message: Checked) -> None:
        self.query_one("#data-check", Static).update(message.text)


class _Reported:
    """A distribution's progress callback, called on its per-node threads: every node's latest, posted as
    one line."""

    def __init__(self, page: DataPage, line: str) -> None:
        self.page, self.line = page, line
        self._nodes: dict[str, NodeProgress] = {}
        self._lock = threading.Lock()

    def __call__(self, progress: NodeProgress) -> None:
        with self._lock:
            self._nodes[progress.node] = progress
            latest = dict(self._nodes)
        done, total, text = copy_progress(latest)
        self.page.post_message(DataPage.Progressed(self.line, done, total, f"copying: {text}"))


def _inputs_text(missing: list[MissingPath], draft: WizardDraft, template: Template,
                 nodes: tuple[NodeSpec, ...]) -> str:
    if missing:
        return "\n".join(f"✗ {m.path} {'not checked' if m.unchecked else 'missing'} on {', '.join(m.nodes)}"
                         for m in missing)
    own = "" if draft.data_prefix or draft.weights or template.spec.training.data_prefixes else \
        " (the template reads no dataset path: its own data)"
    return "every input found on " + ", ".join(n.name for n in nodes) + own
