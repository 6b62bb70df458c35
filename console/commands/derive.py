"""`ascend-console derive`: a job config derived from a template by `--set` overrides, validated."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from rich.markup import escape

from console import exitcodes
from console.jobargs import add_layout_arguments, add_path_check_argument, job_layout, path_problems
from console.jobs.pretrained import parse_job
from console.render import print_error, print_json, print_warning, stderr_console
from model.classdefaults import CLASS_DEFAULT, CONFIG_JSON, UNSET_IN_CLASS
from model.config import JobSpec, defaulted_paths
from model.overrides import derive
from model.validate import validate
from model.yamlsource import SourceError
from remote.inventory import Cluster

HELP = "write a job config derived from a template (comments and anchors kept) and validate it"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("template", type=Path, help="the job config to start from")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the result")
    add_layout_arguments(parser)
    add_path_check_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the validation problems as JSON")


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    err = stderr_console()
    try:
        text = derive(args.template, args.set or [])
        job = parse_job(text, str(args.output), cluster)
    except SourceError as exc:
        for line in exitcodes.messages(exc):
            print_error(line)
        return exitcodes.code_for(exc)
    write_atomically(args.output, text)
    nodes, per_node = job_layout(args, cluster)
    problems = validate(job, nodes=nodes, devices_per_node=per_node)
    if args.check_paths:
        problems += path_problems(job, cluster)
    if args.json:
        print_json({"output": str(args.output), "nodes": nodes, "devices_per_node": per_node,
                    "problems": [{"path": p.path, "severity": p.severity, "message": p.message,
                                  "line": p.line} for p in problems],
                    "defaulted": defaulted_paths(job), "warnings": list(job.warnings)})
    else:
        err.print(f"wrote {escape(str(args.output))}; checked for {nodes} node(s) x {per_node} devices")
        for line in defaults_summary(job):
            err.print(escape(line))
        for warning in job.warnings:
            print_warning(warning)
        for problem in problems:
            style = "red" if problem.severity == "error" else "yellow"
            err.print(f"[{style}]{problem.severity}[/]: {escape(str(args.output))}"
                      f"{f':{problem.line}' if problem.line else ''}: {escape(problem.path)}: "
                      f"{escape(problem.message)}")
    return exitcodes.NODE_FAILED if any(p.severity == "error" for p in problems) else exitcodes.OK


def defaults_summary(job: JobSpec) -> list[str]:
    """One line per source of the architecture the file leaves out: `from config.json: a, b`; the
    parallel and training fields MindFormers defaults are many and usual, so they are not listed."""
    paths = defaulted_paths(job)
    lines = []
    for source, label in ((CONFIG_JSON, "from config.json"), (CLASS_DEFAULT, "class defaults"),
                          (UNSET_IN_CLASS, "None in the class")):
        names = [path.rsplit(".", 1)[-1] for path, where in paths.items() if where == source]
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    return lines


def write_atomically(path: Path, text: str) -> None:
    """The file appears whole or not at all: a failed write never leaves half a config."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
