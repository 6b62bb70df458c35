"""The launch wizard driven with keys only: end to end on a local cluster to a running job screen; on the
data page a text here converted (with progress) into the prefix the nodes find, and for nodes elsewhere
(the namespace cluster, over SSH) copied to them after saying what and where, a directory here copied to
the nodes likewise, a hub that cannot be reached named; the second node made master and node_rank 0 in the
review's launch.sh; a field made invalid shows its problem at the field and Launch is refused, while the
derived config still saves byte for byte; and a snapshot of every page at 80x24 on recorded health (one
healthy node, one in alarm).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar, SelectionList, Static, TextArea

from console.app import AscendConsole
from console.feeds.health import ClusterHealth
from console.jobs.plan import LaunchSettings, job_id_for, make_plan
from console.jobs.request import JobRequest, PlannedJob
from console.jobs.wizard import TEMPLATES, WizardDraft
from console.jobs.wizarddata import size_text
from console.jobs.wizardfiles import load_draft
from console.screens.confirm import ConfirmScreen
from console.screens.job import JobScreen
from console.screens.wizard import WizardScreen
from console.screens.wizard_data import WorkLine
from console.screens.wizard_review import ReviewPage
from console.services import ConsoleServices
from console.store import Store
from console.widgets.wizard_fields import FieldRow
from model.config import parse_spec
from model.overrides import derive
from remote.hub import ENDPOINT_ENV
from remote.inventory import load_cluster
from remote.pool import NodePool
from tests.handjobs import marked
from tests.rank_jobs import free_port
from tests.recorded_health import CLOCK, fleet
from tests.test_logs_local import local_cluster
from tests.test_tui import Rounds, cluster_of
from tests.testcluster import TestCluster

TINY = TEMPLATES / "tiny_local.yaml"


@pytest.fixture(autouse=True)
def own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test has its own state dir (no draft of another run is offered) and corpus."""
    monkeypatch.setenv("ASCEND_CONSOLE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("ASCEND_CONSOLE_CORPUS", str(tmp_path / "corpus"))
    yield tmp_path / "state"


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await pilot.pause(0.1)


def wizard(pilot: Pilot[None]) -> WizardScreen:
    screen = pilot.app.screen
    assert isinstance(screen, WizardScreen), screen
    return screen


def text_of(screen: WizardScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def to_fields(pilot: Pilot[None], kind_downs: int = 0, template_downs: int = 2) -> WizardScreen:
    """Kind (pretrain unless moved), then a template (tiny_local, third), onto the fields page."""
    await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen), "the wizard")
    await pilot.press(*["down"] * kind_downs, "enter")
    await pilot.press(*["down"] * template_downs, "enter")
    screen = wizard(pilot)
    await until(pilot, lambda: screen.page == 2 and isinstance(pilot.app.focused, Input)
                and screen.check is not None, "the fields page, checked, its first field focused")
    return screen


# --- end to end on a local cluster ------------------------------------------------------------------


def on_local_cluster(tmp_path: Path) -> tuple[AscendConsole, Store]:
    """The wizard on the embedded local cluster's two nodes (n0, n1: this machine, one cluster_ip)."""
    cluster = load_cluster(local_cluster(tmp_path))
    pool = NodePool(cluster)
    store = Store(tmp_path / "state" / "console.db")
    services = ConsoleServices(cluster, ClusterHealth(pool, cluster.nodes, timeout=30), pool, store,
                               refresh=3600)
    return AscendConsole(services, mode="wizard"), store


