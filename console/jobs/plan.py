"""The job plan: what every node will run, decided before anything runs, shown by `plan`, run by
`launch` byte for byte.

From a cluster, the nodes chosen, a job template and its `--set` overrides: node ranks in cluster-file
order, the master (node_rank 0's `cluster_ip`), the workers per node and in all, the rendered config,
and for each node its job directory and the exact `launch.sh` it will execute. Pure: the master port
is chosen by the caller (it asks the master node which ports are free).

Three launch styles:
- `model`: this project's `model/train.py` (or `predict.py`) under msrun, with `model/` shipped into the
  job directory (`code/`) so the node needs MindSpore but not this project;
- `mindformers`: MindFormers' `scripts/msrun_launcher.sh "run_mindformer.py --register_path
  research/deepseek3 --config ..."` from a MindFormers checkout on the node (the real DeepSeek-V3);
- `msrun`: msrun around a script of the job file's choosing.
Three kinds: `train`, `predict` (the prompts go to `model/predict.py` as arguments, or to MindFormers
as `--predict_data` with a prompts file in the job directory, one a line, and `--predict_batch_size`), and
`serve`: a long-running server, its commands per engine in console/jobs/serveplan.py, its endpoint
recorded in the plan.
The job file's optional `console:` section chooses (see `LaunchSettings`); flags override it.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from console.jobs.serveplan import engine_for, serve_commands, serve_endpoint
from console.jobs.servespec import ServeEndpoint, ServeSettings, serve_settings
from remote.inventory import Cluster, NodeSpec
from remote.nodeenv import environment_lines

Style = Literal["model", "mindformers", "msrun"]
STYLES: tuple[Style, ...] = ("model", "mindformers", "msrun")
Kind = Literal["train", "predict", "serve"]
KINDS: tuple[Kind, ...] = ("train", "predict", "serve")

JOB_MARKER = "ASCEND_CONSOLE_JOB"
"""Exported to every process of a job (value: `process_marker`): how `stop` finds its ranks, whatever
sessions msrun gave them."""
CONFIG_NAME = "config.yaml"
SCRIPT_NAME = "launch.sh"
CONTAINER_SCRIPT_NAME = "launch-in-container.sh"
CODE_DIR = "code"
LOG_DIR = "logs"
PROMPTS_NAME = "prompts.txt"
"""A MindFormers predict job's prompts, one a line, in its job directory."""
DEFAULT_PORT = 8118
DEFAULT_NEW_TOKENS = 64
TUTORIAL_ENV: Mapping[str, str] = {"HCCL_OP_EXPANSION_MODE": "AIV", "MS_ENABLE_LCCL": "off"}
"""What the DeepSeek-V3 tutorial exports before MindFormers' launcher."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class LaunchSettings:
    """The job file's `console:` section (all optional)."""

    style: Style | None = None
    """Default: `model` when every node computes on the CPU, else `mindformers`."""
    kind: Kind = "train"
    """What the job does (`console.kind`, or its older name `entry`); `model` style: model/train.py or
    model/predict.py; `serve`: a server (`serve`), not msrun."""
    prompts: tuple[str, ...] = ()
    """A predict job's prompts, in order."""
    max_new_tokens: int = DEFAULT_NEW_TOKENS
    """A predict job's tokens generated a prompt (`model` style)."""
    script: str | None = None
    """`msrun` style: the script msrun starts on every node."""
    script_args: tuple[str, ...] = ()
    """Its arguments; `{config}` becomes the job's config file."""
    mindformers_home: str = "/home/work/mindformers"
    register_path: str = "research/deepseek3"
    env: Mapping[str, str] = field(default_factory=dict)
    master_port: int = DEFAULT_PORT
    cluster_time_out: int = 600
    """msrun's `--cluster_time_out`: how long ranks wait for the others to join."""
    serve: ServeSettings = field(default_factory=ServeSettings)
    """A serve job's engine, port, model and the rest (`console.serve:`)."""


class PlanError(ValueError):
    """The job cannot be planned on these nodes; the message says why and what would do."""


