"""A wizard field: its label, an input, its help line and, under it, the problem the draft has there."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static

from console.jobs.wizardcheck import FieldProblem


class FieldRow(Vertical):
    """One field of the draft, keyed by its document path (or a name of the screen's own)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down", "app.focus_next", "Next field", show=False, id="field.down"),
        Binding("up", "app.focus_previous", "Previous field", show=False, id="field.up"),
    ]

    DEFAULT_CSS = """
    FieldRow { height: auto; }
    FieldRow > Horizontal { height: 1; }
    FieldRow Label.name { width: 22; color: $text-muted; }
    FieldRow Input { width: 24; }
    FieldRow Static.template { width: 1fr; padding-left: 1; color: $text-muted; }
    FieldRow Static.problem { display: none; padding-left: 22; height: auto; }
    FieldRow.-error Static.problem, FieldRow.-warning Static.problem { display: block; }
    FieldRow.-error Static.problem { color: $text-error; }
    FieldRow.-warning Static.problem { color: $text-warning; }
    FieldRow.-error Label.name { color: $text-error; }
    FieldRow:focus-within Label.name { color: $text; text-style: bold; }
    """

    class Edited(Message):
        """The user changed the field's text."""

        def __init__(self, row: FieldRow, value: str) -> None:
            super().__init__()
            self.row, self.value = row, value

    class Submitted(Message):
        """Enter in the field."""

        def __init__(self, row: FieldRow, value: str) -> None:
            super().__init__()
            self.row, self.value = row, value

    def __init__(self, key: str, label: str, help_text: str, *, value: str = "", placeholder: str = "",
                 template_value: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.key = key
        self.label = label
        self.help_text = help_text
        self.problems: tuple[FieldProblem, ...] = ()
        self._value, self._placeholder, self._template_value = value, placeholder, template_value

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, classes="name", markup=False)
            yield Input(self._value, placeholder=self._placeholder, compact=True, select_on_focus=False)
            yield Static(self._was(self._value), classes="template", markup=False)
        yield Static("", classes="problem", markup=False)

    @property
    def value(self) -> str:
        return self.query_one(Input).value

    def set_value(self, value: str) -> None:
        self.query_one(Input).value = value

    def show_problems(self, problems: tuple[FieldProblem, ...]) -> None:
        """Mark the field with its problems (errors first), each with its fix where one is known."""
        self.problems = problems
        worst = "error" if any(p.severity == "error" for p in problems) else "warning" if problems else None
        self.set_class(worst == "error", "-error")
        self.set_class(worst == "warning", "-warning")
        self.query_one(".problem", Static).update("\n".join(problem_text(p) for p in problems))

    def _was(self, value: str) -> str:
        """The template's value, shown once the field says something else."""
        changed = self._template_value and value.strip() != self._template_value
        return f"template: {self._template_value}" if changed else ""

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one(".template", Static).update(self._was(event.value))
        self.post_message(self.Edited(self, event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted(self, event.value))


def problem_text(problem: FieldProblem) -> str:
    fix = f" (ctrl+f: {problem.fix})" if problem.fix else ""
    return f"{'✗' if problem.severity == 'error' else '!'} {problem.message}{fix}"
