#!/bin/sh
# Runs once, when the database volume is first initialised (postgres image, docker-entrypoint-initdb.d).
# Hark's own login owns the hark database and nothing else: no superuser, may not create databases;
# CREATEROLE only so `hark sql-role create` can make analysts' read-only logins.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v pw="$DB_PASSWORD" <<'SQL'
CREATE ROLE hark LOGIN PASSWORD :'pw' NOSUPERUSER NOCREATEDB CREATEROLE;
CREATE DATABASE hark OWNER hark;
REVOKE ALL ON DATABASE hark FROM PUBLIC;
SQL