@dataclass(frozen=True)
class NodeLaunch:
    node: str
    node_rank: int
    machines: tuple[str, ...]
    """The cluster nodes this msrun serves: the node itself, plus any listed after it at the same
    `cluster_ip` (the embedded local cluster's two nodes are one machine, and msrun starts its
    scheduler on every node that owns the master address: one msrun per address)."""
    job_dir: str
    local_workers: int
    argv: tuple[str, ...]
    """The command launch.sh ends in (msrun, or MindFormers' launcher)."""
    env: tuple[tuple[str, str], ...]
    script: str
    """launch.sh, exactly as it will be written."""
    container_script: str | None = None
    """For a node with a `container`: what runs inside it (launch.sh then only enters it with
    `docker exec`; the job directory must be mounted at the same path in the container)."""


@dataclass(frozen=True)
class JobPlan:
    job_id: str
    name: str
    style: Style
    cluster: str
    template: str
    overrides: tuple[str, ...]
    master_addr: str
    master_port: int
    workers: int
    config_text: str
    nodes: tuple[NodeLaunch, ...]
    kind: Kind = "train"
    prompts: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()
    """More files for every node's job directory (name, text): a MindFormers predict's prompts."""
    serve: ServeEndpoint | None = None
    """A serve job's server: where it listens (`master_port` is its port), what says it is ready."""

    @property
    def ships_code(self) -> bool:
        return self.style == "model"

    def as_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "name": self.name, "kind": self.kind, "style": self.style,
            "cluster": self.cluster, "prompts": list(self.prompts),
            "template": self.template, "overrides": list(self.overrides), "master_addr": self.master_addr,
            "master_port": self.master_port, "workers": self.workers, "ships_code": self.ships_code,
            "nodes": [{"node": n.node, "node_rank": n.node_rank, "machines": list(n.machines),
                       "job_dir": n.job_dir,
                       "local_workers": n.local_workers, "command": list(n.argv), "env": dict(n.env),
                       "script": n.script, "container_script": n.container_script} for n in self.nodes],
            "config": self.config_text, "serve": None if self.serve is None else self.serve.as_json(),
        }


def shared_msrun_note(node: NodeLaunch) -> str | None:
    """Why one msrun serves several cluster nodes (the embedded local cluster's two), said where a user
    would wonder; None when it serves its own node only."""
    if len(node.machines) < 2:
        return None
    return (f"one msrun for {', '.join(node.machines)}: they share one machine address, and msrun starts "
            f"a scheduler on every machine that owns the master address")


def msrun_count_text(plan: JobPlan) -> str:
    """`2 node(s)`, or `2 node(s) in 1 msrun(s)` when nodes share one."""
    nodes = sum(len(n.machines) for n in plan.nodes)
    return f"{nodes} node(s)" + ("" if nodes == len(plan.nodes) else f" in {len(plan.nodes)} msrun(s)")


def job_id_for(name: str, now: datetime) -> str:
    """`20261128-154210-tiny_local`: sortable, and safe as a directory name on any node."""
    safe = _UNSAFE.sub("-", name).strip("-.") or "job"
    return f"{now:%Y%m%d-%H%M%S}-{safe[:40]}"


def process_marker(job_id: str, node: str) -> str:
    """The marker's value on one node: per node, so that stopping one node never touches another's
    processes where nodes share a process table (containers, the test cluster's namespaces)."""
    return f"{job_id}@{node}"


def job_dir(node: NodeSpec, job_id: str) -> str:
    return posixpath.join(node.workdir, "jobs", job_id)


def default_style(nodes: Sequence[NodeSpec]) -> Style:
    return "model" if all(node.backend == "cpu" for node in nodes) else "mindformers"


