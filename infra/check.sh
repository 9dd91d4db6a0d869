#!/usr/bin/env bash
# Static checks CI runs before the tests: lint, formatting and types (configured in pyproject.toml).
# Expects the project's virtual environment (infra/bootstrap.sh installs ruff and mypy with the `test` extra).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${VIRTUAL_ENV:-$ROOT/.venv}/bin"
"$BIN/ruff" check .
"$BIN/ruff" format --check .
"$BIN/mypy"
