#!/usr/bin/env bash
# Proves the production stack (docker-compose.yaml) on this machine: `make stack-check`. Not part
# of `make test` (it takes ~20 min on 2 cores and needs root for the container engine).
#
#  1. tools: a container engine (Debian's docker.io; dockerd started when none runs), compose
#     (`docker compose`, else Debian's docker-compose), chromium + chromium-driver, debootstrap;
#  2. base images: from the registry when one answers, else from Debian's packages
#     (docker/debian_images.sh) with docker-compose.debian.yaml;
#  3. the wheelhouse (docker/wheelhouse) from requirements.lock on the host (pip's own config and
#     mirrors), which the image installs from with --require-hashes (--no-index without a registry);
#  4. builds the pipeline image and every service image, brings the stack up with the simulator
#     profile (secrets generated into .stack/env), waits for every service to be healthy;
#  5. a night through Airflow's REST API (scripts/stack_night.py night): every ingest DAG and
#     refresh_ioc_views for one as-of date on the Celery worker, then ioc.indicator_values read as
#     a member of ioc_reader against the simulator's expected values;
#  6. the landing watcher: a new delivery copied into the landing volume starts the file source's
#     DAG through the triggerer within a minute; the same bytes copied again start nothing;
#  7. screenshots of the stack's Airflow UI (.stack/screenshots);
#  8. tears everything down, also on failure: containers, networks and volumes of the project (and
#     dockerd, if this script started it). Logs of every service stay in .stack/logs.
#
# Environment: STACK_BASE=auto|registry|debian (auto: debian when no registry answers),
# STACK_AS_OF (default: yesterday in Asia/Ho_Chi_Minh), STACK_KEEP=1 (leave the stack up: no teardown),
# STACK_API_PORT/STACK_WAREHOUSE_PORT/STACK_SECTOR_DB_PORT/STACK_WEB_PORT (host ports, loopback).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
OUT="$REPO/.stack"
PY="${PY:-$REPO/.venv/bin/python}"
PROJECT="${STACK_PROJECT:-ioc-stack-check}"
# yesterday in the province: the as-of date of the nightly runs the scheduler makes when the DAGs
# are unpaused (their latest cron slot), so those runs and the check's agree
AS_OF="${STACK_AS_OF:-$(TZ=Asia/Ho_Chi_Minh date -d yesterday +%F)}"
API_PORT="${STACK_API_PORT:-18080}"
WH_PORT="${STACK_WAREHOUSE_PORT:-15433}"
SIM_DB_PORT="${STACK_SECTOR_DB_PORT:-15434}"
WEB_PORT="${STACK_WEB_PORT:-18050}"
mkdir -p "$OUT/logs"
T_START=$(date +%s)
STEPS=()
STARTED_DOCKERD=""

log() { echo "[stack-check $(date -u +%H:%M:%S)] $*"; }
step_done() { local now; now=$(date +%s); STEPS+=("$(printf '%-44s %5ss' "$1" $((now - T_STEP)))"); log "done: $1 ($((now - T_STEP))s)"; }
step() { T_STEP=$(date +%s); log "=== $1"; }
die() { log "FAILED: $*"; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  [ -n "${APT_UPDATED:-}" ] || { as_root apt-get update -q >/dev/null; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "$@" >/dev/null
}

summary() {
  local rc=$1
  echo
  log "step times:"
  for s in "${STEPS[@]}"; do echo "    $s"; done
  echo "    $(printf '%-44s %5ss' total $(( $(date +%s) - T_START )))"
}

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "${COMPOSE_READY:-}" ]; then
    for svc in $($COMPOSE ps --services 2>/dev/null); do
      $COMPOSE logs --no-color --timestamps "$svc" > "$OUT/logs/$svc.log" 2>&1 || true
    done
    if [ "${STACK_KEEP:-0}" = 1 ]; then
      log "STACK_KEEP=1: the stack stays up ($COMPOSE down -v to remove it)"
    else
      T_STEP=$(date +%s); log "=== teardown"
      $COMPOSE --profile debug --profile flower down -v --remove-orphans --timeout 30 >"$OUT/logs/down.log" 2>&1 \
        || log "compose down failed (see $OUT/logs/down.log)"
      left="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT")"
      [ -z "$left" ] || { log "left behind: $left"; rc=1; }
      step_done "teardown (containers, networks, volumes)"
    fi
  fi
  if [ -n "$STARTED_DOCKERD" ] && [ "${STACK_KEEP:-0}" != 1 ]; then
    kill "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
    if kill -0 "$STARTED_DOCKERD" 2>/dev/null; then log "dockerd (pid $STARTED_DOCKERD) still running"; rc=1
    else log "stopped the dockerd this check started (pid $STARTED_DOCKERD)"; fi
  fi
  summary "$rc"
  if [ "$rc" = 0 ]; then log "stack check passed"; else log "stack check FAILED (exit $rc); service logs in $OUT/logs"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 1. tools
