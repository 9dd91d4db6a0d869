#!/usr/bin/env bash
# The main job end to end: install, start services, web and workers, upload a recording through
# the API, wait, and print its speaker-labelled transcript.
#   bash infra/demo.sh [recording [hark transcribe options]]   (default: examples/sample.wav)
#   e.g. bash infra/demo.sh meeting.mp3 --format srt --num-speakers 3
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FILE="$(realpath "${1:-$ROOT/examples/sample.wav}")"
shift || true
[ -f "$FILE" ] || { echo "no such file: $FILE" >&2; exit 2; }
source "$ROOT/infra/bootstrap.sh"
cd "$ROOT"
RUN="$HARK_HOME/run"
mkdir -p "$RUN"
PORT="${HARK_WEB_PORT:-58000}"

start_app() {
  # -B: this worker also runs celery beat, i.e. the janitor.
  celery -A worker.celery_app worker -Q cpu -c 1 -n "cpu@%h" -B -s "$RUN/beat-schedule" --without-mingle --without-gossip --loglevel=INFO \
    >"$RUN/worker-cpu.log" 2>&1 &
  echo $! > "$RUN/worker-cpu.pid"
  # Two model processes, one thread each (worker/tuning.py shares the cores among them): an ASR and
  # an embedding batch run side by side instead of one after the other.
  celery -A worker.celery_app worker -Q asr,embed,emotion -c 2 -n "model@%h" --without-mingle --without-gossip --loglevel=INFO \
    >"$RUN/worker-model.log" 2>&1 &
  echo $! > "$RUN/worker-model.pid"
  # Webhook deliveries on their own queue and worker, so a slow receiver never holds up decoding.
  celery -A worker.celery_app worker -Q webhooks -c 2 -n "webhooks@%h" --without-mingle --without-gossip --loglevel=INFO \
    >"$RUN/worker-webhooks.log" 2>&1 &
  echo $! > "$RUN/worker-webhooks.pid"
  gunicorn -c python:web.gunicorn_conf -w 2 -b "127.0.0.1:$PORT" "web:create_app()" >"$RUN/web.log" 2>&1 &
  echo $! > "$RUN/web.pid"
}
stop_app() {
  for name in web worker-cpu worker-model worker-webhooks; do
    [ -f "$RUN/$name.pid" ] && kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true
    rm -f "$RUN/$name.pid"
  done
}
stop_app
trap stop_app EXIT
start_app
# Wait for the API to answer healthy and both workers to report ready.
for i in $(seq 1 180); do
  ready="$( (grep -l "ready\." "$RUN/worker-cpu.log" "$RUN/worker-model.log" 2>/dev/null || true) | wc -l)"
  if [ "$ready" = 2 ] && python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/healthz', timeout=2)" 2>/dev/null; then
    break
  fi
  [ "$i" = 180 ] && { echo "web or workers did not start; logs in $RUN" >&2; exit 1; }
  sleep 1
done
KEY="$(hark keys create --tenant demo --name "demo $(date +%s)")"
hark transcribe "$FILE" --url "http://127.0.0.1:$PORT" --key "$KEY" "$@"
