"""What each node must hold for a plan's launch to start, by launch style (and a serve job's engine),
each need with the sentence preflight says when a node lacks it. Pure.

- `mindformers`: the checkout (`mindformers_home`) with `run_mindformer.py` and
  `scripts/msrun_launcher.sh`, the `register_path` (a relative one is read from the checkout: launch.sh
  cds there first), msrun (the launcher runs it) and MindSpore;
- `model`: msrun, which starts the ranks, and MindSpore importable by the node's `python`;
- `msrun`: msrun, and `console.script` when it is an absolute path (a relative one is the job
  directory's, which is not there before the launch);
- serve: the `model` engine MindSpore; `vllm` its command (or `ray` on Ray's other nodes), CANN's
  environment file, the MindFormers checkout for its `mindformers` backend; `mindie` its daemon and
  CANN's environment file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

import yaml

from console.jobs.plan import JobPlan, LaunchSettings, NodeLaunch, launch_settings
from remote.inventory import NodeSpec
from remote.needs import Need

LAUNCHER_FILES = ("run_mindformer.py", "scripts/msrun_launcher.sh")
"""What a MindFormers checkout must hold for the launch (launch.sh runs both)."""


@dataclass(frozen=True)
class LaunchNeed:
    need: Need
    name: str
    """Short, in the list of what a node has: `run_mindformer.py`, `MindSpore`, `msrun`."""
    missing: str
    """What preflight says when the node lacks it."""
    within: Need | None = None
    """The directory it is in: not said when that is missing too."""


def launch_needs(plan: JobPlan, nodes: Sequence[NodeSpec]) -> dict[str, tuple[LaunchNeed, ...]]:
    """What every node that runs a launch.sh must hold, by node name."""
    settings = _settings(plan)
    specs = {node.name: node for node in nodes}
    return {launch.node: _node_needs(plan, launch, specs[launch.node], settings)
            for launch in plan.nodes if launch.node in specs}


def _settings(plan: JobPlan) -> LaunchSettings:
    """The job file's `console:` section, as the plan was made from (its config text holds it)."""
    return launch_settings(yaml.safe_load(plan.config_text), plan.template)


def _node_needs(plan: JobPlan, launch: NodeLaunch, node: NodeSpec,
                settings: LaunchSettings) -> tuple[LaunchNeed, ...]:
    if plan.kind == "serve":
        return _serve_needs(plan, launch, node, settings)
    if plan.style == "mindformers":
        return (*checkout_needs(settings.mindformers_home, settings.register_path),
                msrun_need(node, "MindFormers' launcher runs it"), mindspore_need(node))
    if plan.style == "model":
        return msrun_need(node, "it starts the ranks"), mindspore_need(node)
    script = settings.script or ""
    needs = [msrun_need(node, "it starts console.script")]
    if posixpath.isabs(script):
        needs.append(path_need(script, "console.script", f"console.script {script} is missing"))
    return tuple(needs)


def checkout_needs(home: str, register_path: str) -> tuple[LaunchNeed, ...]:
    """The MindFormers checkout, the files its launch runs, and the register path."""
    checkout = Need("path", home)
    needs = [LaunchNeed(checkout, home, f"no MindFormers checkout at {home} (console.mindformers_home)")]
    needs += [LaunchNeed(Need("path", posixpath.join(home, name)), name,
                         f"MindFormers checkout {home} is missing {name}", within=checkout)
              for name in LAUNCHER_FILES]
    if posixpath.isabs(register_path):
        needs.append(path_need(register_path, register_path,
                               f"register_path {register_path} is missing (console.register_path)"))
    else:
        needs.append(LaunchNeed(Need("path", posixpath.join(home, register_path)), register_path,
                                f"MindFormers checkout {home} is missing {register_path} "
                                f"(console.register_path)", within=checkout))
    return tuple(needs)


def _serve_needs(plan: JobPlan, launch: NodeLaunch, node: NodeSpec,
                 settings: LaunchSettings) -> tuple[LaunchNeed, ...]:
    serve = settings.serve
    engine = plan.serve.engine if plan.serve is not None else "model"
    if engine == "model":
        return (mindspore_need(node),)
    toolkit = path_need(serve.toolkit_env, "CANN environment",
                        f"CANN's environment file {serve.toolkit_env} is missing (console.serve.toolkit_env)")
    if engine == "mindie":
        daemon = posixpath.join(serve.mindie_home, "bin/mindieservice_daemon")
        return toolkit, path_need(daemon, "mindieservice_daemon",
                                  f"MindIE's daemon {daemon} is missing (console.serve.mindie_home)")
    command = launch.argv[0]
    needs = [toolkit, LaunchNeed(Need("command", command), command,
                                 f"{command} is not on PATH for {node.python}")]
    if serve.backend == "mindformers":
        needs.append(path_need(settings.mindformers_home, "MindFormers checkout",
                               f"no MindFormers checkout at {settings.mindformers_home} "
                               "(console.mindformers_home: vLLM-MindSpore's mindformers backend "
                               "imports it)"))
    return tuple(needs)


def path_need(path: str, name: str, missing: str) -> LaunchNeed:
    return LaunchNeed(Need("path", path), name, missing)


def msrun_need(node: NodeSpec, why: str) -> LaunchNeed:
    return LaunchNeed(Need("command", "msrun"), "msrun", f"msrun is not on PATH for {node.python} ({why})")


def mindspore_need(node: NodeSpec) -> LaunchNeed:
    return LaunchNeed(Need("module", "mindspore"), "MindSpore",
                      f"MindSpore is not importable by {node.python}")
