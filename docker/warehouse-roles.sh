#!/usr/bin/env bash
# The warehouse's logins, made once when its data volume is initialised (the postgres image runs
# /docker-entrypoint-initdb.d/* as POSTGRES_USER, the cluster's superuser, which no service of the
# stack uses afterwards). docs/operations.md, "Roles":
#   ioc_owner    LOGIN, owns the database and every object in it; runs the migrations (service
#                warehouse-migrate, `make migrate`) and makes the IOC page's login (ioc-web-login).
#                CREATEROLE to make ioc_dashboard; not a superuser.
#   ioc_loader   NOLOGIN group: what loading and the views refresh need (migration 060 grants it).
#   ioc_reader   NOLOGIN group: SELECT on schema ioc (migration 001 grants it).
#   ioc_airflow  LOGIN IN ROLE ioc_loader: Airflow's connection ioc_warehouse.
# The two groups are created by ioc_owner (SET ROLE) so that ioc_owner administers them (PostgreSQL
# 16 gives the creator of a role its ADMIN OPTION; the migrations' CREATE ROLE IF NOT EXISTS then
# find them). Passwords: WAREHOUSE_OWNER_PASSWORD and WAREHOUSE_AIRFLOW_PASSWORD (.env).
set -euo pipefail
: "${WAREHOUSE_OWNER_PASSWORD:?set in .env}"
: "${WAREHOUSE_AIRFLOW_PASSWORD:?set in .env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v db="$POSTGRES_DB" -v owner_pw="$WAREHOUSE_OWNER_PASSWORD" -v airflow_pw="$WAREHOUSE_AIRFLOW_PASSWORD" <<'EOSQL'
CREATE ROLE ioc_owner LOGIN CREATEROLE NOSUPERUSER NOCREATEDB PASSWORD :'owner_pw';
ALTER DATABASE :"db" OWNER TO ioc_owner;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SET ROLE ioc_owner;
CREATE ROLE ioc_loader NOLOGIN;
CREATE ROLE ioc_reader NOLOGIN;
CREATE ROLE ioc_airflow LOGIN PASSWORD :'airflow_pw' IN ROLE ioc_loader;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO ioc_loader;
RESET ROLE;
EOSQL
