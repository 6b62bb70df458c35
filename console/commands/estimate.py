"""`ascend-console estimate`: parameters, memory per device per pipeline stage, FLOPs, and problems."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from console import exitcodes
from console.arguments import positive_int, positive_seconds
from console.jobargs import add_layout_arguments, add_path_check_argument, job_layout, path_problems
from console.jobs.devicememory import device_memory
from console.jobs.pretrained import parse_job
from console.render import print_error, print_json, stderr_console, stdout_console
from model.classdefaults import CLASS_DEFAULT, MINDFORMERS_DEFAULT, UNSET_IN_CLASS
from model.config import JobSpec, defaulted_paths
from model.estimate import (
    GIB,
    PEAK_FLOPS_910B_BF16,
    DeviceMemory,
    InferenceEstimate,
    InferenceStage,
    ParamCount,
    TrainingEstimate,
    count_params,
    inference_memory,
    mfu,
    training_flops_per_token,
    training_memory,
)
from model.overrides import apply_overrides, parse_override
from model.validate import ConfigProblem, data_parallel, impossible_sizes, validate
from model.yamlsource import Problem, SourceError
from remote.inventory import Cluster

HELP = "estimate a job's parameters, memory per device and FLOPs, and check its parallel layout"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", type=Path, help="a MindFormers job config (any of the three layouts)")
    add_layout_arguments(parser)
    add_path_check_argument(parser)
    parser.add_argument("--step-seconds", type=positive_seconds, metavar="S",
                        help="a measured training step time: also report MFU")
    parser.add_argument("--peak-tflops", type=positive_seconds, default=PEAK_FLOPS_910B_BF16 / 1e12,
                        metavar="T", help="peak bf16 TFLOPS per device for MFU (default: "
                                          f"{PEAK_FLOPS_910B_BF16 / 1e12:g}, an assumption for 910B)")
    parser.add_argument("--inference", action="store_true",
                        help="estimate serving memory instead: weights and the MLA KV cache per device")
    parser.add_argument("--batch", type=positive_int, metavar="B",
                        help="with --inference: sequences served at once per model replica (default: a "
                             "predict config's num_blocks x block_size cache, else 1)")
    parser.add_argument("--seq-length", type=positive_int, metavar="S",
                        help="with --inference: tokens cached per sequence (default: the model's seq_length)")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def load_job(path: Path, overrides: list[str], cluster: Cluster | None = None) -> JobSpec:
    """The job as the file says, with `--set` overrides applied in memory (lines stay where they are), and
    an mcore config's pretrained_model_dir/config.json read here or from the first of `cluster`'s nodes
    that has it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([Problem(str(path), None, "", f"cannot read: {exc.strerror}")]) from exc
    if overrides:
        text = apply_overrides(text, str(path), [parse_override(o) for o in overrides])
    return parse_job(text, str(path), cluster)


def execute(args: argparse.Namespace, cluster: Cluster) -> int:
    try:
        job = load_job(args.job, args.set or [], cluster)
    except SourceError as exc:
        for message in exitcodes.messages(exc):
            print_error(message)
        return exitcodes.code_for(exc)  # 66 for a file that is not there, 78 for one that is wrong
    nodes, per_node = job_layout(args, cluster)
    problems = validate(job, nodes=nodes, devices_per_node=per_node, training=not args.inference)
    if args.check_paths:
        problems += path_problems(job, cluster)
    unplaceable = impossible_sizes(job) or job.parallel.pipeline_stage > job.model.num_layers
    if unplaceable and not args.json:  # no stage table could mean anything: the problem is all there is
        _print_problems(job, problems)
        return exitcodes.NODE_FAILED
    device = device_memory(cluster, nodes, per_node)
    if args.inference:
        return _execute_inference(args, job, problems, device, nodes=nodes, per_node=per_node)
    try:
        memory = None if unplaceable else training_memory(job, per_node, device, devices=nodes * per_node)
        params = count_params(job.model)
    except ValueError as exc:  # an unknown dtype or memory size: the config is what is wrong
        return _config_error(job, exc)
    document = estimate_document(job, params, memory, problems, nodes=nodes, per_node=per_node)
    if args.step_seconds:
        document["tokens_per_step"] = tokens_per_step(job, nodes * per_node)
        document["mfu"] = mfu(document["flops_per_token"], document["tokens_per_step"], args.step_seconds,
                              nodes * per_node, args.peak_tflops * 1e12)
    if args.json:
        print_json(document)
    elif memory is not None:
        stdout_console().print(Group(*_problem_lines(job, problems), *_tables(job, params, memory, document)))
    return _exit_code(problems, memory is not None and memory.fits)


def _exit_code(problems: list[ConfigProblem], fits: bool) -> int:
    errors = any(p.severity == "error" for p in problems)
    return exitcodes.NODE_FAILED if errors or not fits else exitcodes.OK


def _config_error(job: JobSpec, exc: ValueError) -> int:
    print_error(f"{job.source}: {exc}")
    return exitcodes.CONFIG