def test_keys_only_from_kind_to_a_running_job_screen_then_stopped(tmp_path: Path):
    app, store = on_local_cluster(tmp_path)
    port = free_port()

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_fields(pilot, kind_downs=4, template_downs=0)  # smoke test: tiny_local first
        assert screen.template is not None and screen.template.path.name == "tiny_local.yaml"
        assert screen.check is not None and screen.check.launchable, screen.check
        # CPU nodes: each rank's share of the host's memory is the limit, read from the first node
        assert screen.check.estimate is not None
        assert screen.check.estimate.limit_source.startswith("host memory ("), screen.check.estimate
        await pilot.press("ctrl+n")  # data and weights: the template's own data
        await until(pilot, lambda: "every input found" in text_of(screen, "#data-check"), "inputs checked")
        await pilot.press("ctrl+n")  # nodes
        nodes = screen.query_one("#node-list", SelectionList)
        await until(pilot, lambda: sorted(nodes.selected) == ["n0", "n1"], "both healthy nodes chosen", 60)
        await pilot.press("tab", *str(port), "enter")
        await until(pilot, lambda: f"port {port} free on n0" in text_of(screen, "#port-check"), "port free")
        await pilot.press("ctrl+n")  # review
        page = screen.query_one(ReviewPage)
        await until(pilot, lambda: page.planned is not None, "planned")
        assert page.planned is not None
        review = screen.query_one("#review-text", TextArea).text
        for node in page.planned.plan.nodes:
            assert node.script in review  # each node's launch.sh, byte for byte
        await pilot.press("ctrl+l")
        await until(pilot, lambda: isinstance(pilot.app.screen, JobScreen), "the job screen", 300)
        job_screen = pilot.app.screen
        assert isinstance(job_screen, JobScreen)
        job_id = job_screen.job_id
        assert store.job(job_id).state == "running"
        assert load_draft() is None  # launched: no draft left to offer back
        await pilot.press("s")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "asked first", 10)
        await pilot.press("y")
        await until(pilot, lambda: not marked(job_id, "n0") and store.job(job_id).finished, "stopped", 120)

    drive(app, script)


def drive(app: AscendConsole, script: Callable[[Pilot[None]], Any]) -> None:
    """Run `script` on the app at 80x24, the smallest size the wizard is made for."""
    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await script(pilot)

    asyncio.run(run())


async def to_data(pilot: Pilot[None]) -> WizardScreen:
    """tiny_local (the smoke test's template) onto the data page, its nodes asked about the inputs."""
    screen = await to_fields(pilot, kind_downs=4, template_downs=0)
    await pilot.press("ctrl+n")
    await until(pilot, lambda: "every input found" in text_of(screen, "#data-check"), "inputs checked")
    return screen


def said(screen: WizardScreen, line: str) -> str:
    return str(screen.query_one(f"#{line} Static", Static).render())


def wikitext(path: Path, documents: int) -> Path:
    """WikiText-style text: a heading, then paragraphs between blank lines."""
    sentence = "The console converts this paragraph into tokens for the tiny model to read."
    body = "".join(f" {sentence} Paragraph {i}.\n\n" for i in range(documents))
    path.write_text(f" = Heading = \n\n{body}")
    return path


def test_a_text_here_is_converted_with_progress_and_its_prefix_checked_on_the_nodes(tmp_path: Path):
    # The embedded corpus's tokenizer (built for tiny_local's vocab) converts for its seq_length 128; the
    # local cluster's nodes are this machine, so the dataset is used where it was written.
    text = wikitext(tmp_path / "wiki.txt", 60)
    app, _ = on_local_cluster(tmp_path)
    prefix = tmp_path / "wiki_128" / "wiki_128_text_document"

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_data(pilot)
        await pilot.press("down", *str(text), "enter")
        work = screen.query_one("#dataset-work", WorkLine)
        # a small text may be converted before a look could catch it running: watched to its end
        await until(pilot, lambda: not work.running and said(screen, "dataset-work").startswith("✓"),
                    "converted", 120)
        assert said(screen, "dataset-work").startswith("✓ 60 documents → ")
        bar = work.query_one(ProgressBar)  # hidden now, where the last progress left it: the whole text read
        assert bar.total == bar.progress == text.stat().st_size
        assert "the nodes are this machine" in said(screen, "dataset-work")
        assert screen.query_one("#data-prefix", FieldRow).value == str(prefix)
        await until(pilot, lambda: text_of(screen, "#data-check") == "every input found on n0, n1", "checked")
        assert screen.draft.data_prefix == str(prefix) and screen.draft.data_text == str(text)
        assert prefix.with_suffix(".bin").stat().st_size > 0 and prefix.with_suffix(".idx").is_file()

    drive(app, script)


