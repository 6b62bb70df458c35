#!/usr/bin/env bash
# The whole test suite: lint, types, then every test (the namespace test cluster is built and
# torn down by the tests themselves; as root on Linux it needs nothing else).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest "$@"
