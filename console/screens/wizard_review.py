"""The launch wizard's last page: the plan (the derived config as a diff, each node's launch.sh), save,
and launch with per-node progress. Planning and launching run on thread workers that post frozen
results back as messages; a launched job is announced to the wizard screen with `JobLaunched`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea

from console.jobs.launcher import LaunchProgress, LaunchResult, run_launch
from console.jobs.request import REQUEST_ERRORS, PlannedJob, plan_job
from console.jobs.wizard import Template, WizardDraft, request_for
from console.jobs.wizardcheck import DraftCheck, FieldProblem
from console.jobs.wizardfiles import diff_text, save_derived
from console.services import ConsoleServices
from console.widgets.wizard_fields import FieldRow
from model.yamlsource import SourceError

Reviewed = Callable[[], tuple[WizardDraft, "Template | None", "DraftCheck | None"]]
"""What the wizard holds now: its draft, template and the draft's latest check."""


class ReviewPage(Vertical):
    """Review, save and launch what the wizard screen's `reviewed` returns."""

    class Planned(Message):
        def __init__(self, draft: WizardDraft, planned: PlannedJob | None, error: str) -> None:
            super().__init__()
            self.draft, self.planned, self.error = draft, planned, error

    class Stepped(Message):
        def __init__(self, progress: LaunchProgress) -> None:
            super().__init__()
            self.progress = progress

    class Launched(Message):
        def __init__(self, result: LaunchResult) -> None:
            super().__init__()
            self.result = result

    class JobLaunched(Message):
        """The job is running: the wizard starts over and shows its job screen."""

        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, services: ConsoleServices, reviewed: Reviewed, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.services = services
        self.reviewed = reviewed
        self.planned: PlannedJob | None = None
        self.launching = False
        self._progress: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static("", id="review-status", markup=False)
        yield TextArea("", id="review-text", read_only=True, soft_wrap=False, compact=True)
        yield FieldRow("review.save", "save the config to", "ctrl+s writes the derived config there",
                       id="save-path")
        yield Static("", id="launch-progress", markup=False)

    def enter(self) -> None:
        """The page is shown: plan the draft afresh."""
        self.planned = None
        _, template, _ = self.reviewed()
        save = self.query_one("#save-path", FieldRow)
        if not save.value and template is not None:
            save.set_value(f"{template.path.stem}-wizard.yaml")
        self.query_one("#review-text").focus()
        self._status("planning…", refused=False)
        self.query_one("#review-text", TextArea).load_text("")
        self._plan()

    def reset(self) -> None:
        self.planned = None
        self.query_one("#launch-progress", Static).update("")

    def _plan(self) -> None:
        (draft, template, _), pool = self.reviewed(), self.services.pool
        if template is None:
            return
        if pool is None:
            self.post_message(self.Planned(draft, None, "no connection to the nodes in this console"))
            return

        def plan() -> None:
            try:
                self.post_message(self.Planned(draft, plan_job(request_for(draft, template), pool), ""))
            except REQUEST_ERRORS as exc:
                self.post_message(self.Planned(draft, None, str(exc)))

        self.run_worker(plan, thread=True, exclusive=True, group="wizard-plan", exit_on_error=False,
                        description="planning the job on the chosen nodes")

    def on_review_page_planned(self, message: Planned) -> None:
        draft, template, _ = self.reviewed()
        if message.draft != draft or template is None:
            return
        self.planned = planned = message.planned
        body = self.query_one("#review-text", TextArea)
        if planned is None:
            self._status(f"cannot plan: {message.error}", refused=True)
            body.load_text("")
            return
        plan = planned.plan
        sections = [diff_text(template, plan.config_text) or "(the template as it is: no change)"]
        sections += [f"── launch.sh on {n.node} (node_rank {n.node_rank}, {n.job_dir}) ──\n{n.script}"
                     for n in plan.nodes]
        body.load_text("\n".join(sections))
        self._status(self._plan_summary(planned), refused=False)

    def _plan_summary(self, planned: PlannedJob) -> str:
        plan = planned.plan
        line = (f"{plan.job_id} · {plan.workers} rank(s) on {len(plan.nodes)} msrun(s) · master "
                f"{plan.nodes[0].node} at {plan.master_addr}:{plan.master_port} ({planned.port_note})")
        refusal = self._refusal()
        return f"{line}\n{refusal}" if refusal else f"{line}\nctrl+l launches · ctrl+s saves the config"

    def _refusal(self) -> str:
        """Why Launch is refused now, or ''."""
        _, _, check = self.reviewed()
        if check is None:
            return "still checking the config…"
        if check.errors:
            first = check.errors[0]
            return (f"Launch refused: {len(check.errors)} problem(s); first {first.path}: {first.message} "
                    f"(page 3)")
        if check.estimate is not None and not check.estimate.fits:
            return "Launch refused: the memory estimate does not fit (page 3)"
        return ""

    def _status(self, text: str, *, refused: bool) -> None:
        status = self.query_one("#review-status", Static)
        status.update(text)
        status.set_class(refused, "-refused")

    def on_field_row_submitted(self, event: FieldRow.Submitted) -> None:
        if event.row.id == "save-path":
            event.stop()
            self.save()

    def save(self) -> None:
        (draft, template, _), row = self.reviewed(), self.query_one("#save-path", FieldRow)
        if template is None or not row.value.strip():
            self.notify("give a path to save the config to", severity="warning")
            return
        target = Path(row.value.strip()).expanduser()
        try:
            saved = save_derived(draft, template, target)
        except (OSError, SourceError) as exc:
            row.show_problems((FieldProblem("", "error", str(exc)),))
            return
        row.show_problems(())
        self.notify(f"saved {saved}", title="derived config")

    def launch(self) -> None:
        refusal = self._refusal()
        planned, pool, store = self.planned, self.services.pool, self.services.store
        if refusal or planned is None or pool is None or store is None or self.launching:
            why = refusal or ("already launching" if self.launching else
                              "no plan yet" if planned is None else "no node pool or store in this console")
            self._status(f"{self._plan_summary(planned) if planned else ''}\n{why}".strip(), refused=True)
            self.notify(why, title="launch refused", severity="error")
            return
        self.launching = True
        self._progress = {}
        self.query_one("#launch-progress", Static).update("launching…")

        def step(progress: LaunchProgress) -> None:
            self.post_message(self.Stepped(progress))

        def launch() -> None:
            self.post_message(self.Launched(run_launch(planned, pool, store, progress=step)))

        self.run_worker(launch, thread=True, exclusive=True, group="wizard-launch", exit_on_error=False,
                        description=f"launching {planned.plan.job_id}")

    def on_review_page_stepped(self, message: Stepped) -> None:
        step = message.progress
        mark = "✓" if step.ok else "✗"
        self._progress[step.node or ""] = f"{mark} {step.node or 'job'}: {step.stage}: {step.message}"
        lines = [self._progress[k] for k in sorted(self._progress, key=lambda k: (k != "", k))]
        self.query_one("#launch-progress", Static).update("\n".join(lines))

    def on_review_page_launched(self, message: Launched) -> None:
        self.launching = False
        result = message.result
        if not result.ok:
            failure = result.failure
            assert failure is not None
            self._status(f"launch failed at {failure.stage}{' on ' + failure.node if failure.node else ''}: "
                         f"{failure.reason}", refused=True)
            return
        self.post_message(self.JobLaunched(result.planned.plan.job_id))