def make_plan(cluster: Cluster, nodes: Sequence[NodeSpec], *, template: str, overrides: Sequence[str],
              config_text: str, settings: LaunchSettings, job_id: str, master_port: int) -> JobPlan:
    if not nodes:
        raise PlanError("no nodes to run on")
    if settings.kind == "serve":  # no msrun: one server per node
        check_env(settings.env)
        return _serve_plan(cluster, nodes, template=template, overrides=overrides, config_text=config_text,
                           settings=settings, job_id=job_id, port=master_port)
    style = settings.style or default_style(nodes)
    if style == "msrun" and not settings.script:
        raise PlanError("the msrun style needs console.script (the script msrun starts on every node)")
    if settings.kind == "predict":
        if style == "msrun":  # its script is the job file's: nothing would hand it the prompts
            raise PlanError("a predict job runs model/predict.py (style model) or MindFormers' predict "
                            "(style mindformers); the msrun style starts console.script: it takes no prompts")
        check_prompts(settings.prompts, style)
    groups = machines(nodes)
    if len({sum(n.devices for n in group) for group in groups}) > 1:
        counts = ", ".join(f"{group[0].name}: {sum(n.devices for n in group)}" for group in groups)
        raise PlanError(f"msrun numbers ranks node_rank x local_worker_num + i, so every msrun needs the "
                        f"same number of ranks; here {counts}: choose nodes with equal devices")
    check_env(settings.env)
    workers = sum(node.devices for node in nodes)
    master = nodes[0].cluster_ip
    launches = tuple(
        _node_launch(group, rank, style=style, settings=settings, job_id=job_id, workers=workers,
                     master_addr=master, master_port=master_port)
        for rank, group in enumerate(groups))
    files = ((PROMPTS_NAME, "".join(f"{p}\n" for p in settings.prompts)),) \
        if settings.kind == "predict" and style == "mindformers" else ()
    return JobPlan(job_id=job_id, name=job_id.split("-", 2)[-1], style=style, cluster=cluster.name,
                   template=template, overrides=tuple(overrides), master_addr=master,
                   master_port=master_port, workers=workers, config_text=config_text, nodes=launches,
                   kind=settings.kind, prompts=settings.prompts, files=files)


def _serve_plan(cluster: Cluster, nodes: Sequence[NodeSpec], *, template: str, overrides: Sequence[str],
                config_text: str, settings: LaunchSettings, job_id: str, port: int) -> JobPlan:
    """A server on the nodes (one launch each, node 0 answering HTTP); its endpoint in the plan."""
    engine = engine_for(settings.serve, settings.style or default_style(nodes))
    try:
        commands = serve_commands(nodes, settings.serve, engine=engine, port=port, config=CONFIG_NAME,
                                  name=job_id.split("-", 2)[-1], mindformers_home=settings.mindformers_home)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    launches = []
    for rank, (node, command) in enumerate(zip(nodes, commands, strict=True)):
        env = {**command.env, **settings.env}
        script, contained = in_container(node, job_id=job_id, rank=rank, script=launch_script(
            node, job_id=job_id, rank=rank, argv=command.argv, env=env, setup=command.setup,
            code=engine == "model"))
        launches.append(NodeLaunch(node=node.name, node_rank=rank, machines=(node.name,),
                                   job_dir=job_dir(node, job_id), local_workers=node.devices,
                                   argv=command.argv, env=tuple(env.items()), script=script,
                                   container_script=contained))
    endpoint = serve_endpoint(engine, nodes[0], launches[0].job_dir, settings.serve, port)
    return JobPlan(job_id=job_id, name=job_id.split("-", 2)[-1], style="model" if engine == "model" else
                   "mindformers", cluster=cluster.name, template=template, overrides=tuple(overrides),
                   master_addr=nodes[0].cluster_ip, master_port=port, workers=sum(n.devices for n in nodes),
                   config_text=config_text, nodes=tuple(launches), kind="serve", serve=endpoint)


def machines(nodes: Sequence[NodeSpec]) -> list[list[NodeSpec]]:
    """Nodes grouped by `cluster_ip`, in cluster-file order of each address's first node."""
    groups: dict[str, list[NodeSpec]] = {}
    for node in nodes:
        groups.setdefault(node.cluster_ip, []).append(node)
    return list(groups.values())


