"""Which ranks to follow: `3`, `0,7` or `4-7`, checked against the job's world size."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


def parse_ranks(text: str, world: int) -> list[int]:
    """`0,3-5` -> [0, 3, 4, 5]; ValueError naming what is wrong."""
    ranks: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"{part!r} is not a rank or a range like 4-7")
        first, last = int(low), int(high) if high else int(low)
        if first > last or last >= world:
            raise ValueError(f"{part!r}: ranks are 0 to {world - 1}")
        ranks += range(first, last + 1)
    if not ranks:
        raise ValueError("no rank given")
    return sorted(set(ranks))


class RankPrompt(ModalScreen[list[int] | None]):
    HELP_TITLE = "rank prompt"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Cancel", id="rank-prompt.cancel")]
    DEFAULT_CSS = """
    RankPrompt { align: center middle; }
    RankPrompt > Vertical { width: 60; max-width: 100%; height: auto; padding: 1 2;
                            border: round $primary; background: $surface; }
    RankPrompt .problem { color: $text-error; height: auto; }
    """

    def __init__(self, world: int) -> None:
        super().__init__()
        self._world = world

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Follow which ranks? (0 to {self._world - 1}: `3`, `0,7`, `4-7`)", markup=False)
            yield Input(placeholder="ranks", id="ranks")
            yield Static("", classes="problem", markup=False)

    def on_input_submitted(self, message: Input.Submitted) -> None:
        try:
            self.dismiss(parse_ranks(message.value, self._world))
        except ValueError as exc:
            self.query_one(".problem", Static).update(str(exc))
