#!/usr/bin/env bash
# Hark end to end vs faster-whisper's batched ASR-only pipeline on one generated meeting
# (bench/peer_asr.py says what is compared). Usage: bash bench/peer_asr.sh [MINUTES] [--record]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MINUTES="${1:-10}"
OUT="$(mktemp -d)"
"$ROOT/.venv/bin/python" "$ROOT/bench/synth.py" "$OUT/meeting.wav" --speakers 4 --minutes "$MINUTES" >/dev/null
# demo.sh prints "done in N s: …" (upload to done) on stderr.
bash "${HARK_DEMO:-$ROOT/infra/demo.sh}" "$OUT/meeting.wav" --format txt --force >/dev/null 2>"$OUT/hark.log" \
  || { tail -20 "$OUT/hark.log" >&2; exit 1; }
HARK_S="$(sed -n 's/^done in \([0-9.]*\) s:.*/\1/p' "$OUT/hark.log" | tail -1)"
"$ROOT/.venv/bin/python" "$ROOT/bench/peer_asr.py" "$OUT/meeting.wav" --hark-seconds "$HARK_S" "${@:2}"
rm -rf "$OUT"
