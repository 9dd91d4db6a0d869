#!/usr/bin/env bash
# Make this checkout runnable on a fresh Debian machine with Python 3.11: Debian packages, the
# project's virtual environment (.venv), the local services (infra/services.sh) and the schema.
# Idempotent: a second run only checks. Source it to get HARK_* and the venv on PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARK_HOME="${HARK_HOME:-$ROOT/.hark}"
mkdir -p "$HARK_HOME"
PY="${HARK_PYTHON:-python3}"

log() { echo "[bootstrap] $*" >&2; }

apt_missing=()
command -v "$PY" >/dev/null || apt_missing+=(python3)
"$PY" -c "import venv, ensurepip" 2>/dev/null || apt_missing+=(python3-venv)
# Voices for generated speech: the long-recording and diarization tests and benchmarks.
command -v espeak-ng >/dev/null || apt_missing+=(espeak-ng)
if [ ${#apt_missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${apt_missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${apt_missing[@]}" >/dev/null
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { log "Python 3.11 is required (found $("$PY" --version))"; exit 1; }

VENV="$ROOT/.venv"
STAMP="$VENV/.hark-installed"
WANT="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  log "installing Python packages (first run takes a few minutes; log in $HARK_HOME/pip.log)"
  {
    "$VENV/bin/pip" install --upgrade pip &&
    # torch first and exactly: the CPU build of this version is what the machines serve.
    "$VENV/bin/pip" install "torch==2.13.0" &&
    # The production engines' tests build tiny checkpoints with funasr's and gigaam's own classes.
    "$VENV/bin/pip" install -e "$ROOT[test,funasr,gigaam]" &&
    # gigaam's declared requirements would replace torch (pyproject.toml, [gigaam]): no deps.
    "$VENV/bin/pip" install --no-deps "gigaam==0.1.0" &&
    # and torch is still exactly the version installed first.
    "$VENV/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("torch").split("+")[0] != "2.13.0")'
  } >"$HARK_HOME/pip.log" 2>&1 || { tail -40 "$HARK_HOME/pip.log" >&2; log "pip install failed"; exit 1; }
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"

bash "$ROOT/infra/services.sh" start >/dev/null
# shellcheck disable=SC1091
source "$HARK_HOME/services.env"
(cd "$ROOT" && "$VENV/bin/alembic" upgrade head 2>&1 | grep -v "^INFO" >&2 || true)
log "ready: services up, schema at head"
