#!/usr/bin/env bash
# Run the whole test suite: installs what is missing (plus the browser the console test drives),
# starts the services, then pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "[test] installing Debian packages: chromium chromium-driver" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    chromium chromium-driver >/dev/null
fi
source "$ROOT/infra/bootstrap.sh"
cd "$ROOT"
exec python -m pytest tests "$@"