def test_next_waits_while_a_conversion_copy_or_download_runs(tmp_path: Path):
    # The job needs the path the task makes: a line shown running holds the page.
    app, _ = on_local_cluster(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_data(pilot)
        work = screen.query_one("#weights-work", WorkLine)
        work.start("copying…")
        await pilot.press("ctrl+n")
        assert screen.page == 3
        work.say("✓ copied")
        await pilot.press("ctrl+n")
        assert screen.page == 4

    drive(app, script)


def test_a_text_converted_for_nodes_elsewhere_is_copied_to_them_after_saying_what_and_where(
        test_cluster: TestCluster, known_hosts: Path, tmp_path: Path):
    # h1 and h2 are other machines (SSH): the dataset is written here, then copied to one path on both.
    text = wikitext(tmp_path / "wiki.txt", 60)
    cluster = load_cluster(test_cluster.cluster_yaml(tmp_path / "c.yaml", ["h1", "h2"],
                                                     known_hosts=known_hosts))
    pool = NodePool(cluster)
    app = AscendConsole(ConsoleServices(cluster, ClusterHealth(pool, cluster.nodes, timeout=30), pool, None,
                                        refresh=3600), mode="wizard")
    on_nodes = f"{test_cluster.node_storage_path}/datasets/wiki_128"
    here = tmp_path / "wiki_128" / "wiki_128_text_document"

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_data(pilot)
        await pilot.press("down", *str(text), "enter")
        await until(pilot, lambda: "Enter again copies it" in said(screen, "dataset-work"), "said first", 120)
        sizes = [here.with_suffix(suffix).stat().st_size for suffix in (".bin", ".idx")]
        assert said(screen, "dataset-work").splitlines()[1:] == [
            f"copy 2 file(s), {size_text(sum(sizes))}: wiki_128_text_document.bin {size_text(sizes[0])}, "
            f"wiki_128_text_document.idx {size_text(sizes[1])}",
            f"to h1, h2:{on_nodes}",
            "Enter again copies it"]
        await pilot.press("enter")
        prefix = screen.query_one("#data-prefix", FieldRow)
        work = screen.query_one("#dataset-work", WorkLine)
        await until(pilot, lambda: not work.running, "the copy ended", 120)
        assert prefix.value == f"{on_nodes}/wiki_128_text_document", said(screen, "dataset-work")
        verified = f"✓ 2 file(s), {size_text(sum(sizes))} verified on h1, h2"
        assert said(screen, "dataset-work").startswith(verified)
        await until(pilot, lambda: text_of(screen, "#data-check") == "every input found on h1, h2", "checked")

    drive(app, script)


def test_a_directory_here_is_copied_to_the_nodes_after_saying_what_and_where(tmp_path: Path):
    weights = tmp_path / "my weights"
    (weights / "shard").mkdir(parents=True)
    (weights / "model.ckpt").write_bytes(b"w" * 3_000_000)
    (weights / "shard" / "extra.bin").write_bytes(b"x" * 20_000)
    app, _ = on_local_cluster(tmp_path)
    copied = tmp_path / "n0" / "weights" / "my weights"

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_data(pilot)
        await pilot.press("down", "down", "down", "down", *str(weights), "enter")
        await until(pilot, lambda: "Enter again copies it" in said(screen, "weights-work"), "said first")
        assert said(screen, "weights-work").splitlines() == [
            "copy 2 file(s), 3.0 MB: model.ckpt 3.0 MB, shard/extra.bin 20.0 kB",
            f"to n0:{copied} (n1 shares n0's machine and its copy)",
            "Enter again copies it"]
        assert not copied.exists()
        await pilot.press("enter")
        weights_row = screen.query_one("#data-weights", FieldRow)
        await until(pilot, lambda: weights_row.value == str(copied), "copied", 120)
        assert said(screen, "weights-work").startswith("✓ 2 file(s), 3.0 MB verified on n0")
        assert (copied / "shard" / "extra.bin").read_bytes() == b"x" * 20_000
        await until(pilot, lambda: text_of(screen, "#data-check") == "every input found on n0, n1", "checked")

    drive(app, script)


def test_a_hub_id_says_where_it_lands_then_a_hub_that_cannot_be_reached_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # openmind_hub is installed for this interpreter (the local nodes' python); nothing listens on port 9
    monkeypatch.setenv(ENDPOINT_ENV, "https://127.0.0.1:9")
    app, _ = on_local_cluster(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_data(pilot)
        await pilot.press(*["down"] * 5, *"owner/tiny-model", "enter")
        assert said(screen, "weights-work").splitlines() == [
            "download owner/tiny-model on n0 with openmind_hub",
            f"to {tmp_path / 'n0' / 'weights' / 'tiny-model'} (n1 shares n0's machine and its copy)",
            "Enter again downloads"]
        await pilot.press("enter")
        work = screen.query_one("#weights-work", WorkLine)
        await until(pilot, lambda: not work.running and work.has_class("-failed"), "failed", 120)
        assert said(screen, "weights-work").startswith("✗ n0 cannot reach the hub at https://127.0.0.1:9")
        assert screen.query_one("#data-weights", FieldRow).value == ""  # nothing to use: nothing filled

    drive(app, script)


def test_the_second_node_chosen_as_master_is_node_rank_0_in_the_review(tmp_path: Path):
    app, _ = on_local_cluster(tmp_path)

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_data(pilot)
        await pilot.press("ctrl+n")
        nodes = screen.query_one("#node-list", SelectionList)
        await until(pilot, lambda: sorted(nodes.selected) == ["n0", "n1"], "both healthy nodes chosen", 60)
        assert text_of(screen, "#master").startswith("master: n0 (node_rank 0)")
        await pilot.press("down", "space")  # n1 not chosen: m chooses it as it makes it the master
        await until(pilot, lambda: screen.draft.nodes == ("n0",), "n1 left out")
        await pilot.press("m")
        chosen = (("n0", "n1"), "n1")
        await until(pilot, lambda: (screen.draft.nodes, screen.draft.master) == chosen, "n1 the master")
        assert sorted(nodes.selected) == ["n0", "n1"]
        assert text_of(screen, "#master").startswith("master: n1 (node_rank 0) · 2 node(s) chosen")
        assert "n1  (master, node_rank 0)" in str(nodes.get_option_at_index(1).prompt)
        await pilot.press("ctrl+n")
        page = screen.query_one(ReviewPage)
        await until(pilot, lambda: page.planned is not None, "planned")
        review = screen.query_one("#review-text", TextArea).text
        assert "── launch.sh on n1 (node_rank 0," in review and "--node_rank=0" in review
        assert "launch.sh on n0" not in review  # one msrun serves both: the master's
        assert " · master n1 at 127.0.0.1:" in text_of(screen, "#review-status")

    drive(app, script)


# --- on recorded health, no nodes touched -----------------------------------------------------------


class NoPool:
    """Stands in for the node pool where the wizard's node work is replaced (see `offline`)."""

    def close(self) -> None:
        pass


def fixed_plan(request: JobRequest, pool: Any, *, timeout: float = 20.0) -> PlannedJob:
    """plan_job without asking a master for its port: a fixed job id and port."""
    del pool, timeout
    text = derive(request.template, request.overrides)
    cluster = cluster_of(fleet(["healthy", "alarm"]))
    nodes = cluster.select(request.nodes)
    plan = make_plan(cluster, nodes, template=str(request.template), overrides=request.overrides,
                     config_text=text, settings=LaunchSettings(style="model"),
                     job_id=job_id_for("tiny_local", datetime(2026, 12, 6, 21, 11, 40)), master_port=8118)
    return PlannedJob(request, plan, parse_spec(text, str(request.template)), tuple(nodes), "free on node000")


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Callable[[], AscendConsole]:
    monkeypatch.setattr("console.screens.wizard_review.plan_job", fixed_plan)
    monkeypatch.setattr("console.screens.wizard_data.missing_inputs", lambda *args, **kwargs: [])

    def make() -> AscendConsole:
        reports = fleet(["healthy", "alarm"])
        services = ConsoleServices(cluster_of(reports), Rounds(reports), NoPool(), None,  # type: ignore[arg-type]
                                   refresh=3600, clock=lambda: CLOCK)
        return AscendConsole(services, mode="wizard")

    return make




def test_an_invalid_field_shows_its_problem_there_and_launch_is_refused_but_it_saves(
        offline: Callable[[], AscendConsole], tmp_path: Path):
    target = tmp_path / "mine.yaml"

    async def script(pilot: Pilot[None]) -> None:
        screen = await to_fields(pilot)
        await until(pilot, lambda: bool(screen.query_one("#node-list", SelectionList).selected), "health")
        dp = next(r for r in screen.query(FieldRow) if r.key == "parallel_config.data_parallel")
        await pilot.press(*["down"] * 8, "ctrl+u", "3")
        await until(pilot, lambda: dp.has_class("-error") and dp.value == "3", "the problem at the field")
        problem = str(dp.query_one(".problem", Static).render())
        assert "must equal the devices" in problem and "set data_parallel to 8" in problem
        await pilot.press("ctrl+n", "ctrl+n", "ctrl+n")
        page = screen.query_one(ReviewPage)
        await until(pilot, lambda: page.planned is not None and screen.page == 5, "reviewed")
        await pilot.press("ctrl+l")
        await pilot.pause(0.2)
        assert isinstance(pilot.app.screen, WizardScreen) and not page.launching
        status = text_of(screen, "#review-status")
        assert "Launch refused: 1 problem(s); first parallel_config.data_parallel" in status
        await pilot.press("tab", "ctrl+u", *str(target), "ctrl+s")
        await until(pilot, target.exists, "saved")
        assert target.read_bytes() == derive(TINY, ["parallel_config.data_parallel=3"]).encode("utf-8")
        await pilot.press("escape", "escape", "escape")  # back to the fields: ctrl+f applies the fix
        await until(pilot, lambda: screen.page == 2, "the fields page")
        dp.query_one("Input").focus()
        await pilot.press("ctrl+f")
        await until(pilot, lambda: dp.value == "8" and not dp.has_class("-error"), "fixed")
        assert screen.check is not None and screen.check.launchable

    drive(offline(), script)


def test_a_draft_left_half_way_is_offered_back(offline: Callable[[], AscendConsole], own_state: Path):
    from console.jobs.wizardfiles import save_draft

    save_draft(WizardDraft(kind="finetune", template=str(TINY), values={"parallel_config.data_parallel": "8"},
                           page=2), own_state)

    async def script(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen), "offered")
        await pilot.press("y")
        screen = wizard(pilot)
        await until(pilot, lambda: screen.page == 2 and screen.check is not None, "back on the fields")
        dp = next(r for r in screen.query(FieldRow) if r.key == "parallel_config.data_parallel")
        assert dp.value == "8" and screen.draft.kind == "finetune"

    drive(offline(), script)


# --- snapshots: every page at 80x24 -----------------------------------------------------------------

PAGE_KEYS: dict[str, list[str]] = {
    "kind": [],
    "template": ["enter"],
    "fields": ["enter", "down", "down", "enter"],
    "data": ["enter", "down", "down", "enter", "ctrl+n"],
    "nodes": ["enter", "down", "down", "enter", "ctrl+n", "ctrl+n"],
    "review": ["enter", "down", "down", "enter", "ctrl+n", "ctrl+n", "ctrl+n"],
}


@pytest.mark.parametrize("page", list(PAGE_KEYS))
def test_snapshot_wizard_page(snap_compare, offline: Callable[[], AscendConsole], page: str):
    # A person sees the page's title (n/6), its fields with their help line, Back/Next and the keys.
    # fields: tiny_local's data_parallel 2 cannot fill node000's 8 devices (node001 is in alarm): the problem
    # under the field with "set data_parallel to 8"; nodes: node001 greyed with its reason; review: the diff
    # and node000's launch.sh.
    async def run_before(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen), "the wizard")
        screen = wizard(pilot)
        await until(pilot, lambda: bool(screen.query_one("#node-list", SelectionList).selected), "health")
        await pilot.press(*PAGE_KEYS[page])
        await until(pilot, lambda: screen.page == list(PAGE_KEYS).index(page), page)
        if page in ("fields", "review"):
            await until(pilot, lambda: screen.check is not None, "checked")
        if page == "review":
            await until(pilot, lambda: screen.query_one(ReviewPage).planned is not None, "planned")
        for box in screen.query(Input):
            box.cursor_blink = False  # a steady cursor: the same picture every time
        await pilot.pause(0.3)

    assert snap_compare(offline(), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_wizard_data_page_says_what_a_copy_sends_before_it_starts(
        snap_compare, offline: Callable[[], AscendConsole], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # A person sees, under "or a path here", the files a copy will send (count, total, the largest by name)
    # and where (node000's workdir: node001 is in alarm, so not chosen), and that Enter again starts it.
    monkeypatch.chdir(tmp_path)  # the path typed is relative: the same picture wherever the test runs
    (tmp_path / "my-weights").mkdir()
    (tmp_path / "my-weights" / "model.ckpt").write_bytes(b"w" * 3_000_000)
    (tmp_path / "my-weights" / "config.json").write_bytes(b"{}\n")

    async def run_before(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen), "the wizard")
        screen = wizard(pilot)
        await until(pilot, lambda: bool(screen.query_one("#node-list", SelectionList).selected), "health")
        await pilot.press(*PAGE_KEYS["data"], "down", "down", "down", "down", *"my-weights", "enter")
        await until(pilot, lambda: "Enter again copies it" in said(screen, "weights-work"), "said first")
        for box in screen.query(Input):
            box.cursor_blink = False
        await pilot.pause(0.3)

    assert snap_compare(offline(), terminal_size=(80, 24), run_before=run_before)


def test_the_wizard_is_w_from_any_screen(offline: Callable[[], AscendConsole]):
    async def script(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen), "the wizard")
        await pilot.press("h")
        await until(pilot, lambda: pilot.app.current_mode == "health", "health")
        await pilot.press("w")
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen), "the wizard again")

    drive(offline(), script)


