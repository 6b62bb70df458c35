#!/usr/bin/env bash
# The whole test suite: lint, types, then every test (the namespace test cluster is built and
# torn down by the tests themselves; as root on Linux it needs nothing else). The fault matrix
# (tests/faults, marker `faults`) runs as a second stage on a cluster of its own, so the first
# stage's figure stays the everyday suite's. Arguments, if any, go to one pytest run instead.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
if [ "$#" -gt 0 ]; then
    echo "== pytest $*"; exec .venv/bin/python -m pytest "$@"
fi
echo "== pytest, stage 1: everything but the fault matrix"; .venv/bin/python -m pytest -m "not faults"
echo "== pytest, stage 2: the fault matrix"; .venv/bin/python -m pytest -m faults tests/faults