def _execute_inference(args: argparse.Namespace, job: JobSpec, problems: list[ConfigProblem],
                       device: DeviceMemory, *, nodes: int, per_node: int) -> int:
    batch, seq_length, cache = _cached_tokens(args, job)
    try:
        memory = inference_memory(job, batch=batch, seq_len=seq_length, device=device,
                                  devices=nodes * per_node)
    except ValueError as exc:
        return _config_error(job, exc)
    params = count_params(job.model)
    document = _common_document(job, params, memory, problems, nodes=nodes, per_node=per_node)
    document.update(mode="inference", batch=batch, seq_length=seq_length, kv_cache=cache)
    if args.json:
        print_json(document)
    else:
        stdout_console().print(Group(*_problem_lines(job, problems),
                                     *_inference_tables(job, memory, document)))
    return _exit_code(problems, memory.fits)


def _cached_tokens(args: argparse.Namespace, job: JobSpec) -> tuple[int, int, str]:
    """What the KV cache holds per device: `--batch` sequences of `--seq-length` tokens when asked, else a
    predict config's paged cache (`num_blocks` blocks of `block_size` tokens, allocated whole at start),
    else one sequence of the model's seq_length; and how that was chosen."""
    blocks, block_size = job.inference.num_blocks, job.inference.block_size
    if args.batch is None and args.seq_length is None and blocks and block_size:
        return blocks, block_size, f"{blocks} blocks x {block_size} tokens (num_blocks, block_size)"
    batch, seq_length = args.batch or 1, args.seq_length or job.model.seq_length
    return batch, seq_length, f"{batch} x {seq_length} tokens"


def estimate_document(job: JobSpec, params: ParamCount, memory: TrainingEstimate | None,
                      problems: list[ConfigProblem], *, nodes: int, per_node: int) -> dict[str, Any]:
    document = _common_document(job, params, memory, problems, nodes=nodes, per_node=per_node)
    document["flops_per_token"] = training_flops_per_token(job.model, job.model.seq_length).total
    return document


def _common_document(job: JobSpec, params: ParamCount, memory: TrainingEstimate | InferenceEstimate | None,
                     problems: list[ConfigProblem], *, nodes: int, per_node: int) -> dict[str, Any]:
    """The keys both modes share; `mode` says which estimate `memory_stages` holds (none, when the layout
    places no layer on some stage: the problems say why)."""
    return {
        "job": job.source,
        "dialect": job.dialect.value,
        "mode": "inference" if memory and isinstance(memory.stages[0], InferenceStage) else "training",
        "nodes": nodes,
        "devices_per_node": per_node,
        "params_total": params.total,
        "params_total_with_mtp": params.total_with_mtp,
        "params_activated": params.activated,
        "params": {name: getattr(params, name) for name in params.__dataclass_fields__},
        "memory_per_device_bytes": [stage.total for stage in memory.stages] if memory else [],
        "memory_stages": [{name: getattr(stage, name) for name in stage.__dataclass_fields__}
                          for stage in memory.stages] if memory else [],
        "memory_limit_bytes": memory.limit_bytes if memory else None,
        "memory_limit_source": memory.limit_source if memory else None,
        "fits": memory.fits if memory else False,
        "tightest_stage": memory.tightest_stage if memory else None,
        "problems": [{"path": p.path, "severity": p.severity, "message": p.message, "line": p.line}
                     for p in problems],
        "defaulted": defaulted_paths(job),
        "warnings": list(job.warnings),
        "derived": dict(job.derived),
    }


def _tables(job: JobSpec, params: ParamCount, memory: TrainingEstimate,
            document: dict[str, Any]) -> list[Any]:
    rows = [("parameters, main model", _count(params.total)),
            ("parameters, with MTP", _count(params.total_with_mtp)),
            ("activated per token", _count(params.activated)),
            ("training FLOPs per token", _flops(document["flops_per_token"]))]
    if "mfu" in document:
        rows.append(("MFU at the given step time",
                     f"{document['mfu']:.1%} ({document['tokens_per_step']:,} tokens a step)"))
    rows += _memory_rows(memory)
    columns = ("weights", "grads", "optimizer", "activations", "workspace", "total", "headroom")
    stages = [(s.stage, s.num_layers, (s.weights, s.gradients, s.optimizer, s.activations, s.workspace,
                                       s.total, s.headroom)) for s in memory.stages]
    title = (f"{job.source} ({job.dialect.value}) on {document['nodes']} x {document['devices_per_node']} "
             f"devices")
    table = _stage_table("memory per device, by pipeline stage (GiB)", columns, stages)
    return [_summary(title, rows), table, *_provenance_lines(job)]


def _inference_tables(job: JobSpec, memory: InferenceEstimate, document: dict[str, Any]) -> list[Any]:
    rows = [("parameters, main model", _count(document["params_total"])),
            ("KV cache per device", document["kv_cache"]),
            *_memory_rows(memory)]
    stages = [(stage.stage, stage.num_layers, (stage.weights, stage.kv_cache, stage.workspace, stage.total,
                                               stage.headroom)) for stage in memory.stages]
    title = (f"{job.source} ({job.dialect.value}) serving on {document['nodes']} x "
             f"{document['devices_per_node']} devices")
    return [_summary(title, rows), _stage_table("serving memory per device, by pipeline stage (GiB)",
                                                ("weights", "KV cache", "workspace", "total", "headroom"),
                                                stages), *_provenance_lines(job)]