step "tools: container engine, compose, chromium, debootstrap"
command -v dockerd >/dev/null || apt_install docker.io
if ! docker info >/dev/null 2>&1; then
  command -v docker >/dev/null || apt_install docker.io
  log "no docker daemon answers: starting dockerd (log $OUT/logs/dockerd.log)"
  # started directly (not through a shell function, whose subshell's pid would be the one recorded)
  if [ "$(id -u)" = 0 ]; then dockerd >"$OUT/logs/dockerd.log" 2>&1 &
  else sudo dockerd >"$OUT/logs/dockerd.log" 2>&1 & fi
  STARTED_DOCKERD=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || die "dockerd did not start (see $OUT/logs/dockerd.log)"
fi
if docker compose version >/dev/null 2>&1; then DC=(docker compose)
else command -v docker-compose >/dev/null || apt_install docker-compose; DC=(docker-compose); fi
command -v chromium >/dev/null && command -v chromedriver >/dev/null || apt_install chromium chromium-driver
command -v debootstrap >/dev/null || apt_install debootstrap
[ -x "$PY" ] || die "$PY missing: run make .venv/.installed-dev first (make stack-check does)"
log "docker $(docker version --format '{{.Server.Version}}'), $("${DC[@]}" version --short 2>/dev/null || "${DC[@]}" version | head -n1)"
step_done "tools"

# ---------------------------------------------------------------- 2. base images
step "base images"
BASE="${STACK_BASE:-auto}"
if [ "$BASE" = auto ]; then
  if timeout 60 docker pull -q python:3.11-slim-bookworm >/dev/null 2>&1; then BASE=registry; else BASE=debian; fi
fi
FILES=(-f docker-compose.yaml)
if [ "$BASE" = debian ]; then
  log "no registry (or STACK_BASE=debian): images from Debian's packages (docker/debian_images.sh)"
  bash docker/debian_images.sh || die "docker/debian_images.sh failed"
  FILES+=(-f docker-compose.debian.yaml)
else
  log "registry images (python:3.11-slim-bookworm, postgres:16, redis:7.2-bookworm)"
fi
step_done "base images ($BASE)"

# ---------------------------------------------------------------- 3. wheelhouse
step "wheelhouse from requirements.lock"
mkdir -p docker/wheelhouse
"$PY" -m pip download --quiet --no-deps --require-hashes -r requirements.lock -d docker/wheelhouse \
  2> >(grep -v "is ignored: it is neither" >&2) || die "pip download of requirements.lock failed"
"$PY" -m pip download --quiet --no-deps pip==24.3.1 -d docker/wheelhouse \
  2> >(grep -v "is ignored: it is neither" >&2) || die "pip download of pip failed"
log "$(ls docker/wheelhouse | grep -c '\.whl$') wheels, $(du -sh docker/wheelhouse | cut -f1)"
step_done "wheelhouse"