def test_ascend_console_wizard_opens_the_tui_on_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from console import cli

    seen: dict[str, object] = {}
    monkeypatch.setattr(cli, "run_dashboard", lambda args, cluster, **kw: seen.update(kw) or 0)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "c", "nodes": [{"name": "a", "host": "a"}]}))
    assert cli.main(["-c", str(path), "wizard"]) == 0
    assert seen == {"mode": "wizard"}


def test_a_template_on_a_node_is_read_from_there(tmp_path: Path):
    # n1 is this machine through the local transport: NODE:/path reads the file over it, and a path the
    # node does not have is said with the node, the path and why.
    app, _ = on_local_cluster(tmp_path)
    remote = tmp_path / "on-n1" / "mine.yaml"
    remote.parent.mkdir()
    remote.write_text(TINY.read_text(encoding="utf-8"), encoding="utf-8")

    async def script(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(pilot.app.screen, WizardScreen), "the wizard")
        screen = wizard(pilot)
        await pilot.press("enter")  # pretrain
        box = screen.query_one("#template-path Input", Input)
        box.focus()
        box.value = f"n1:{tmp_path}/nowhere.yaml"
        await pilot.press("enter")
        row = screen.query_one("#template-path", FieldRow)
        await until(pilot, lambda: "cannot read" in str(row.query_one(".problem", Static).render()),
                    "the missing file said")
        assert f"n1:{tmp_path}/nowhere.yaml" in str(row.query_one(".problem", Static).render())
        box.value = f"n1:{remote}"
        await pilot.press("enter")
        await until(pilot, lambda: screen.page == 2 and screen.template is not None, "read from n1")
        assert screen.template is not None
        assert screen.template.path == tmp_path / "state" / "wizard-templates" / "n1" / "mine.yaml"
        assert screen.template.text == remote.read_text(encoding="utf-8")

    drive(app, script)