def _summary(title: str, rows: list[tuple[str, str]]) -> str:
    """The title, then `label  value` lines: plain lines wrap where the terminal does, not inside a cell."""
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join([escape(title), *(f"{label:<{width}}{escape(value)}" for label, value in rows)])


def _memory_rows(memory: TrainingEstimate | InferenceEstimate) -> list[tuple[str, str]]:
    spare = (f"{memory.headroom / GIB:.1f} GiB spare" if memory.fits
             else f"{-memory.headroom / GIB:.1f} GiB short")
    verdict = "fits" if memory.fits else "does NOT fit"
    return [("memory limit", f"{memory.limit_source}: {memory.limit_bytes / GIB:.1f} GiB per rank"),
            ("memory", f"{verdict}: {spare} on stage {memory.tightest_stage}")]


def _stage_table(title: str, columns: tuple[str, ...],
                 rows: Sequence[tuple[int, int, tuple[int, ...]]]) -> Table:
    """One row per run of stages whose figures print alike (`3-14`), so a deep pipeline reads at a glance;
    no outer edge and one space between columns, so nine columns fit in 80."""
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, collapse_padding=True,
                  header_style="bold underline")
    for column in ("stage", "layers", *columns):
        table.add_column(column, justify="right", no_wrap=True)
    for stages, layers, figures in _runs(rows):
        table.add_row(stages, str(layers), *figures)
    return table


def _runs(rows: Sequence[tuple[int, int, tuple[int, ...]]]) -> list[tuple[str, int, tuple[str, ...]]]:
    runs: list[tuple[int, int, int, tuple[str, ...]]] = []
    for stage, layers, values in rows:
        figures = tuple(f"{value / GIB:.1f}" for value in values)
        if runs and runs[-1][2:] == (layers, figures) and runs[-1][1] == stage - 1:
            runs[-1] = (runs[-1][0], stage, layers, figures)
        else:
            runs.append((stage, stage, layers, figures))
    return [(str(first) if first == last else f"{first}-{last}", layers, figures)
            for first, last, layers, figures in runs]


def _problem_lines(job: JobSpec, problems: list[ConfigProblem]) -> list[str]:
    """Every problem with its file:line, then what a person should know about where values came from."""
    lines = []
    for problem in problems:
        style = "red" if problem.severity == "error" else "yellow"
        where = f":{problem.line}" if problem.line else ""
        lines.append(f"[{style}]{problem.severity}[/]: {escape(job.source)}{where}: "
                     f"{escape(problem.path)}: {escape(problem.message)}")
    return lines + [f"[yellow]warning[/]: {escape(job.source)}: {escape(warning)}"
                    for warning in job.warnings]


_SOURCE_LEADS = {CLASS_DEFAULT: "not in the file, from the model class's defaults",
                 UNSET_IN_CLASS: "not in the file, and None in the model class"}


def _provenance_lines(job: JobSpec) -> list[str]:
    """The architecture the file left out, by where each value came from (config.json, the class's
    defaults); the parallel and training settings MindFormers defaults are only counted (`--json` lists
    them all)."""
    by_source: dict[str, list[str]] = {}
    for path, source in defaulted_paths(job).items():
        by_source.setdefault(source, []).append(path.rsplit(".", 1)[-1])
    lines = [f"{_SOURCE_LEADS.get(source, f'not in the file, from {source}')}: {', '.join(names)}"
             for source, names in by_source.items() if source != MINDFORMERS_DEFAULT]
    settings = len(by_source.get(MINDFORMERS_DEFAULT, []))
    return [escape(line) for line in lines] + (
        [f"{settings} settings left to MindFormers' defaults (--json lists them)"] if settings else [])


def _print_problems(job: JobSpec, problems: list[ConfigProblem]) -> None:
    for line in _problem_lines(job, problems):
        stderr_console().print(line)


def tokens_per_step(job: JobSpec, devices: int) -> int:
    """Tokens one optimizer step consumes: sequence x micro-batch x micro-batches x data-parallel."""
    parallel = job.parallel
    dp = max(data_parallel(parallel, devices), 1)
    micro_batches = parallel.micro_batch_num if parallel.pipeline_stage > 1 else 1
    return job.model.seq_length * job.training.batch_size * micro_batches * dp


def _count(count: int) -> str:
    """671.03 B, 1.21 M, 948.04 K: the unit that fits, so a smoke-test model does not read 0.00 B."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:,.2f} {unit}"
    return str(count)


def _flops(value: float) -> str:
    for scale, unit in ((1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP")):
        if value >= scale:
            return f"{value / scale:,.1f} {unit}"
    return f"{value:,.0f} FLOP"
