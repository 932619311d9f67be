#!/usr/bin/env bash
# Really run docker-compose.yml without a Docker engine: podman + podman-compose.
#  1. a Debian bookworm base image made locally (debootstrap; no registry needed)
#  2. stand-in images for Kafka (Maven-resolved jars), Redis and Prometheus
#     (Debian packages), substituted through KAFKA_IMAGE / REDIS_IMAGE /
#     PROMETHEUS_IMAGE (whose defaults in .env stay the official images)
#  3. `podman-compose up` on free host ports, health checks from the host,
#     then `down -v`, and a check that no container, volume or network is left.
# Grafana is not started: it has no Debian package and its image cannot be pulled here.
#
# COMPOSE_SMOKE_FULL=1 (`make compose-smoke-full`) runs the whole file instead:
# also the exporters and Alertmanager (Debian packages, deploy/images/exporter),
# the one-shot model-init job (downloads MovieLens, trains, materialises into
# Redis) and every Python service on deploy/images/app-hostenv, a stand-in for
# the app image whose Python environment is the host's .venv mounted read-only
# (deploy/podman/compose.hostenv.yml); then from the host: recommend, assign,
# a click through the explorer seen in Redis, Prometheus scraping every job,
# a bounded simulator run (profile "simulate") handled by the stream
# processor, and Airflow (its Postgres on deploy/images/postgres) healthy with
# both DAGs parsed into its metadata database. Grafana stays behind its profile.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=$ROOT/run/podman
PROJECT=${SMOKE_PROJECT:-minirec-smoke}
BASE_IMAGE=localhost/minirec-debian:bookworm
PY=$ROOT/.venv/bin/python
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
mkdir -p "$WORK"
# a copy of everything printed, for the record: run/podman/compose-smoke[-full].log
exec > >(tee "$WORK/compose-smoke$([ "${COMPOSE_SMOKE_FULL:-0}" = 1 ] && echo -full).log") 2>&1

need=()
for bin in podman runc debootstrap; do command -v $bin >/dev/null || need+=($bin); done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "missing: ${need[*]}; fix: sudo apt-get install -y podman runc debootstrap" >&2; exit 1; }
  say "apt-get install podman runc debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
fi
export CONTAINERS_CONF=$ROOT/deploy/podman/containers.conf

if ! podman image exists "$BASE_IMAGE"; then
  # the Debian mirror this machine's apt already uses
  MIRROR=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $3 ~ /bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$MIRROR" ] || { echo "no Debian mirror found in /etc/apt sources" >&2; exit 1; }
  say "debootstrap bookworm base image from $MIRROR"
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  tar -C "$WORK/rootfs" -c . | podman import - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
fi