def _node_launch(group: Sequence[NodeSpec], rank: int, *, style: Style, settings: LaunchSettings,
                 job_id: str, workers: int, master_addr: str, master_port: int) -> NodeLaunch:
    node = group[0]
    local_workers = sum(member.devices for member in group)
    directory = job_dir(node, job_id)
    msrun_options = [f"--worker_num={workers}", f"--local_worker_num={local_workers}",
                     f"--master_addr={master_addr}", f"--master_port={master_port}", f"--node_rank={rank}",
                     f"--log_dir={LOG_DIR}", "--join=True", f"--cluster_time_out={settings.cluster_time_out}"]
    env = dict(TUTORIAL_ENV) if style == "mindformers" else {}
    env.update(settings.env)
    argv: list[str]
    if style == "model":
        argv = ["msrun", *msrun_options, f"{CODE_DIR}/model/{settings.kind}.py", "--config", CONFIG_NAME,
                *_model_predict_args(settings)]
    elif style == "msrun":
        assert settings.script is not None
        argv = ["msrun", *msrun_options, settings.script,
                *(arg.replace("{config}", CONFIG_NAME) for arg in settings.script_args)]
    else:
        home = settings.mindformers_home
        if not posixpath.isabs(home):  # launch.sh starts in the job directory: a relative one means nothing
            raise PlanError(f"console.mindformers_home must be an absolute path on the nodes, got {home!r}")
        if any(c.isspace() for c in directory + home):
            raise PlanError(f"{node.name}: MindFormers' launcher splits its command at spaces; "
                            f"the job directory {directory!r} or mindformers_home {home!r} has one")
        env.setdefault("PYTHONPATH", home)
        task = (f"run_mindformer.py --register_path {settings.register_path} "
                f"--config $JOB_DIR/{CONFIG_NAME}") + _mindformers_predict_args(settings)
        argv = ["bash", f"{home}/scripts/msrun_launcher.sh", task, str(workers), str(local_workers),
                master_addr, str(master_port), str(rank), "$JOB_DIR/" + LOG_DIR, "True",
                str(settings.cluster_time_out)]
    setup = [f"cd {shlex.quote(settings.mindformers_home)} || exit 2"] if style == "mindformers" else []
    script, container_script = in_container(node, job_id=job_id, rank=rank, script=launch_script(
        node, job_id=job_id, rank=rank, argv=argv, env=env, setup=setup, code=style == "model"))
    return NodeLaunch(node=node.name, node_rank=rank, machines=tuple(m.name for m in group),
                      job_dir=directory, local_workers=local_workers, argv=tuple(argv),
                      env=tuple(env.items()), script=script, container_script=container_script)


def check_prompts(prompts: Sequence[str], style: Style) -> None:
    """A predict job has prompts; MindFormers reads its prompts file a line a prompt."""
    if not prompts:
        raise PlanError("a predict job needs a prompt: --prompt TEXT (repeatable), --prompts FILE, or "
                        "console.prompts in the job file")
    if any(not p.strip() for p in prompts):
        raise PlanError("a prompt must hold some text to continue (one given is blank)")
    if style == "mindformers" and any("\n" in p or "\r" in p for p in prompts):
        raise PlanError("MindFormers reads its prompts one a line: a prompt cannot hold a line break")


def _model_predict_args(settings: LaunchSettings) -> list[str]:
    """model/predict.py's prompts, each an argument of its own (quoted in launch.sh)."""
    if settings.kind != "predict":
        return []
    prompts = [word for prompt in settings.prompts for word in ("--prompt", prompt)]
    return [*prompts, "--max-new-tokens", str(settings.max_new_tokens)]


def _mindformers_predict_args(settings: LaunchSettings) -> str:
    """run_mindformer.py's predict options, as the DeepSeek-V3 README gives them; the prompts in a file
    (the launcher splits its command at spaces, and a prompt may have some)."""
    if settings.kind != "predict":
        return ""
    return (f" --run_mode predict --use_parallel True --predict_data $JOB_DIR/{PROMPTS_NAME} "
            f"--predict_batch_size {len(settings.prompts)}")


def launch_script(node: NodeSpec, *, job_id: str, rank: int, argv: Sequence[str], env: Mapping[str, str],
                  setup: Sequence[str] = (), code: bool = False) -> str:
    """launch.sh: runs in the job directory. The cluster file's env_setup lines go in as written (the
    operator's own, like a shell profile); every other value is quoted. `setup`: shell lines (quoted by
    the caller) before the `exec`; `code`: the shipped `code/` first on PYTHONPATH."""
    lines = ["#!/bin/sh",
             _comment(f"ascend-console job {job_id}: node {node.name}, node_rank {rank}. "
                      "This file is what runs."),
             'JOB_DIR=$(pwd)',
             *environment_lines(node, {JOB_MARKER: process_marker(job_id, node.name), **env})]
    if code:
        lines.append(f'export PYTHONPATH="$JOB_DIR/{CODE_DIR}${{PYTHONPATH:+:$PYTHONPATH}}"')
    lines += setup
    lines.append(f"exec {' '.join(_shell_word(word) for word in argv)}")
    return "\n".join(lines) + "\n"


def in_container(node: NodeSpec, *, job_id: str, rank: int, script: str) -> tuple[str, str | None]:
    """(launch.sh, what runs in the container): for a node with a `container`, launch.sh only enters it."""
    if not node.container:
        return script, None
    return container_entry(node, job_id=job_id, rank=rank), script


