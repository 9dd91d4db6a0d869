#!/usr/bin/env bash
# The example recording through the whole pipeline (infra/demo.sh), scored against its reference.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mktemp -d)"
bash "$ROOT/infra/demo.sh" "$ROOT/examples/sample.wav" --format rttm > "$OUT/sample.rttm"
"$ROOT/.venv/bin/pip" install -q -e "$ROOT[bench]" >/dev/null 2>&1
"$ROOT/.venv/bin/python" "$ROOT/bench/der.py" "$ROOT/examples/sample.rttm" "$OUT/sample.rttm" --record
