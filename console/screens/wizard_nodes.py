"""The launch wizard's nodes page: the healthy nodes to run on, the one among them that is the master
(node_rank 0: its `cluster_ip` is msrun's master address) and its port, checked free on it.

The page follows the app's health snapshot (unhealthy nodes are shown with why, and cannot be chosen);
until the user chooses, every healthy node is. What the user chooses reaches the wizard's draft as
`Chosen`; asking the master about its port runs on a thread worker.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from console.feeds.health import HealthSnapshot
from console.jobs.plan import DEFAULT_PORT
from console.jobs.wizard import WizardDraft, master_of
from console.jobs.wizardcheck import FieldProblem
from console.services import ConsoleServices
from console.widgets.wizard_fields import FieldRow
from remote.health import NodeHealth, Status
from remote.launch import free_port

PORT_PROBLEM = "a port number from 1024 to 65535, or empty"

class NodesPage(Vertical):
    """Nodes, master and port for the wizard's draft."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "master", "Master", tooltip="The highlighted node becomes the master (node_rank 0)",
                id="wizard.master"),
    ]

    class Chosen(Message):
        """The nodes, the master or the port changed."""

        def __init__(self, nodes: tuple[str, ...], master: str, port: int | None) -> None:
            super().__init__()
            self.nodes, self.master, self.port = nodes, master, port

    class PortChecked(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, services: ConsoleServices, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.services = services
        self.nodes: tuple[str, ...] = ()
        """Chosen node names, in cluster order."""
        self.master = ""
        self.port: int | None = None
        self._health: tuple[tuple[str, str], ...] | None = None
        """(node, 'ok' or why it cannot be chosen) as last shown; None before the first health snapshot."""

    def compose(self) -> ComposeResult:
        yield Static("Healthy nodes can be chosen (space); m makes the highlighted one the master.",
                     classes="note", markup=False)
        yield SelectionList[str](id="node-list")
        yield Static("", id="master", classes="note", markup=False)
        yield FieldRow("nodes.port", "master port", "msrun's master port on the master node; empty: the job "
                       "file's or 8118, the next free one if taken. Enter checks it",
                       placeholder="8118 or next free", id="master-port")
        yield Static("", id="port-check", classes="note", markup=False)

    def on_mount(self) -> None:
        self.watch(self.app, "health", self._health_changed, init=True)

    # --- the wizard's calls ------------------------------------------------------------------------------

    def enter(self) -> None:
        """The page is shown: the list focused, on the master."""
        listed = self.query_one(SelectionList)
        names = [name for name, _ in self._health or ()]
        if listed.highlighted is None and names:
            master = self.master_node
            listed.highlighted = names.index(master) if master in names else 0
        listed.focus()
        self._show_master()

    def restore(self, draft: WizardDraft) -> None:
        """Show a draft's choice (one read back, or a fresh one to start over)."""
        self.nodes, self.master, self.port = draft.nodes, draft.master, draft.master_port
        self.query_one("#master-port", FieldRow).set_value(str(draft.master_port or ""))
        self.query_one("#port-check", Static).update("")
        self._health = None
        self._health_changed(getattr(self.app, "health", None))

    @property
    def master_node(self) -> str | None:
        return master_of(self.nodes, self.master)

    def _chosen(self) -> None:
        self.post_message(self.Chosen(self.nodes, self.master, self.port))
        self._show_master()

    # --- nodes and master --------------------------------------------------------------------------------

    def _health_changed(self, snapshot: HealthSnapshot | None) -> None:
        reports = {r.node: r for r in snapshot.reports} if snapshot is not None else {}
        health = tuple((n.name, _health_text(reports.get(n.name))) for n in self.services.cluster.nodes)
        if health == self._health:
            return
        self._health = health
        listed = self.query_one(SelectionList)
        if not self.nodes and snapshot is not None:
            self.nodes = tuple(name for name, text in health if text == "ok")
        listed.clear_options()
        listed.add_options([Selection(Content(_node_line(name, text)), name, name in self.nodes,
                                      disabled=text != "ok") for name, text in health])
        self._chosen()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        event.stop()
        chosen = set(event.selection_list.selected)
        names = tuple(n.name for n in self.services.cluster.nodes if n.name in chosen)
        if names != self.nodes:
            self.nodes = names
            self._chosen()

    def action_master(self) -> None:
        listed = self.query_one(SelectionList)
        if listed.highlighted is None:
            return
        option = listed.get_option_at_index(listed.highlighted)
        if option.disabled:
            self.notify(f"{option.value} cannot be the master: it is not healthy", severity="warning")
            return
        self.master = option.value
        chosen = {*self.nodes, option.value}  # a master is one of the chosen nodes
        self.nodes = tuple(n.name for n in self.services.cluster.nodes if n.name in chosen)
        listed.select(option.value)
        self.query_one("#port-check", Static).update("")  # it spoke of the former master
        self._chosen()

    def _show_master(self) -> None:
        master = self.master_node
        waiting = "no node chosen yet" if self._health is not None else "waiting for the nodes' health…"
        text = f"master: {master} (node_rank 0) · {len(self.nodes)} node(s) chosen" if master else waiting
        self.query_one("#master", Static).update(text)
        listed = self.query_one(SelectionList)
        for index, (name, health) in enumerate(self._health or ()):
            prompt = _node_line(name, health, master=name == master)
            listed.replace_option_prompt_at_index(index, Content(prompt))

    # --- the port ----------------------------------------------------------------------------------------

    def on_field_row_edited(self, event: FieldRow.Edited) -> None:
        event.stop()
        text = event.value.strip()
        if text and not (text.isdigit() and 1024 <= int(text) <= 65535):
            event.row.show_problems((FieldProblem("", "error", PORT_PROBLEM),))
            return
        event.row.show_problems(())
        self.port = int(text) if text else None
        self._chosen()

    def on_field_row_submitted(self, event: FieldRow.Submitted) -> None:
        event.stop()
        by_name = {node.name: node for node in self.services.cluster.nodes}
        pool, master = self.services.pool, by_name.get(self.master_node or "")
        wanted = self.port or DEFAULT_PORT
        if pool is None or master is None:
            self.query_one("#port-check", Static).update("no node chosen: no master to ask")
            return

        def ask() -> None:
            check = free_port(pool.transport(master), master.python, wanted, span=1, timeout=15.0)
            text = (f"port {wanted} free on {master.name}" if check.port == wanted else
                    f"✗ port {wanted}: {check.failure or f'in use on {master.name}'}")
            self.post_message(self.PortChecked(text))

        self.query_one("#port-check", Static).update(f"asking {master.name}…")
        self.run_worker(ask, thread=True, exclusive=True, group="wizard-port", exit_on_error=False,
                        description=f"checking port {wanted} on {master.name}")

    def on_nodes_page_port_checked(self, message: PortChecked) -> None:
        self.query_one("#port-check", Static).update(message.text)


def _health_text(report: NodeHealth | None) -> str:
    """'ok' for a node that can be chosen, else why not."""
    if report is None:
        return "not checked yet"
    if report.stale or report.status is Status.UNREACHABLE:
        return "unreachable: " + ("; ".join(report.reasons) or "no answer")
    if report.status in (Status.OK, Status.WARN):
        return "ok"
    return f"{report.status.value}: " + ("; ".join(report.reasons) or "unhealthy")


def _node_line(name: str, text: str, *, master: bool = False) -> str:
    return f"{name}  (master, node_rank 0)" if master else name if text == "ok" else f"{name}  ({text})"