def container_entry(node: NodeSpec, *, job_id: str, rank: int) -> str:
    """launch.sh for a node whose jobs run in a container: enter it where the job directory is,
    carrying the process marker so that `stop`, on the host, finds the ranks inside."""
    assert node.container is not None
    marker = f"{JOB_MARKER}={process_marker(job_id, node.name)}"
    return "\n".join([
        "#!/bin/sh",
        _comment(f"ascend-console job {job_id}: node {node.name}, node_rank {rank}, in container "
                 f"{node.container}."),
        f"exec docker exec --workdir \"$(pwd)\" --env {shlex.quote(marker)} {shlex.quote(node.container)} "
        f"sh ./{CONTAINER_SCRIPT_NAME}",
    ]) + "\n"


def _comment(text: str) -> str:
    return "# " + " ".join(text.splitlines())


def _shell_word(word: str) -> str:
    """Quoted, except that a literal `$JOB_DIR/` prefix stays expandable (the directory is known on the
    node only: `~` in workdir)."""
    if "$JOB_DIR/" in word:
        before, *after = word.split("$JOB_DIR/")
        return '"$JOB_DIR"/'.join([shlex.quote(before) if before else "", *map(shlex.quote, after)])
    return shlex.quote(word)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_env(env: Mapping[str, str]) -> None:
    for name in env:
        if not _ENV_NAME.match(name):
            raise PlanError(f"environment variable {name!r}: not a variable name (letters, digits, _)")
        if name == JOB_MARKER:
            raise PlanError(f"{JOB_MARKER} is the console's own: it is how stop finds the job's processes")


def launch_settings(document: Any, source: str) -> LaunchSettings:
    """The `console:` section of a job config (absent: the defaults)."""
    section = document.get("console") if isinstance(document, dict) else None
    if section is None:
        return LaunchSettings()
    if not isinstance(section, dict):
        raise PlanError(f"{source}: console: must be a mapping")
    older_names = {"launch", "entry"}  # of style and kind
    unknown = set(section) - {f.name for f in LaunchSettings.__dataclass_fields__.values()} - older_names
    if unknown:
        raise PlanError(f"{source}: console: unknown key(s) {', '.join(sorted(unknown))}")
    style = section.get("launch", section.get("style"))
    if style is not None and style not in STYLES:
        raise PlanError(f"{source}: console.launch: must be one of {', '.join(STYLES)} (got {style!r})")
    env = section.get("env", {})
    if not isinstance(env, dict) or not all(_ENV_NAME.match(str(k)) for k in env):
        raise PlanError(f"{source}: console.env: must map variable names to values")
    try:
        return LaunchSettings(
            style=style, kind=_choice(section.get("kind", section.get("entry", "train")), KINDS, "kind"),
            prompts=_prompts(section.get("prompts", [])),
            max_new_tokens=_count(section.get("max_new_tokens", DEFAULT_NEW_TOKENS), "max_new_tokens"),
            script=_optional_text(section.get("script"), "script"),
            script_args=_arguments(section.get("script_args", [])),
            mindformers_home=str(section.get("mindformers_home", LaunchSettings.mindformers_home)),
            register_path=str(section.get("register_path", LaunchSettings.register_path)),
            env={str(k): str(v) for k, v in env.items()},
            master_port=int(section.get("master_port", DEFAULT_PORT)),
            cluster_time_out=int(section.get("cluster_time_out", LaunchSettings.cluster_time_out)),
            serve=serve_settings(section.get("serve")))
    except (TypeError, ValueError) as exc:
        raise PlanError(f"{source}: console: {exc}") from None


def _prompts(value: Any) -> tuple[str, ...]:
    """One prompt, or a list of them."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError(f"prompts must be a text or a list of texts, got {value!r}")


def _optional_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a path, got {value!r}")
    return value


def _arguments(value: Any) -> tuple[str, ...]:
    """A list of arguments, or one string split as a shell would (`--config {config} --x 1`)."""
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    raise ValueError(f"script_args must be a list or a string, got {value!r}")


def _count(value: Any, name: str) -> int:
    """A whole number of 1 or more (YAML's `true` is no count, though Python takes it for 1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of 1 or more (got {value!r})")
    return value


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value
