#!/usr/bin/env bash
# The example recording through the whole pipeline (infra/demo.sh), scored against its reference
# with no collar and with the usual ±0.25 s forgiveness collar. HARK_DEMO names another script with
# demo.sh's interface (e.g. a copy with its own database, bucket and broker prefix).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(mktemp -d)"
bash "${HARK_DEMO:-$ROOT/infra/demo.sh}" "$ROOT/examples/sample.wav" --format rttm > "$OUT/sample.rttm"
"$ROOT/.venv/bin/pip" install -q -e "$ROOT[bench]" >/dev/null 2>&1
for collar in 0 0.25; do
  "$ROOT/.venv/bin/python" "$ROOT/bench/der.py" "$ROOT/examples/sample.rttm" "$OUT/sample.rttm" --collar "$collar" --record
done
