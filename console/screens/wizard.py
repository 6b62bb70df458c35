"""The launch wizard: six pages from "what kind of job" to a running job screen, keyboard only.

The screen holds a `WizardDraft` and drives `console.jobs.wizard` (templates, overrides),
`console.jobs.wizardcheck` (checks, estimate), `console.jobs.wizardfiles` (diff, the draft between
sessions). Two pages are widgets of their own: `DataPage` (console/screens/wizard_data.py) converts,
copies and fetches the job's inputs, and the last, `ReviewPage` (console/screens/wizard_review.py), drives
`plan_job` and `run_launch`; nothing of a job is computed here. Checking a draft, asking the master about
its port, planning and launching run on thread workers that post frozen results back as messages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widget import AwaitMount, Widget
from textual.widgets import (
    Button,
    ContentSwitcher,
    Footer,
    Input,
    OptionList,
    SelectionList,
    Static,
)
from textual.widgets.option_list import Option

from console.jobs.devicememory import nodes_memory
from console.jobs.wizard import (
    KINDS,
    SMOKE_TEMPLATE,
    Template,
    WizardDraft,
    job_templates,
    read_template,
)
from console.jobs.wizardcheck import (
    DraftCheck,
    FieldProblem,
    check_draft,
    chosen_nodes,
    estimate_lines,
    params_text,
)
from console.jobs.wizardfiles import discard_draft, load_draft, on_node, read_node_template, save_draft
from console.screens.confirm import ConfirmScreen
from console.screens.job import JobScreen
from console.screens.wizard_data import DataPage
from console.screens.wizard_nodes import NodesPage
from console.screens.wizard_review import ReviewPage
from console.services import ConsoleServices
from console.widgets.wizard_fields import FieldRow, problem_text
from model.estimate import NPU_910B, DeviceMemory
from model.yamlsource import SourceError
from remote.inventory import NodeSpec

PAGES = ("kind", "template", "fields", "data", "nodes", "review")
TITLES = ("Job kind", "Template", "The fields people change", "Data and weights", "Nodes", "Review")
CHECK_DELAY = 0.25
"""Seconds of quiet typing before a draft is checked again."""


class WizardScreen(Screen[None]):
    """Builds a job step by step; Launch lands on its job screen."""

    HELP_TITLE = "launch wizard"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next", "Next", tooltip="The next page", id="wizard.next"),
        Binding("escape", "back", "Back", tooltip="The previous page", id="wizard.back"),
        Binding("ctrl+f", "fix", "Fix", tooltip="Apply the suggested fix to the focused field",
                id="wizard.fix"),
        Binding("ctrl+s", "save", "Save", tooltip="Save the derived config to the path given",
                id="wizard.save"),
        Binding("ctrl+l", "launch", "Launch", tooltip="Preflight and launch on the chosen nodes",
                id="wizard.launch"),
    ]
    DEFAULT_CSS = """
    WizardScreen #wizard-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    WizardScreen #wizard-pages { height: 1fr; }
    WizardScreen #wizard-pages > Vertical { height: 1fr; padding: 0 1; }
    WizardScreen OptionList, WizardScreen SelectionList { height: 1fr; }
    WizardScreen .note { color: $text-muted; height: auto; }
    WizardScreen #field-rows { height: 1fr; }
    WizardScreen .group { color: $text-primary; text-style: bold; height: 1; }
    WizardScreen #estimate { height: auto; max-height: 6; border-top: solid $primary-muted; }
    WizardScreen #estimate.-unfit { color: $text-error; }
    WizardScreen #review-status { height: auto; max-height: 4; }
    WizardScreen #review-status.-refused { color: $text-error; }
    WizardScreen #review-text { height: 1fr; border: round $primary-muted; }
    WizardScreen #launch-progress { height: auto; max-height: 6; }
    WizardScreen #wizard-help { height: 2; padding: 0 1; color: $text-muted; background: $panel; }
    WizardScreen #wizard-nav { height: 1; align-horizontal: right; }
    WizardScreen #wizard-nav Button { margin-left: 2; }
    """

    class Checked(Message):
        def __init__(self, draft: WizardDraft, check: DraftCheck) -> None:
            super().__init__()
            self.draft, self.check = draft, check

    def __init__(self, services: ConsoleServices, *, templates_dir: Path | None = None) -> None:
        super().__init__()
        self.services = services
        self._devices: dict[tuple[str, ...], DeviceMemory] = {}
        self.draft = WizardDraft()
        self.template: Template | None = None
        self.check: DraftCheck | None = None
        self._templates_dir = templates_dir
        self._templates: list[Template] = []
        self._rows_mounting: AwaitMount | None = None

    # --- layout ------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="wizard-title", markup=False)
        with ContentSwitcher(initial="page-kind", id="wizard-pages"):
            with Vertical(id="page-kind"):
                yield Static("What will this job do?", classes="note")
                yield OptionList(*[Option(f"{k.title:<11} {k.help}", id=k.name) for k in KINDS],
                                 id="kind-list")
            with Vertical(id="page-template"):
                yield Static("A job file under configs/jobs/ (dialect, parameters), or a path typed below.",
                             classes="note", markup=False)
                yield OptionList(id="template-list")
                yield FieldRow("template.path", "or a path", "a MindFormers job YAML on this machine, or "
                               "NODE:/path on a node (copied into the state directory); Enter reads it",
                               placeholder="job.yaml, node:/job.yaml", id="template-path")
            with Vertical(id="page-fields"):
                yield VerticalScroll(id="field-rows")
                yield Static("", id="estimate", markup=False)
            yield DataPage(self.services, self._drafted, id="page-data")
            yield NodesPage(self.services, id="page-nodes")
            yield ReviewPage(self.services, self._reviewed, id="page-review")
        yield Static("", id="wizard-help", markup=False)
        with Horizontal(id="wizard-nav"):
            yield Button("< Back", id="wizard-back", compact=True)
            yield Button("Next >", id="wizard-next", compact=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._templates = job_templates(self._templates_dir) if self._templates_dir else job_templates()
        self.query_one("#template-list", OptionList).add_options(
            [Option(_template_line(t), id=str(t.path)) for t in self._templates])
        self._show_page(0)
        kept = load_draft()
        if kept is not None and kept.template:
            detail = f"{Path(kept.template).name}, {kept.kind}, page {kept.page + 1} of {len(PAGES)}"
            self.app.push_screen(ConfirmScreen("Continue the wizard left half-way?", detail),
                                 lambda yes: self._resume(kept) if yes else discard_draft())

    def on_unmount(self) -> None:
        if self.draft.template:
            save_draft(self.draft)

    # --- pages -------------------------------------------------------------------------------------

    @property
    def page(self) -> int:
        return self.draft.page

    def _show_page(self, page: int) -> None:
        self.draft = dataclasses.replace(self.draft, page=page)
        self.query_one("#wizard-title", Static).update(
            f"Launch wizard · {page + 1}/{len(PAGES)} {TITLES[page]}")
        self.query_one(ContentSwitcher).current = f"page-{PAGES[page]}"
        self.query_one("#wizard-back", Button).disabled = page == 0
        self.query_one("#wizard-next", Button).label = "Launch" if page == len(PAGES) - 1 else "Next >"
        getattr(self, f"_enter_{PAGES[page]}")()
        self.refresh_bindings()
        if self.draft.template:
            save_draft(self.draft)

    def _enter_kind(self) -> None:
        kinds = self.query_one("#kind-list", OptionList)
        kinds.highlighted = next(i for i, k in enumerate(KINDS) if k.name == self.draft.kind)
        kinds.focus()

    def _enter_template(self) -> None:
        listed = self.query_one("#template-list", OptionList)
        wanted = self.draft.template or (str(self._by_name(SMOKE_TEMPLATE)) if self.draft.kind == "smoke"
                                         else "")
        index = next((i for i, t in enumerate(self._templates) if str(t.path) == wanted), 0)
        listed.highlighted = index if self._templates else None
        listed.focus()

    def _enter_fields(self) -> None:
        self.call_later(self._focus_first_slot)
        self._check_soon()

    async def _focus_first_slot(self) -> None:
        mounting, self._rows_mounting = self._rows_mounting, None
        if mounting is not None:
            await mounting
        for input_box in self.query("FieldRow.slot Input").results(Input):
            input_box.focus()
            return

    def _enter_data(self) -> None:
        self.query_one(DataPage).enter()

    def _enter_nodes(self) -> None:
        self.query_one(NodesPage).enter()

    def _enter_review(self) -> None:
        self.query_one(ReviewPage).enter()
        self._check_now()

    def _reviewed(self) -> tuple[WizardDraft, Template | None, DraftCheck | None]:
        return self.draft, self.template, self.check

    def _drafted(self) -> tuple[WizardDraft, Template | None]:
        return self.draft, self.template

    def action_save(self) -> None:
        self.query_one(ReviewPage).save()

    def action_launch(self) -> None:
        self.query_one(ReviewPage).launch()

    async def on_review_page_job_launched(self, message: ReviewPage.JobLaunched) -> None:
        discard_draft()
        self._start_over()
        await self.app.switch_mode("jobs")
        await self.app.push_screen(JobScreen(self.services, message.job_id))

    def action_next(self) -> None:
        if self.page == 0:
            self._choose_kind()
        elif self.page == 1:
            self._choose_template()
        elif self.page == PAGES.index("data") and self.query_one(DataPage).busy:
            self.notify("wait for the conversion, copy or download: the job needs its path on the nodes",
                        severity="warning")
        elif self.page == PAGES.index("nodes") and not self.draft.nodes:
            self.notify("choose at least one node (space)", severity="warning")
        elif self.page == len(PAGES) - 1:
            self.action_launch()
        else:
            self._show_page(self.page + 1)

    def action_back(self) -> None:
        if self.page > 0 and not self.query_one(ReviewPage).launching:
            self._show_page(self.page - 1)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Fix only on the fields page; Save and Launch only on the review."""
        if action == "fix":
            return self.page == PAGES.index("fields")
        if action in ("save", "launch"):
            return self.page == len(PAGES) - 1
        if action == "back":
            return self.page > 0
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_back() if event.button.id == "wizard-back" else self.action_next()

    def _resume(self, kept: WizardDraft) -> None:
        try:
            self._use_template(read_template(Path(kept.template)), keep=kept)
        except SourceError as exc:
            self.notify(f"the draft's template cannot be read: {exc}", severity="error")
            return
        self.query_one(DataPage).restore(kept)
        self.query_one(NodesPage).restore(kept)
        self._show_page(min(kept.page, len(PAGES) - 1))

    # --- page 1 and 2: kind and template ----------------------------------------------------------

    def _choose_kind(self) -> None:
        index = self.query_one("#kind-list", OptionList).highlighted or 0
        self.draft = dataclasses.replace(self.draft, kind=KINDS[index].name)
        self._show_page(1)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "kind-list":
            self._choose_kind()
        else:
            self._choose_template()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show_help(event.option_list)

    def _choose_template(self) -> None:
        listed = self.query_one("#template-list", OptionList)
        typed = self.query_one("#template-path", FieldRow)
        if typed.has_focus_within and typed.value.strip():
            self._read_typed_template(typed)
            return
        if listed.highlighted is None:
            self.notify("choose a job file, or type a path", severity="warning")
            return
        self._use_template(self._templates[listed.highlighted])
        self._show_page(2)

    def _read_typed_template(self, row: FieldRow) -> None:
        typed = row.value.strip()
        remote = on_node(typed, self.services.cluster)
        if remote is None:
            try:
                self._template_read(row, read_template(Path(typed).expanduser().resolve()))
            except SourceError as exc:
                self._template_read(row, exc)
            return
        pool = self.services.pool
        if pool is None:
            row.show_problems((_problem(f"{typed}: no connection to the nodes in this console"),))
            return
        row.show_problems((_problem(f"reading {typed}…"),))

        def read() -> None:  # off the event loop: the node may take its time to answer
            try:
                found: Template | SourceError = read_node_template(pool, *remote)
            except SourceError as exc:
                found = exc
            self.app.call_from_thread(self._template_read, row, found)
        self.run_worker(read, thread=True, exit_on_error=False, group="wizard-template",
                        description=f"reading {typed}")

    def _template_read(self, row: FieldRow, found: Template | SourceError) -> None:
        if isinstance(found, SourceError):
            row.show_problems(tuple(_problem(str(p)) for p in found.problems))
            return
        row.show_problems(())
        self._use_template(found)
        self._show_page(2)

    def _use_template(self, template: Template, *, keep: WizardDraft | None = None) -> None:
        """Rebuild the field rows for `template`; edits of another template are dropped."""
        same = self.template is not None and self.template.path == template.path
        self.template = template
        if keep is not None:
            self.draft = keep
        elif not same:
            self.draft = dataclasses.replace(self.draft, template=str(template.path), values={})
        rows = self.query_one("#field-rows", VerticalScroll)
        rows.remove_children()
        self._rows_mounting = rows.mount_all(_field_widgets(template, self.draft))
        self.check = None

    def _by_name(self, name: str) -> Path | None:
        return next((t.path for t in self._templates if t.path.name == name), None)

    # --- page 3: fields, checked as they change ------------------------------------------------------

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        row, template = event.row, self.template
        if template is None:
            return
        if row.has_class("slot"):
            self.draft = self.draft.with_value(row.key, event.value, template)
            self._check_soon()

    def on_field_row_submitted(self, event: FieldRow.Submitted) -> None:
        if event.row.id == "template-path":
            self._read_typed_template(event.row)
        else:
            self.focus_next()

    def _check_soon(self) -> None:
        self.set_timer(CHECK_DELAY, self._check_now, name="wizard-check")

    def _check_now(self) -> None:
        draft, template = self.draft, self.template
        if template is None:
            return
        nodes = chosen_nodes(draft, self.services.cluster)

        def check() -> None:
            judged = check_draft(draft, template, nodes, self._device_memory(nodes))
            self.post_message(self.Checked(draft, judged))

        self.run_worker(check, thread=True, exclusive=True, group="wizard-check", exit_on_error=False,
                        description="checking the wizard's config")

    def _device_memory(self, nodes: tuple[NodeSpec, ...]) -> DeviceMemory:
        """What a rank's memory is judged against on these nodes: read once per choice of nodes (a CPU
        node's host memory is a round trip), in the check's worker."""
        key = tuple(node.name for node in nodes)
        if key not in self._devices:
            pool = self.services.pool
            self._devices[key] = nodes_memory(pool, nodes, nodes[0].devices) if pool and nodes else NPU_910B
        return self._devices[key]

    def on_wizard_screen_checked(self, message: Checked) -> None:
        if message.draft != self.draft:
            return  # an older draft's answer
        self.check = check = message.check
        for row in self.query(FieldRow).filter(".slot"):
            row.show_problems(check.at(row.key))
        self._show_estimate(check)
        self._show_help(self.focused)

    def _show_estimate(self, check: DraftCheck) -> None:
        panel = self.query_one("#estimate", Static)
        elsewhere = [p for p in check.errors if p.path not in {r.key for r in self.query(FieldRow)}]
        lines = [problem_text(p) for p in elsewhere]
        if check.estimate is not None:
            lines += estimate_lines(check.estimate)
            verdict = "fits" if check.estimate.fits else "DOES NOT FIT"
            lines.insert(0, f"{verdict} on {check.devices} device(s) of the chosen nodes")
        elif check.errors:
            lines.append(f"{len(check.errors)} problem(s): fix them to see the memory estimate")
        panel.update("\n".join(lines))
        panel.set_class(not check.launchable, "-unfit")

    def action_fix(self) -> None:
        row = self._focused_row()
        fix = next((p.fix for p in row.problems if p.fix), None) if row is not None else None
        if row is None or fix is None:
            self.notify("no fix is known for this field", severity="warning")
            return
        target = next((r for r in self.query(FieldRow).filter(".slot") if r.key == fix.path), row)
        target.set_value(fix.value)
        target.query_one(Input).focus()

    def _focused_row(self) -> FieldRow | None:
        focused = self.focused
        while focused is not None and not isinstance(focused, FieldRow):
            focused = focused.parent if isinstance(focused.parent, Widget) else None
        return focused

    # --- page 4 and 5: what the data and nodes pages chose -------------------------------------------

    def on_data_page_edited(self, message: DataPage.Edited) -> None:
        self.draft = self.draft.with_texts({message.name: message.value})
        self._check_soon()

    def on_nodes_page_chosen(self, message: NodesPage.Chosen) -> None:
        chosen = dataclasses.replace(self.draft, nodes=message.nodes, master=message.master,
                                     master_port=message.port)
        if chosen != self.draft:
            self.draft = chosen
            self._check_soon()

    def _start_over(self) -> None:
        self.draft, self.template, self.check = WizardDraft(), None, None
        self.query_one("#field-rows", VerticalScroll).remove_children()
        self.query_one(DataPage).restore(self.draft)
        self.query_one(NodesPage).restore(self.draft)
        self.query_one(ReviewPage).reset()
        self._show_page(0)

    # --- the help line ---------------------------------------------------------------------------------

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self._show_help(event.widget)

    def _show_help(self, widget: Widget | None) -> None:
        self.query_one("#wizard-help", Static).update(self._help_for(widget))

    def _help_for(self, widget: Widget | None) -> str:
        row = self._focused_row() if widget is self.focused else None
        if row is not None:
            first = row.problems[0] if row.problems else None
            return f"{row.label.strip()}: {row.help_text}" + (f"\n{problem_text(first)}" if first else "")
        if isinstance(widget, OptionList) and widget.id == "kind-list" and widget.highlighted is not None:
            chosen = KINDS[widget.highlighted]
            return f"{chosen.title}: {chosen.help}\nEnter or ctrl+n chooses it"
        if isinstance(widget, OptionList) and widget.id == "template-list":
            return "Enter or ctrl+n uses the highlighted job file; Tab goes to the path field"
        if isinstance(widget, SelectionList):
            return ("space chooses a node, m makes it the master (node_rank 0); unhealthy nodes cannot be "
                    "chosen (their reasons are shown)")
        if widget is not None and widget.id == "review-text":
            return "the derived config against its template, then each node's launch.sh, byte for byte\n" \
                   "↑↓ scroll · ctrl+s save · ctrl+l launch"
        return "ctrl+n next · esc back · ? every key"


def _template_line(template: Template) -> str:
    return f"{template.path.name:<30} {template.dialect.value:<9} {params_text(template):>7} params"


def _field_widgets(template: Template, draft: WizardDraft) -> list[Widget]:
    widgets: list[Widget] = []
    group = ""
    for slot in template.slots():
        if slot.field.group != group:
            group = slot.field.group
            widgets.append(Static(group, classes="group", markup=False))
        row = FieldRow(slot.path, slot.field.label, f"{slot.field.help} ({slot.path})",
                       value=draft.values.get(slot.path, slot.value),
                       placeholder=slot.value or "default",
                       template_value=slot.value)
        row.add_class("slot")
        widgets.append(row)
    return widgets


def _problem(message: str) -> FieldProblem:
    return FieldProblem("", "error", message)