# ---------------------------------------------------------------- 4. build and start
step "build the pipeline image and every service image"
ENV_FILE="$OUT/env"
secret() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))'; }
cat >"$ENV_FILE" <<EOF
AIRFLOW_DB_PASSWORD=$(secret)
AIRFLOW_FERNET_KEY=$("$PY" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
AIRFLOW_JWT_SECRET=$(secret)
AIRFLOW_API_SECRET_KEY=$(secret)
AIRFLOW_UI_USERS=admin:admin
AIRFLOW_UID=50000
AIRFLOW_API_PORT=$API_PORT
IOC_WORKER_CONCURRENCY=4
IOC_PII_KEY=$(secret)
IOC_PROVINCE_CODE=48
WAREHOUSE_PASSWORD=$(secret)
WAREHOUSE_OWNER_PASSWORD=$(secret)
WAREHOUSE_AIRFLOW_PASSWORD=$(secret)
WAREHOUSE_PORT=$WH_PORT
IOC_WEB_PASSWORD=$(secret)
IOC_WEB_PORT=$WEB_PORT
SIM_TOKEN=$(secret)
SECTOR_DB_PASSWORD=$(secret)
SIM_UNTIL=$AS_OF
SIM_RECORDS=20000
EOF
chmod 600 "$ENV_FILE"
# the check's own additions: loopback-only ports for the host-side comparison (sector-db)
cat >"$OUT/compose.check.yaml" <<EOF
services:
  sector-db:
    ports:
      - "127.0.0.1:$SIM_DB_PORT:5432"
EOF
FILES+=(-f "$OUT/compose.check.yaml")
COMPOSE="${DC[*]} -p $PROJECT --env-file $ENV_FILE ${FILES[*]} --profile simulator"
# remove what an earlier, interrupted check may have left
$COMPOSE down -v --remove-orphans >/dev/null 2>&1 || true
COMPOSE_READY=1
$COMPOSE config -q || die "compose config is invalid"
$COMPOSE build >"$OUT/logs/build.log" 2>&1 || { tail -n 40 "$OUT/logs/build.log"; die "build failed ($OUT/logs/build.log)"; }
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E '^(ioc-pipeline|ioc-debian)' | sed 's/^/    /'
step_done "build (pipeline image, services)"

step "up --profile simulator, wait until every service is healthy"
$COMPOSE up -d >"$OUT/logs/up.log" 2>&1 || { tail -n 40 "$OUT/logs/up.log"; die "compose up failed"; }
deadline=$(( $(date +%s) + ${STACK_HEALTH_TIMEOUT:-900} ))
while :; do
  pending=()
  for id in $($COMPOSE ps -q); do
    read -r name status health exitcode < <(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}-{{end}} {{.State.ExitCode}}' "$id")
    name="${name#/}"
    if [ "$health" != "-" ]; then
      [ "$health" = healthy ] || pending+=("$name:$health")
    elif [ "$status" = exited ]; then
      # one-shot services (airflow-init, warehouse-migrate, ioc-web-login) must have exited 0
      [ "$exitcode" = 0 ] || { docker logs --tail 30 "$id"; die "$name exited with $exitcode"; }
    else
      pending+=("$name:$status")
    fi
  done
  [ ${#pending[@]} = 0 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { $COMPOSE ps; die "not healthy in time: ${pending[*]}"; }
  echo "    waiting: ${pending[*]}"
  sleep 15
done
$COMPOSE ps
step_done "up + every service healthy"

# the simple auth manager's generated passwords (admin), as a person reads them to log in
$COMPOSE exec -T airflow-apiserver cat /opt/airflow/home/simple_auth_manager_passwords.json >"$OUT/passwords.json" \
  || die "no simple auth manager password file"
chmod 600 "$OUT/passwords.json"
get() { grep -E "^$1=" "$ENV_FILE" | cut -d= -f2-; }
LANDING="$(docker volume inspect -f '{{.Mountpoint}}' "$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | grep 'sector-landing$')")"
COMMON=(--api "http://127.0.0.1:$API_PORT" --password-file "$OUT/passwords.json")
DB=(--as-of "$AS_OF" --landing "$LANDING"
    --warehouse-dsn "host=127.0.0.1 port=$WH_PORT dbname=ioc user=ioc_dashboard password=$(get IOC_WEB_PASSWORD)"
    --audit-dsn "host=127.0.0.1 port=$WH_PORT dbname=ioc user=ioc_airflow password=$(get WAREHOUSE_AIRFLOW_PASSWORD)"
    --sim-dsn "host=127.0.0.1 port=$SIM_DB_PORT dbname=sector_sim user=sector password=$(get SECTOR_DB_PASSWORD)")

# ---------------------------------------------------------------- 5. the night
step "night for $AS_OF through the REST API, then the comparison"
"$PY" scripts/stack_night.py night "${COMMON[@]}" "${DB[@]}" || die "the night or its comparison failed"
step_done "night + comparison"

# ---------------------------------------------------------------- 6. the landing watcher
step "landing watcher (triggerer)"
sample="$(cd "$LANDING" && ls health/*.csv | head -n1)"
[ -n "$sample" ] || die "no health delivery in the landing volume"
# a delivery as a transfer tool leaves it: written under a temporary name, its time kept (already
# settled, sources.md), then renamed into place
DELIVER="$COMPOSE exec -T airflow-worker sh -c 'f=/opt/airflow/landing/\$1; cat > \"\$f.part\" && touch -d @\$((\$(date +%s) - 90)) \"\$f.part\" && mv \"\$f.part\" \"\$f\"' deliver"
"$PY" scripts/stack_night.py watch "${COMMON[@]}" --source health_visits --file "$LANDING/$sample" \
  --target "health/bhyt_visits_STACKCHECK_${AS_OF//-/}.csv" --deliver "$DELIVER" --within 60 --quiet 100 \
  || die "the watcher check failed"
step_done "watcher"

# ---------------------------------------------------------------- 7. screenshots
step "screenshots of the stack's Airflow UI"
"$PY" scripts/stack_night.py screenshots "${COMMON[@]}" --dag ingest_civil_status --out "$OUT/screenshots" \
  || die "screenshots failed"
step_done "screenshots"
exit 0
