"""`python -m model.train --config JOB.yaml`: train the DeepSeek-V3 network, one process per rank.

Started by msrun (or alone, as one rank). Data-parallel across every rank msrun started: gradients
all-reduced, the expert-selection biases updated from the load summed over all ranks, so every rank
holds identical parameters after every step. Logs MindFormers' loss lines (model.logformat) to stdout,
which msrun writes to worker_<rank>.log. SIGTERM (the console's stop) finishes the current step,
saves a checkpoint and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import FrameType

from model.config import JobSpec
from model.logformat import LossRecord, format_loss_line, format_progress_line
from model.runconfig import RunConfig, load_job
from model.yamlsource import SourceError

CONFIG_ERROR = 78
log = logging.getLogger("mindformers")


class StopRequest:
    """Set by SIGTERM/SIGINT; the loop checks it between steps so a stop never tears a step in half."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="research-dialect job config (YAML)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--output-dir", default=None, help="overrides output_dir in the config")
    return parser.parse_args(argv)


def setup_logging() -> None:
    """MindFormers' stdout format, so the console parses our logs as it parses MindFormers'."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(
        "%(asctime)s - %(name)s[%(module)s.py:%(lineno)d] - %(levelname)s - %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    loaded = load_or_report(args.config, args.output_dir)
    if loaded is None:
        return CONFIG_ERROR
    job, run = loaded
    stop = StopRequest()
    stop.install()
    from model.deepseek.trainer import Trainer  # MindSpore loads here, after the cheap checks
    trainer = Trainer(job, run, max_steps=args.max_steps)
    return trainer.run(stop, report=report_step)


def load_or_report(config: Path, output_dir: str | None) -> tuple[JobSpec, RunConfig] | None:
    """The job and run settings, or None once every problem of the file is on stderr."""
    try:
        return load_job(config, output_dir=output_dir)
    except SourceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def report_step(record: LossRecord, batch_size: int, step_seconds: float) -> None:
    log.info(format_loss_line(record))
    total = record.total_steps or record.step
    remaining = timedelta(seconds=max(0, total - record.step) * step_seconds)
    log.info(format_progress_line(record.step / total, batch_size / max(step_seconds, 1e-9), remaining))


if __name__ == "__main__":
    sys.exit(main())
