"""Step time and tokens/s of configs/jobs/tiny_local.yaml on this machine: graph vs PyNative.

One rank, the embedded corpus, `--steps` steps in each mode (the same seed and data). Figures are
medians of the per-step times the trainer logs, the first `--warmup` steps left out (the first holds
graph compilation); "to first step" is the wall time from start to the first loss line, which is
where compilation shows.

    .venv/bin/python -m bench.train_modes --steps 40
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model.logformat import parse_loss_line
from model.overrides import derive

REPO = Path(__file__).resolve().parent.parent
TINY_LOCAL = REPO / "configs" / "jobs" / "tiny_local.yaml"
TOKENS_PER_STEP = 8 * 128  # tiny_local: batch 8 a rank, 128-token sequences


def run_mode(mode: int, steps: int, directory: Path) -> tuple[float, list[int]]:
    job = directory / f"mode{mode}.yaml"
    job.write_text(derive(TINY_LOCAL, [f"context.mode={mode}"]), encoding="utf-8")
    started = time.perf_counter()
    first_step = None
    times: list[int] = []
    with subprocess.Popen([sys.executable, str(REPO / "model" / "train.py"), "--config", str(job),
                           "--max-steps", str(steps), "--output-dir", str(directory / f"out{mode}")],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as rank:
        assert rank.stdout is not None
        for line in rank.stdout:
            record = parse_loss_line(line)
            if record is not None and record.per_step_ms is not None:
                first_step = first_step or time.perf_counter() - started
                times.append(record.per_step_ms)
    if rank.returncode != 0 or first_step is None:
        raise SystemExit(f"mode {mode}: the trainer failed (exit {rank.returncode})")
    return first_step, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for mode, name in ((0, "graph (context.mode 0)"), (1, "PyNative (context.mode 1)")):
            first, times = run_mode(mode, args.steps, Path(scratch))
            step = statistics.median(times[args.warmup:]) / 1000
            rows.append((name, first, step, TOKENS_PER_STEP / step))
    print(f"tiny_local.yaml, one rank, {args.steps} steps, median after the first {args.warmup}")
    print(f"{'mode':28} {'to first step':>14} {'step time':>10} {'tokens/s':>9}")
    for name, first, step, rate in rows:
        print(f"{name:28} {first:13.1f}s {step * 1000:8.0f}ms {rate:9.0f}")
    graph, pynative = rows[0][2], rows[1][2]
    print(f"graph / PyNative step time: {graph / pynative:.2f}x")


if __name__ == "__main__":
    main()
