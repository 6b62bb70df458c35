"""`?`: the key bindings in force where the user was, read from what the widgets declare."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable


@dataclass(frozen=True)
class KeyHelp:
    key: str
    description: str
    action: str
    node: DOMNode
    """Where the binding is declared: the action runs there (the command palette uses it)."""


def describe(binding: Binding) -> str:
    if binding.description:
        return binding.description
    action = binding.action.split(".")[-1].split("(")[0]
    return action.replace("_", " ").capitalize()


def bindings_of(screen: Screen[Any], app: App[Any]) -> tuple[KeyHelp, ...]:
    """The screen's active bindings (focused widget first, then screen, then app), shown or not."""
    active = [a for a in screen.active_bindings.values() if a.enabled and not a.binding.system]
    active.sort(key=lambda a: not a.binding.show)  # the footer's keys first, in their order
    return tuple(KeyHelp(app.get_key_display(a.binding), describe(a.binding), a.binding.action, a.node)
                 for a in active)


def screen_title(screen: Screen[Any]) -> str:
    """What the screen calls itself in help and the command palette (its HELP_TITLE)."""
    return str(getattr(screen, "HELP_TITLE", "") or "console")


class HelpScreen(ModalScreen[None]):
    """A list of keys; Escape, `q` or `?` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help", id="help.close"),
    ]

    HELP_TITLE = "help"

    def __init__(self, keys: tuple[KeyHelp, ...], where: str) -> None:
        super().__init__()
        self._keys = keys
        self._where = where

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = f"Keys on the {self._where}"
            box.border_subtitle = "esc / ? / q: close"
            yield DataTable(id="help-keys", cursor_type="row", show_cursor=False)

    def on_mount(self) -> None:
        table: DataTable[str] = self.query_one("#help-keys", DataTable)
        table.add_columns("key", "does")
        for row in self._keys:
            table.add_row(row.key, row.description)
        table.focus()