say "resolving Kafka jars (Maven) for the Kafka image"
"$PY" -m minirec.cli fetch-kafka >/dev/null
CTX=$WORK/ctx-kafka
rm -rf "$CTX" && mkdir -p "$CTX/libs"
cp "$ROOT"/run/kafka-libs/*.jar "$CTX/libs/"
cp deploy/images/kafka/{Dockerfile,run.sh,kafka-topics.sh} "$CTX/"
cp deploy/kafka/log4j2.properties "$CTX/"

build() {  # name context
  say "podman build localhost/minirec-$1:smoke"
  podman build -q --network=host --build-arg BASE_IMAGE="$BASE_IMAGE" \
    -t "localhost/minirec-$1:smoke" "$2" >/dev/null
}
build kafka "$CTX"
build redis deploy/images/redis
build prometheus deploy/images/prometheus
export KAFKA_IMAGE=localhost/minirec-kafka:smoke
export REDIS_IMAGE=localhost/minirec-redis:smoke
export PROMETHEUS_IMAGE=localhost/minirec-prometheus:smoke

FULL=${COMPOSE_SMOKE_FULL:-0}
COMPOSE=("$ROOT/.venv/bin/podman-compose" -p "$PROJECT" -f "$ROOT/docker-compose.yml")
PORTS=(KAFKA_PORT KAFKA_CONTROLLER_PORT REDIS_PORT PROMETHEUS_PORT)
SERVICES=(kafka kafka-init redis prometheus)
if [ "$FULL" = 1 ]; then
  exporter() {  # name debian-package command
    say "podman build localhost/minirec-$1:smoke ($2)"
    podman build -q --network=host --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg PACKAGE="$2" \
      --build-arg COMMAND="$3" -t "localhost/minirec-$1:smoke" deploy/images/exporter >/dev/null
  }
  exporter alertmanager prometheus-alertmanager alertmanager
  exporter redis-exporter prometheus-redis-exporter redis_exporter
  exporter node-exporter prometheus-node-exporter node_exporter
  build app-hostenv deploy/images/app-hostenv
  build postgres deploy/images/postgres
  export POSTGRES_IMAGE=localhost/minirec-postgres:smoke
  export ALERTMANAGER_IMAGE=localhost/minirec-alertmanager:smoke
  export REDIS_EXPORTER_IMAGE=localhost/minirec-redis-exporter:smoke
  export NODE_EXPORTER_IMAGE=localhost/minirec-node-exporter:smoke
  # the host's Python environment, mounted read-only at the same paths (compose.hostenv.yml)
  export SMOKE_VENV=$ROOT/.venv
  SMOKE_PYHOME=$(dirname "$(dirname "$(readlink -f "$SMOKE_VENV/bin/python")")")
  export SMOKE_PYHOME
  export SMOKE_CA_FILE=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  COMPOSE+=(-f "$ROOT/deploy/podman/compose.hostenv.yml")
  PORTS+=(ALERTMANAGER_PORT RECOMMENDER_PORT STREAM_METRICS_PORT ASSIGNMENT_PORT DRIFT_METRICS_PORT
          EXPLORER_PORT REDIS_EXPORTER_PORT NODE_EXPORTER_PORT KAFKA_JMX_EXPORTER_PORT AIRFLOW_PORT POSTGRES_PORT)
  SERVICES+=(redis-exporter node-exporter alertmanager postgres model-init)
  AIRFLOW=(airflow-api-server airflow-scheduler airflow-dag-processor)
  APPS=(recommender stream assignment drift explorer)
fi

# free host ports, so the smoke run never collides with a running native stack (the published
# ports are also the containers' own, so each gets a port free on the host)
read -r -a FREE < <("$PY" -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])' "${#PORTS[@]}")
for i in "${!PORTS[@]}"; do export "${PORTS[$i]}=${FREE[$i]}"; done

cleanup() {
  say "podman-compose down -v"
  "${COMPOSE[@]}" --profile simulate down -v >"$WORK/down.log" 2>&1 || tail -5 "$WORK/down.log"
}
logs() {
  for c in "$@"; do echo "--- logs $c"; podman logs --tail 25 "${PROJECT}_${c}_1" 2>&1 || true; done
}
trap cleanup EXIT

say "podman-compose up (${SERVICES[*]}) on ports kafka=$KAFKA_PORT redis=$REDIS_PORT prometheus=$PROMETHEUS_PORT"
"${COMPOSE[@]}" up -d --no-build "${SERVICES[@]}" >"$WORK/up.log" 2>&1 || { tail -20 "$WORK/up.log"; exit 1; }

say "health checks from the host"
if ! "$PY" -m minirec.cli probe --timeout 180 --topics --services kafka redis prometheus; then
  logs kafka kafka-init redis prometheus
  exit 1
fi

if [ "$FULL" = 1 ]; then
  # The services that need a model start once model-init has exited 0, in a second `up --no-deps`:
  # podman 4.3 ignores service_healthy, and its --requires links (what podman-compose makes of
  # depends_on) fail to start a graph with an exited one-shot in it, or would start model-init again.
  say "model-init: MovieLens into the data volume, train, gate, FAISS, registry, materialise into Redis (minutes)"
  t_init=$SECONDS
  init_rc=$(podman wait "${PROJECT}_model-init_1")
  echo "model-init exited with $init_rc after $((SECONDS - t_init)) s"
  [ "$init_rc" -eq 0 ] || { logs model-init; exit 1; }
  say "podman-compose up (${APPS[*]}) on ports recommender=$RECOMMENDER_PORT assignment=$ASSIGNMENT_PORT explorer=$EXPLORER_PORT"
  "${COMPOSE[@]}" up -d --no-build --no-deps "${APPS[@]}" >>"$WORK/up.log" 2>&1 || { tail -20 "$WORK/up.log"; exit 1; }
  CHECK=("$PY" "$ROOT/deploy/podman/full_checks.py")
  "${CHECK[@]}" services --timeout 300 || { logs recommender stream assignment drift explorer; exit 1; }
  "${CHECK[@]}" loop --timeout 60 || { logs recommender assignment explorer stream; exit 1; }
  "${CHECK[@]}" targets --timeout 90 || exit 1
  SIM_S=${COMPOSE_SMOKE_SIM_S:-20}
  say "simulator (profile simulate): $SIM_S s of held-out users against the compose services"
  before=$("$PY" -c 'import sys; sys.path.insert(0, "deploy/podman"); import full_checks as f; print(f.stream_events())')
  "${COMPOSE[@]}" --profile simulate run --rm --no-deps simulator \
    python -m services.simulator --duration-s "$SIM_S" --speedup 1e9 --no-progress 2>"$WORK/simulator.err" \
    | tee "$WORK/simulator.out" || { tail -20 "$WORK/simulator.err"; exit 1; }
  sleep 5  # the stream processor's next batch
  "${CHECK[@]}" stream --at-least "$((${before%.*} + 1))" || exit 1

  # Airflow last, when training no longer competes for the two cores: schema, then its three processes
  say "airflow-init: airflow db migrate into Postgres"
  "${COMPOSE[@]}" up -d --no-build --no-deps airflow-init >>"$WORK/up.log" 2>&1 || { tail -20 "$WORK/up.log"; exit 1; }
  mig_rc=$(podman wait "${PROJECT}_airflow-init_1")
  echo "airflow-init exited with $mig_rc"
  [ "$mig_rc" -eq 0 ] || { logs postgres airflow-init; exit 1; }
  say "podman-compose up (${AIRFLOW[*]}) on port airflow=$AIRFLOW_PORT"
  "${COMPOSE[@]}" up -d --no-build --no-deps "${AIRFLOW[@]}" >>"$WORK/up.log" 2>&1 || { tail -20 "$WORK/up.log"; exit 1; }
  "${CHECK[@]}" airflow --timeout 300 || { logs "${AIRFLOW[@]}"; exit 1; }
  dags() { podman exec "${PROJECT}_postgres_1" psql -U airflow -p "$POSTGRES_PORT" -d airflow -tAc \
             "select dag_id from dag order by dag_id" 2>/dev/null | tr '\n' ' '; }
  for _ in $(seq 60); do
    case "$(dags)" in *drift_monitor*train_two_tower*) break ;; esac
    sleep 3
  done
  echo "airflow     DAGs in the metadata database: $(dags)"
  case "$(dags)" in *drift_monitor*train_two_tower*) ;; *) logs airflow-dag-processor; exit 1 ;; esac
fi

trap - EXIT
cleanup
left_c=$(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" -q | wc -l)
left_n=$(podman network ls --format '{{.Name}}' | grep -c "^${PROJECT}_" || true)
left_v=$(podman volume ls --format '{{.Name}}' | grep -c "^${PROJECT}_" || true)
echo "left behind: containers=$left_c networks=$left_n volumes=$left_v"
[ "$left_c" -eq 0 ] && [ "$left_n" -eq 0 ] && [ "$left_v" -eq 0 ]
say "compose smoke passed"
