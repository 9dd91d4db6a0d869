#!/usr/bin/env bash
# Run the whole test suite: installs what is missing, starts the services, then pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/infra/bootstrap.sh"
cd "$ROOT"
exec python -m pytest tests "$@"
